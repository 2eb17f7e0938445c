"""Admin endpoints under `/_emulator/`: inspect the emulator and steer its faults.

No API key is needed. Each endpoint mirrors a method of `Emulator`:

    GET    /_emulator/state    -> emu.state()
    GET    /_emulator/calls    -> emu.calls()
    DELETE /_emulator/calls    -> emu.reset_calls()
    POST   /_emulator/faults   -> emu.set_faults(body)   (merge; body {"replace": true, ...} replaces;
                                                        {"variants": [...]} switches personalities)
    DELETE /_emulator/faults   -> emu.clear_faults()
    POST   /_emulator/credits  -> emu.set_out_of_credits(body["out_of_credits"])
    POST   /_emulator/reset    -> emu.reset()
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from skylab_watch.emulator.faults import FaultError
from skylab_watch.emulator.protocol import Request, Response, json_response, message_response

if TYPE_CHECKING:
    from skylab_watch.emulator.emulator import Emulator

ADMIN_PREFIX = "/_emulator/"


def _body(req: Request) -> Any:
    """Return the JSON body ({} when empty); raise ValueError if it is not JSON."""
    return json.loads(req.body) if req.body.strip() else {}


def _set_faults(emu: Emulator, doc: Any) -> Response:
    if not isinstance(doc, dict):
        return message_response(422, "faults: must be a JSON object")
    doc = dict(doc)
    replace = bool(doc.pop("replace", False))
    try:
        return json_response(200, emu.set_faults(doc, replace=replace))
    except FaultError as exc:
        return message_response(422, str(exc))


def _set_credits(emu: Emulator, doc: Any) -> Response:
    if not isinstance(doc, dict) or not isinstance(doc.get("out_of_credits"), bool):
        return message_response(422, 'body must be {"out_of_credits": true|false}')
    emu.set_out_of_credits(doc["out_of_credits"])
    return json_response(200, {"out_of_credits": doc["out_of_credits"]})


def serve_admin(emu: Emulator, req: Request) -> Response:
    """Serve one request below `/_emulator/`."""
    name = req.path[len(ADMIN_PREFIX):].strip("/")
    try:
        doc = _body(req)
    except ValueError:
        return message_response(422, "request body is not valid JSON")
    route = (req.method, name)
    if route == ("GET", "state"):
        return json_response(200, emu.state())
    if route == ("GET", "calls"):
        return json_response(200, emu.calls())
    if route == ("DELETE", "calls"):
        emu.reset_calls()
        return json_response(200, {})
    if route == ("POST", "faults"):
        return _set_faults(emu, doc)
    if route == ("DELETE", "faults"):
        emu.clear_faults()
        return json_response(200, emu.faults.to_dict())
    if route == ("POST", "credits"):
        return _set_credits(emu, doc)
    if route == ("POST", "reset"):
        emu.reset()
        return json_response(200, {"reset": True})
    return message_response(404, f"no admin endpoint {req.method} {req.path}")

"""The API's route table and the order in which a request is served.

Order for `/api/public/v1/...`: count the call, add latency, decide a fault
error (answered now, or with `after` once the endpoint has acted), check the
API key (403), 404 for unknown routes, parse parameters, refuse paid calls
while out of credits (402, or the variant's shape), then run the endpoint
under the state lock and save. Endpoint keys have the form `"METHOD route"`
with the route template, e.g. `"GET jobs/{id}"`; fault rules use the same keys.
"""

from __future__ import annotations

import hmac
import json
import math
import time
from typing import TYPE_CHECKING, Callable

from skylab_watch.emulator import jobs_api, photos_api, profiles_api
from skylab_watch.emulator.faults import InjectedError
from skylab_watch.emulator.protocol import ApiError, Request, Response, message_response

if TYPE_CHECKING:
    from skylab_watch.emulator.core import Studio

API_PREFIX = "/api/public/v1/"
Endpoint = Callable[["Studio", Request], Response]

ROUTES: list[tuple[str, str, Endpoint]] = [
    ("GET", "jobs", jobs_api.list_jobs),
    ("POST", "jobs", jobs_api.create_job),
    ("GET", "jobs/find_by_name", jobs_api.find_by_name),
    ("GET", "jobs/{id}", jobs_api.get_job),
    ("PATCH", "jobs/{id}", jobs_api.update_job),
    ("PUT", "jobs/{id}", jobs_api.update_job),
    ("DELETE", "jobs/{id}", jobs_api.delete_job),
    ("POST", "jobs/{id}/queue", jobs_api.queue_job),
    ("GET", "jobs/{id}/jobs_in_front", jobs_api.get_jobs_in_front),
    ("POST", "jobs/{id}/cancel", jobs_api.cancel_job),
    ("GET", "jobs/{id}/photo_ids", jobs_api.photo_ids),
    ("GET", "profiles", profiles_api.list_profiles),
    ("POST", "profiles", profiles_api.create_profile),
    ("GET", "profiles/{id}", profiles_api.get_profile),
    ("PATCH", "profiles/{id}", profiles_api.update_profile),
    ("PUT", "profiles/{id}", profiles_api.update_profile),
    ("GET", "profiles/{id}/bg_photos", profiles_api.bg_photos),
    ("POST", "photos", photos_api.create_photo),
    ("GET", "photos/upload_url", photos_api.upload_url),
    ("GET", "photos/list_for_job", photos_api.list_for_job),
    ("GET", "photos/{id}", photos_api.get_photo),
    ("DELETE", "photos/{id}", photos_api.delete_photo),
]

# Calls that spend credits: refused with 402 while the account is out of credits.
PAID_KEYS = frozenset({"POST jobs", "POST photos", "GET photos/upload_url", "POST jobs/{id}/queue"})
UNKNOWN_KEY = "unknown"


def match_route(method: str, subpath: str) -> tuple[str, Endpoint | None, str | None]:
    """Return (endpoint key, endpoint, id) for a path below the API prefix.

    Unknown paths, and known paths with a method they do not serve, give
    (UNKNOWN_KEY, None, None) and are answered 404 after the key check.
    """
    parts = subpath.strip("/").split("/")
    for route_method, template, endpoint in ROUTES:
        pattern = template.split("/")
        if len(pattern) != len(parts):
            continue
        if all(p == "{id}" or p == s for p, s in zip(pattern, parts, strict=True)):
            route_id = next((s for p, s in zip(pattern, parts, strict=True) if p == "{id}"), None)
            if route_method == method:
                return f"{method} {template}", endpoint, route_id
    return UNKNOWN_KEY, None, None


def parse_params(req: Request) -> dict:
    """Merge the query string and a JSON object body (the body wins); 422 if bad JSON."""
    params: dict = dict(req.query)
    if req.body.strip():
        try:
            body = json.loads(req.body)
        except ValueError:
            raise ApiError(422, "request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise ApiError(422, "request body must be a JSON object")
        params.update(body)
    return params


def _authorised(studio: Studio, req: Request) -> bool:
    """True when X-SLT-API-KEY matches, compared in constant time."""
    given = req.header("X-SLT-API-KEY") or ""
    return hmac.compare_digest(given.encode(), studio.api_key.encode())


def error_response(error: InjectedError) -> Response:
    """Return an injected error in the API's shape."""
    headers = {"Retry-After": str(math.ceil(error.retry_after))} if error.retry_after is not None else {}
    return message_response(error.status, error.message, headers)


def serve_api(studio: Studio, req: Request) -> Response:
    """Serve one request below `/api/public/v1/` in the order the module docstring gives."""
    key, endpoint, req.route_id = match_route(req.method, req.path[len(API_PREFIX):])
    studio.count_call(key)
    delay = studio.faults.latency(key)
    if delay:
        time.sleep(delay)
    injected = studio.faults.error_for(key, f"{req.method} {req.path}")
    if injected is not None and not injected.after:
        return error_response(injected)
    if not _authorised(studio, req):
        return message_response(403, "Invalid or missing API key (X-SLT-API-KEY)")
    if endpoint is None:
        return message_response(404, f"no endpoint {req.method} {req.path}")
    try:
        req.params = parse_params(req)
        response = _run_endpoint(studio, key, endpoint, req)
    except ApiError as exc:
        response = message_response(exc.status, exc.message)
    return error_response(injected) if injected is not None else response


def _run_endpoint(studio: Studio, key: str, endpoint: Endpoint, req: Request) -> Response:
    """Run an endpoint under the state lock, after settling job progress; save changes."""
    studio.advance()
    with studio.state.lock:
        if key in PAID_KEYS and studio.state.out_of_credits:
            status, message = studio.personality.apply(
                "credits", (402, "Out of credits: add credits to your account to continue"))
            raise ApiError(status, message)
        response = endpoint(studio, req)
        if req.method != "GET":
            studio.state.save()
    if req.method != "GET":
        studio.advance()
    return response

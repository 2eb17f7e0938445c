"""A local Skylab Studio emulator: the public API, a presigned object store,
timed processing with real pyvips outputs, signed completion callbacks and
fault injection, all on a real loopback socket.

It reads the API contract independently of `skylab_watch.studio` (the
client) and imports nothing from it, so that each can catch the other's
misreadings.

    from skylab_watch.emulator import Emulator
    with Emulator(api_key="k", processing_seconds=0.5) as emu:
        requests.get(emu.url + "/api/public/v1/jobs", headers={"X-SLT-API-KEY": "k"})
"""

from skylab_watch.emulator.callbacks import sign as sign_callback
from skylab_watch.emulator.emulator import Emulator
from skylab_watch.emulator.faults import FaultError

__all__ = ["Emulator", "FaultError", "sign_callback"]

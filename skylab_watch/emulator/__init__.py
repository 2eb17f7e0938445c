"""A local Skylab Studio emulator: the public API, a presigned object store,
timed processing with real pyvips outputs, signed completion callbacks,
fault injection and personalities (variants), all on a real loopback socket.

It reads the API contract independently of `skylab_watch.studio` (the
client) and imports nothing from it, so that each can catch the other's
misreadings.

    from skylab_watch.emulator import Emulator
    with Emulator(api_key="k", processing_seconds=0.5, profiles=["Cut-outs:extract"],
                  variants=["slim-job-photos"]) as emu:
        requests.get(emu.url + "/api/public/v1/jobs", headers={"X-SLT-API-KEY": "k"})

`Studio` is the same service without threads or sockets: `handle(request)`.
"""

from skylab_watch.emulator.callbacks import sign as sign_callback
from skylab_watch.emulator.core import Studio
from skylab_watch.emulator.emulator import Emulator
from skylab_watch.emulator.faults import FaultError
from skylab_watch.emulator.profile_specs import ProfileSpec, parse_profile_spec
from skylab_watch.emulator.variants import VARIANTS

__all__ = ["Emulator", "FaultError", "ProfileSpec", "Studio", "VARIANTS", "parse_profile_spec", "sign_callback"]

"""Memory stays flat: the process settings `run` makes at start, and the peak of real-size deliveries (issue 13).

Peaks are the kernel's high-water mark of a fresh process (VmHWM in
/proc/self/status), never wait4's ru_maxrss, which Linux carries over from
the pytest worker across exec.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's /proc")


def _python(code: str, *args: str, env: dict[str, str] | None = None, timeout: float = 60) -> str:
    """Run `code` in a fresh interpreter (no VIPS_CONCURRENCY or MALLOC_ARENA_MAX unless given); return stdout."""
    base = {k: v for k, v in os.environ.items() if k not in ("VIPS_CONCURRENCY", "MALLOC_ARENA_MAX")}
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout,
                          env={**base, **(env or {})}, check=True)
    return done.stdout.strip()


_SETTINGS = """
from skylab_watch import process_memory
import pyvips
capped = process_memory.limit_malloc_arenas()
process_memory.bound_libvips()
print(capped, pyvips.cache_get_max(), pyvips.concurrency_get())
"""


def test_run_start_caps_malloc_arenas_switches_the_libvips_cache_off_and_bounds_its_threads():
    capped, cache, threads = _python(_SETTINGS).split()
    assert capped == "True"
    assert cache == "0"
    assert 1 <= int(threads) <= 4


def test_a_malloc_arena_max_set_in_the_environment_is_left_to_rule():
    capped, _cache, threads = _python(_SETTINGS, env={"MALLOC_ARENA_MAX": "4", "VIPS_CONCURRENCY": "1"}).split()
    assert capped == "False"
    assert threads == "1"


_DELIVER_IN_PARALLEL = """
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from skylab_watch import process_memory
process_memory.limit_malloc_arenas()
process_memory.bound_libvips()
from skylab_watch import imaging, outputs

def peak_mb():
    return int(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0]) / 1024

result, folder, count = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
plans = imaging.plan_outputs({"outputFileType": "jpg"}, ".jpg", [])

def deliver(i):
    # what delivery does with a download: check it, then write and check every output
    imaging.check_pixel_budget(result)
    imaging.check_decodes(result)
    for plan in plans:
        out = folder / f"{i}-{plan.kind}.{plan.fmt}"
        outputs.write_atomically(out, lambda sink: imaging.write_output(plan, result, [], sink),
                                 tag=str(i), check=imaging.check_decodes)
        out.unlink()

before = peak_mb()
with ThreadPoolExecutor(4) as pool:
    list(pool.map(deliver, range(count)))
print(before, peak_mb())
"""


def test_four_4000x3000_deliveries_on_four_workers_add_under_120_mb_to_the_peak(tmp_path: Path):
    # Four decoded 4000x3000 RGB images would be 144 MB, and the old way (decode, then decode the written
    # file again) twice that; streaming holds scanlines. Measured: +40-60 MB (libvips' threads' buffers
    # and the workers' arena), so 120 MB leaves room for a loaded machine and still fails a whole decode.
    import pyvips

    w, h = 4000, 3000
    bands = [pyvips.Image.gaussnoise(w, h, mean=128, sigma=30) for _ in range(3)]
    result = tmp_path / "result.jpg"
    bands[0].bandjoin(bands[1:]).cast("uchar").write_to_file(str(result), Q=92)
    before, peak = (float(v) for v in _python(_DELIVER_IN_PARALLEL, str(result), str(tmp_path), "4").split())
    assert peak - before < 120, f"peak RSS rose by {peak - before:.0f} MB (from {before:.0f} to {peak:.0f} MB)"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.jpg"], "every output written, then removed"

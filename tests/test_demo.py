"""`skylab-watch demo` runs offline, with no arguments, and leaves real outputs behind."""

import subprocess
import sys

import pyvips
from daemon_helpers import REPO


def test_demo_delivers_every_sample_and_exits_0(tmp_path):
    result = subprocess.run([sys.executable, "-m", "skylab_watch", "demo", "--dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=120, cwd=str(REPO))
    assert result.returncode == 0, result.stdout + result.stderr
    outputs = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert outputs == ["cutouts/hats/cap.jpg", "cutouts/hats/cap.png", "cutouts/hats/fedora.jpg",
                       "cutouts/hats/fedora.png", "packshots/bags/tote.jpg", "packshots/shoes/sneaker-blue.jpg",
                       "packshots/shoes/sneaker-red.jpg"]
    assert pyvips.Image.new_from_file(str(tmp_path / "out" / "cutouts" / "hats" / "cap.png")).hasalpha()
    assert f"Outputs: {tmp_path / 'out'}" in result.stdout
    assert "3 done" in result.stdout and "2 done" in result.stdout

"""The daemon against each emulator personality: the ways the real Studio may answer that the
official clients tolerate (slim or missing embedded photos, placeholder results, originalUrl
before the bytes, other status words, credits refused as 422/403, WebP cut-outs, odd
jobs_in_front). Under every one, each photo is delivered exactly once with a correct output."""

from __future__ import annotations

import pytest
import pyvips
from daemon_helpers import DaemonThread, compress_time, studio_photos, write_config
from support import API_KEY, make_image, wait_for

from skylab_watch.emulator import VARIANTS, Emulator

NAMES = ["a.jpg", "shoot/b.png"]


def _photos_in(root, names):
    for i, name in enumerate(names):
        make_image(root / name, 1000, 800, seed=i + 3)  # taller than 750 px: the size that broke cut-outs


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_photo_is_delivered_once_under_each_personality(tmp_path, variant):
    credits_variant = variant.startswith("credits-")
    with Emulator(api_key=API_KEY, processing_seconds=0.3, profiles=["plain", "cutout:extract"],
                  variants=[variant]) as emu:
        watches = [{"name": "plain", "input": tmp_path / "plain-in", "output": tmp_path / "plain-out",
                    "profile": "plain"},
                   {"name": "cut", "input": tmp_path / "cut-in", "output": tmp_path / "cut-out",
                    "profile": "cutout"}]
        cfg = write_config(tmp_path, emu.url, watches)
        _photos_in(tmp_path / "plain-in", NAMES)
        _photos_in(tmp_path / "cut-in", NAMES)
        if credits_variant:
            emu.set_faults({"out_of_credits": True})
        with DaemonThread(cfg, once=True) as d:
            compress_time(d)
            if credits_variant:
                wait_for(lambda: "credits" in d.ledger.notices(), timeout=20, what="the credits pause")
                assert not d.ledger.photos_in_state("failed"), "a refusal about credits never fails a photo"
                emu.set_faults({"out_of_credits": False})
            d.thread.join(90)
            assert not d.thread.is_alive(), "run --once finished"
            assert not d.ledger.photos_in_state("failed"), [p.reason for p in d.ledger.photos_in_state("failed")]
            assert len(d.ledger.photos_in_state("done")) == 4
        assert d.code == 0
        sent = sorted(p["name"] for p in studio_photos(emu))
    assert sent == sorted(["a.jpg", "b.png"] * 2), "each photo sent exactly once"
    for stem in ("a", "shoot/b"):
        plain = pyvips.Image.new_from_file(str(next((tmp_path / "plain-out").glob(f"{stem}.*"))))
        cut = pyvips.Image.new_from_file(str(tmp_path / "cut-out" / f"{stem}.png"))
        assert (plain.width, plain.height) == (1000, 800)
        assert (cut.width, cut.height, cut.bands) == (1000, 800, 4), "a cut-out keeps its alpha"
        assert cut.extract_band(3).min() == 0 and cut.extract_band(3).max() == 255
    assert sorted(p.name for p in (tmp_path / "cut-out").rglob("*") if p.is_file()) == ["a.png", "b.png"]

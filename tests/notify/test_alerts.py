"""Alerts end to end: the daemon (or the notifications of one) writes the outbox, apprise's json://
delivers to a real HTTP receiver on loopback, which may be down for a while."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

from daemon_helpers import DaemonThread, start_process, write_config
from notify_receiver import Receiver
from support import make_image, wait_for

from skylab_watch.cli import main
from skylab_watch.config import NotifyConfig, NotifyTarget
from skylab_watch.ledger import Ledger, PhotoState
from skylab_watch.notify import Notifications
from skylab_watch.notify.stalls import stall_threshold


def _config(tmp: Path, emu, rx: Receiver, names: tuple[str, ...] = ("packshots",), **notify: object) -> Path:
    watches = [{"name": n, "input": tmp / n / "in", "output": tmp / n / "out", "profile": "plain"} for n in names]
    settings = {"urls": [rx.apprise_url], "digest_seconds": 0.3, "retry_seconds": 0.2, **notify}
    return write_config(tmp, emu.url, watches, notify=settings)


def _fail(ledger: Ledger, i: int) -> None:
    path = f"s1/IMG_{i:04}.jpg"
    ledger.add_photo("packshots", path, 1, 1, f"md5-{i}", PhotoState.FAILED,
                     reason=f"packshots: {path}: uploading failed: Studio refused the request (422): too small")


def test_a_failure_digest_groups_50_failures_in_one_message_naming_watch_path_and_reason(tmp_path: Path) -> None:
    with Receiver() as rx:
        ledger = Ledger(tmp_path / "ledger.sqlite3")
        cfg = NotifyConfig(urls=(NotifyTarget(rx.apprise_url),
                                 NotifyTarget(rx.apprise_url.replace("/alerts", "/credits"), events=("credits",))),
                           digest_seconds=0.2, retry_seconds=0.2)
        notes = Notifications(cfg, ledger, once=False, health=lambda: None)
        notes.start()
        with ledger.transaction():  # as fail_job fails a whole job's photos at once
            for i in range(50):
                _fail(ledger, i)
        digests = wait_for(lambda: (notes.on_pass(), rx.titled("failed"))[1], what="the digest")
        assert len(digests) == 1 and "50 photo(s) failed" in digests[0]["title"]
        for i in range(50):
            assert f"packshots: s1/IMG_{i:04}.jpg: uploading failed: Studio refused" in digests[0]["message"]
        _fail(ledger, 50)
        wait_for(lambda: (notes.on_pass(), len(rx.titled("failed")) == 2)[1], what="the next digest")
        second = rx.titled("failed")[1]
        assert "1 photo(s) failed" in second["title"] and "IMG_0050" in second["message"]
        assert "IMG_0049" not in second["message"], "a failure is told once"
        notes.close(0, "")
        assert rx.alerts("/credits") == [], "a notifier that lists its events gets only those"
        assert all(a.sent_at is not None for a in ledger.alerts())


def test_alerts_wait_in_the_outbox_while_the_receiver_is_down_and_photos_keep_being_delivered(
        tmp_path: Path, plain_emulator) -> None:
    with Receiver() as rx:
        rx.down = True
        with DaemonThread(_config(tmp_path, plain_emulator, rx)) as d:
            plain_emulator.set_out_of_credits(True)
            make_image(tmp_path / "packshots" / "in" / "a.jpg")
            wait_for(lambda: any(a.attempts and a.last_error for a in d.ledger.alerts()), what="a failed try")
            plain_emulator.set_out_of_credits(False)
            wait_for(lambda: (tmp_path / "packshots" / "out" / "a.jpg").is_file(), what="the delivery")
            assert rx.alerts() == [] and rx.refused >= 1
            assert all(a.sent_at is None for a in d.ledger.alerts()), "nothing is taken while the notifier is down"
            rx.down = False
            # Both, not only the newer one: the older alert has failed more tries, so its next one comes later
            # (up to 0.2 s doubled per try); under load the outage lasts long enough for that to pass 10 s.
            wait_for(lambda: rx.titled("credits are back") and rx.titled("out of credits"), timeout=30,
                     what="the alerts after the outage")
        out = rx.titled("out of credits")
        assert len(out) == 1 and "credits" in out[0]["message"]
        assert "Studio accepts work again" in rx.titled("credits are back")[0]["message"]
        assert all(a.sent_at is not None and a.attempts >= 1 for a in Ledger(d.config.ledger).alerts())


def test_a_watch_paused_and_back_and_a_full_output_disk_and_back_each_send_their_message(
        tmp_path: Path, plain_emulator) -> None:
    with Receiver() as rx:
        cfg = _config(tmp_path, plain_emulator, rx, ("packshots", "portraits"))
        blocker = tmp_path / "portraits" / "out" / "shoot"
        blocker.write_text("a file where the output folder should be")
        with DaemonThread(cfg) as d:
            shutil.rmtree(tmp_path / "packshots" / "in")
            paused = wait_for(lambda: rx.titled("watch packshots paused"), what="the paused alert")
            assert str(tmp_path / "packshots" / "in") in paused[0]["message"]
            (tmp_path / "packshots" / "in").mkdir()
            wait_for(lambda: rx.titled("watch packshots resumed"), what="the resumed alert")
            make_image(tmp_path / "portraits" / "in" / "shoot" / "a.jpg")
            full = wait_for(lambda: rx.titled("cannot write outputs of portraits"), what="the disk alert")
            assert "portraits: cannot write outputs to" in full[0]["message"]
            blocker.unlink()
            wait_for(lambda: rx.titled("outputs of portraits are written again"), what="the disk-back alert")
            assert main(["pause", "--config", str(cfg), "packshots", "--reason", "reshoot"]) == 0
            by_hand = wait_for(lambda: rx.titled("watch packshots paused by hand"), what="the pause alert")
            assert "reshoot" in by_hand[0]["message"]
            assert d.daemon.ctx.held_watches == {"packshots"}


def test_a_job_at_studio_far_longer_than_usual_is_reported_stalled_once(tmp_path: Path, plain_emulator) -> None:
    plain_emulator.set_faults({"withhold_photos": ["*_stuck.jpg"]})
    with Receiver() as rx:
        with DaemonThread(_config(tmp_path, plain_emulator, rx, stall_floor_seconds=1)):
            make_image(tmp_path / "packshots" / "in" / "a_stuck.jpg")
            stalled = wait_for(lambda: rx.titled("deliveries stalled"), what="the stall alert")
            assert "packshots: job packshots-" in stalled[0]["message"] and "1 photo(s)" in stalled[0]["message"]
            wait_for(lambda: len(rx.alerts()) >= 1)
        assert len(rx.titled("deliveries stalled")) == 1


def test_the_usual_time_at_studio_is_the_median_of_recent_jobs_with_a_floor() -> None:
    assert stall_threshold([10, 20], 3, 60) == (60, None), "too few jobs: the floor alone"
    assert stall_threshold([10, 20, 30, 400], 3, 60) == (75, 25), "the median resists one slow job"
    assert stall_threshold([5, 5, 5], 3, 60) == (60, 5), "never before the floor"


def test_a_start_after_the_daemon_was_killed_says_so_and_a_clean_stop_does_not(tmp_path: Path,
                                                                                plain_emulator) -> None:
    with Receiver() as rx:
        cfg = _config(tmp_path, plain_emulator, rx)
        proc = start_process(cfg)
        marker = tmp_path / "state" / "ledger.sqlite3.running"
        wait_for(marker.is_file, what="the daemon to start")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        with DaemonThread(cfg):
            unclean = wait_for(lambda: rx.titled("unclean stop"), what="the unclean-stop alert")
            assert f"pid {proc.pid}" in unclean[0]["message"]
        assert not marker.exists(), "a clean stop removes the marker"
        with DaemonThread(cfg):
            pass
        assert len(rx.titled("unclean stop")) == 1

"""A harness that drives single pipeline stages against the emulator: a real ledger, a real
client over loopback, real photos; no daemon loop, so each stage's outcome can be read directly."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from daemon_helpers import write_config
from support import make_image

from skylab_watch.config import load_config
from skylab_watch.ledger import Job, Ledger, Photo
from skylab_watch.pipeline import batcher, jobs
from skylab_watch.pipeline.context import Context, CreditGate
from skylab_watch.startup import make_client, wait_for_profiles


class Stage:
    """One account, one ledger and watches `names` (each `in`/`out` under tmp/NAME), all on profile `plain`."""

    def __init__(self, tmp: Path, url: str, names: tuple[str, ...] = ("w",), **watch_options: object) -> None:
        self.tmp = tmp
        watches = [{"name": n, "input": tmp / n / "in", "output": tmp / n / "out", "profile": "plain",
                    **watch_options} for n in names]
        self.config = load_config(write_config(tmp, url, watches))
        self.ledger = Ledger(self.config.ledger)
        self.studio = make_client(self.config)
        profiles = wait_for_profiles(self.config, self.studio, threading.Event())
        self.ctx = Context(config=self.config, ledger=self.ledger, studio=self.studio, profiles=profiles,
                           credits=CreditGate(self.ledger, 0.5), staging_dir=tmp / "staging")

    def close(self) -> None:
        self.studio.close()
        self.ledger.close()

    def add_photo(self, name: str = "a.jpg", watch: str = "w", seed: int = 0,
                  size: tuple[int, int] = (160, 120)) -> Photo:
        """Write a real photo into the watch's input and record it ready, as intake would."""
        path = make_image(self.tmp / watch / "in" / name, *size, seed=seed)
        data = path.read_bytes()
        stat = path.stat()
        return self.ledger.add_photo(watch, name, len(data), stat.st_mtime_ns, hashlib.md5(data).hexdigest(),
                                     "ready", width=size[0], height=size[1])

    def closed_job(self, watch: str = "w") -> Job:
        """Batch the watch's ready photos into a job and close it (not yet at Studio)."""
        batcher.batch_ready_photos(self.ctx, self.ctx.watch(watch))
        job = self.ledger.jobs_in_state("open", watch=watch)[0]
        batcher.close_job(self.ctx, job, "the test says so")
        return self.ledger.get_job(job.id)

    def created_job(self, watch: str = "w") -> Job:
        """A closed job, created at Studio."""
        job = self.closed_job(watch)
        jobs.create_job(self.ctx, job)
        return self.ledger.get_job(job.id)

    def photo(self, photo: Photo) -> Photo:
        return self.ledger.get_photo(photo.id)

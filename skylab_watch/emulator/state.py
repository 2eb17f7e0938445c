"""The emulated Studio account: profiles, jobs and photos, optionally on disk.

Everything the emulator knows lives in one `AccountState` behind one lock, so
that concurrent requests see a consistent account. With a data directory the
state is written as JSON after every mutation (temp file + `os.replace`, so a
crash never leaves half a file) and read back on start: ids keep increasing
and a queued job's timers keep running from its recorded `queued_at`.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import threading
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

STATE_FILE = "state.json"
STATE_VERSION = 1


@dataclass
class Profile:
    """A processing profile; field names are the API's snake_case request keys."""

    id: int
    name: str
    description: str | None = None
    enable_extract: bool = False
    replace_background: bool = False
    dual_file_output: bool = False
    enable_strip_png_metadata: bool = False
    output_file_type: str = "jpg"
    enable_crop: bool = False
    enable_color: bool = False


@dataclass
class Job:
    """A job. `status` is stored and advanced from timestamps by `progress`."""

    id: int
    name: str
    profile_id: int
    created_at: float
    status: str = "pending"
    queued_at: float | None = None
    completed_at: float | None = None
    callback_url: str | None = None
    will_fail: bool = False
    notified: bool = False


@dataclass
class Photo:
    """A job photo (`job_id` set) or a profile background (`profile_id` set)."""

    id: int
    name: str
    created_at: float
    job_id: int | None = None
    profile_id: int | None = None
    md5: str | None = None
    size: int | None = None
    tagging: str | None = None
    uploaded_at: float | None = None
    withheld: bool = False
    retouched: bool = False
    # Read from the image header when the bytes are PUT, so that queueing
    # never decodes anything under the lock: size, or why it is unreadable.
    width: int | None = None
    height: int | None = None
    image_problem: str | None = None
    # A background given by URL at start (`--profile NAME:bg=URL`): served
    # as its originalUrl as is; the emulator never fetches it.
    source_url: str | None = None


def _from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Build a dataclass from saved JSON, ignoring keys a newer version wrote."""
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in known})


class AccountState:
    """All records of the emulated account, guarded by `lock` (re-entrant)."""

    def __init__(self, data_dir: Path | None = None) -> None:
        self.lock = threading.RLock()
        self.data_dir = data_dir
        self.profiles: dict[int, Profile] = {}
        self.jobs: dict[int, Job] = {}
        self.photos: dict[int, Photo] = {}
        self.next_ids = {"profile": 1, "job": 1, "photo": 1}
        self.out_of_credits = False
        self.signing_key = secrets.token_bytes(32)
        self.closed = False
        if data_dir is not None:
            data_dir.mkdir(parents=True, exist_ok=True)
            self._load()

    # ---- ids and lookups -------------------------------------------------

    def new_id(self, kind: str) -> int:
        """Return a fresh id for `kind`; ids are never reused, even after reset."""
        value = self.next_ids[kind]
        self.next_ids[kind] = value + 1
        return value

    def job_photos(self, job_id: int) -> list[Photo]:
        """Return the photos of a job, oldest first."""
        return sorted((p for p in self.photos.values() if p.job_id == job_id), key=lambda p: p.id)

    def backgrounds(self, profile_id: int) -> list[Photo]:
        """Return a profile's background photos, oldest first."""
        return sorted(
            (p for p in self.photos.values() if p.job_id is None and p.profile_id == profile_id),
            key=lambda p: p.id,
        )

    def job_named(self, name: str) -> Job | None:
        """Return the job called `name`, or None; names are unique per account."""
        return next((j for j in self.jobs.values() if j.name == name), None)

    def reset(self) -> None:
        """Drop every record and the credits flag; ids keep increasing."""
        self.profiles.clear()
        self.jobs.clear()
        self.photos.clear()
        self.out_of_credits = False

    # ---- persistence -----------------------------------------------------

    def save(self) -> None:
        """Write the state atomically if a data directory is configured.

        It runs under the state lock after every change, so its cost is every
        call's: with 2,000 photos, dataclasses.asdict (a deep copy) and
        json.dump took 55 ms a call, now 13 ms. It is still the whole state
        each time (see the README's known limits).

        Once `closed` (the emulator stopped), nothing is written: a request
        still finishing in an old instance must not overwrite the state of a
        new instance started on the same data directory.
        """
        if self.data_dir is None or self.closed:
            return
        doc = {
            "version": STATE_VERSION,
            "next_ids": self.next_ids,
            "out_of_credits": self.out_of_credits,
            "signing_key": self.signing_key.hex(),
            "profiles": [_plain(p) for p in self.profiles.values()],
            "jobs": [_plain(j) for j in self.jobs.values()],
            "photos": [_plain(p) for p in self.photos.values()],
        }
        fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".json", dir=self.data_dir)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(json.dumps(doc))  # one string: json.dump writes it in thousands of small pieces
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.data_dir / STATE_FILE)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _load(self) -> None:
        """Read a previously saved state; a missing file means a new account."""
        assert self.data_dir is not None
        path = self.data_dir / STATE_FILE
        if not path.exists():
            return
        doc = json.loads(path.read_text(encoding="utf-8"))
        self.next_ids.update(doc.get("next_ids", {}))
        self.out_of_credits = bool(doc.get("out_of_credits", False))
        if doc.get("signing_key"):
            self.signing_key = bytes.fromhex(doc["signing_key"])
        self.profiles = {d["id"]: _from_dict(Profile, d) for d in doc.get("profiles", [])}
        self.jobs = {d["id"]: _from_dict(Job, d) for d in doc.get("jobs", [])}
        self.photos = {d["id"]: _from_dict(Photo, d) for d in doc.get("photos", [])}


def _plain(record: Profile | Job | Photo) -> dict:
    """A record as a JSON-ready dict: its fields are all plain values, so a shallow copy is enough (and ten
    times cheaper than dataclasses.asdict, which deep-copies every value)."""
    return dict(vars(record))

"""Fault injection: the ways the emulator can be told to misbehave.

A fault document is plain JSON (the same at start, through the Python API and
through `POST /_emulator/faults`). Every key is optional:

    {
      "seed": 1234,                                  # seeds the RNG used by "rate" rules
      "errors": {"POST jobs": {"status": 503, "count": 2},
                 "*": {"status": 429, "rate": 0.3, "retry_after": 1}},
      "latency": {"GET jobs/{id}": 0.2, "*": 0.01},  # seconds added before answering
      "out_of_credits": true,                        # handled by the emulator (402s)
      "put_fail_next": 1, "put_fail_status": 500,    # next N valid PUTs fail
      "put_corrupt_next": 1,                         # next N valid PUTs answer BadDigest
      "fail_jobs": ["broken-*"], "fail_jobs_rate": 0.0,
      "withhold_photos": ["*_stuck.jpg"],
      "expire_downloads_next": 1,                    # next N retouched GETs answer 403 expired
      "retouched_url_seconds": 1209600
    }

Merging (`merge`): each given key replaces the old value, except `errors`
and `latency`, which merge per endpoint key (a null value removes that key).
An error rule with neither `count` nor `rate` fires on every call.
"""

from __future__ import annotations

import fnmatch
import random
import threading
from dataclasses import dataclass
from typing import Any

STORE_KEYS = ("PUT store", "GET store")
COUNTERS = ("put_fail_next", "put_corrupt_next", "expire_downloads_next")
SCALARS = {"seed", "out_of_credits", "put_fail_status", "fail_jobs_rate", "retouched_url_seconds"}
KNOWN_KEYS = {"errors", "latency", "fail_jobs", "withhold_photos", *COUNTERS, *SCALARS}


class FaultError(ValueError):
    """A fault document is invalid; the message names every bad key path."""


@dataclass
class InjectedError:
    """An error to answer instead of serving the request."""

    status: int
    retry_after: float | None
    message: str


def _check_rule(path: str, rule: Any, problems: list[str]) -> None:
    """Append to `problems` what is wrong with one `errors` rule."""
    if rule is None:
        return
    if not isinstance(rule, dict):
        problems.append(f"{path}: must be an object with 'status'")
        return
    status = rule.get("status")
    if not isinstance(status, int) or not 400 <= status <= 599:
        problems.append(f"{path}.status: must be an HTTP error status such as 503 or 429")
    count, rate = rule.get("count"), rule.get("rate")
    if count is not None and (not isinstance(count, int) or count < 1):
        problems.append(f"{path}.count: must be an integer >= 1")
    if rate is not None and (not isinstance(rate, (int, float)) or not 0 <= rate <= 1):
        problems.append(f"{path}.rate: must be a number between 0 and 1")
    if count is not None and rate is not None:
        problems.append(f"{path}: give either 'count' or 'rate', not both")
    retry = rule.get("retry_after")
    if retry is not None and (not isinstance(retry, (int, float)) or retry < 0):
        problems.append(f"{path}.retry_after: must be a number of seconds >= 0")


def validate(doc: Any) -> None:
    """Raise FaultError listing every problem in a fault document."""
    if not isinstance(doc, dict):
        raise FaultError("faults: must be a JSON object")
    problems = [f"faults.{k}: unknown key (known: {', '.join(sorted(KNOWN_KEYS))})"
                for k in doc if k not in KNOWN_KEYS]
    for name in ("errors", "latency"):
        table = doc.get(name, {})
        if not isinstance(table, dict):
            problems.append(f"faults.{name}: must be an object keyed by 'METHOD route' or '*'")
            continue
        for key, value in table.items():
            if name == "errors":
                _check_rule(f"faults.errors[{key!r}]", value, problems)
            elif value is not None and (not isinstance(value, (int, float)) or value < 0):
                problems.append(f"faults.latency[{key!r}]: must be a number of seconds >= 0")
    for name in COUNTERS:
        if name in doc and (not isinstance(doc[name], int) or doc[name] < 0):
            problems.append(f"faults.{name}: must be an integer >= 0")
    for name in ("fail_jobs", "withhold_photos"):
        value = doc.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            problems.append(f"faults.{name}: must be a list of name globs")
    if "out_of_credits" in doc and not isinstance(doc["out_of_credits"], bool):
        problems.append("faults.out_of_credits: must be true or false")
    rate = doc.get("fail_jobs_rate", 0)
    if not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
        problems.append("faults.fail_jobs_rate: must be a number between 0 and 1")
    if problems:
        raise FaultError("; ".join(problems))


class Faults:
    """The current fault settings; every method is thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._doc: dict[str, Any] = {}
        self._rng = random.Random(0)

    def to_dict(self) -> dict[str, Any]:
        """Return a copy of the current settings (remaining counts included)."""
        with self._lock:
            doc = {k: v for k, v in self._doc.items() if k not in ("errors", "latency")}
            doc["errors"] = {k: dict(v) for k, v in self._doc.get("errors", {}).items()}
            doc["latency"] = dict(self._doc.get("latency", {}))
            return doc

    def merge(self, doc: dict[str, Any]) -> None:
        """Validate `doc` and merge it into the settings (see module docstring)."""
        validate(doc)
        with self._lock:
            for key, value in doc.items():
                if key in ("errors", "latency"):
                    table = self._doc.setdefault(key, {})
                    for endpoint, rule in value.items():
                        if rule is None:
                            table.pop(endpoint, None)
                        else:
                            table[endpoint] = dict(rule) if isinstance(rule, dict) else rule
                else:
                    self._doc[key] = value
            if "seed" in doc:
                self._rng.seed(doc["seed"])

    def clear(self) -> None:
        """Forget every fault; the RNG goes back to seed 0."""
        with self._lock:
            self._doc = {}
            self._rng.seed(0)

    def _lookup(self, table: str, key: str) -> tuple[str, Any] | None:
        """Return (key, value) for `key` in a table, falling back to '*' for API keys."""
        entries = self._doc.get(table, {})
        if key in entries:
            return key, entries[key]
        if key not in STORE_KEYS and "*" in entries:
            return "*", entries["*"]
        return None

    def latency(self, key: str) -> float:
        """Return the seconds to wait before answering a call to `key`."""
        with self._lock:
            found = self._lookup("latency", key)
            return float(found[1]) if found else 0.0

    def error_for(self, key: str) -> InjectedError | None:
        """Return the error to inject into this call to `key`, consuming a count."""
        with self._lock:
            found = self._lookup("errors", key)
            if found is None:
                return None
            rule_key, rule = found
            if "count" in rule:
                rule["count"] -= 1
                if rule["count"] <= 0:
                    del self._doc["errors"][rule_key]
            elif "rate" in rule and self._rng.random() >= rule["rate"]:
                return None
            return InjectedError(rule["status"], rule.get("retry_after"),
                                 f"Injected fault: {rule['status']} for {key}")

    def take(self, counter: str) -> bool:
        """Consume one unit of a `*_next` counter; True if it was positive."""
        with self._lock:
            remaining = self._doc.get(counter, 0)
            if remaining <= 0:
                return False
            self._doc[counter] = remaining - 1
            return True

    def put_fail_status(self) -> int:
        """Return the status of an injected PUT failure (500 unless set)."""
        with self._lock:
            return int(self._doc.get("put_fail_status", 500))

    def job_should_fail(self, name: str) -> bool:
        """Decide, when a job is queued, whether it will end `failed`."""
        with self._lock:
            if any(fnmatch.fnmatchcase(name, g) for g in self._doc.get("fail_jobs", [])):
                return True
            rate = self._doc.get("fail_jobs_rate", 0)
            return bool(rate) and self._rng.random() < rate

    def photo_withheld(self, name: str) -> bool:
        """Decide, when its job is queued, whether a photo never gets a retouchedUrl."""
        with self._lock:
            return any(fnmatch.fnmatchcase(name, g) for g in self._doc.get("withhold_photos", []))

    def retouched_url_seconds(self, default: float) -> float:
        """Return the validity of retouched URLs: the fault setting or `default`."""
        with self._lock:
            return float(self._doc.get("retouched_url_seconds", default))

"""Fault injection: the ways the emulator can be told to misbehave.

A fault document is plain JSON, the same at start (`Emulator(faults=...)`,
`--faults FILE`), through `Emulator.set_faults` and through
`POST /_emulator/faults`. Every key is optional:

    {
      "seed": 1234,
      "errors": {
        "POST jobs": {"status": 503, "count": 2},
        "*": [{"status": 500, "rate": 0.10},
              {"status": 429, "rate": 0.05, "retry_after": 1}],
        "POST photos": {"status": 502, "count": 1, "after": true}
      },
      "latency": {"GET jobs/{id}": 0.2, "*": 0.01},
      "out_of_credits": true,
      "put_fail_next": 1, "put_fail_rate": 0.05, "put_fail_status": 500,
      "put_corrupt_next": 1, "put_corrupt_rate": 0.02, "put_corrupt_repeat": 2,
      "fail_jobs": ["broken-*"], "fail_jobs_rate": 0.0,
      "withhold_photos": ["*_stuck.jpg"],
      "expire_downloads_next": 1, "expire_downloads_rate": 0.05,
      "retouched_url_seconds": 1209600,
      "variants": ["slim-job-photos"]
    }

Keys:
- `seed`: seeds every rate-based decision (default 0). Setting it also
  restarts the per-request call counters the decisions are drawn from.
- `errors`: endpoint key -> one rule or a LIST of rules. Endpoint keys are
  "METHOD route" ("GET jobs/{id}", "POST photos", ...), "PUT store" and
  "GET store" for the object store, and "*" for every API call (never the
  store). A call is checked against its own key's rules, then the "*"
  rules; the first rule that fires answers. A rule has:
  `status` (400-599, required); `count` (fires on the next N calls, then
  is removed) or `rate` (fires on that fraction of calls) or neither
  (fires on every call); `retry_after` (seconds, sent as Retry-After);
  `message` (the error text); `after` (true: the endpoint ACTS first,
  its answer is dropped and the error is sent instead, as when an answer
  is lost after the server acted; default false: the error is answered
  before the endpoint runs).
- `latency`: endpoint key or "*" -> seconds added before answering.
- `out_of_credits`: true/false; sets the account's credits flag (refused
  paid calls: POST jobs, POST photos, GET photos/upload_url, POST
  jobs/{id}/queue). It is state, not a fault: kept across restarts with a
  data dir and untouched by clearing faults.
- `put_fail_next`: the next N valid PUTs answer `put_fail_status`
  (default 500). `put_fail_rate`: that fraction of valid PUTs fails so.
- `put_corrupt_next`: the next N valid PUTs answer 400 BadDigest.
  `put_corrupt_rate`: that fraction of a photo's PUTs starts a corruption.
  `put_corrupt_repeat` (default 1): a photo whose PUT was corrupted stays
  corrupted for that many consecutive PUTs of it (2: corrupted twice in
  a row), whichever of the two keys started it.
- `fail_jobs`: job-name globs; such jobs end `failed` when processed.
  `fail_jobs_rate`: that fraction of queued jobs (drawn per job name) fail.
- `withhold_photos`: photo-name globs that never get a retouchedUrl and
  keep their job processing.
- `expire_downloads_next`: the next N retouched GETs answer 403 "Request
  has expired". `expire_downloads_rate`: that fraction of them do.
- `retouched_url_seconds`: validity of retouchedUrls signed from now on.
- `variants`: personalities to switch on while set, replacing those given
  at start until faults are cleared (each is described in variants.py):
  slim-job-photos, job-without-photos, placeholder-retouched-url,
  original-url-at-create, other-status-words, credits-as-422,
  credits-as-403, webp-results, jobs-in-front-object, jobs-in-front-string.

Rates are deterministic: a decision is a hash of the seed, the rule and the
request's identity (method and path, or the photo for store faults) with
how many times that identity was seen, so the same calls to a resource get
the same faults however other calls interleave.

Merging (`merge`): each given key replaces the old value, except `errors`
and `latency`, which merge per endpoint key (a null value removes a key).
"""

from __future__ import annotations

import fnmatch
import hashlib
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

from skylab_watch.emulator.variants import unknown_variants

STORE_KEYS = ("PUT store", "GET store")
COUNTERS = ("put_fail_next", "put_corrupt_next", "expire_downloads_next")
RATES = ("fail_jobs_rate", "put_fail_rate", "put_corrupt_rate", "expire_downloads_rate")
SCALARS = {"seed", "out_of_credits", "put_fail_status", "put_corrupt_repeat", "retouched_url_seconds", *RATES}
KNOWN_KEYS = {"errors", "latency", "fail_jobs", "withhold_photos", "variants", *COUNTERS, *SCALARS}
RULE_KEYS = {"status", "count", "rate", "retry_after", "message", "after"}


class FaultError(ValueError):
    """A fault document is invalid; the message names every bad key path."""


@dataclass
class InjectedError:
    """An error to answer instead of (or, with `after`, in place of) the endpoint's answer."""

    status: int
    retry_after: float | None
    message: str
    after: bool = False


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_rule(path: str, rule: Any, problems: list[str]) -> None:
    """Append to `problems` what is wrong with one `errors` rule."""
    if not isinstance(rule, dict):
        problems.append(f"{path}: must be an object with 'status'")
        return
    problems += [f"{path}.{k}: unknown key (known: {', '.join(sorted(RULE_KEYS))})" for k in rule
                 if k not in RULE_KEYS]
    status = rule.get("status")
    if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599:
        problems.append(f"{path}.status: must be an HTTP error status such as 503 or 429")
    count, rate = rule.get("count"), rule.get("rate")
    if count is not None and (not isinstance(count, int) or count < 1):
        problems.append(f"{path}.count: must be an integer >= 1")
    if rate is not None and (not _is_number(rate) or not 0 <= rate <= 1):
        problems.append(f"{path}.rate: must be a number between 0 and 1")
    if count is not None and rate is not None:
        problems.append(f"{path}: give either 'count' or 'rate', not both")
    retry = rule.get("retry_after")
    if retry is not None and (not _is_number(retry) or retry < 0):
        problems.append(f"{path}.retry_after: must be a number of seconds >= 0")
    if not isinstance(rule.get("after", False), bool):
        problems.append(f"{path}.after: must be true or false")
    if not isinstance(rule.get("message", ""), str):
        problems.append(f"{path}.message: must be a string")


def _check_tables(doc: dict[str, Any], problems: list[str]) -> None:
    """Check `errors` (rule or list of rules per key) and `latency` (seconds per key)."""
    for name in ("errors", "latency"):
        table = doc.get(name, {})
        if not isinstance(table, dict):
            problems.append(f"faults.{name}: must be an object keyed by 'METHOD route' or '*'")
            continue
        for key, value in table.items():
            if value is None:
                continue
            if name == "latency":
                if not _is_number(value) or value < 0:
                    problems.append(f"faults.latency[{key!r}]: must be a number of seconds >= 0")
            elif isinstance(value, list):
                for n, rule in enumerate(value):
                    _check_rule(f"faults.errors[{key!r}][{n}]", rule, problems)
            else:
                _check_rule(f"faults.errors[{key!r}]", value, problems)


def validate(doc: Any) -> None:
    """Raise FaultError listing every problem in a fault document."""
    if not isinstance(doc, dict):
        raise FaultError("faults: must be a JSON object")
    problems = [f"faults.{k}: unknown key (known: {', '.join(sorted(KNOWN_KEYS))})"
                for k in doc if k not in KNOWN_KEYS]
    _check_tables(doc, problems)
    for name in COUNTERS:
        if name in doc and (not isinstance(doc[name], int) or doc[name] < 0):
            problems.append(f"faults.{name}: must be an integer >= 0")
    for name in RATES:
        if name in doc and (not _is_number(doc[name]) or not 0 <= doc[name] <= 1):
            problems.append(f"faults.{name}: must be a number between 0 and 1")
    for name in ("fail_jobs", "withhold_photos"):
        value = doc.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            problems.append(f"faults.{name}: must be a list of name globs")
    if "out_of_credits" in doc and not isinstance(doc["out_of_credits"], bool):
        problems.append("faults.out_of_credits: must be true or false")
    repeat = doc.get("put_corrupt_repeat")
    if "put_corrupt_repeat" in doc and (not isinstance(repeat, int) or repeat < 1):
        problems.append("faults.put_corrupt_repeat: must be an integer >= 1")
    fail_status = doc.get("put_fail_status")
    if "put_fail_status" in doc and (not isinstance(fail_status, int) or not 400 <= fail_status <= 599):
        problems.append("faults.put_fail_status: must be an HTTP error status such as 500")
    for name in ("seed", "retouched_url_seconds"):
        if name in doc and not _is_number(doc[name]):
            problems.append(f"faults.{name}: must be a number")
    if "variants" in doc:
        problems += [f"faults.variants: {p}" for p in unknown_variants(doc["variants"])]
    if problems:
        raise FaultError("; ".join(problems))


def _rules(value: Any) -> list[dict[str, Any]]:
    """Return an `errors` value as a list of rule copies."""
    return [dict(r) for r in value] if isinstance(value, list) else [dict(value)]


class Faults:
    """The current fault settings; every method is thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._doc: dict[str, Any] = {}
        self._seen: Counter[str] = Counter()
        self._corrupt_streak: dict[int, int] = {}

    def to_dict(self) -> dict[str, Any]:
        """Return a copy of the current settings (remaining counts included)."""
        with self._lock:
            doc = {k: v for k, v in self._doc.items() if k not in ("errors", "latency")}
            doc["errors"] = {k: [dict(r) for r in v] if len(v) > 1 else dict(v[0])
                             for k, v in self._doc.get("errors", {}).items()}
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
                        if rule is None or rule == []:
                            table.pop(endpoint, None)
                        else:
                            table[endpoint] = _rules(rule) if key == "errors" else rule
                else:
                    self._doc[key] = list(value) if isinstance(value, list) else value
            if "seed" in doc:
                self._seen.clear()
                self._corrupt_streak.clear()

    def clear(self) -> None:
        """Forget every fault, counter and streak; the seed goes back to 0."""
        with self._lock:
            self._doc = {}
            self._seen.clear()
            self._corrupt_streak.clear()

    def variants(self) -> list[str] | None:
        """Return the variants the fault document switches on, or None if it says nothing."""
        with self._lock:
            value = self._doc.get("variants")
            return list(value) if value is not None else None

    # ---- deterministic draws ---------------------------------------------

    def _draw(self, what: str, identity: str) -> float:
        """Return a number in [0, 1) fixed by seed, `what`, `identity` and its call count (lock held)."""
        self._seen[f"{what}|{identity}"] += 1
        text = f"{self._doc.get('seed', 0)}|{what}|{identity}|{self._seen[f'{what}|{identity}']}"
        return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2 ** 64

    def _fires(self, rate_key: str, identity: str) -> bool:
        """Draw for a document-level rate (lock held)."""
        rate = self._doc.get(rate_key, 0)
        return bool(rate) and self._draw(rate_key, identity) < rate

    def _take(self, counter: str) -> bool:
        """Consume one unit of a `*_next` counter (lock held)."""
        remaining = self._doc.get(counter, 0)
        if remaining <= 0:
            return False
        self._doc[counter] = remaining - 1
        return True

    # ---- API and store errors --------------------------------------------

    def latency(self, key: str) -> float:
        """Return the seconds to wait before answering a call to `key`."""
        with self._lock:
            table = self._doc.get("latency", {})
            if key in table:
                return float(table[key])
            return float(table["*"]) if key not in STORE_KEYS and "*" in table else 0.0

    def error_for(self, key: str, identity: str = "") -> InjectedError | None:
        """Return the error to inject into this call to `key` (for request `identity`), if any."""
        with self._lock:
            table = self._doc.get("errors", {})
            tables = [key] + (["*"] if key not in STORE_KEYS else [])
            for table_key in tables:
                for n, rule in enumerate(list(table.get(table_key, []))):
                    if self._rule_fires(table, table_key, n, rule, identity or key):
                        message = rule.get("message") or f"Injected fault: {rule['status']} for {key}"
                        return InjectedError(rule["status"], rule.get("retry_after"), message,
                                             bool(rule.get("after", False)))
            return None

    def _rule_fires(self, table: dict[str, Any], table_key: str, n: int, rule: dict[str, Any],
                    identity: str) -> bool:
        """Decide one rule, consuming a count (lock held)."""
        if "count" in rule:
            rule["count"] -= 1
            if rule["count"] <= 0:
                table[table_key] = [r for r in table[table_key] if r is not rule]
                if not table[table_key]:
                    del table[table_key]
            return True
        if "rate" in rule:
            return self._draw(f"errors[{table_key}][{n}]", identity) < rule["rate"]
        return True

    def put_failure(self, photo_id: int) -> int | None:
        """Return the status an injected PUT failure of this photo answers, or None."""
        with self._lock:
            if self._take("put_fail_next") or self._fires("put_fail_rate", f"photo {photo_id}"):
                return int(self._doc.get("put_fail_status", 500))
            return None

    def put_corrupted(self, photo_id: int) -> bool:
        """Decide whether this PUT of a photo answers BadDigest (streaks last put_corrupt_repeat PUTs)."""
        with self._lock:
            left = self._corrupt_streak.get(photo_id, 0)
            if left > 0:
                self._corrupt_streak[photo_id] = left - 1
                return True
            if self._take("put_corrupt_next") or self._fires("put_corrupt_rate", f"photo {photo_id}"):
                self._corrupt_streak[photo_id] = int(self._doc.get("put_corrupt_repeat", 1)) - 1
                return True
            return False

    def download_expired(self, photo_id: int) -> bool:
        """Decide whether this retouched GET answers 403 "Request has expired"."""
        with self._lock:
            return self._take("expire_downloads_next") or self._fires("expire_downloads_rate", f"photo {photo_id}")

    # ---- decisions taken when a job is queued -----------------------------

    def job_should_fail(self, name: str) -> bool:
        """Decide, when a job is queued, whether it will end `failed`."""
        with self._lock:
            if any(fnmatch.fnmatchcase(name, g) for g in self._doc.get("fail_jobs", [])):
                return True
            return self._fires("fail_jobs_rate", f"job {name}")

    def photo_withheld(self, name: str) -> bool:
        """Decide, when its job is queued, whether a photo never gets a retouchedUrl."""
        with self._lock:
            return any(fnmatch.fnmatchcase(name, g) for g in self._doc.get("withhold_photos", []))

    def retouched_url_seconds(self, default: float) -> float:
        """Return the validity of retouched URLs: the fault setting or `default`."""
        with self._lock:
            return float(self._doc.get("retouched_url_seconds", default))

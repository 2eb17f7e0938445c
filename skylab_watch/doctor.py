"""The checks behind `skylab-watch doctor`: is this machine ready to run this config?

`check-config` validates the file offline; doctor looks at the world the file
points to: the Studio API and its profiles, the folders, the ledger, the
output disk, the filesystems under the watches and the inotify limit. Each
check returns `Finding`s, each with a verdict and, unless all is well, the fix
to make. No check raises: a check that cannot finish is itself a failed
finding, so one broken thing never hides the verdicts on the others.

Permissions are checked for the user running doctor, so run it as the
daemon's user (e.g. `sudo -u skylab-watch skylab-watch doctor ...`).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, cast

from skylab_watch.config import Config, WatchConfig, match_profiles
from skylab_watch.config.folders import watch_folder_problems
from skylab_watch.errors import LedgerError, Problem
from skylab_watch.ledger import Ledger
from skylab_watch.ledger.db import NETWORK_FILESYSTEMS, filesystem_type, refuse_network_filesystem
from skylab_watch.printable import printable
from skylab_watch.redaction import SecretMasker
from skylab_watch.startup import make_client
from skylab_watch.studio import AuthError, RetryPolicy, StudioClient, StudioError, TransportError
from skylab_watch.studio.transport import Guard
from skylab_watch.watch.observers import NATIVE, count_folders, inotify_watch_limit

__all__ = ["Finding", "run_checks", "READ_FROM_SYSTEM", "DOCTOR_RETRY", "OK", "WARN", "FAIL"]

OK, WARN, FAIL = "ok", "warn", "fail"
GIB = 1 << 30
READ_FROM_SYSTEM: object = object()
"""Default of `run_checks(inotify_limit=...)`: read /proc/sys/fs/inotify/max_user_watches."""

DOCTOR_RETRY = RetryPolicy(max_attempts=2, max_seconds=10.0, initial_seconds=0.5, max_backoff_seconds=1.0)
"""Doctor answers in seconds: one retry covers a blip, a dead API is reported rather than waited for."""

MAX_WAIT_SECONDS = 15.0
"""Cap of the whole API check (every try, however slowly the server answers): listing profiles is quick,
a silent or dripping server should not stall doctor."""

NOTICE_KEY = "doctor-probe"
SUGGESTED_MIN_WATCHES = 524288


@dataclass(frozen=True)
class Finding:
    """One verdict: `check` names the check, `verdict` is ok/warn/fail, `fix` says what to do (None if ok)."""

    check: str
    verdict: str
    detail: str
    fix: str | None = None


ClientFactory = Callable[[Config], StudioClient]


def run_checks(config: Config, mounts_file: str = "/proc/self/mounts",
               inotify_limit: int | None | object = READ_FROM_SYSTEM, min_free_bytes: int = GIB,
               client_factory: ClientFactory = make_client,
               max_wait_seconds: float = MAX_WAIT_SECONDS) -> list[Finding]:
    """Given a loaded Config, run every check and return their findings in a fixed order; never raise.

    `mounts_file`, `inotify_limit` and `min_free_bytes` stand in for the
    system where a test cannot make the real thing (an NFS mount, a low
    inotify limit); `client_factory` builds the Studio client;
    `max_wait_seconds` caps the API check.
    """
    limit = inotify_watch_limit() if inotify_limit is READ_FROM_SYSTEM else cast("int | None", inotify_limit)
    try:
        findings, profiles = check_api(config, client_factory, max_wait_seconds)
    except Exception as exc:  # noqa: BLE001 - doctor must report, not crash
        findings, profiles = [_crashed("api", exc)], None
    checks: list[tuple[str, Callable[[], list[Finding]]]] = [
        ("profiles", lambda: check_profiles(config, profiles)),
        ("folders", lambda: check_folders(config)),
        ("ledger", lambda: check_ledger(config, mounts_file)),
        ("disk space", lambda: check_disk_space(config, min_free_bytes)),
        ("network filesystem", lambda: check_network_filesystems(config, mounts_file)),
        ("inotify", lambda: check_inotify(config, limit)),
        ("secrets", lambda: check_secrets(config)),
    ]
    for check, run in checks:
        try:
            findings += run()
        except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
            findings.append(_crashed(check, exc))
    return masked(findings, config)


def masked(findings: list[Finding], config: Config) -> list[Finding]:
    """Return the findings with the config's secrets and any URL query masked, control characters escaped.

    Findings quote what others said (Studio's error message, an OS error on
    a file name): a server that echoes the X-SLT-API-KEY header back into an
    error body must not get the key printed on the operator's screen.
    """
    masker = SecretMasker(config.secrets)
    def clean(text: str) -> str:
        return printable(masker.clean(text))
    return [dataclasses.replace(f, detail=clean(f.detail), fix=f.fix and clean(f.fix)) for f in findings]


def _crashed(check: str, exc: Exception) -> Finding:
    """Return the finding for a check that raised something it did not expect."""
    return Finding(check, FAIL, f"the check itself failed: {type(exc).__name__}: {exc}",
                   "report this as a skylab-watch bug, with this output")


# --- api and profiles --------------------------------------------------------

def check_api(config: Config, client_factory: ClientFactory,
              max_wait_seconds: float = MAX_WAIT_SECONDS) -> tuple[list[Finding], list[dict] | None]:
    """Ask Studio for the profiles; return the verdict and the profiles (None if the call failed).

    The whole check, retry included, ends within `max_wait_seconds`: one
    deadline spans every try (a Guard around the call caps each request's own).
    """
    url = config.studio.api_url
    try:
        with client_factory(config) as client, Guard(max_wait_seconds):
            client.retry = DOCTOR_RETRY
            client.timeout = (min(client.timeout[0], max_wait_seconds), min(client.timeout[1], max_wait_seconds))
            profiles = client.list_profiles()
    except AuthError as exc:
        return [Finding("api", FAIL, f"Studio at {url} refused the API key ({exc.message})",
                        "check studio.api_key / studio.api_key_file (or SKYLAB_API_KEY): "
                        "copy the key again from Studio's account settings")], None
    except TransportError as exc:
        return [Finding("api", FAIL, f"cannot reach {url}: {exc.message}",
                        "check studio.api_url, the network, and any proxy or firewall between "
                        "this machine and Studio")], None
    except StudioError as exc:
        return [Finding("api", FAIL, f"Studio at {url} answered with an error: {exc}",
                        "if it is a server error, try again later; otherwise check studio.api_url")], None
    count = len(profiles)
    detail = f"Studio at {url} accepted the key ({count} profile{'s' if count != 1 else ''})"
    return [Finding("api", OK, detail)], profiles


def check_profiles(config: Config, profiles: list[dict] | None) -> list[Finding]:
    """Given Studio's profiles (None if the API check failed), return a verdict on each watch's profile."""
    if profiles is None:
        return [Finding("profiles", WARN, "not checked, since Studio could not be asked",
                        "fix the api check first, then run doctor again")]
    return [_profile_finding(config, i, match) for i, match in enumerate(match_profiles(config, profiles))]


def _profile_finding(config: Config, i: int, match: int | Problem) -> Finding:
    """Return the verdict on watch number `i`'s profile, given its Studio id or the Problem with it."""
    if isinstance(match, Problem):
        return Finding("profiles", FAIL, f"{_name(config, i)} profile: {match.message}",
                       f"create the profile in Studio or fix {match.path}")
    profile = config.watches[i].profile
    return Finding("profiles", OK, f"{_name(config, i)} profile {profile!r} is Studio profile {match}")


# --- folders -------------------------------------------------------------------

def check_folders(config: Config) -> list[Finding]:
    """Return, per watch, a failed finding for each folder problem, or one ok finding.

    The folder checks are the ones loading a config makes (`config.folders`),
    so doctor and `run` never disagree; doctor adds whether originals can be
    removed from the input, which only matters once a photo is done.
    """
    findings: list[Finding] = []
    for i, watch in enumerate(config.watches):
        problems = watch_folder_problems(i, watch.input, watch.output, watch.archive_dir)
        problems = problems or _removal_problems(i, watch)
        findings += [Finding("folders", FAIL, f"{_name(config, i)}: {p.message}", _fix(p)) for p in problems]
        if not problems:
            findings.append(Finding("folders", OK, f"{_name(config, i)} can read {watch.input} "
                                                   f"and write {watch.output}"))
    return findings


def _removal_problems(i: int, watch: WatchConfig) -> list[Problem]:
    """Return a problem if originals are to be moved or deleted but the input is not writable."""
    if watch.after_success in ("archive", "delete") and not os.access(watch.input, os.W_OK | os.X_OK):
        return [Problem(f"watches[{i}].after_success",
                        f"cannot remove files from input {watch.input} (after_success: {watch.after_success})",
                        f"grant this user write access to {watch.input}, or set it to keep")]
    return []


def _fix(problem: Problem) -> str:
    """Return a finding's fix for a config problem: the problem's own fix, naming its key."""
    return f"{problem.fix} ({problem.path})" if problem.fix else f"correct {problem.path}"


def nearest_existing(path: Path) -> Path:
    """Return `path` or its closest ancestor that exists (a file or a folder)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


# --- ledger --------------------------------------------------------------------

def check_ledger(config: Config, mounts_file: str) -> list[Finding]:
    """Check the ledger is on a local disk, and that SQLite can write there."""
    path = config.ledger
    fix = (f"set ledger to a file on a local disk, in a folder this user can write (now {path}); "
           "if that file is not a skylab-watch ledger, move it aside")
    try:
        refuse_network_filesystem(path, mounts_file)
        probe_ledger(path)
    except LedgerError as exc:
        return [Finding("ledger", FAIL, str(exc), fix)]
    return [Finding("ledger", OK, f"{path} is writable")]


def probe_ledger(path: Path) -> None:
    """Open the ledger and write and clear a notice; raise LedgerError if that fails.

    A ledger that does not exist yet is not created (doctor may run as
    another user than the daemon, which would then find it owned by someone
    else): a throw-away ledger next to it is tried instead and removed, with
    any folder made for it.
    """
    if path.exists():
        _write_and_clear_notice(path)
        return
    made = _missing_folders(path.parent)
    try:
        probe = _probe_path(path)
        try:
            _write_and_clear_notice(probe)
        finally:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{probe}{suffix}").unlink(missing_ok=True)
    finally:
        for folder in reversed(made):
            _remove_if_empty(folder)


def _probe_path(path: Path) -> Path:
    """Create the ledger's folder if needed and return an unused file name in it for the probe."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.doctor-", dir=path.parent)
    except OSError as exc:
        raise LedgerError(f"cannot create the ledger {path}: {exc.strerror or exc}") from exc
    os.close(handle)
    os.unlink(name)
    return Path(name)


def _write_and_clear_notice(path: Path) -> None:
    """Open the ledger at `path`, write a notice in a transaction, clear it, close.

    Raise LedgerError (whose message says what to fix) if any step fails.
    """
    ledger = Ledger(path)
    try:
        ledger.set_notice(NOTICE_KEY, "skylab-watch doctor is checking that the ledger is writable")
        ledger.clear_notice(NOTICE_KEY)
    finally:
        ledger.close()


def _missing_folders(folder: Path) -> list[Path]:
    """Return the folders from the first missing one down to `folder` that do not exist yet."""
    missing: list[Path] = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return list(reversed(missing))


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


# --- disk space ----------------------------------------------------------------

def check_disk_space(config: Config, min_free_bytes: int) -> list[Finding]:
    """Warn for each disk holding outputs that has less than `min_free_bytes` free."""
    findings = []
    for anchor, names in _outputs_by_disk(config).items():
        findings.append(_disk_finding(anchor, names, min_free_bytes))
    return findings


def _outputs_by_disk(config: Config) -> dict[Path, list[str]]:
    """Return {an existing folder on the disk: [watches writing there]}, one entry per filesystem."""
    by_device: dict[int, tuple[Path, list[str]]] = {}
    for i, watch in enumerate(config.watches):
        anchor = nearest_existing(watch.output)
        entry = by_device.setdefault(anchor.stat().st_dev, (anchor, []))
        entry[1].append(f"watches[{i}].output")
    return {anchor: names for anchor, names in by_device.values()}


def _disk_finding(anchor: Path, keys: list[str], min_free_bytes: int) -> Finding:
    free = shutil.disk_usage(anchor).free
    where = f"the disk of {anchor} ({', '.join(keys)})"
    if free >= min_free_bytes:
        return Finding("disk space", OK, f"{_gb(free)} free on {where}")
    return Finding("disk space", WARN, f"only {_gb(free)} free on {where}; at least {_gb(min_free_bytes)} needed",
                   f"free space on that disk, or move {' / '.join(keys)} to a disk with more room")


def _gb(size: int) -> str:
    return f"{size / 1e9:.1f} GB"


# --- observers ------------------------------------------------------------------

def check_network_filesystems(config: Config, mounts_file: str) -> list[Finding]:
    """Warn for each native watch on a network share: inotify sees only this machine's writes."""
    findings = []
    for i, watch in enumerate(config.watches):
        fs_type = filesystem_type(watch.input, mounts_file) if watch.observer == NATIVE else None
        if fs_type and fs_type.lower() in NETWORK_FILESYSTEMS:
            findings.append(Finding(
                "network filesystem", WARN,
                f"{_name(config, i)} input {watch.input} is on {fs_type} and watched natively: native events "
                f"do not arrive from other machines on {fs_type} shares (only the {watch.rescan_seconds:g} s "
                "rescan would find their files)",
                f"set watches[{i}].observer: polling"))
    return findings or [Finding("network filesystem", OK, "no natively watched input is on a network share")]


def check_inotify(config: Config, limit: int | None) -> list[Finding]:
    """Compare the inotify watches the native watches need with the per-user limit."""
    native = [(i, w) for i, w in enumerate(config.watches) if w.observer == NATIVE]
    if not native:
        return [Finding("inotify", OK, "no watch uses native events")]
    if limit is None:
        return [Finding("inotify", OK, "limit unknown (not Linux / unknown); nothing to compare")]
    needed = sum(count_folders(w.input, w.recursive) for _, w in native)
    if needed <= limit:
        return [Finding("inotify", OK, f"native watches need {needed} of {limit} inotify watches")]
    suggested = max(SUGGESTED_MIN_WATCHES, 2 * needed)
    keys = ", ".join(f"watches[{i}]" for i, _ in native)
    return [Finding(
        "inotify", WARN,
        f"native watches ({keys}) need {needed} inotify watches (one per folder) but the limit is {limit}; "
        "skylab-watch falls back to polling for a watch that does not fit",
        f"run `sysctl fs.inotify.max_user_watches={suggested}` and persist it with a line "
        f"`fs.inotify.max_user_watches={suggested}` in /etc/sysctl.d/90-skylab-watch.conf; "
        "or set observer: polling on the biggest watch")]


# --- secrets ---------------------------------------------------------------------

def check_secrets(config: Config) -> list[Finding]:
    """Warn for each file holding a secret that others can read (found when the config was loaded)."""
    findings = [Finding("secrets", WARN, f"{w.message} ({w.path})", w.fix) for w in config.warnings]
    return findings or [Finding("secrets", OK, "no file holding the API key or the callback secret "
                                               "is readable by others")]


# --- helpers ---------------------------------------------------------------------

def _name(config: Config, i: int) -> str:
    """Return how findings name watch number `i`: `watches[0] 'packshots'`."""
    return f"watches[{i}] '{config.watches[i].name}'"


def count_verdicts(findings: Iterable[Finding]) -> dict[str, int]:
    """Return {ok, warn, fail: how many findings have that verdict}."""
    counts = {OK: 0, WARN: 0, FAIL: 0}
    for finding in findings:
        counts[finding.verdict] = counts.get(finding.verdict, 0) + 1
    return counts

"""The configuration schema: every key, written once, as a field of a typed config class.

Each key is one annotated dataclass field. Its name is the YAML key, its
dataclass default is the key's default, and its metadata (`KeySpec`) holds the
kind of value, the one-line description, the example and the limits. From
these classes everything else is derived: `options_of` turns them into the
`Option` tree that `check.py` validates against and `render.py` turns into
`config.example.yaml`; `load.py` builds the classes from the checked values.
Adding a key means adding one field here (and regenerating the example).

The classes are written as code, rather than generated from a table, so that
a type checker and an editor see every attribute with its type.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from skylab_watch.errors import Problem


class _Required:
    """Marker default of an option the user must set."""

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()

# The kinds of value; check.SchemaChecker has one check_<kind> method for each.
KINDS = (
    "str", "secret", "url", "slug", "int", "seconds", "hours", "bool", "path",
    "choice", "patterns", "profile", "listen", "section", "list", "targets", "events", "clock",
)

_SPEC = "skylab_watch.config"  # the metadata key of a field's KeySpec


@dataclass(frozen=True)
class KeySpec:
    """What a field says about its key besides name and default (see `Option`)."""

    kind: str
    description: str
    example: Any = None
    minimum: float | None = None
    maximum: float | None = None
    maximum_why: str = ""
    choices: tuple[str, ...] = ()
    show: bool = False
    record: type | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}")


@dataclass(frozen=True)
class Option:
    """One configuration key, as the checker and the example renderer walk it.

    `default` is the value used when the key is absent: REQUIRED means the
    user must set it, None means "absent" (for a section: the feature is off).
    `example` is what config.example.yaml shows when there is no default; an
    optional key is shown commented out unless `show` is true. `minimum` and
    `maximum` bound numbers (inclusive); `maximum_why` says why the maximum
    exists. `record` is the class a section or list entry is built into.
    """

    name: str
    kind: str
    description: str
    default: Any = None
    example: Any = None
    minimum: float | None = None
    maximum: float | None = None
    maximum_why: str = ""
    choices: tuple[str, ...] = ()
    children: tuple[Option, ...] = ()
    show: bool = False
    record: type | None = None


def key(kind: str, description: str, default: Any = REQUIRED, *, secret: bool = False, **spec: Any) -> Any:
    """Return the dataclass field of one key; REQUIRED (the default) means the user must set it.

    A secret key is left out of the object's repr, so it never reaches a log.
    """
    metadata = {_SPEC: KeySpec(kind, description, **spec)}
    if default is REQUIRED:
        return field(metadata=metadata, repr=not secret)
    return field(default=default, metadata=metadata, repr=not secret)


def section(record: type, *, optional: bool = False) -> Any:
    """Return the field of a mapping built into `record`; absent means all defaults, or off if `optional`.

    The section's description is the first paragraph of the record's docstring.
    """
    metadata = {_SPEC: KeySpec("section", _summary(record), record=record)}
    if optional:
        return field(default=None, metadata=metadata)
    return field(default_factory=record, metadata=metadata)


def _summary(record: type) -> str:
    """Return the first paragraph of a class's docstring, as one line."""
    return " ".join((record.__doc__ or "").strip().split("\n\n")[0].split())


def entries(record: type, description: str) -> Any:
    """Return the field of a required, non-empty list of mappings, each built into `record`."""
    return field(metadata={_SPEC: KeySpec("list", description, record=record)})


def options_of(record: type) -> tuple[Option, ...]:
    """Given a config class, return the Option of each of its keys, in field order.

    Fields without a KeySpec (such as Config.source) are not keys and are skipped.
    """
    options = []
    for f in fields(record):
        spec = f.metadata.get(_SPEC)
        if spec is None:
            continue
        if f.default is not MISSING:
            default = f.default
        elif f.default_factory is not MISSING:
            default = {}  # a section: absent means every default
        else:
            default = REQUIRED
        children = options_of(spec.record) if spec.record is not None else ()
        options.append(Option(
            f.name, spec.kind, spec.description, default, spec.example, spec.minimum, spec.maximum,
            spec.maximum_why, spec.choices, children, spec.show, spec.record))
    return tuple(options)


# --- the keys ------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class RetryConfig:
    """How a failed API call is retried, waiting longer after each attempt."""

    max_attempts: int = key("int", "Give up on one API call after this many attempts.", 6, minimum=1)
    max_seconds: float = key("seconds", "Give up on one API call after this many seconds in total.", 120)
    initial_seconds: float = key("seconds", "Wait before the first retry; the wait doubles each time.", 1.0)
    max_backoff_seconds: float = key("seconds", "Never wait longer than this between two attempts.", 30)


@dataclass(frozen=True, kw_only=True)
class StudioConfig:
    """How to reach the Skylab Studio API.

    After loading, `api_key` holds the key from whichever source had one
    (see load.find_api_key), not only the inline value.
    """

    api_url: str = key("url", "Base URL of the Skylab Studio API.", "https://studio.skylabtech.ai")
    api_key: str = key("secret", "API key inline; first of api_key, api_key_file, $SKYLAB_API_KEY, "
                                 "$CREDENTIALS_DIRECTORY/api_key wins.", None,
                       example="your-studio-api-key", secret=True)
    api_key_file: Path | None = key("path", "File holding the API key (surrounding whitespace is ignored).",
                                    None, example="/etc/skylab-watch/api_key")
    connect_timeout: float = key("seconds", "Seconds to wait for a connection to the API.", 10)
    read_timeout: float = key("seconds", "Seconds to wait for the API to answer once connected.", 60)
    api_deadline: float = key("seconds", "Seconds one API call may take in all, however slowly the server "
                                         "answers.", 120)
    transfer_deadline: float = key("seconds", "Seconds one photo upload or result download may take in all.", 900)
    allow_insecure_http: bool = key("bool", "Allow a plain http:// api_url on another machine (the API key "
                                            "then crosses the network in clear); loopback needs no permission.",
                                    False)
    retry: RetryConfig = section(RetryConfig)


@dataclass(frozen=True, kw_only=True)
class BatchConfig:
    """When the photos waiting in a watch are closed into one Studio job."""

    max_photos: int = key("int", "Close the job once it holds this many photos.", 100, minimum=1, maximum=1000,
                          maximum_why="big jobs delay every photo in them until the whole job is done")
    quiet_seconds: float = key("seconds", "Close the job when no new photo has arrived for this long.", 30)
    max_wait_seconds: float = key("seconds", "Close the job this long after its first photo, however busy.", 600)


@dataclass(frozen=True, kw_only=True)
class WatchConfig:
    """One watched folder and how its photos are sent, batched and delivered."""

    name: str = key("slug", "Name used in logs, job names and the ledger (letters, digits, - and _).",
                    example="packshots")
    input: Path = key("path", "Folder to watch for new photos.", example="/srv/studio/in/packshots")
    output: Path = key("path", "Folder the retouched photos are written to; created if its parent exists.",
                       example="/srv/studio/out/packshots")
    profile: int | str = key("profile", "Studio profile to apply: its numeric id, or its name to look up.",
                             example=123)
    recursive: bool = key("bool", "Also watch sub-folders; outputs mirror the sub-folder layout.", True)
    observer: str = key("choice", "How new files are noticed: native events, or polling for SMB/NFS shares.",
                        "native", choices=("native", "polling"))
    settle_seconds: float = key("seconds",
                                "A file is complete once its size and time stay unchanged this long.", 3)
    batch: BatchConfig = section(BatchConfig)
    after_success: str = key("choice", "What happens to an original once its retouched photo is written.",
                             "keep", choices=("keep", "archive", "delete"))
    archive_dir: Path | None = key("path", "Where originals are moved when after_success is archive.", None,
                                   example="/srv/studio/archive/packshots")
    include: tuple[str, ...] = key("patterns", "Glob patterns of file names to send; empty means every file.", ())
    exclude: tuple[str, ...] = key("patterns", "Glob patterns of file names never to send, even if included.",
                                   (".*", "*~", "*.part", "*.tmp", "*.crdownload"))
    resize_oversized: bool = key("bool", "Shrink photos over Studio's size limit instead of failing them.", False)
    skip_duplicate_content: bool = key("bool", "Do not send a file whose content this watch already sent.", True)
    unreadable_grace_seconds: float = key(
        "seconds", "A settled file whose image cannot be read is rejected after waiting this long.", 60)
    rescan_seconds: float = key("seconds", "Rescan the whole input this often, in case an event was missed.", 300)
    poll_interval_seconds: float = key(
        "seconds", "With observer: polling, how often the input is listed: a new file waits up to this long "
                   "to be noticed; each listing costs CPU per file (10,000 files at 10 s: under 1% of a core).", 10)
    delivery_timeout_seconds: float = key(
        "seconds", "Mark a photo failed if Studio has not delivered it within this long.", 86400)


@dataclass(frozen=True, kw_only=True)
class UploadsConfig:
    """Sending photos to Studio."""

    concurrency: int = key("int", "Photos uploaded at the same time.", 4, minimum=1)


@dataclass(frozen=True, kw_only=True)
class DownloadsConfig:
    """Fetching retouched photos from Studio."""

    concurrency: int = key("int", "Retouched photos downloaded at the same time.", 4, minimum=1)


@dataclass(frozen=True, kw_only=True)
class PollingConfig:
    """Asking Studio how open jobs are doing."""

    interval_seconds: float = key("seconds", "Ask Studio about open jobs this often.", 15)


@dataclass(frozen=True, kw_only=True)
class CreditsConfig:
    """Running out of Studio credits."""

    retry_seconds: float = key("seconds", "While out of credits, try again this often.", 300)


@dataclass(frozen=True, kw_only=True)
class GiveUpConfig:
    """When a photo that keeps meeting passing faults is given up on."""

    give_up_after_hours: float = key(
        "hours", "How long a photo may keep meeting passing faults (outages, 5xx, no credits) "
                 "before it is failed with the last reason.", 24)


MIN_CALLBACK_SECRET_BYTES = 16
"""A shorter callback secret could be guessed: anyone who knows it can wake the daemon at will."""


class _Listening:
    """The host and port of a section's `listen` (host, port) pair: what its server binds."""

    listen: tuple[str, int]

    @property
    def host(self) -> str:
        """The address the server binds."""
        return self.listen[0]

    @property
    def port(self) -> int:
        """The port the server binds."""
        return self.listen[1]


@dataclass(frozen=True, kw_only=True)
class CallbackConfig(_Listening):
    """Let Studio call this daemon when a job is done, instead of waiting for a poll.

    After loading, `secret` holds the secret from either source.
    """

    listen: tuple[str, int] = key("listen", "Address and port the callback server listens on.", "127.0.0.1:8790")
    public_url: str = key("url", "URL at which Studio reaches the callback server; only its path is served "
                                 "(a proxy in front must pass the path unchanged).",
                          example="https://watch.example.com/skylab-callback")
    secret: str = key("secret", "Shared secret inline, at least 16 bytes; secret_file is preferred.", None,
                      example="a-long-random-string", secret=True)
    secret_file: Path | None = key("path", "File holding the shared secret Studio signs callbacks with "
                                           "(at least 16 bytes).", None,
                                   example="/etc/skylab-watch/callback_secret", show=True)

    @property
    def path(self) -> str:
        """The one path the callback server answers: that of `public_url` ("/" if it has none)."""
        return urlsplit(self.public_url).path or "/"


MIN_HTTP_TOKEN_BYTES = 16
"""A shorter token could be guessed: anyone who knows it can pause watches and send photos again."""


@dataclass(frozen=True, kw_only=True)
class HttpConfig(_Listening):
    """The daemon's HTTP surface: the status page `/`, /metrics (Prometheus), /api/status, and actions
    (pause, resume, retry).

    Actions always need the token (`Authorization: Bearer TOKEN`, or the page's sign-in cookie with its
    form field); read-only views need it too unless listening on loopback. When `callback` is set with
    the same listen address, the callback route is served here as well.
    After loading, `token` holds the file's content.
    """

    listen: tuple[str, int] = key("listen", "Address and port the HTTP surface listens on.", "127.0.0.1:8780")
    token_file: Path = key("path", "File holding the token that actions (and, off loopback, every request) "
                                   "must present (at least 16 bytes).",
                           example="/etc/skylab-watch/http_token", show=True)
    token: str = field(default="", repr=False)


ALERT_EVENTS: tuple[str, ...] = ("failed", "credits", "paused", "stalled", "unclean_stop", "disk_full", "report")
"""What an alert can be about: photos failed (a digest), out of credits and back, a watch paused and back,
deliveries stalled, the daemon started after an unclean stop, the output disk full and writable again,
and the daily report (sent only when `report.at` is set)."""


@dataclass(frozen=True)
class NotifyTarget:
    """One notifier: an apprise URL and the events it takes (None: notify.events). The URL often holds a
    token, so it is left out of the repr and never logged."""

    url: str = field(repr=False)
    events: tuple[str, ...] | None = None


@dataclass(frozen=True, kw_only=True)
class NotifyConfig:
    """Alerts through apprise (pip install 'skylab-watch[notify]') and health pings (healthchecks.io).

    Events: failed, credits, paused, stalled, unclean_stop, disk_full, report.
    """

    urls: tuple[NotifyTarget, ...] | None = key(
        "targets", "Apprise URLs alerts go to; an entry {url: URL, events: [...]} takes only those events.", None,
        example=["mailto://user:password@example.com", "ntfy://ntfy.sh/my-studio-alerts"])
    events: tuple[str, ...] = key("events", "The events sent to every URL that does not list its own.",
                                  ALERT_EVENTS, choices=ALERT_EVENTS)
    digest_seconds: float = key("seconds", "Failed photos are gathered into one message per this long.", 300)
    stall_factor: int = key("int", "A job at Studio is stalled after this many times the median of recent jobs.",
                            3, minimum=1)
    stall_floor_seconds: float = key("seconds", "...and never before it has been at Studio this long.", 1800)
    retry_seconds: float = key("seconds", "An alert a notifier did not take is tried again after this long, "
                                          "doubling up to an hour.", 30)
    ping_url: str | None = key("url", "healthchecks.io-style URL: pinged while healthy, /fail when not; "
                                      "with run --once, /start, then success or /fail.", None,
                               example="https://hc-ping.com/your-check-uuid")
    ping_seconds: float = key("seconds", "How often the health ping is sent in service mode.", 60)

    @property
    def targets(self) -> tuple[NotifyTarget, ...]:
        """The notifiers, none if notify.urls is absent."""
        return self.urls or ()


@dataclass(frozen=True, kw_only=True)
class ReportConfig:
    """The daily report, sent by a running daemon through the notify.urls that take the report event.

    Sent once a day at `at`, local time, as plain text, and as HTML to notifiers that take HTML (e-mail).
    Missed because the daemon was not running then, it is sent at its next start within late_hours.
    """

    at: str = key("clock", "Local time (HH:MM, 24-hour, quoted) the report is sent every day.", example="07:00")
    since_hours: float = key("hours", "The report covers this many hours before `at` (24: every hour is in "
                                      "one report; 12: the night only).", 24, maximum=168,
                             maximum_why="a week is what a daily report can usefully list")
    late_hours: float = key("hours", "A report missed at `at` (daemon stopped) is still sent at a start up to "
                                     "this many hours later; after that, that day's report is skipped.", 5,
                            maximum=23, maximum_why="the next day's report is due by then")


@dataclass(frozen=True, kw_only=True)
class LoggingConfig:
    """What is logged and how."""

    level: str = key("choice", "Least severe messages logged.", "info",
                     choices=("debug", "info", "warning", "error"))
    format: str = key("choice", "text for people, json for log collectors.", "text", choices=("text", "json"))


@dataclass(frozen=True, kw_only=True)
class Config:
    """The whole configuration. `source` is the file it was read from (None if built from data)."""

    studio: StudioConfig = section(StudioConfig)
    ledger: Path = key("path", "SQLite file recording every photo's progress; under systemd "
                               "$STATE_DIRECTORY/ledger.sqlite3.", "/var/lib/skylab-watch/ledger.sqlite3")
    watches: tuple[WatchConfig, ...] = entries(
        WatchConfig, "The folders to watch; each sends its photos with one Studio profile.")
    uploads: UploadsConfig = section(UploadsConfig)
    downloads: DownloadsConfig = section(DownloadsConfig)
    polling: PollingConfig = section(PollingConfig)
    credits: CreditsConfig = section(CreditsConfig)
    retry: GiveUpConfig = section(GiveUpConfig)
    callback: CallbackConfig | None = section(CallbackConfig, optional=True)
    http: HttpConfig | None = section(HttpConfig, optional=True)
    notify: NotifyConfig | None = section(NotifyConfig, optional=True)
    report: ReportConfig | None = section(ReportConfig, optional=True)
    logging: LoggingConfig = section(LoggingConfig)
    source: Path | None = None
    # What loading found worth a warning but not a refusal (a secret that others can read).
    warnings: tuple[Problem, ...] = ()

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret the file holds (the API key, the callback secret, the HTTP token): what logs and
        doctor's findings mask. One list, so a secret added to the config is masked everywhere at once."""
        found = (self.studio.api_key, self.callback.secret if self.callback else None,
                 self.http.token if self.http else None)
        return tuple(secret for secret in found if secret)

    # Short names the rest of the program reads; each is the one key it names.
    @property
    def upload_concurrency(self) -> int:
        return self.uploads.concurrency

    @property
    def download_concurrency(self) -> int:
        return self.downloads.concurrency

    @property
    def poll_interval_seconds(self) -> float:
        return self.polling.interval_seconds

    @property
    def credits_retry_seconds(self) -> float:
        return self.credits.retry_seconds

    @property
    def log_level(self) -> str:
        return self.logging.level

    @property
    def log_format(self) -> str:
        return self.logging.format

    def watch(self, name: str) -> WatchConfig:
        """Given a watch name, return its WatchConfig; raise KeyError if there is none."""
        for watch in self.watches:
            if watch.name == name:
                return watch
        known = ", ".join(w.name for w in self.watches)
        raise KeyError(f"no watch named {name!r} (known: {known})")


SCHEMA: tuple[Option, ...] = options_of(Config)
"""Every key, as the tree the checker and the example renderer walk."""

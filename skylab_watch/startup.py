"""Opening what every command needs from a config: the ledger, the Studio
client, and the profile of every watch.
"""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path
from typing import Callable

from skylab_watch.config import Config, load_config, resolve_profiles
from skylab_watch.errors import ConfigError, LedgerError
from skylab_watch.ledger import Ledger
from skylab_watch.studio import RetryPolicy, StudioClient, StudioError, TransportError
from skylab_watch.studio.errors import OutOfCreditsError, ServerError

log = logging.getLogger("skylab_watch")


def make_client(config: Config) -> StudioClient:
    """Return a Studio client with the configured timeouts, deadlines and retry policy.

    Its connection pool holds twice the transfers that can run at once (and
    at least 16): a pool that is never full never has to open and drop extra
    connections, and never makes a worker wait for one.
    """
    retry = config.studio.retry
    policy = RetryPolicy(max_attempts=retry.max_attempts, max_seconds=retry.max_seconds,
                         initial_seconds=retry.initial_seconds, max_backoff_seconds=retry.max_backoff_seconds)
    pool = max(16, 2 * (config.upload_concurrency + config.download_concurrency))
    return StudioClient(config.studio.api_url, config.studio.api_key,
                        timeout=(config.studio.connect_timeout, config.studio.read_timeout),
                        retry=policy, pool_size=pool, api_deadline=config.studio.api_deadline,
                        transfer_deadline=config.studio.transfer_deadline)


def open_ledger(config: Config) -> Ledger:
    """Open (creating if needed) the configured ledger."""
    return Ledger(config.ledger)


def open_recorded_ledger(config_file: Path | str) -> tuple[Config, Ledger] | None:
    """For a command that only reads what the daemon recorded (status, report): return the config and its
    existing ledger; print why not to stderr and return None (the command exits 2).

    Neither the API key nor the folders are needed, so these commands work for a user who may not read
    the key; a missing ledger is said plainly instead of being created empty.
    """
    try:
        config = load_config(config_file, check_paths=False, need_secrets=False)
        if not config.ledger.exists():
            print(f"no ledger at {config.ledger} yet: skylab-watch has not run with this config", file=sys.stderr)
            return None
        return config, Ledger(config.ledger)
    except (ConfigError, LedgerError) as exc:
        print(str(exc), file=sys.stderr)
        return None


def wait_for_profiles(config: Config, studio: StudioClient, stop: threading.Event,
                      max_wait: float = 300.0,
                      on_wait: Callable[[str, float], object] | None = None) -> dict[str, int] | None:
    """Resolve every watch's profile; wait (with backoff) while Studio is unreachable.

    on_wait(reason, seconds) is called before each wait, so that a service
    manager can be told start-up takes longer (an outage at boot must not
    look like a hung start). Returns None if `stop` was set first. Raises
    ConfigError for an unknown profile and AuthError for a refused key:
    those need a person.
    """
    delay = 2.0
    while not stop.is_set():
        try:
            return resolve_profiles(config, studio.list_profiles())
        except (TransportError, ServerError, OutOfCreditsError) as exc:
            reason = f"cannot reach Studio to look up profiles ({exc})"
        except StudioError as exc:
            if not exc.retryable:
                raise
            reason = f"Studio trouble looking up profiles ({exc})"
        log.warning("%s; trying again in %.0f s", reason, delay)
        if on_wait is not None:
            on_wait(reason, delay)
        stop.wait(delay)
        delay = min(delay * 2, max_wait)
    return None

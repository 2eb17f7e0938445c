"""The configuration: one schema (`schema.py`) from which the typed objects, their defaults,
the checks (`check.py`, `folders.py`) and `config.example.yaml` (`render.py`) are derived.

`load_config` reads a file into a frozen `Config` or raises one ConfigError
with every problem; `resolve_profiles` matches the watches' profiles with
Studio's once the API can be asked.
"""

from skylab_watch.config.load import load_config, parse_config
from skylab_watch.config.profiles import match_profiles, resolve_profiles
from skylab_watch.config.schema import (
    BatchConfig, CallbackConfig, Config, CreditsConfig, DownloadsConfig, LoggingConfig, NotifyConfig, NotifyTarget,
    PollingConfig, ReportConfig, RetryConfig, StudioConfig, UploadsConfig, WatchConfig,
)

__all__ = [
    "BatchConfig", "CallbackConfig", "Config", "CreditsConfig", "DownloadsConfig", "LoggingConfig",
    "NotifyConfig", "NotifyTarget",
    "PollingConfig", "ReportConfig", "RetryConfig", "StudioConfig", "UploadsConfig", "WatchConfig",
    "load_config", "match_profiles", "parse_config", "resolve_profiles",
]

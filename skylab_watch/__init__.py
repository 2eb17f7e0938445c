"""skylab-watch: a hot-folder daemon for Skylab Studio.

Watches folders, sends new photos to Studio in jobs, writes the retouched
results into mirrored output folders, and records every step in a SQLite
ledger so that nothing is lost or sent twice across crashes.
"""

__version__ = "0.1.0"

from skylab_watch.errors import SkylabWatchError

__all__ = ["__version__", "SkylabWatchError"]

"""Allow `python -m skylab_watch`."""

from skylab_watch.cli import main

raise SystemExit(main())

"""Sub-command implementations of the `skylab-watch` CLI."""

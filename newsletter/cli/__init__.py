"""The `newsletter` command: the only place that prints and turns errors into exit codes."""

from __future__ import annotations

import os
import sys

# Each area keeps its commands in its own module; importing it registers them on `cli`.
from . import bounces, compose, demo, init, inspect, schedule, send, status, subscribers, tokens, users, web, worker  # noqa: E402,F401
from .group import cli

__all__ = ["cli", "main"]


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script."""
    # Whatever the process writes (database, state, outbox, exports) is its owner's alone: the
    # files hold addresses and names, and some have addresses as their names.
    os.umask(0o077)
    cli.main(args=argv, prog_name="newsletter")


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])

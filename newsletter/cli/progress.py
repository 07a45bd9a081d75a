"""Progress of `add`, source by source: a rich bar per part (the sources, each feed) on a terminal,
a plain line every few seconds otherwise, so a slow fetch never looks like a hang."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

PLAIN_EVERY = 5.0      # seconds between progress lines when not on a terminal
_SHOWN_CHARS = 60      # of the source just done, on the bar

PartProgress = Callable[[int, int, str], None]     # (sources done, sources in all, source just done)


class AddProgress:
    """Hands out one progress callback per part of an `add` (its sources, then each feed)."""

    def __init__(self, bar: Progress | None):
        self.bar = bar
        self.started = time.monotonic()
        self.last = self.started

    def part(self, label: str) -> PartProgress:
        """Return the callback of one part, shown as label."""
        task_id = None

        def update(done: int, total: int, source: str) -> None:
            """Show that done of total sources of this part are finished, source last."""
            nonlocal task_id
            if self.bar is not None:
                if task_id is None:
                    task_id = self.bar.add_task(label, total=total or None, source="")
                self.bar.update(task_id, completed=done, source=_short(source))
                return
            now = time.monotonic()
            if done < total and now - self.last < PLAIN_EVERY:
                return
            if done < total or now - self.started >= PLAIN_EVERY:    # quick runs print nothing
                click.echo(f"{label}: {done}/{total} done ({now - self.started:.0f}s)", err=True)
            self.last = now
        return update


def _short(source: str) -> str:
    """Return source cut to fit the bar's line."""
    return source if len(source) <= _SHOWN_CHARS else "…" + source[-(_SHOWN_CHARS - 1):]


@contextlib.contextmanager
def adding_progress() -> Iterator[AddProgress]:
    """Yield an AddProgress: rich bars on a terminal (removed when done), plain lines otherwise."""
    console = Console(stderr=True)
    if not console.is_terminal:
        yield AddProgress(None)
        return
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TextColumn("{task.fields[source]}", style="dim"),
                   console=console, transient=True)
    with bar:
        yield AddProgress(bar)

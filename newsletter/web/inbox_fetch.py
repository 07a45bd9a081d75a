"""The web app's inbox fetcher: links that arrive (pasted, clipped, from a feed or the API) are
fetched, extracted and summarised on one background thread, never while the editor waits.

Bounded: one worker thread, and at most one drain queued behind the running one (a drain
fetches every candidate not fetched yet, so more would only repeat it).
"""

from __future__ import annotations

import threading

from flask import Flask, current_app

from ..config import Config
from .background import BackgroundJobs

EXTENSION = "newsletter-inbox-fetch"


class InboxFetcher:
    """Runs schedule.inbox_prefetch.prefetch_waiting in the background when kicked."""

    def __init__(self, config: Config, engine: object):
        self.config = config
        self.engine = engine
        self.jobs = BackgroundJobs("newsletter-inbox-fetch")
        self._lock = threading.Lock()
        self._queued = False

    def kick(self) -> None:
        """Make sure a drain runs after now (no-op when inbox.prefetch is off or one is queued)."""
        if not self.config.inbox.prefetch:
            return
        with self._lock:
            if self._queued:
                return
            self._queued = True
        try:
            self.jobs.submit(self._drain)
        except RuntimeError:        # shutting down: the links wait for the next kick
            with self._lock:
                self._queued = False

    def _drain(self) -> None:
        """Fetch every candidate not fetched yet."""
        from ..schedule.inbox_prefetch import prefetch_waiting

        with self._lock:
            self._queued = False
        prefetch_waiting(self.config, self.engine)        # type: ignore[arg-type]


def init_inbox_fetch(app: Flask, config: Config, engine: object) -> None:
    """Give app its fetcher (app.extensions[EXTENSION]); the server shuts it down when it stops."""
    from ..workspace.inbox import Inbox

    Inbox(engine).reset_interrupted()       # type: ignore[arg-type]
    app.extensions[EXTENSION] = InboxFetcher(config, engine)


def inbox_fetcher() -> InboxFetcher:
    """Return the fetcher of the app handling the current request."""
    return current_app.extensions[EXTENSION]

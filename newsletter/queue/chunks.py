"""The worker's side of a chunk: what to send (the render travels in the database), the chunk's
state as it runs, halting a whole send, and watching for a reason to stop mid-chunk."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine

from ..db import utcnow, write_transaction
from ..errors import QueueError
from ..models import ChunkState, Rendered
from .tables import queue_chunks, queue_sends

if TYPE_CHECKING:
    from ..delivery.send import SendReport

_C, _Q = queue_chunks, queue_sends
WATCH_EVERY = 0.2          # seconds between looks at the worker's stop request
HALT_EVERY = 1.0           # seconds between looks at the send's halt flag (a query)


@dataclass(frozen=True)
class ChunkJob:
    """The arguments of one chunk job: which rows of which send."""

    chunk_id: int
    issue_id: str
    list_name: str
    first_row: int
    last_row: int

    @property
    def rows(self) -> tuple[int, int]:
        """Return the inclusive range of ledger row ids."""
        return self.first_row, self.last_row


@dataclass(frozen=True)
class QueuedRender:
    """A send as the workers see it: the frozen render, its options, and why it halted ("" = go)."""

    rendered: Rendered
    retry_unknown: bool
    halted: str


def load_send(engine: Engine, issue_id: str, list_name: str) -> QueuedRender:
    """Return the send the chunk belongs to; raises QueueError when it is gone."""
    with engine.connect() as conn:
        row = conn.execute(select(_Q).where(_Q.c.issue_id == issue_id, _Q.c.list == list_name)).first()
    if row is None:
        raise QueueError(f"issue {issue_id!r} to list {list_name!r} is not in the send queue any more")
    rendered = Rendered(issue_id=issue_id, subject=row.subject, preheader=row.preheader, html=row.html,
                        text=row.text, nonce=row.nonce)
    return QueuedRender(rendered, bool(row.retry_unknown), row.halted or "")


def set_chunk(engine: Engine, chunk_id: int, state: str, detail: str = "", *,
              worker_id: int | None = None, worker: str | None = None) -> None:
    """Set a chunk's state (and who runs it; a start counts a run)."""
    values: dict = {"state": state, "detail": detail[:2000], "updated_at": utcnow()}
    if worker is not None:
        values.update(worker=worker[:200], worker_id=worker_id, runs=_C.c.runs + 1)
    with write_transaction(engine) as conn:
        conn.execute(update(_C).where(_C.c.id == chunk_id).values(**values))


def unfinished_chunks(engine: Engine, issue_id: str, list_name: str) -> int:
    """Return how many chunks of the send are queued or running (by our record of them)."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(_C).where(
            _C.c.issue_id == issue_id, _C.c.list == list_name,
            _C.c.state.in_((ChunkState.QUEUED, ChunkState.RUNNING)))).scalar_one())


def summary(report: "SendReport") -> str:
    """Return one line of what a chunk run did ("1000 sent, 2 bounced in 3.1s")."""
    parts = [f"{report.sent} sent"] + [f"{getattr(report, k)} {k}" for k in ("bounced", "deferred", "failed", "skipped")
                                       if getattr(report, k)]
    if report.recovered_unknown:
        parts.append(f"{report.recovered_unknown} unknown (in flight in a run that died)")
    return ", ".join(parts) + f" in {report.elapsed:.1f}s"


def halt_send(engine: Engine, issue_id: str, list_name: str, reason: str) -> None:
    """Stop every chunk of a send (running ones at their next safe point); `send` clears it."""
    with write_transaction(engine) as conn:
        conn.execute(update(_Q).where(_Q.c.issue_id == issue_id, _Q.c.list == list_name, _Q.c.halted == "")
                     .values(halted=reason[:2000] or "halted", updated_at=utcnow()))


def halted(engine: Engine, issue_id: str, list_name: str) -> str:
    """Return why the send was halted, or ""."""
    with engine.connect() as conn:
        return conn.execute(select(_Q.c.halted).where(_Q.c.issue_id == issue_id, _Q.c.list == list_name)
                            ).scalar() or ""


@contextlib.contextmanager
def watch(engine: Engine, job: ChunkJob, halt: threading.Event, should_stop: Callable[[], bool]) -> Iterator[None]:
    """While inside, set halt when should_stop() turns true (the worker is stopping) or the send is
    halted (another chunk paused or failed); the send loop then stops at its next safe point."""
    done = threading.Event()

    def run() -> None:
        last_query = 0.0
        while not done.wait(WATCH_EVERY):
            if should_stop():
                halt.set()
                return
            last_query += WATCH_EVERY
            if last_query >= HALT_EVERY:
                last_query = 0.0
                try:
                    if halted(engine, job.issue_id, job.list_name):
                        halt.set()
                        return
                except Exception:  # noqa: BLE001 - a failed look is retried; the send loop sees the database itself
                    continue

    thread = threading.Thread(target=run, name=f"newsletter-chunk-{job.chunk_id}-watch", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


__all__ = ["ChunkJob", "QueuedRender", "load_send", "set_chunk", "halt_send", "halted", "unfinished_chunks", "summary", "watch", "ChunkState"]

"""What the workers are doing: a send's chunks and per-worker progress (`newsletter status`,
`send --wait`), and the live workers (`newsletter workers`). Read-only, PostgreSQL."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, column, delete, func, insert, select, table, text
from sqlalchemy.engine import Engine

from ..db import as_utc, deliveries, utcnow, write_transaction
from ..ledger import Ledger
from ..models import ChunkState, DeliveryState
from . import schema
from .app import CHUNK_TASK
from .enqueue import job_status, jobs_table
from .tables import queue_chunks, queue_sends, queue_workers

_C, _D, _W = queue_chunks, deliveries, queue_workers
workers_table = table("procrastinate_workers", column("id"), column("last_heartbeat"))
UNDONE = (DeliveryState.PENDING, DeliveryState.SENDING)


@dataclass
class WorkerProgress:
    """One worker's part in a send: its chunks done and the rows done in the chunks it runs now."""

    worker: str                   # host:pid
    worker_id: int | None
    chunks_done: int = 0
    rows_done: int = 0            # in the chunks it finished
    running: list[tuple[int, int, int]] = field(default_factory=list)   # (chunk seq, rows done, rows)


@dataclass
class SendProgress:
    """A send (issue, list) in the queue: its chunks per state, per-worker progress, why it halted."""

    issue_id: str
    list_name: str
    chunks: Counter = field(default_factory=Counter)     # display state → chunks
    open_chunks: int = 0          # with a job waiting or running
    workers: list[WorkerProgress] = field(default_factory=list)
    halted: str = ""
    problems: list[str] = field(default_factory=list)   # "chunk 3: failed: …"

    @property
    def finished(self) -> bool:
        """Return True when no chunk waits or runs."""
        return self.open_chunks == 0


def _display(state: str, job: str | None) -> str:
    """Return a chunk's state as shown: ours, corrected by what Procrastinate knows of its job."""
    if job == "todo":
        return "retrying" if state == ChunkState.RUNNING else ChunkState.QUEUED
    if job == "doing":
        return ChunkState.RUNNING
    if state in (ChunkState.QUEUED, ChunkState.RUNNING):
        return ChunkState.FAILED if job in ("failed", "aborted", "cancelled") else state
    return state


def send_progress(engine: Engine, issue_id: str, list_name: str) -> SendProgress | None:
    """Return the queue's view of one send, or None when it was never queued."""
    schema.ensure(engine)
    with engine.connect() as conn:
        halted = conn.execute(select(queue_sends.c.halted).where(
            queue_sends.c.issue_id == issue_id, queue_sends.c.list == list_name)).first()
        if halted is None:
            return None
        rows = conn.execute(
            select(_C.c.id, _C.c.seq, _C.c.state, _C.c.worker, _C.c.worker_id, _C.c.rows, _C.c.detail,
                   job_status.label("status"))
            .select_from(_C.outerjoin(jobs_table, jobs_table.c.id == _C.c.job_id))
            .where(_C.c.issue_id == issue_id, _C.c.list == list_name).order_by(_C.c.seq)).all()
        running = [r.id for r in rows if r.status == "doing"]
        done_in: dict[int, int] = {}
        if running:
            # Rows already dealt with in each running chunk, from the ledger itself.
            counted = (select(_C.c.id, func.count(_D.c.id))
                       .select_from(_C.join(_D, and_(_D.c.issue_id == _C.c.issue_id, _D.c.list == _C.c.list,
                                                     _D.c.id.between(_C.c.first_row, _C.c.last_row))))
                       .where(_C.c.id.in_(running), _D.c.status.not_in(UNDONE)).group_by(_C.c.id))
            done_in = dict(conn.execute(counted).all())
    progress = SendProgress(issue_id, list_name, halted=halted[0] or "")
    by_worker: dict[str, WorkerProgress] = {}
    for r in rows:
        shown = _display(r.state, r.status)
        progress.chunks[shown] += 1
        progress.open_chunks += r.status in ("todo", "doing")
        if shown in (ChunkState.FAILED, ChunkState.PAUSED) and r.detail:
            progress.problems.append(f"chunk {r.seq}: {shown}: {r.detail}")
        if not r.worker:
            continue
        w = by_worker.setdefault(r.worker, WorkerProgress(r.worker, r.worker_id))
        if shown == ChunkState.RUNNING:
            w.running.append((r.seq, int(done_in.get(r.id, 0)), r.rows))
        elif shown == ChunkState.DONE:
            w.chunks_done += 1
            w.rows_done += r.rows
    progress.workers = sorted(by_worker.values(), key=lambda w: w.worker)
    return progress


def follow(engine: Engine, issue_id: str, list_name: str, *, every: float = 1.0,
           on_progress: Callable[[SendProgress, dict[str, int]], None] | None = None,
           halt: threading.Event | None = None) -> SendProgress | None:
    """Poll a queued send every `every` seconds until no chunk waits or runs (or halt is set);
    return its last SendProgress, None when it was never queued. on_progress gets each progress
    and the ledger's rows per state."""
    ledger = Ledger(engine)
    halt = halt or threading.Event()
    while True:
        progress = send_progress(engine, issue_id, list_name)
        if progress is None:
            return None
        if on_progress is not None:
            on_progress(progress, ledger.counts(issue_id, list_name))
        if progress.finished or halt.wait(every):
            return progress


def queued_lists(engine: Engine, issue_id: str) -> list[str]:
    """Return the lists issue_id was handed to the workers for."""
    with engine.connect() as conn:
        return sorted(conn.execute(select(queue_sends.c.list).where(queue_sends.c.issue_id == issue_id)).scalars())


# -- workers ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LiveWorker:
    """A worker whose heartbeat is recent."""

    worker_id: int
    host: str
    pid: int
    queues: str
    concurrency: int
    started_at: datetime
    heartbeat_age: float          # seconds since its last heartbeat
    chunks: tuple[str, ...]       # "issue#seq" of the chunks it runs


def worker_label() -> str:
    """Return this process's name as workers show it: host:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def register_worker(engine: Engine, worker_id: int, queues: str, concurrency: int) -> None:
    """Describe this process as Procrastinate's worker worker_id; forget workers Procrastinate pruned."""
    with write_transaction(engine) as conn:
        conn.execute(delete(_W).where(_W.c.worker_id.not_in(select(workers_table.c.id))))
        conn.execute(delete(_W).where(_W.c.worker_id == worker_id))
        conn.execute(insert(_W).values(worker_id=worker_id, host=socket.gethostname()[:200], pid=os.getpid(),
                                       queues=queues[:500], concurrency=concurrency, started_at=utcnow()))


def unregister_worker(engine: Engine, worker_id: int) -> None:
    """Forget this worker's description (it stopped)."""
    with write_transaction(engine) as conn:
        conn.execute(delete(_W).where(_W.c.worker_id == worker_id))


def live_workers(engine: Engine, stalled_seconds: float) -> list[LiveWorker]:
    """Return the workers whose heartbeat is younger than stalled_seconds, oldest first."""
    schema.ensure(engine)
    age = func.extract("epoch", func.now() - workers_table.c.last_heartbeat)
    with engine.connect() as conn:
        rows = conn.execute(
            select(_W, age.label("age")).select_from(_W.join(workers_table, workers_table.c.id == _W.c.worker_id))
            .where(age < stalled_seconds).order_by(_W.c.started_at)).all()
        chunks = conn.execute(
            select(_C.c.worker_id, _C.c.issue_id, _C.c.seq)
            .select_from(_C.join(jobs_table, jobs_table.c.id == _C.c.job_id))
            .where(job_status == "doing")).all()
    running: dict[int, list[str]] = {}
    for wid, issue_id, seq in chunks:
        running.setdefault(wid, []).append(f"{issue_id}#{seq}")
    return [LiveWorker(r.worker_id, r.host, r.pid, r.queues, r.concurrency, as_utc(r.started_at), float(r.age),
                       tuple(running.get(r.worker_id, ()))) for r in rows]


def queue_counts(engine: Engine) -> dict[str, int]:
    """Return the queue's chunk jobs per Procrastinate status (todo, doing, succeeded, failed, …)."""
    schema.ensure(engine)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT status::text, count(*) FROM procrastinate_jobs "
                                 "WHERE task_name = :task GROUP BY status"), {"task": CHUNK_TASK}).all()
    return {status: int(n) for status, n in rows}

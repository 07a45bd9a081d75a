"""Hand a send to the workers: plan the ledger rows, cut them into chunks and enqueue one
Procrastinate job per chunk, all in one transaction of our own.

A chunk is a fixed range of the send's ledger row ids, made once per (issue, list). Sending the
issue again queues only the chunks that still have rows to send and no job waiting or running.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Text, and_, bindparam, cast, column, func, insert, literal, select, table, update
from sqlalchemy.engine import Connection, Engine

from ..db import deliveries, utcnow, write_transaction
from ..delivery.lock import issue_lock_key
from ..errors import IssueError, QueueError
from ..ledger import STATES, Ledger
from ..models import ChunkState, DeliveryState, Rendered
from . import schema
from .app import CHUNK_TASK, make_app
from .tables import queue_chunks, queue_sends

if TYPE_CHECKING:
    from ..config import Config

log = logging.getLogger(__name__)

_C, _D, _Q = queue_chunks, deliveries, queue_sends
# Procrastinate's job table, as far as we read it.
jobs_table = table("procrastinate_jobs", column("id"), column("status"))
# Its status is an enum of Procrastinate's: compared as text.
job_status = cast(jobs_table.c.status, Text)
OPEN_JOB = ("todo", "doing")
# Rows a chunk run still has work for: claimable ones, and "sending" ones a dead run left behind
# (the chunk's next run turns those into "unknown").
WORK = (DeliveryState.PENDING, DeliveryState.DEFERRED, DeliveryState.SENDING)


@dataclass
class QueuedSend:
    """What enqueueing a send did, and where the send stands."""

    issue_id: str
    list_name: str
    rows: int = 0                 # ledger rows of the send
    chunks: int = 0               # chunks of the send in all
    enqueued: int = 0             # chunks this call queued
    enqueued_rows: int = 0        # rows in them that still need sending
    open_chunks: int = 0          # chunks already queued or running, left as they were
    state: str = ""               # the issue's state: sending | sent
    counts: dict[str, int] = field(default_factory=dict)


def chunk_lock_name(chunk_id: int) -> str:
    """Return the Procrastinate lock (and queueing lock) of a chunk: one job of it at a time."""
    return f"newsletter-chunk-{chunk_id}"


def enqueue_send(engine: Engine, config: "Config", rendered: Rendered, issue_id: str, list_name: str,
                 *, retry_unknown: bool = False) -> QueuedSend:
    """Plan (issue_id, list_name), save its render for the workers and queue its unfinished chunks.

    One transaction: the ledger rows, the chunks and the Procrastinate jobs appear together or
    not at all (workers are woken when it commits). Raises SubscriberError (empty list),
    IssueError (a single-process `send` of the issue is running) and QueueError.
    """
    schema.ensure(engine)
    app = make_app(config)
    report = QueuedSend(issue_id, list_name)
    with write_transaction(engine) as conn:
        # Shared with the workers of this issue, exclusive for a single-process send.
        if not conn.execute(select(func.pg_try_advisory_xact_lock_shared(issue_lock_key(issue_id)))).scalar_one():
            raise IssueError(f"issue {issue_id!r} is being sent by a single `newsletter send` process right now")
        # Two `send` commands of the same issue queue its chunks one after the other.
        conn.execute(select(func.pg_advisory_xact_lock(issue_lock_key(f"{issue_id}\n{list_name}"))))
        report.rows = Ledger(engine).plan_in(conn, issue_id, list_name)
        _save_send(conn, rendered, issue_id, list_name, retry_unknown)
        fresh = _make_chunks(conn, issue_id, list_name, config.queue.chunk_size)
        todo, report.open_chunks = _chunks_to_queue(conn, issue_id, list_name, retry_unknown, fresh)
        report.chunks = fresh or int(conn.execute(select(func.count()).select_from(_C).where(
            _C.c.issue_id == issue_id, _C.c.list == list_name)).scalar_one())
        if todo:
            _defer(conn, app, config.queue.name, issue_id, list_name, todo)
        report.enqueued = len(todo)
        report.enqueued_rows = sum(n for _cid, _first, _last, n in todo)
    log.debug("issue %s to %s: %d chunks queued (%d rows), %d already queued or running",
             issue_id, list_name, report.enqueued, report.enqueued_rows, report.open_chunks)
    ledger = Ledger(engine)
    report.counts = ledger.counts(issue_id, list_name)
    report.state = ledger.issue_state(issue_id) or ""
    return report


def _save_send(conn: Connection, rendered: Rendered, issue_id: str, list_name: str, retry_unknown: bool) -> None:
    """Store the frozen render (first time) and the send's options; clear an earlier halt."""
    now = utcnow()
    done = conn.execute(update(_Q).where(_Q.c.issue_id == issue_id, _Q.c.list == list_name)
                        .values(retry_unknown=retry_unknown, halted="", updated_at=now))
    if done.rowcount == 0:
        conn.execute(insert(_Q).values(issue_id=issue_id, list=list_name, subject=rendered.subject,
                                       preheader=rendered.preheader, html=rendered.html, text=rendered.text,
                                       nonce=rendered.nonce, retry_unknown=retry_unknown, halted="",
                                       created_at=now, updated_at=now))


def _make_chunks(conn: Connection, issue_id: str, list_name: str, size: int) -> int:
    """Cut the send's ledger rows into chunks of size rows (first time only); return how many were made."""
    if conn.execute(select(_C.c.id).where(_C.c.issue_id == issue_id, _C.c.list == list_name).limit(1)).first():
        return 0
    # Numbered in the database, never loaded here: a million rows make a thousand chunk rows.
    numbered = (select(_D.c.id, ((func.row_number().over(order_by=_D.c.id) - 1) // size).label("grp"))
                .where(_D.c.issue_id == issue_id, _D.c.list == list_name).subquery())
    source = (select(literal(issue_id), literal(list_name), numbered.c.grp + 1, func.min(numbered.c.id),
                     func.max(numbered.c.id), func.count(), literal(ChunkState.QUEUED.value), literal(""),
                     literal(0), literal(""), literal(utcnow(), _C.c.updated_at.type))
              .group_by(numbered.c.grp))
    conn.execute(insert(_C).from_select(
        ["issue_id", "list", "seq", "first_row", "last_row", "rows", "state", "worker", "runs", "detail",
         "updated_at"], source))
    return int(conn.execute(select(func.count()).select_from(_C).where(
        _C.c.issue_id == issue_id, _C.c.list == list_name)).scalar_one())


def _chunks_to_queue(conn: Connection, issue_id: str, list_name: str, retry_unknown: bool,
                     fresh: int) -> tuple[list[tuple[int, int, int, int]], int]:
    """Return ([(chunk id, first row, last row, rows to do)] to queue, chunks open already)."""
    mine = and_(_C.c.issue_id == issue_id, _C.c.list == list_name)
    if fresh:
        rows = conn.execute(select(_C.c.id, _C.c.first_row, _C.c.last_row, _C.c.rows).where(mine)
                            .order_by(_C.c.seq)).all()
        return [tuple(r) for r in rows], 0
    open_ids = set(conn.execute(select(_C.c.id).select_from(_C.join(jobs_table, jobs_table.c.id == _C.c.job_id))
                                .where(mine, job_status.in_(OPEN_JOB))).scalars())
    states = WORK + ((DeliveryState.UNKNOWN,) if retry_unknown else ())
    work = (select(_C.c.id, _C.c.first_row, _C.c.last_row, func.count(_D.c.id))
            .select_from(_C.join(_D, and_(_D.c.issue_id == _C.c.issue_id, _D.c.list == _C.c.list,
                                          _D.c.id.between(_C.c.first_row, _C.c.last_row))))
            .where(mine, _D.c.status.in_(states)).group_by(_C.c.id, _C.c.first_row, _C.c.last_row)
            .order_by(_C.c.id))
    todo = [tuple(r) for r in conn.execute(work) if r[0] not in open_ids]
    return todo, len(open_ids)


def _defer(conn: Connection, app, queue: str, issue_id: str, list_name: str,  # noqa: ANN001 - a procrastinate App
           todo: list[tuple[int, int, int, int]]) -> None:
    """Enqueue one job per chunk on conn's own connection (inside our transaction) and note its id."""
    from procrastinate import exceptions
    from procrastinate.jobs import Job

    jobs = [Job(queue=queue, lock=chunk_lock_name(cid), queueing_lock=chunk_lock_name(cid), task_name=CHUNK_TASK,
                task_kwargs={"chunk_id": cid, "issue_id": issue_id, "list_name": list_name,
                             "first_row": first, "last_row": last})
            for cid, first, last, _n in todo]
    try:
        deferred = app.job_manager.batch_defer_jobs(jobs=jobs, connection=conn.connection.driver_connection)
    except exceptions.ProcrastinateException as err:
        cause = err.__cause__ or err
        raise QueueError(f"could not queue the chunks of issue {issue_id}: {cause}") from err
    conn.execute(update(_C).where(_C.c.id == bindparam("b_id")).values(
        job_id=bindparam("b_job"), state=ChunkState.QUEUED, detail="", updated_at=utcnow()),
        [{"b_id": cid, "b_job": job.id} for (cid, *_rest), job in zip(todo, deferred)])


def open_chunks(engine: Engine, issue_id: str, list_name: str | None = None) -> int:
    """Return how many chunks of issue_id (one list, or all) have a job waiting or running."""
    query = (select(func.count()).select_from(_C.join(jobs_table, jobs_table.c.id == _C.c.job_id))
             .where(_C.c.issue_id == issue_id, job_status.in_(OPEN_JOB)))
    if list_name is not None:
        query = query.where(_C.c.list == list_name)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


__all__ = ["QueuedSend", "enqueue_send", "open_chunks", "chunk_lock_name", "jobs_table", "STATES"]

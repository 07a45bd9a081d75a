"""The queue's half of the send step (pipeline.send_issue with [queue] on): hand a send to the
workers (enqueue_issue), and send one chunk of it on a worker (send_chunk) through the same send
loop, backends and ledger as a single-process send."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from ..config import Config
    from ..delivery.send import SendReport
    from .chunks import ChunkJob
    from .enqueue import QueuedSend


def enqueue_issue(config: "Config", issue_id: str, *, list_name: str | None = None,
                  retry_unknown: bool = False) -> "QueuedSend":
    """Plan issue_id's rows for the list and queue them as chunks for the workers, in one transaction.

    The render `build` froze is stored in the database with them, so a worker on any host sends
    the same bytes. Returns a QueuedSend; raises IssueError (never built, a single-process send
    of it is running), StaleRender (changed since `build`), SubscriberError (unknown or empty list), QueueError, ConfigError.
    """
    from ..db import get_engine
    from ..ledger import Ledger
    from ..render.inputs import check_current
    from ..render.saved import load_rendered
    from ..subscribers import SubscriberStore
    from .enqueue import enqueue_send

    list_name = list_name or config.delivery.default_list
    rendered = load_rendered(config.paths.state, issue_id)
    engine = get_engine(config)
    ledger = Ledger(engine)
    check_current(config, issue_id, frozen=ledger.is_frozen(issue_id))
    if list_name not in ledger.lists_of(issue_id):
        SubscriberStore(engine).require_list(list_name)
    return enqueue_send(engine, config, rendered, issue_id, list_name, retry_unknown=retry_unknown)


@dataclass
class ChunkOutcome:
    """What one run of a chunk did: the chunk's state afterwards and the send report of its rows."""

    state: str                   # models.ChunkState
    report: "SendReport"
    detail: str = ""


def send_chunk(config: "Config", job: "ChunkJob", *, worker_id: int | None, worker: str,
               should_stop: Callable[[], bool] = lambda: False,
               on_sent: "Callable[[Connection], None] | None" = None) -> ChunkOutcome:
    """Send one chunk of a queued send through the same send loop, backend and ledger as `send`.

    Runs on a queue worker: holds the chunk's lock (ChunkBusy when another worker has it), turns
    rows a dead run of this chunk left "sending" into "unknown", sends the rest under the rate
    limit shared by all workers, and records the chunk's state. A pause (too many failures) or a
    backend/config failure halts the whole send (other chunks stop at their next safe point).
    on_sent, when given, runs inside the transaction that marks the whole send sent (after its
    last chunk), so the scheduler's records of it finish with it.
    Raises SendStopped when should_stop() turned true (the worker is stopping: the chunk is
    queued again), ChunkBusy, QueueError, ConfigError or DeliveryError (the chunk failed).
    """
    from ..backends.base import make_backend
    from ..db import get_engine
    from ..delivery.lock import chunk_lock
    from ..delivery.send import SendReport, deliver_chunk
    from ..errors import NewsletterError, SendStopped
    from ..ledger import Ledger
    from ..models import ChunkState
    from ..personalize.message import MessageFactory
    from . import chunks
    from .ratelimit import SharedRateLimiter, rate_key

    engine = get_engine(config)
    ledger = Ledger(engine)
    queued = chunks.load_send(engine, job.issue_id, job.list_name)
    report = SendReport(issue_id=job.issue_id, list_name=job.list_name)
    outcome = ChunkOutcome(ChunkState.HELD, report, queued.halted)
    if not queued.halted:
        started, halt = time.monotonic(), threading.Event()
        with chunk_lock(engine, job.issue_id, job.chunk_id, keepalive=config.queue.stalled_seconds / 4):
            chunks.set_chunk(engine, job.chunk_id, ChunkState.RUNNING, worker_id=worker_id, worker=worker)
            limiter = SharedRateLimiter(engine, rate_key(config), config.delivery.rate_per_second)
            factory = MessageFactory(queued.rendered, config, list_name=job.list_name)
            try:
                with chunks.watch(engine, job, halt, should_stop), make_backend(config) as backend:
                    deliver_chunk(report, ledger, backend, factory, config.delivery, job.rows,
                                  retry_unknown=queued.retry_unknown, limiter=limiter, halt=halt)
            except SendStopped:
                outcome.detail = chunks.halted(engine, job.issue_id, job.list_name)
                if not outcome.detail or should_stop():
                    chunks.set_chunk(engine, job.chunk_id, ChunkState.QUEUED, "stopped with its worker; queued again")
                    raise
            except NewsletterError as err:
                chunks.set_chunk(engine, job.chunk_id, ChunkState.FAILED, str(err))
                chunks.halt_send(engine, job.issue_id, job.list_name, f"chunk {job.chunk_id} failed: {err}")
                raise
            else:
                report.elapsed = time.monotonic() - started
                outcome.state, outcome.detail = ChunkState.DONE, chunks.summary(report)
                if report.paused:
                    outcome.state, outcome.detail = ChunkState.PAUSED, report.paused
                    chunks.halt_send(engine, job.issue_id, job.list_name, f"paused: {report.paused}")
    chunks.set_chunk(engine, job.chunk_id, outcome.state, outcome.detail)
    if chunks.unfinished_chunks(engine, job.issue_id, job.list_name) == 0:
        # The last chunk to end marks the issue sent when no row is open (the ledger decides).
        report.state = ledger.finish(job.issue_id, job.list_name, then=on_sent)
    return outcome

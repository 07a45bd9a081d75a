"""The chunk task a worker runs: one job = one chunk of a queued send, sent by pipeline.send_chunk;
the chunk that finishes the send also finishes the scheduler's records of it (same transaction)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from procrastinate import BaseRetryStrategy, RetryDecision

from ..errors import ChunkBusy, SendStopped
from ..pipeline import send_chunk
from ..queue.app import CHUNK_TASK
from ..queue.chunks import ChunkJob
from ..schedule.records import finish_queued_send

if TYPE_CHECKING:
    from procrastinate import App, JobContext
    from procrastinate.jobs import Job
    from sqlalchemy.engine import Connection

    from ..config import Config

log = logging.getLogger(__name__)

BUSY_RETRY_SECONDS = 2      # a chunk another worker still holds is tried again this much later
DB_RETRY_SECONDS = 5        # a chunk whose database connection broke is tried again this much later ...
DB_RETRIES = 5              # ... this many times (the ledger makes a second run of it harmless)


class ChunkRetry(BaseRetryStrategy):
    """Queue a chunk again when it could not run now (its lock is held, its worker is stopping) or
    its database connection broke (a restart, a failover, a dropped session: a chunk that recorded
    every row but not yet the end of the send would otherwise leave the issue "sending"); never
    when it failed: the ledger keeps its rows and `newsletter send` queues it again."""

    def get_retry_decision(self, *, exception: BaseException, job: "Job") -> RetryDecision | None:
        """Return when to run the job again, or None to let it fail."""
        if isinstance(exception, ChunkBusy):
            return RetryDecision(retry_in={"seconds": BUSY_RETRY_SECONDS})
        if isinstance(exception, SendStopped):
            return RetryDecision(retry_in={"seconds": 0})
        if _connection_lost(exception) and job.attempts < DB_RETRIES:
            return RetryDecision(retry_in={"seconds": DB_RETRY_SECONDS})
        return None


def _connection_lost(exception: BaseException) -> bool:
    """Return True for a database error that says the connection, not the statement, failed
    (SQLAlchemy's OperationalError/InterfaceError, or any DBAPIError it marked as a disconnect)."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    return isinstance(exception, (OperationalError, InterfaceError)) or (
        isinstance(exception, DBAPIError) and exception.connection_invalidated)


def register(app: "App", config: "Config", worker_ids: dict[str, int]) -> None:
    """Register the chunk task on app; worker_ids["id"] is the Procrastinate id of this worker."""
    from ..queue.progress import worker_label

    label = worker_label()
    default_list = config.delivery.default_list

    def on_sent(conn: "Connection", issue_id: str, list_name: str) -> None:
        """Finish the scheduler's records of a send in the transaction that marks it sent."""
        finish_queued_send(conn, issue_id, list_name, default_list=default_list,
                           digest_list=config.schedule.list)

    @app.task(name=CHUNK_TASK, pass_context=True, retry=ChunkRetry(), queue=config.queue.name)
    def send_chunk_task(context: "JobContext", *, chunk_id: int, issue_id: str, list_name: str,
                        first_row: int, last_row: int) -> str:
        """Send one chunk; return its outcome in words (Procrastinate logs it)."""
        job = ChunkJob(chunk_id, issue_id, list_name, first_row, last_row)
        where = f"issue {issue_id} chunk {chunk_id} (rows {first_row}-{last_row})"
        try:
            outcome = send_chunk(config, job, worker_id=context.job.worker_id or worker_ids.get("id"),
                                 worker=label, should_stop=context.should_abort,
                                 on_sent=lambda conn: on_sent(conn, issue_id, list_name))
        except ChunkBusy as err:
            log.info("%s: %s; trying again in %ds", where, err, BUSY_RETRY_SECONDS)
            raise
        except SendStopped:
            log.warning("%s: stopped with this worker; it is queued again", where)
            raise
        except Exception as err:
            log.error("%s: failed: %s", where, err)
            raise
        log.info("%s: %s: %s", where, outcome.state, outcome.detail)
        return f"{outcome.state}: {outcome.detail}"

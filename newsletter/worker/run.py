"""Run one worker process: a Procrastinate worker on the send queue plus its housekeeping (our
description of it, and sending the chunks of workers that died back to the queue)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..db import get_engine
from ..queue import schema
from ..queue.app import CHUNK_TASK, make_app, require_queue
from ..queue.progress import register_worker, unregister_worker, worker_label
from .task import register

if TYPE_CHECKING:
    from procrastinate import App
    from procrastinate.worker import Worker

    from ..config import Config

log = logging.getLogger(__name__)


def run_worker(config: "Config", *, concurrency: int | None = None, queues: Sequence[str] = (),
               listen: bool = True) -> None:
    """Run a worker in the foreground until SIGINT/SIGTERM: it sends the queued chunks.

    concurrency is how many chunks it sends at once (default queue.concurrency), queues the
    Procrastinate queues it takes chunks from (default queue.name). On a stop request running
    chunks stop at their next safe point (what is on the wire is recorded) and go back to the
    queue. Raises ConfigError (no queue, bad database) and QueueError (schema too old).
    """
    require_queue(config)
    engine = get_engine(config)
    schema.ensure(engine)
    concurrency = concurrency or config.queue.concurrency
    names = list(queues) or [config.queue.name]
    asyncio.run(_main(config, concurrency, names, listen))


async def _main(config: "Config", concurrency: int, queues: list[str], listen: bool) -> None:
    """Open the app, run the worker and its housekeeping until the worker stops."""
    from procrastinate.worker import Worker

    q = config.queue
    worker_ids: dict[str, int] = {}
    # A pool for Procrastinate: its listener, fetches, heartbeats and job updates.
    app = make_app(config, pool_size=concurrency + 3)
    register(app, config, worker_ids)
    async with app.open_async():
        worker = Worker(app, queues=queues, name=worker_label(), concurrency=concurrency,
                        listen_notify=listen, fetch_job_polling_interval=min(5.0, q.heartbeat_seconds),
                        abort_job_polling_interval=q.heartbeat_seconds,
                        # Running chunks are asked to stop at once: they record what is on the wire.
                        shutdown_graceful_timeout=0, update_heartbeat_interval=q.heartbeat_seconds,
                        stalled_worker_timeout=q.stalled_seconds)
        side = asyncio.create_task(_housekeeping(app, worker, config, concurrency, queues, worker_ids))
        try:
            await worker.run()
        finally:
            side.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await side
            if "id" in worker_ids:
                await asyncio.to_thread(unregister_worker, get_engine(config), worker_ids["id"])
    log.info("worker %s stopped", worker_label())


async def _housekeeping(app: "App", worker: "Worker", config: "Config", concurrency: int,
                        queues: list[str], worker_ids: dict[str, int]) -> None:
    """Describe this worker once registered, then every heartbeat send dead workers' chunks back."""
    from procrastinate import exceptions

    while worker.worker_id is None:
        await asyncio.sleep(0.05)
    worker_ids["id"] = worker.worker_id
    engine = get_engine(config)
    await asyncio.to_thread(register_worker, engine, worker.worker_id, ",".join(queues), concurrency)
    log.info("worker %s (id %d) sends chunks from queue %s, %d at a time", worker_label(), worker.worker_id,
             ", ".join(queues), concurrency)
    q = config.queue
    while True:
        await asyncio.sleep(q.heartbeat_seconds)
        try:
            await app.job_manager.prune_stalled_workers(q.stalled_seconds)
            stalled = await app.job_manager.get_stalled_jobs(task_name=CHUNK_TASK,
                                                             seconds_since_heartbeat=q.stalled_seconds)
        except exceptions.ProcrastinateException as err:
            log.warning("could not look for dead workers: %s", err.__cause__ or err)
            continue
        for job in stalled:
            try:
                await app.job_manager.retry_job(job)
            except exceptions.ProcrastinateException:
                continue            # another worker queued it again first
            log.warning("chunk %s of issue %s: its worker stopped answering; queued again",
                        job.task_kwargs.get("chunk_id"), job.task_kwargs.get("issue_id"))

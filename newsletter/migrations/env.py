"""Alembic's environment for newsletter's schema: run by `newsletter db upgrade` (which hands over
its connection, inside its transaction) or by the `alembic` command for developers (`alembic.ini`
at the repository root; the database URL from `-x url=…` or $NEWSLETTER_DATABASE_URL).

This folder is package data, not a package: the scripts are loaded by Alembic, never imported.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import MetaData, create_engine

config = context.config


def target_metadata() -> MetaData | None:
    """Return every table the code defines (for --autogenerate), or what the caller handed over."""
    given = config.attributes.get("target_metadata")
    if given is not None or config.attributes.get("connection") is not None:
        return given
    return code_tables()


def code_tables() -> MetaData:
    """Return one MetaData holding every table the code creates (developers' --autogenerate)."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

    from newsletter.articles.feedmemory import feed_memory_metadata
    from newsletter.db import metadata
    from newsletter.queue.tables import queue_metadata
    from newsletter.schedule.lease import lock_metadata
    from newsletter.schedule.records import sched_metadata
    from newsletter.schedule.jobstore import JOBS_TABLE

    merged = MetaData()
    jobs = SQLAlchemyJobStore(url="sqlite://", tablename=JOBS_TABLE).jobs_t.metadata
    for part in (metadata, sched_metadata, lock_metadata, jobs, queue_metadata, feed_memory_metadata):
        for table in part.tables.values():
            table.to_metadata(merged)
    return merged


def run() -> None:
    """Run the migrations on the caller's connection, or on one to the developer's URL."""
    connection = config.attributes.get("connection")
    options = dict(target_metadata=target_metadata(), render_as_batch=True, compare_type=True)
    if connection is not None:
        context.configure(connection=connection, **options)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get("NEWSLETTER_DATABASE_URL")
    if not url:
        raise SystemExit("name the database: alembic -x url=sqlite:///path/newsletter.db … "
                         "(or set NEWSLETTER_DATABASE_URL)")
    engine = create_engine(url)
    with engine.connect() as conn:
        context.configure(connection=conn, **options)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run()

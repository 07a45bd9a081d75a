"""The send queue's own tables: the sends handed to the workers, their chunks, the live workers'
descriptions and the shared rate limits. Procrastinate keeps its jobs in its own tables."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKeyConstraint,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

queue_metadata = MetaData()

# One row per (issue, list) handed to the workers: the frozen render travels in the database, so
# a worker on any host sends the bytes `build` froze; `halted` says why the workers stopped it.
queue_sends = Table(
    "queue_sends", queue_metadata,
    Column("issue_id", String(200), primary_key=True),
    Column("list", String(200), primary_key=True),
    Column("subject", Text, nullable=False),
    Column("preheader", Text, nullable=False),
    Column("html", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("nonce", String(100), nullable=False),
    Column("retry_unknown", Boolean, nullable=False, default=False),
    Column("halted", Text, nullable=False, default=""),   # "" = go on
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    ForeignKeyConstraint(["issue_id", "list"], ["issues.id", "issues.list"], ondelete="CASCADE"),
)

# A chunk: a fixed range of an issue's ledger row ids, sent by one job. Ranges never overlap, so
# a chunk's rows left "sending" belong to the one run of that chunk that died.
queue_chunks = Table(
    "queue_chunks", queue_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("issue_id", String(200), nullable=False),
    Column("list", String(200), nullable=False),
    Column("seq", Integer, nullable=False),                   # 1, 2, … within the send
    Column("first_row", Integer, nullable=False),             # deliveries.id, inclusive
    Column("last_row", Integer, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("state", String(20), nullable=False),              # models.ChunkState
    Column("job_id", BigInteger),                             # the Procrastinate job that runs it
    Column("worker_id", BigInteger),                          # the Procrastinate worker running it (or last)
    Column("worker", String(200), nullable=False, default=""),   # host:pid of that worker
    Column("runs", Integer, nullable=False, default=0),
    Column("detail", Text, nullable=False, default=""),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("issue_id", "list", "seq", name="uq_queue_chunks_issue_seq"),
    ForeignKeyConstraint(["issue_id", "list"], ["queue_sends.issue_id", "queue_sends.list"], ondelete="CASCADE"),
)

# What `newsletter workers` shows beside Procrastinate's heartbeat row of the same id.
queue_workers = Table(
    "queue_workers", queue_metadata,
    Column("worker_id", BigInteger, primary_key=True, autoincrement=False),
    Column("host", String(200), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("queues", String(500), nullable=False),
    Column("concurrency", Integer, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
)

# One row per backend: when (UNIX seconds, database clock) its next message may leave.
queue_rates = Table(
    "queue_rates", queue_metadata,
    Column("name", String(200), primary_key=True),
    Column("next_at", Float, nullable=False),
)

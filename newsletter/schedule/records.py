"""The scheduler's own records: what was scheduled (beside APScheduler's jobs) and each automatic digest."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine

from ..db import write_transaction
from ..models import DigestState, JobState

sched_metadata = MetaData()

# One row per job we asked APScheduler to run. APScheduler deletes a one-off job from its store
# as it hands it to a worker thread, before it has run: after a crash (even SIGKILL) these rows
# say which sends were due or in progress, so the next `newsletter run` schedules them again.
scheduled_jobs = Table(
    "scheduled_jobs", sched_metadata,
    Column("job_id", String(200), primary_key=True),
    Column("kind", String(10), nullable=False),            # send | auto
    Column("issue_id", String(200), nullable=False, default=""),
    Column("list", String(200), nullable=False, default=""),   # "" = delivery.default_list
    Column("cron", String(200), nullable=False, default=""),
    Column("timezone", String(64), nullable=False, default=""),
    Column("run_at", Float, nullable=False),               # send: when due; auto: when registered
    Column("state", String(20), nullable=False),
    Column("detail", Text, nullable=False, default=""),
    Column("updated_at", Float, nullable=False),
)

# send jobs: scheduled → running → done | failed; or missed, cancelled. auto jobs: active | cancelled.
OPEN_JOB_STATES = (JobState.SCHEDULED, JobState.RUNNING)

# One row per firing of the automatic digest, keyed by the issue id that derives from its time.
auto_digests = Table(
    "auto_digests", sched_metadata,
    Column("issue_id", String(200), primary_key=True),
    Column("fired_at", Float, nullable=False, unique=True),   # the cron time it belongs to (UNIX)
    Column("state", String(20), nullable=False),
    Column("items", Integer, nullable=False, default=0),
    Column("detail", Text, nullable=False, default=""),
    Column("updated_at", Float, nullable=False),
)

# The new feed entries an automatic issue could not take (beyond schedule.max_items): the next
# issue starts with them, so nothing published between two firings is dropped.
digest_carry = Table(
    "auto_digest_carry", sched_metadata,
    Column("issue_id", String(200), primary_key=True),     # the issue that could not take them
    Column("position", Integer, primary_key=True),
    Column("url", Text, nullable=False),
    Column("published", Float, nullable=False),            # UNIX time
    Column("feed_order", Integer, nullable=False),         # the feed's place in [sources] feeds
    Column("section", Text, nullable=False, default=""),
    Column("feed", Text, nullable=False, default=""),
    Column("guid", Text, nullable=False, default=""),      # set for entries without a usable date
)

# building → draft (review) | sending → sent; or skipped (too few new items), failed (could not
# build), cancelled (a draft whose deadline send was unscheduled).
UNFINISHED_DIGEST = (DigestState.BUILDING, DigestState.SENDING)
COUNTS_AS_ISSUE = (DigestState.DRAFT, DigestState.SENDING, DigestState.SENT)      # "since the previous automatic issue" means these


@dataclass(frozen=True)
class JobRecord:
    """Our record of one scheduled job."""

    job_id: str
    kind: str
    issue_id: str
    list: str
    cron: str
    timezone: str
    run_at: float
    state: str
    detail: str


@dataclass(frozen=True)
class DigestRecord:
    """Our record of one automatic digest firing."""

    issue_id: str
    fired_at: float
    state: str
    items: int
    detail: str


def save_job(engine: Engine, record: JobRecord) -> None:
    """Insert or replace the record of a job (rescheduling an id starts it afresh)."""
    t = scheduled_jobs
    values = {k: getattr(record, k) for k in ("kind", "issue_id", "list", "cron", "timezone",
                                              "run_at", "state", "detail")}
    with write_transaction(engine) as conn:
        done = conn.execute(update(t).where(t.c.job_id == record.job_id)
                            .values(**values, updated_at=time.time()))
        if done.rowcount == 0:
            conn.execute(insert(t).values(job_id=record.job_id, **values, updated_at=time.time()))


def get_job(engine: Engine, job_id: str) -> JobRecord | None:
    """Return our record of job_id, or None."""
    t = scheduled_jobs
    with engine.connect() as conn:
        row = conn.execute(select(t).where(t.c.job_id == job_id)).first()
    return None if row is None else JobRecord(*(getattr(row, f) for f in JobRecord.__dataclass_fields__))


def jobs_in(engine: Engine, states: tuple[str, ...]) -> list[JobRecord]:
    """Return our job records in one of states, oldest due first."""
    t = scheduled_jobs
    with engine.connect() as conn:
        rows = conn.execute(select(t).where(t.c.state.in_(states)).order_by(t.c.run_at)).all()
    return [JobRecord(*(getattr(r, f) for f in JobRecord.__dataclass_fields__)) for r in rows]


def set_job_state(engine: Engine, job_id: str, state: str, detail: str = "",
                  only_from: tuple[str, ...] | None = None) -> bool:
    """Set a job record's state (only when it is in only_from, if given); return whether it changed."""
    t = scheduled_jobs
    query = update(t).where(t.c.job_id == job_id)
    if only_from is not None:
        query = query.where(t.c.state.in_(only_from))
    with write_transaction(engine) as conn:
        return conn.execute(query.values(state=state, detail=detail[:2000],
                                         updated_at=time.time())).rowcount == 1


def get_digest(engine: Engine, issue_id: str) -> DigestRecord | None:
    """Return the record of the automatic issue issue_id, or None."""
    t = auto_digests
    with engine.connect() as conn:
        row = conn.execute(select(t).where(t.c.issue_id == issue_id)).first()
    return None if row is None else DigestRecord(row.issue_id, row.fired_at, row.state, row.items, row.detail)


def claim_digest(engine: Engine, issue_id: str, fired_at: float) -> DigestRecord:
    """Return the record of this firing, creating it as "building" the first time."""
    t = auto_digests
    with write_transaction(engine) as conn:
        row = conn.execute(select(t).where(t.c.issue_id == issue_id)).first()
        if row is None:
            conn.execute(insert(t).values(issue_id=issue_id, fired_at=fired_at, state="building",
                                          items=0, detail="", updated_at=time.time()))
            return DigestRecord(issue_id, fired_at, "building", 0, "")
    return DigestRecord(row.issue_id, row.fired_at, row.state, row.items, row.detail)


def set_digest(engine: Engine, issue_id: str, state: str, *, items: int | None = None,
               detail: str = "", only_from: tuple[str, ...] | None = None) -> bool:
    """Set an automatic issue's state (and item count); return whether a row changed."""
    t = auto_digests
    values: dict = {"state": state, "detail": detail[:2000], "updated_at": time.time()}
    if items is not None:
        values["items"] = items
    query = update(t).where(t.c.issue_id == issue_id)
    if only_from is not None:
        query = query.where(t.c.state.in_(only_from))
    with write_transaction(engine) as conn:
        return conn.execute(query.values(**values)).rowcount == 1


def previous_issue_time(engine: Engine, before: float) -> float | None:
    """Return when the latest automatic issue before this firing fired (skipped ones don't count)."""
    t = auto_digests
    with engine.connect() as conn:
        return conn.execute(select(t.c.fired_at).where(t.c.fired_at < before,
                                                       t.c.state.in_(COUNTS_AS_ISSUE))
                            .order_by(t.c.fired_at.desc()).limit(1)).scalar()


def first_firing(engine: Engine) -> float | None:
    """Return when the earliest recorded automatic digest fired (any state), or None."""
    t = auto_digests
    with engine.connect() as conn:
        return conn.execute(select(t.c.fired_at).order_by(t.c.fired_at).limit(1)).scalar()


def digests_in(engine: Engine, states: tuple[str, ...]) -> list[DigestRecord]:
    """Return the automatic issues in one of states, oldest first."""
    t = auto_digests
    with engine.connect() as conn:
        rows = conn.execute(select(t).where(t.c.state.in_(states)).order_by(t.c.fired_at)).all()
    return [DigestRecord(r.issue_id, r.fired_at, r.state, r.items, r.detail) for r in rows]


@dataclass(frozen=True)
class CarriedEntry:
    """A feed entry an automatic issue could not take, waiting for the next one."""

    url: str
    published: float
    feed_order: int
    section: str
    feed: str
    guid: str


def save_carry(engine: Engine, issue_id: str, entries: list[CarriedEntry]) -> None:
    """Replace what issue_id carries over to the next automatic issue with entries (in order)."""
    t = digest_carry
    with write_transaction(engine) as conn:
        conn.execute(delete(t).where(t.c.issue_id == issue_id))
        if entries:
            conn.execute(insert(t), [{"issue_id": issue_id, "position": i, "url": e.url,
                                      "published": e.published, "feed_order": e.feed_order,
                                      "section": e.section, "feed": e.feed, "guid": e.guid}
                                     for i, e in enumerate(entries)])


def load_carry(engine: Engine, issue_id: str) -> list[CarriedEntry]:
    """Return what issue_id carried over to the next automatic issue, in order."""
    t = digest_carry
    with engine.connect() as conn:
        rows = conn.execute(select(t).where(t.c.issue_id == issue_id).order_by(t.c.position)).all()
    return [CarriedEntry(r.url, r.published, r.feed_order, r.section, r.feed, r.guid) for r in rows]


def previous_issue(engine: Engine, before: float) -> DigestRecord | None:
    """Return the latest automatic issue that fired before this firing (skipped ones don't count)."""
    t = auto_digests
    with engine.connect() as conn:
        row = conn.execute(select(t).where(t.c.fired_at < before, t.c.state.in_(COUNTS_AS_ISSUE))
                           .order_by(t.c.fired_at.desc()).limit(1)).first()
    return None if row is None else DigestRecord(row.issue_id, row.fired_at, row.state, row.items, row.detail)


def finish_queued_send(conn: Connection, issue_id: str, list_name: str, *, default_list: str,
                       digest_list: str) -> None:
    """Record, on conn (the transaction that marks the send sent), that the workers finished
    sending issue_id to list_name: its send jobs queued or running become done, and an automatic
    issue sent to its list (digest_list, "" = default_list) becomes sent."""
    lists = (list_name, "") if list_name == default_list else (list_name,)
    now = time.time()
    t = scheduled_jobs
    conn.execute(update(t).where(t.c.kind == "send", t.c.issue_id == issue_id, t.c.list.in_(lists),
                                 t.c.state.in_((JobState.RUNNING, JobState.QUEUED)))
                 .values(state=JobState.DONE, detail="sent by the queue's workers", updated_at=now))
    if list_name == (digest_list or default_list):
        d = auto_digests
        conn.execute(update(d).where(d.c.issue_id == issue_id,
                                     d.c.state.in_((DigestState.SENDING, DigestState.DRAFT)))
                     .values(state=DigestState.SENT, detail="sent by the queue's workers", updated_at=now))

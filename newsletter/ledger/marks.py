"""The send journal kept in the ledger rows themselves, for queue chunks: any host can read it.

A file journal (delivery/journal.py) lives on the host that wrote it: a chunk retried on another
host after its worker died could not read it, and every row the dead run had claimed would turn
"unknown". Chunk runs therefore note each event in the row it concerns, in the column that
already names the run while a row is "sending" (provider_id), in the database every worker shares:

    <run id>                  claimed, never handed over (→ pending after a crash)
    <run id> W                about to be handed over: it may arrive (→ unknown)
    <run id> S <message-id>   delivered (→ sent)
    <run id> N                done without being delivered (→ pending)

Run ids of such runs start with RUN_PREFIX, so a row claimed by a run without marks (a file
journal, an older release) is never mistaken for "claimed, never handed over". A W mark is
committed before the message leaves (durably: a lost W could resend a delivered message); S and N
marks are committed asynchronously on PostgreSQL (a lost one only leaves the row unknown). Once the
send loop records a row, its provider_id is the provider's id again: marks only touch rows still
"sending", so a late mark never overwrites a recorded result.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence

from sqlalchemy import and_, bindparam, select, text, update
from sqlalchemy.engine import Connection, Engine

from ..db import deliveries, write_transaction
from ..models import DeliveryState

_D = deliveries
RUN_PREFIX = "j:"
_MAX = _D.c.provider_id.type.length or 400
Settled = dict[int, tuple[str, str]]     # subscriber id -> (last event "W" | "S" | "N", message id)


def new_run_id() -> str:
    """Return a fresh run id whose rows carry their journal marks."""
    return RUN_PREFIX + secrets.token_hex(8)


def _mark(conn: Connection, issue_id: str, run_id: str, marks: Sequence[tuple[int, str]]) -> None:
    """Set provider_id to each (subscriber id, mark) of issue_id's rows claimed by run_id and still "sending"."""
    conn.execute(update(_D).where(and_(_D.c.issue_id == issue_id, _D.c.subscriber_id == bindparam("b_sid"),
                                       _D.c.status == DeliveryState.SENDING,
                                       _D.c.provider_id.startswith(run_id, autoescape=True)))
                 .values(provider_id=bindparam("b_mark")),
                 [{"b_sid": sid, "b_mark": mark} for sid, mark in marks])


def mark_handed(engine: Engine, issue_id: str, run_id: str, subscriber_ids: Iterable[int]) -> None:
    """Note (committed, durably) that the messages of subscriber_ids are about to be handed over."""
    marks = [(sid, f"{run_id} W") for sid in subscriber_ids]
    if marks:
        with write_transaction(engine) as conn:
            _mark(conn, issue_id, run_id, marks)


def mark_settled(engine: Engine, issue_id: str, run_id: str, events: Iterable[tuple[int, str, str]]) -> None:
    """Note each (subscriber id, "S" | "N", message id) that ended; committed without waiting for
    the disk on PostgreSQL (a mark lost in a server crash leaves its row unknown: safe)."""
    marks = []
    for sid, kind, message_id in events:
        mark = f"{run_id} S {message_id}" if kind == "S" else f"{run_id} N"
        marks.append((sid, mark if len(mark) <= _MAX else f"{run_id} W"))
    if marks:
        with write_transaction(engine) as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SET LOCAL synchronous_commit TO OFF"))
            _mark(conn, issue_id, run_id, marks)


def read_marks(engine: Engine, issue_id: str, list_name: str, rows: tuple[int, int]) -> tuple[str, Settled] | None:
    """Return (run id, the last event of each subscriber) for the rows of the inclusive id range
    rows left "sending" by a run with marks, or None when no such row is there.

    A row claimed but never marked maps to nothing (Ledger.recover makes it pending); rows of any
    other run do not match the returned run id (recover makes them unknown).
    """
    with engine.connect() as conn:
        found = conn.execute(select(_D.c.subscriber_id, _D.c.provider_id).where(
            _D.c.issue_id == issue_id, _D.c.list == list_name, _D.c.id.between(*rows),
            _D.c.status == DeliveryState.SENDING, _D.c.provider_id.startswith(RUN_PREFIX))).all()
    if not found:
        return None
    run_id = run_of(found[0][1])
    settled: Settled = {}
    for sid, provider_id in found:
        parts = provider_id.split(" ", 2)
        if parts[0] == run_id and len(parts) > 1 and parts[1] in ("W", "S", "N"):
            settled[sid] = (parts[1], parts[2] if len(parts) > 2 else "")
    return run_id, settled


def run_of(provider_id: str) -> str:
    """Return the run id a "sending" row's provider_id names (without its journal mark)."""
    return provider_id.split(" ", 1)[0]

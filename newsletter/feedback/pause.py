"""Complaint pauses: a list whose issue drew too many complaints gets no scheduled send until resumed.

Gmail asks bulk senders to keep the spam rate under 0.1 % and never reach 0.3 % (its 2024 sender
guidelines); bounces.complaint_pause_ratio is that line. The scheduler's send jobs call
check_scheduled_send() before sending; a person's own `newsletter send` is not held back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, Engine

from ..db import as_utc, get_engine, list_pauses, utcnow, write_transaction
from ..errors import SendPaused

if TYPE_CHECKING:
    from ..config import Config

_L = list_pauses


@dataclass(frozen=True)
class Pause:
    """One open or lifted pause of a list, caused by one issue's complaints."""

    list: str
    issue_id: str
    reason: str
    paused_at: datetime


def pause(conn: Connection, list_name: str, issue_id: str, reason: str, now: datetime) -> bool:
    """Pause list_name for issue_id's complaints inside conn's transaction; return False when this
    issue paused it before (still paused, or resumed by a person: not paused again)."""
    exists = conn.execute(select(_L.c.list).where(_L.c.list == list_name, _L.c.issue_id == issue_id)).first()
    if exists:
        return False
    conn.execute(insert(_L).values(list=list_name, issue_id=issue_id, reason=reason, paused_at=now,
                                   resumed_at=None))
    return True


def open_pauses(engine: Engine, list_name: str | None = None) -> list[Pause]:
    """Return the pauses not yet resumed (of one list, or all), oldest first."""
    query = select(_L).where(_L.c.resumed_at.is_(None)).order_by(_L.c.paused_at)
    if list_name is not None:
        query = query.where(_L.c.list == list_name)
    with engine.connect() as conn:
        return [Pause(r.list, r.issue_id, r.reason, as_utc(r.paused_at)) for r in conn.execute(query)]


def check_scheduled_send(config: "Config", list_name: str | None) -> None:
    """Return when scheduled sends to list_name (default: delivery.default_list) may go ahead.

    Raises SendPaused naming the issue, its complaint share and the command that resumes the list.
    """
    name = list_name or config.delivery.default_list
    paused = open_pauses(get_engine(config), name)
    if paused:
        first = paused[0]
        raise SendPaused(first.reason, list_name=name, issue_id=first.issue_id)


def resume(engine: Engine, list_name: str) -> list[Pause]:
    """Lift every open pause of list_name; return the pauses lifted (none when it was not paused)."""
    now = utcnow()
    with write_transaction(engine) as conn:
        rows = conn.execute(select(_L).where(_L.c.list == list_name, _L.c.resumed_at.is_(None))).all()
        if rows:
            conn.execute(update(_L).where(_L.c.list == list_name, _L.c.resumed_at.is_(None))
                         .values(resumed_at=now))
    return [Pause(r.list, r.issue_id, r.reason, as_utc(r.paused_at)) for r in rows]

"""Settling the rows a run that died left "sending": from its journal, sent, pending or unknown."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import (
    bindparam,
    select,
    update,
)
from sqlalchemy.engine import Engine

from ..db import deliveries, utcnow, write_transaction
from ..models import DeliveryState, ReplyClass

from .marks import run_of
from .rows import RECORD_SLICE, Recovered, format_reply

log = logging.getLogger("newsletter.ledger")
_D = deliveries


class Recovery:
    """The recovery half of the Ledger (a mixin: it needs self.engine)."""

    engine: Engine

    def recover(self, issue_id: str, settled: Mapping[int, tuple[str, str]] | None = None,
                run_id: str = "", *, list_name: str | None = None,
                rows: tuple[int, int] | None = None) -> Recovered:
        """Settle the rows a run that died left "sending"; return how many became what.

        settled maps subscriber ids to the last event the journal of run run_id noted for them
        (delivery/journal.py): "S" (with the Message-ID) → sent, "W" (handed over, no result) →
        unknown, "N" or absent (never handed over, or refused) → pending. It speaks only for the
        rows that run claimed; every other "sending" row (no journal, another run's, another
        host's) may have been delivered, so it becomes unknown. list_name and rows (an inclusive
        range of row ids: a queue chunk, whose one runner calls this with its lock held) narrow
        it to those rows: other chunks' rows may be on the wire right now.
        """
        unknown: list[int] = []
        sent: list[dict[str, Any]] = []
        pending: list[int] = []
        with write_transaction(self.engine) as conn:
            query = select(_D.c.id, _D.c.subscriber_id, _D.c.provider_id).where(
                _D.c.issue_id == issue_id, _D.c.status == DeliveryState.SENDING)
            if list_name is not None:
                query = query.where(_D.c.list == list_name)
            if rows is not None:
                query = query.where(_D.c.id.between(*rows))
            for row_id, sid, claimed_by in conn.execute(query).all():
                known = settled is not None and run_id and run_of(claimed_by) == run_id
                kind, message_id = settled.get(sid, ("N", "")) if known else ("W", "")
                if kind == "S":
                    sent.append({"b_id": row_id, "b_mid": message_id})
                elif kind == "W":
                    unknown.append(row_id)
                else:
                    pending.append(row_id)
            now = utcnow()
            for i in range(0, len(unknown), RECORD_SLICE):
                conn.execute(update(_D).where(_D.c.id.in_(unknown[i:i + RECORD_SLICE])).values(
                    status=DeliveryState.UNKNOWN, updated_at=now, provider_id="",
                    reply="in flight when an earlier run stopped: may or may not have arrived"))
            for i in range(0, len(pending), RECORD_SLICE):
                # Claimed but never handed over: as if never claimed (the claim's attempt undone).
                conn.execute(update(_D).where(_D.c.id.in_(pending[i:i + RECORD_SLICE])).values(
                    status=DeliveryState.PENDING, updated_at=now, provider_id="",
                    attempts=_D.c.attempts - 1))
            if sent:
                conn.execute(update(_D).where(_D.c.id == bindparam("b_id")).values(
                    status=DeliveryState.SENT, message_id=bindparam("b_mid"), updated_at=now, provider_id="",
                    reply=format_reply(ReplyClass.DELIVERED, "delivered before an earlier run stopped "
                                       "(from its journal)")), sent)
        if unknown:
            log.warning("issue %s: %d messages were in flight when an earlier run stopped (now unknown)",
                        issue_id, len(unknown))
        if sent or pending:
            log.info("issue %s: of the rows an earlier run left in flight, %d were delivered and %d "
                     "never handed over (sent again)", issue_id, len(sent), len(pending))
        return Recovered(len(unknown), len(sent), len(pending))

    def recover_range(self, issue_id: str, list_name: str, rows: tuple[int, int],
                      settled: Mapping[int, tuple[str, str]] | None = None, run_id: str = "") -> Recovered:
        """recover() for one queue chunk: the rows of (issue_id, list_name) with ids in the inclusive
        range rows. Only the chunk's one runner may call it (its lock held)."""
        return self.recover(issue_id, settled, run_id, list_name=list_name, rows=rows)

"""Subscriber lists in the database: add, look up, change consent state, import/export CSV, stream."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any, TextIO

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Engine, Row
from sqlalchemy.exc import IntegrityError

from ..db import STATUSES, SUPPRESSED, subscribers, utcnow, write_transaction
from ..errors import SubscriberError
from ..inputs import check_lengths, check_list_name, clean_fields, clean_name
from ..models import Subscriber, SuppressionSource
from . import suppression
from .addresses import address_key, check_status, normalise_address
from .csvfile import ImportReport, export_file, import_file
from .erasure import erase, erased_keys, refuse_erased

log = logging.getLogger(__name__)

_T = subscribers


def _subscriber(row: Row) -> Subscriber:
    """Return the Subscriber for a database row."""
    return Subscriber(email=row.email, name=row.name, list=row.list, status=row.status,
                      fields=dict(row.fields or {}), id=row.id)


def _clean_fields(fields: dict[str, Any] | None) -> dict[str, str]:
    """Return fields with checked names and values, empty values dropped; raises InputError (inputs.py)."""
    return clean_fields(fields)


class SubscriberStore:
    """Subscribers of every list in one database; each method is its own short transaction."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def get(self, email: str, list_name: str = "default") -> Subscriber | None:
        """Return the subscriber with this address in list_name, or None; raises SubscriberError."""
        key = address_key(normalise_address(email))
        check_list_name(list_name)
        with self.engine.connect() as conn:
            row = conn.execute(select(_T).where(_T.c.list == list_name, _T.c.email_key == key)).first()
        return _subscriber(row) if row else None

    def add(self, email: str, name: str = "", list_name: str = "default", status: str = "active",
            fields: dict[str, Any] | None = None) -> Subscriber:
        """Add a subscriber, or merge name/fields into the existing one (its status is kept); returns it.

        Raises SubscriberError for an invalid address or status. An existing address keeps its
        state, so adding an unsubscribed address never re-subscribes it: use set_status for that.
        """
        address = normalise_address(email)
        check_status(status)
        check_list_name(list_name)
        record = {"key": address_key(address), "email": address, "name": clean_name(name),
                  "status": None, "fields": _clean_fields(fields), "line": 0}
        for attempt in range(3):
            try:
                with write_transaction(self.engine) as conn:
                    existing = conn.execute(select(_T).where(
                        _T.c.list == list_name, _T.c.email_key == record["key"])).first()
                    if existing is None:
                        refuse_erased(conn, list_name, record["key"], address)
                        self._insert(conn, list_name, [dict(record, status=status)])
                        self._record_suppressed(conn, list_name, [dict(record, status=status)], {},
                                                SuppressionSource.MANUAL)
                    else:
                        self._merge(conn, existing, record)
                break
            except IntegrityError as err:
                # Another process inserted the same address between our check and insert: merge.
                if attempt == 2:
                    raise SubscriberError(f"{address}: could not be added to {list_name!r}: {err.orig}") from err
        found = self.get(address, list_name)
        assert found is not None  # just written in this method
        return found

    def set_status(self, email: str, list_name: str, status: str, *,
                   source: str = SuppressionSource.MANUAL, reason: str = "") -> bool:
        """Set the state of a subscriber; return False when the address is not in the list.

        A change into a suppression (unsubscribed, bounced, complained) is recorded on the
        suppression list with source (models.SuppressionSource) and reason; a change out of one
        lifts that record (reason then says why). Raises SubscriberError for a bad address or status.
        """
        check_status(status)
        check_list_name(list_name)
        key = address_key(normalise_address(email))
        now = utcnow()
        values: dict[str, Any] = {"status": status, "updated_at": now}
        if status == "active":
            values["confirmed_at"] = func.coalesce(_T.c.confirmed_at, now)
        with write_transaction(self.engine) as conn:
            row = conn.execute(select(_T.c.id, _T.c.status).where(
                _T.c.list == list_name, _T.c.email_key == key)).first()
            if row is None:
                return False
            conn.execute(update(_T).where(_T.c.id == row.id).values(**values))
            if status != row.status and status in SUPPRESSED:
                suppression.suppress(conn, [row.id], status, source, reason, now=now)
            elif status != row.status and row.status in SUPPRESSED:
                suppression.lift(conn, [row.id], reason or f"set {status}", now)
        return True

    def remove(self, email: str, list_name: str) -> bool:
        """Delete a subscriber (ledger rows keep the address); return False when it was not there."""
        key = address_key(normalise_address(email))
        check_list_name(list_name)
        with write_transaction(self.engine) as conn:
            result = conn.execute(delete(_T).where(_T.c.list == list_name, _T.c.email_key == key))
        return result.rowcount > 0

    def erase(self, email: str, list_name: str) -> bool:
        """Delete the address and its personal data, keeping a hashed suppression (erasure.py);
        return False when it was not on the list."""
        return erase(self.engine, email, list_name)

    def count(self, list_name: str, status: str | None = None) -> int:
        """Return how many subscribers list_name has (in one state when status is given)."""
        query = select(func.count()).select_from(_T).where(_T.c.list == check_list_name(list_name))
        if status is not None:
            query = query.where(_T.c.status == check_status(status))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def counts(self, list_name: str) -> dict[str, int]:
        """Return {state: count} for list_name, every state present (zero when none)."""
        out = dict.fromkeys(STATUSES, 0)
        query = select(_T.c.status, func.count()).where(_T.c.list == check_list_name(list_name)).group_by(_T.c.status)
        with self.engine.connect() as conn:
            for status, n in conn.execute(query):
                out[status] = int(n)
        return out

    def lists(self) -> list[str]:
        """Return the names of the lists that have at least one subscriber, sorted."""
        with self.engine.connect() as conn:
            return sorted(conn.execute(select(_T.c.list).distinct()).scalars())

    def require_list(self, list_name: str) -> None:
        """Return when list_name has subscribers; raises SubscriberError naming the known lists."""
        check_list_name(list_name)
        with self.engine.connect() as conn:
            if conn.execute(select(_T.c.id).where(_T.c.list == list_name).limit(1)).first():
                return
        known = ", ".join(self.lists()) or "none yet: import a CSV with `newsletter subscribers import`"
        raise SubscriberError(f"unknown list {list_name!r} (known lists: {known})")

    def iter_subscribers(self, list_name: str, status: str | None = None,
                         chunk: int = 1000) -> Iterator[Subscriber]:
        """Yield the subscribers of list_name in id order, reading chunk rows per query."""
        check_list_name(list_name)
        last = 0
        while True:
            query = select(_T).where(_T.c.list == list_name, _T.c.id > last).order_by(_T.c.id).limit(chunk)
            if status is not None:
                query = query.where(_T.c.status == status)
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
            for row in rows:
                yield _subscriber(row)
            if len(rows) < chunk:
                return
            last = rows[-1].id

    def iter_active(self, list_name: str, chunk: int = 1000) -> Iterator[Subscriber]:
        """Yield the active subscribers of list_name, chunk rows per query (never the whole list)."""
        return self.iter_subscribers(list_name, "active", chunk)

    def import_csv(self, path: str | os.PathLike[str], list_name: str) -> ImportReport:
        """Import a CSV file into list_name; returns ImportReport; raises SubscriberError for an unusable file."""

        return import_file(self, path, list_name)

    def export_csv(self, out: str | os.PathLike[str] | TextIO, list_name: str,
                   status: str | None = None) -> int:
        """Write list_name as CSV (email, name, status, custom fields) to a path or text file; returns rows."""

        return export_file(self, out, list_name, status)

    # -- used by the CSV importer: merge a batch of parsed rows in one transaction ---------------

    def merge_batch(self, list_name: str, records: list[dict[str, Any]], report: ImportReport) -> None:
        """Insert new addresses and merge existing ones from records (key, email, name, status, fields)."""
        for attempt in range(3):
            counts = ImportReport()
            try:
                with write_transaction(self.engine) as conn:
                    if conn.dialect.name == "postgresql":
                        # psycopg prepares a statement after a few runs and PostgreSQL may then keep
                        # one generic plan, made while the list was empty (a sequential scan); the
                        # table grows under it and each batch scans it all (1M rows: hours). Plan
                        # each batch's look-up for the table as it is.
                        conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
                    keys = [r["key"] for r in records]
                    existing = {row.email_key: row for row in conn.execute(
                        select(_T).where(_T.c.list == list_name, _T.c.email_key.in_(keys)))}
                    gone = erased_keys(conn, list_name, [k for k in keys if k not in existing])
                    new = [dict(r, status=r["status"] or "active") for r in records
                           if r["key"] not in existing and r["key"] not in gone]
                    self._insert(conn, list_name, new)
                    counts.added = len(new)
                    counts.kept_suppressed = len(gone)     # erased on request: never brought back
                    for r in records:
                        row = existing.get(r["key"])
                        if row is None:
                            continue
                        outcome = self._merge(conn, row, r)
                        setattr(counts, outcome, getattr(counts, outcome) + 1)
                    self._record_suppressed(conn, list_name, new, existing, SuppressionSource.IMPORT)
                break
            except IntegrityError as err:
                # A concurrent sign-up inserted one of these addresses: the retry sees it as existing.
                if attempt == 2:
                    raise SubscriberError(f"import into {list_name!r} kept conflicting: {err.orig}") from err
        report.added += counts.added
        report.updated += counts.updated
        report.unchanged += counts.unchanged
        report.kept_suppressed += counts.kept_suppressed

    @staticmethod
    def _record_suppressed(conn, list_name: str, new: list[dict[str, Any]],  # noqa: ANN001
                           existing: dict[str, Row], source: str) -> None:
        """Put the rows just added in, or moved into, a suppression on the suppression list."""
        moved = [row.id for row in existing.values() if row.status not in SUPPRESSED]
        keys = [r["key"] for r in new if r["status"] in SUPPRESSED]
        if not keys and not moved:
            return
        query = select(_T.c.id, _T.c.status).where(_T.c.list == list_name, _T.c.status.in_(SUPPRESSED))
        rows = []
        if keys:
            rows += conn.execute(query.where(_T.c.email_key.in_(keys))).all()
        if moved:
            rows += conn.execute(query.where(_T.c.id.in_(moved))).all()
        for status in SUPPRESSED:
            ids = [r.id for r in rows if r.status == status]
            suppression.suppress(conn, ids, status, source, f"added as {status}")

    @staticmethod
    def _insert(conn, list_name: str, records: list[dict[str, Any]]) -> None:  # noqa: ANN001
        """Insert new subscriber rows (one executemany)."""
        if not records:
            return
        now = utcnow()
        rows = [{"list": list_name, "email": r["email"], "email_key": r["key"], "name": r["name"],
                 "fields": r["fields"], "status": r["status"], "created_at": now, "updated_at": now,
                 "confirmed_at": now if r["status"] == "active" else None}
                for r in records]
        for row in rows:
            check_lengths(_T, row)      # the database's limits, before the database refuses the batch
        conn.execute(insert(_T), rows)

    @staticmethod
    def _merge(conn, row: Row, record: dict[str, Any]) -> str:  # noqa: ANN001
        """Merge record into an existing row; return "updated", "unchanged" or "kept_suppressed"."""
        if row.status in SUPPRESSED:
            return "kept_suppressed"       # consent withdrawn or address dead: touch nothing
        values: dict[str, Any] = {}
        if record["name"] and record["name"] != row.name:
            values["name"] = record["name"]
        merged = dict(row.fields or {})
        merged.update(record["fields"])
        if merged != (row.fields or {}):
            values["fields"] = merged
        status = record.get("status")
        if status and status != row.status:
            values["status"] = status
            if status == "active":
                values["confirmed_at"] = row.confirmed_at or utcnow()
        if not values:
            return "unchanged"
        check_lengths(_T, values)
        values["updated_at"] = utcnow()
        conn.execute(update(_T).where(_T.c.id == row.id).values(**values))
        return "updated"

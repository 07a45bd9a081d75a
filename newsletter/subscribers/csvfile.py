"""CSV import and export of subscriber lists: returns ImportReport / row counts, raises SubscriberError."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from sqlalchemy import exc

from ..db import STATUSES
from ..errors import InputError, SubscriberError
from ..files import open_private
from ..inputs import check_field_name, check_list_name, clean_field_value, clean_name
from .addresses import address_key, normalise_address
from .csvformat import EMAIL_HEADERS, CSVFormat, detect_format
from .seen import SeenKeys

if TYPE_CHECKING:
    from .store import SubscriberStore

BATCH = 1000
# OWASP "CSV Injection": a cell starting with one of these is a formula to a spreadsheet. Export
# puts a ' in front (shown as text, never run); import takes exactly that ' off again.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class ImportReport:
    """What an import did: counts per outcome and the rejected rows as (line number, message)."""

    added: int = 0
    updated: int = 0          # existing subscriber whose name, fields or status changed
    unchanged: int = 0        # existing subscriber, nothing new in the file
    kept_suppressed: int = 0  # unsubscribed/bounced/complained: left exactly as they were
    duplicates: int = 0       # rows repeating an address seen earlier in the same file (merged)
    errors: list[tuple[int, str]] = field(default_factory=list)
    format: CSVFormat | None = None     # the encoding and delimiter the file was read with


def _header(cells: list[str], where: str) -> tuple[int, int | None, int | None, list[str]]:
    """Return (email column, name column, status column, column names); raises SubscriberError."""
    names = [c.strip() for c in cells]
    lowered = [n.lower() for n in names]
    seen: set[str] = set()
    for n in lowered:
        if n and n in seen:
            raise SubscriberError(f"{where}: line 1: column {n!r} appears twice in the header")
        seen.add(n)
    emails = [i for i, n in enumerate(lowered) if n in EMAIL_HEADERS]
    if len(emails) != 1:
        raise SubscriberError(f"{where}: line 1: the header needs exactly one 'email' column "
                              f"(found: {', '.join(n or '(blank)' for n in names) or 'nothing'})")
    name = lowered.index("name") if "name" in lowered else None
    status = lowered.index("status") if "status" in lowered else None
    # A blank header cell still keeps its values (nothing is lost): they get a positional name.
    names = [unescape_cell(n) or f"column_{i + 1}" for i, n in enumerate(names)]
    for i, column in enumerate(names):
        if i not in (emails[0], name, status):
            try:
                check_field_name(column)
            except InputError as err:
                raise SubscriberError(f"{where}: line 1: column {i + 1}: {err}") from err
    return emails[0], name, status, names


def read_rows(path: Path, fmt: CSVFormat | None = None) -> Iterator[tuple[int, dict[str, Any] | None, str]]:
    """Yield (line number, record, "") for good rows and (line number, None, message) for bad ones.

    fmt is the file's encoding and delimiter (detected when not given: csvformat.detect_format).
    """

    where = str(path)
    fmt = fmt or detect_format(path)
    try:
        # surrogateescape: a stray byte the encoding cannot read spoils its own row, not the file.
        handle = open(path, encoding=fmt.encoding, errors="surrogateescape", newline="")
    except OSError as err:
        raise SubscriberError(f"{where}: cannot read: {err.strerror or err}") from err
    with handle:
        if handle.read(1) not in ("\ufeff", ""):       # a BOM the codec keeps is no header text
            handle.seek(0)
        reader = csv.reader(handle, delimiter=fmt.delimiter, strict=True)
        try:
            header = next(reader)
        except (csv.Error, UnicodeDecodeError) as err:
            raise SubscriberError(f"{where}: line 1: unreadable header: {err}") from err
        email_col, name_col, status_col, names = _header(header, where)
        prev_end = reader.line_num
        while True:
            start = prev_end + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError as err:     # surrogateescape cannot cover a truncated UTF-16 end
                yield start, None, f"not valid {fmt.encoding_name} text: {err.reason}"
                return
            except csv.Error as err:
                prev_end = reader.line_num
                span = f" (the record runs to line {prev_end}: an unbalanced quote?)" if prev_end > start else ""
                yield start, None, f"malformed CSV: {err}{span}"
                continue
            prev_end = reader.line_num
            if not any(c.strip() for c in cells):
                continue                              # blank line
            if any("\udc80" <= ch <= "\udcff" for c in cells for ch in c):
                yield start, None, f"not valid {fmt.encoding_name} text (choose the file's encoding with --encoding)"
                continue
            if len(cells) > len(names):
                yield start, None, f"{len(cells)} values but the header has {len(names)} columns"
                continue
            cells = [unescape_cell(c) for c in cells] + [""] * (len(names) - len(cells))
            try:
                yield start, _record(cells, names, email_col, name_col, status_col, start), ""
            except SubscriberError as err:
                yield start, None, str(err)


def _record(cells: list[str], names: list[str], email_col: int, name_col: int | None,
            status_col: int | None, line: int) -> dict[str, Any]:
    """Return the import record of one row's cells; raises SubscriberError (InputError) naming the problem.

    The same rules as every other way in (inputs.py, addresses.py), so a row that imports is a
    row the database takes: nothing longer than its column, no control characters, no NUL.
    """
    email = normalise_address(cells[email_col])
    status = cells[status_col].strip().lower() if status_col is not None else ""
    if status and status not in STATUSES:
        raise SubscriberError(f"unknown status {status!r} (known: {', '.join(STATUSES)})")
    name = clean_name(cells[name_col]) if name_col is not None else ""
    skip = {email_col, name_col, status_col}
    fields = {}
    for i, value in enumerate(cells):
        if i not in skip:
            text = clean_field_value(names[i], value)
            if text:
                fields[names[i]] = text
    return {"key": address_key(email), "email": email, "status": status or None, "name": name,
            "fields": fields, "line": line}


def escape_cell(value: str) -> str:
    """Return value safe for a spreadsheet: a ' in front when it starts like a formula (OWASP)."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def unescape_cell(value: str) -> str:
    """Return value without the ' that escape_cell put in front of a formula-like cell."""
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_STARTS) else value


def _fold(into: dict[str, Any], later: dict[str, Any]) -> None:
    """Merge a later duplicate row into an earlier one: later non-empty values win."""
    if later["name"]:
        into["name"] = later["name"]
    into["fields"] = {**into["fields"], **later["fields"]}
    if later["status"]:
        into["status"] = later["status"]


def import_file(store: "SubscriberStore", path: str | os.PathLike[str], list_name: str,
                encoding: str | None = None) -> "ImportReport":
    """Import a CSV file into list_name in batched transactions; returns the ImportReport (with the
    encoding and delimiter it was read with: detected unless encoding names the codec)."""

    check_list_name(list_name)
    report = ImportReport(format=detect_format(Path(path), encoding))
    batch: dict[str, dict[str, Any]] = {}
    # Read and merged batch by batch: memory stays flat whatever the file's size (the addresses
    # seen so far are on disk, seen.py), and every bad line is still reported.
    with SeenKeys() as seen:
        for line, record, message in read_rows(Path(path), report.format):
            if record is None:
                report.errors.append((line, message))
                continue
            key = record["key"]
            if key in batch:
                report.duplicates += 1
                _fold(batch[key], record)
                continue
            batch[key] = record
            if len(batch) >= BATCH:
                _flush(store, list_name, batch, report, path, seen)
                batch = {}
        if batch:
            _flush(store, list_name, batch, report, path, seen)
    report.errors.sort()
    return report


def _flush(store: "SubscriberStore", list_name: str, batch: dict[str, dict[str, Any]], report: ImportReport,
           path: str | os.PathLike[str], seen: SeenKeys) -> None:
    """Count the batch's rows whose address an earlier batch had (duplicates: merged again, later
    values win as within a batch), then merge the batch."""
    report.duplicates += seen.add_new(batch)
    _merge(store, list_name, list(batch.values()), report, path)


def _merge(store: "SubscriberStore", list_name: str, records: list[dict[str, Any]], report: ImportReport,
           path: str | os.PathLike[str]) -> None:
    """Merge records in one transaction; when the database refuses the data, split the batch until
    the refused rows are alone and report each as a row error: the other rows are still stored.

    Raises SubscriberError (one line, no traceback) when the database itself fails (connection
    lost, disk full): every batch would fail the same way, so the import stops there.
    """
    try:
        store.merge_batch(list_name, records, report)
        return
    except (exc.DataError, exc.IntegrityError, SubscriberError) as err:
        # A value the checks let through but this database refuses: find the row(s) by halving.
        if len(records) == 1:
            reason = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
            report.errors.append((records[0]["line"], f"the database refused this row: {reason}"))
            return
    except exc.SQLAlchemyError as err:
        reason = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
        done = report.added + report.updated + report.unchanged + report.kept_suppressed
        raise SubscriberError(f"{path}: the database failed after {done} rows were stored, at line "
                              f"{records[0]['line']}: {reason}") from err
    half = len(records) // 2
    _merge(store, list_name, records[:half], report, path)
    _merge(store, list_name, records[half:], report, path)


def export_file(store: "SubscriberStore", out: str | os.PathLike[str] | TextIO, list_name: str,
                status: str | None = None) -> int:
    """Write list_name to out as CSV (email, name, status, then custom fields); returns the row count."""
    store.require_list(list_name)
    # First pass collects the custom columns so the header is complete; both passes stream.
    extra: dict[str, None] = {}
    for sub in store.iter_subscribers(list_name, status):
        extra.update(dict.fromkeys(sub.fields))
    columns = ["email", "name", "status", *[k for k in extra if k.lower() not in ("email", "name", "status")]]
    if isinstance(out, (str, os.PathLike)):
        try:
            # Addresses and names are personal data: the file is readable by its owner only.
            handle: TextIO = open_private(Path(out), "w", encoding="utf-8", newline="")
        except OSError as err:
            raise SubscriberError(f"{out}: cannot write: {err.strerror or err}") from err
        with handle:
            return _write(handle, store, list_name, status, columns)
    return _write(out, store, list_name, status, columns)


def _write(handle: TextIO | io.StringIO, store: "SubscriberStore", list_name: str,
           status: str | None, columns: list[str]) -> int:
    """Write the header and one row per subscriber to handle; returns the row count."""
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow([escape_cell(c) for c in columns])
    n = 0
    for sub in store.iter_subscribers(list_name, status):
        row = [sub.email, sub.name, sub.status, *[sub.fields.get(k, "") for k in columns[3:]]]
        writer.writerow([escape_cell(str(cell)) for cell in row])
        n += 1
    return n

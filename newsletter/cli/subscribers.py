"""`newsletter subscribers ...`: import, export, add, remove, list and count subscribers."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import click

from ..db import STATUSES, SUPPRESSED, get_engine
from ..errors import SubscriberError
from ..feedback import undo
from ..subscribers import suppression
from ..inputs import printable
from ..models import SuppressionSource
from ..subscribers.csvfile import import_file
from ..subscribers.store import SubscriberStore
from .common import AppContext, emit_json, json_option, pass_app, say, warn
from .group import cli

MAX_ERRORS_SHOWN = 50
_list_option = click.option("--list", "list_name", default=None,
                            help="The subscriber list (default: delivery.default_list).")


def _store(app: AppContext) -> SubscriberStore:
    """Return the SubscriberStore of the configured database."""
    return SubscriberStore(get_engine(app.config))


def _list(app: AppContext, list_name: str | None) -> str:
    """Return the list to work on: the option, else the configured default."""
    return list_name or app.config.delivery.default_list


@cli.group("subscribers")
def subscribers_group() -> None:
    """Manage subscriber lists (the database is the record; CSV is for import and export)."""


@subscribers_group.command("import")
@click.argument("csv_file", type=click.Path(dir_okay=False, path_type=Path))
@_list_option
@click.option("--encoding", default=None, metavar="CODEC",
              help="The file's text encoding (utf-8, cp1252, utf-16...; default: detected).")
@pass_app
def import_cmd(app: AppContext, csv_file: Path, list_name: str | None, encoding: str | None) -> None:
    """Import CSV_FILE (columns email, name, [status], any others kept as fields).

    The encoding (UTF-8 with or without BOM, UTF-16, a Windows code page) and the delimiter
    (comma, semicolon, tab) are detected and named in the output."""
    name = _list(app, list_name)
    report = import_file(_store(app), csv_file, name, encoding=encoding)
    fmt = report.format
    if fmt is not None:
        how = "given" if encoding else ("guessed; --encoding chooses another" if fmt.guessed else "detected")
        say(f"{csv_file}: read as {fmt.encoding_name} ({how}), {fmt.delimiter_name}-separated")
    for line, message in report.errors[:MAX_ERRORS_SHOWN]:
        warn(f"{csv_file}: line {line}: {message}")
    if len(report.errors) > MAX_ERRORS_SHOWN:
        warn(f"{csv_file}: {len(report.errors) - MAX_ERRORS_SHOWN} more bad rows not shown")
    say(f"{name}: {report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
        f"{report.kept_suppressed} kept unsubscribed/bounced/complained, "
        f"{report.duplicates} duplicates merged, {len(report.errors)} rows rejected")


@subscribers_group.command("export")
@click.argument("csv_file", type=click.Path(dir_okay=False, path_type=Path), required=False)
@_list_option
@click.option("--status", type=click.Choice([s.value for s in STATUSES]), default=None, help="Only subscribers in this state.")
@pass_app
def export_cmd(app: AppContext, csv_file: Path | None, list_name: str | None, status: str | None) -> None:
    """Write the list as CSV to CSV_FILE (or to standard output, also with `-`)."""
    name = _list(app, list_name)
    if csv_file is None or str(csv_file) == "-":
        _store(app).export_csv(sys.stdout, name, status)
        return
    n = _store(app).export_csv(csv_file, name, status)
    say(f"{name}: {n} subscribers written to {csv_file}")


@subscribers_group.command("add")
@click.argument("email")
@click.option("--name", default="", help="The subscriber's name.")
@click.option("--field", "fields", multiple=True, metavar="KEY=VALUE", help="A custom field (repeatable).")
@click.option("--status", type=click.Choice([s.value for s in STATUSES]), default="active", show_default=True)
@_list_option
@pass_app
def add_cmd(app: AppContext, email: str, name: str, fields: tuple[str, ...], status: str,
            list_name: str | None) -> None:
    """Add EMAIL to the list (an existing address keeps its state)."""
    extra: dict[str, str] = {}
    for item in fields:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SubscriberError(f"--field {item!r}: expected KEY=VALUE")
        extra[key.strip()] = value
    store = _store(app)
    list_ = _list(app, list_name)
    before = store.get(email, list_)
    sub = store.add(email, name=name, list_name=list_, status=status, fields=extra)
    if before is None:
        say(f"{list_}: added {sub.email} ({sub.status})")
    elif sub.status != status:
        hint = (f" (undo a {sub.status} state made by mistake with `newsletter subscribers reactivate "
                f"{sub.email}`)" if status == "active" and sub.status in undo.UNDOABLE else "")
        warn(f"{list_}: {sub.email} is already on the list and stays {sub.status}{hint}")
    else:
        say(f"{list_}: updated {sub.email} ({sub.status})")


@subscribers_group.command("remove")
@click.argument("email")
@_list_option
@pass_app
def remove_cmd(app: AppContext, email: str, list_name: str | None) -> None:
    """Unsubscribe EMAIL from the list: it gets no more mail, and no import or `subscribers add`
    brings it back (only the person, through the sign-up form or an issue's link)."""
    list_ = _list(app, list_name)
    store = _store(app)
    before = store.get(email, list_)
    if before is None:
        raise SubscriberError(f"{email} is not on list {list_!r}")
    if before.status in SUPPRESSED:
        warn(f"{list_}: {email} is {before.status} already: nothing changed")
        return
    store.set_status(email, list_, "unsubscribed", source=SuppressionSource.MANUAL,
                     reason="newsletter subscribers remove")
    say(f"{list_}: removed {email} (unsubscribed; an import will not add it again)")


@subscribers_group.command("list")
@_list_option
@click.option("--status", type=click.Choice([s.value for s in STATUSES]), default=None, help="Only subscribers in this state.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Show at most N subscribers.")
@json_option
@pass_app
def list_cmd(app: AppContext, list_name: str | None, status: str | None, limit: int | None,
             as_json: bool) -> None:
    """Show the list's subscribers: address, state and name, one per line; a suppressed one also
    shows where its state came from, when, and why."""
    store, list_ = _store(app), _list(app, list_name)
    store.require_list(list_)
    found = itertools.islice(store.iter_subscribers(list_, status), limit)
    if as_json:
        emit_json([{"email": s.email, "name": s.name, "status": s.status, "fields": s.fields} for s in found])
        return
    page: list = []

    def flush() -> None:
        """Print the collected subscribers with their suppression records."""
        why = suppression.open_for(store.engine, [s.id for s in page if s.status in SUPPRESSED and s.id])
        for sub in page:
            # Names stored by earlier releases may hold control characters: never raw to a terminal.
            line = f"{printable(sub.email)}\t{sub.status}\t{printable(sub.name)}"
            record = why.get(sub.id) if sub.id is not None else None
            if record is not None:
                line += f"\t{record.source}\t{record.created_at:%Y-%m-%d %H:%M} UTC\t{record.reason}"
            say(line)
        page.clear()

    for sub in found:
        page.append(sub)
        if len(page) == 500:
            flush()
    flush()


@subscribers_group.command("reactivate")
@click.argument("emails", metavar="ADDRESS...", nargs=-1)
@_list_option
@click.option("--bounced-since", "since", default=None, metavar="TIME",
              help="Every address bounced since TIME (7d, 12h, 2026-05-01 or an ISO time; UTC).")
@click.option("--issue", "issue_id", default=None, metavar="ID",
              help="Every address bounced by issue ID; their rows of ID go back to pending for `send`.")
@click.option("--include-complaints", is_flag=True, help="With --bounced-since/--issue: complained addresses too.")
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@pass_app
def reactivate_cmd(app: AppContext, emails: tuple[str, ...], list_name: str | None, since: str | None,
                   issue_id: str | None, include_complaints: bool, dry_run: bool) -> None:
    """Undo bounces (and complaints) made by mistake: ADDRESS... or a mass undo by time or issue.

    Never undoes an unsubscribe: that is the subscriber's own choice.
    """
    engine, list_ = get_engine(app.config), _list(app, list_name)
    if emails and since:
        raise click.UsageError("give addresses or --bounced-since, not both")
    if not emails and not since and not issue_id:
        raise click.UsageError("give the addresses to reactivate, or --bounced-since TIME and/or --issue ID")
    if emails:
        if include_complaints:
            raise click.UsageError("--include-complaints goes with --bounced-since/--issue (named addresses "
                                   "are reactivated whether they bounced or complained)")
        report = undo.reactivate(engine, list_, emails, issue_id=issue_id, dry_run=dry_run)
    else:
        report = undo.reactivate_matching(engine, list_, since=undo.parse_since(since) if since else None,
                                          issue_id=issue_id, include_complaints=include_complaints,
                                          dry_run=dry_run)
    verb = "would reactivate" if dry_run else "reactivated"
    for r in report.reactivated:
        origin = f" ({r.source}, {r.since:%Y-%m-%d %H:%M} UTC: {r.reason})" if r.source and r.since else ""
        say(f"{list_}: {verb} {r.email}, was {r.was}{origin}")
    for address, why in report.refused:
        warn(f"{list_}: {address}: not reactivated: {why}")
    say(f"{list_}: {len(report.reactivated)} {verb}, {len(report.refused)} not"
        + ("; nothing changed (dry run)" if dry_run else ""))
    if issue_id and report.rows_reset:
        say(f"issue {issue_id}: {report.rows_reset} bounced row(s) {'would go' if dry_run else 'went'} back to "
            f"pending: `newsletter send {issue_id} --list {list_}` delivers them")
    if report.refused and emails and not report.reactivated:
        raise SubscriberError(f"nothing reactivated on list {list_!r}")


@subscribers_group.command("count")
@_list_option
@json_option
@pass_app
def count_cmd(app: AppContext, list_name: str | None, as_json: bool) -> None:
    """Show how many subscribers the list has in each state."""
    store, list_ = _store(app), _list(app, list_name)
    store.require_list(list_)
    counts = store.counts(list_)
    if as_json:
        emit_json({"list": list_, "counts": {str(k): v for k, v in counts.items()},
                   "total": sum(counts.values())})
        return
    for status in STATUSES:
        say(f"{status:<13}{counts[status]:>9}")
    say(f"{'total':<13}{sum(counts.values()):>9}")

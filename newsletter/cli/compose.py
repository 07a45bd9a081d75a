"""Commands that make an issue: init, issue new/list, add, build."""

from __future__ import annotations

import dataclasses
import shutil
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import urlsplit

import click
import tomlkit

from .. import issues, pipeline
from ..articles.compose import AddReport, one_line
from ..errors import ChecksFailed, ConfigError, IssueError, SourceError, SubscriberError
from ..files import write_atomic
from ..render.saved import PREVIEW_HTML, PREVIEW_TEXT
from ..subscribers import normalise_address
from .common import AppContext, emit_json, json_option, pass_app, say, stdin_is_tty, warn
from .group import cli
from .progress import adding_progress

SCAFFOLD = Path(__file__).resolve().parent.parent / "scaffold"


# What init writes when it is not told or asked: plainly not anyone's identity, so `build` warns.
PLACEHOLDERS = {"name": "My Newsletter", "sender": "My Newsletter <newsletter@example.org>",
                "postal_address": "", "base_url": "https://newsletter.example.org"}
_PROMPTS = {"name": "Newsletter name", "sender": "Sender (Name <address@your-domain>)",
            "postal_address": "Postal address for the footer",
            "base_url": "Public https address of the web app"}


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", default=None, help="The newsletter's name (header and subject).")
@click.option("--sender", default=None, help="The From address: 'Name <address@your-domain>'.")
@click.option("--postal-address", default=None, help="The postal address every message shows.")
@click.option("--base-url", default=None, help="The https address where `newsletter serve` answers.")
def init(directory: Path, name: str | None, sender: str | None, postal_address: str | None,
         base_url: str | None) -> None:
    """Create a new newsletter in DIRECTORY: config.toml, templates/, subscribers/, issues/.

    On a terminal it asks for the name, sender, postal address and base URL that no option gave;
    otherwise what no option gave keeps a placeholder that `build` warns about."""
    if (directory / "config.toml").exists():
        raise ConfigError(f"{directory / 'config.toml'} already exists: not overwriting it")
    given = {"name": name, "sender": sender, "postal_address": postal_address, "base_url": base_url}
    for key, value in given.items():
        if value is not None:
            given[key] = _identity_value(key, value, click.BadParameter)
    if stdin_is_tty():
        for key, value in given.items():
            if value is None:
                given[key] = _ask(key, given)
    directory.mkdir(parents=True, exist_ok=True)
    for entry in sorted(SCAFFOLD.iterdir()):
        target = directory / entry.name
        if entry.is_dir():
            shutil.copytree(entry, target, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", ".*"))
        elif entry.name != "config.toml":
            shutil.copyfile(entry, target)
    identity = {key: PLACEHOLDERS[key] if value is None else value for key, value in given.items()}
    if given["name"] is not None and given["sender"] is None:
        identity["sender"] = f"{given['name']} <newsletter@example.org>"
    write_atomic(directory / "config.toml", _config_text(identity))
    (directory / "issues").mkdir(exist_ok=True)
    say(f"created a newsletter in {directory}")
    kept = [key for key, value in given.items() if value is None]
    if kept:
        warn(f"kept placeholders for {', '.join('newsletter.' + k for k in kept)} in "
             f"{directory / 'config.toml'} (no terminal to ask on): edit them or pass "
             f"{' '.join('--' + k.replace('_', '-') for k in kept)}; "
             "`newsletter build` warns until they are yours")
    say(f"next: cd {directory} && newsletter issue new w1 && newsletter add articles/* --issue w1 "
        "&& newsletter build w1")


def _identity_value(key: str, value: str, error: type[click.ClickException]) -> str:
    """Return value cleaned for newsletter.<key>; raises error (BadParameter or UsageError) when unusable."""
    value = value.strip()
    if key == "name" and not value:
        raise error("the newsletter's name cannot be empty")
    if key == "sender":
        display, address = parseaddr(value)
        try:
            normalise_address(address)
        except SubscriberError as err:
            raise error(f"sender {value!r}: {err} (write 'Name <address@your-domain>')") from err
        if not display:
            value = address
    if key == "base_url":
        parts = urlsplit(value)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise error(f"base URL {value!r} must be an https:// address with a host")
        value = value.rstrip("/")
    if key == "postal_address":
        value = ", ".join(line.strip() for line in value.splitlines() if line.strip())
    return value


def _ask(key: str, given: dict[str, str | None]) -> str:
    """Ask for newsletter.<key> on the terminal until the answer is usable; Enter keeps the default."""
    default = PLACEHOLDERS[key]
    if key == "sender" and given.get("name"):
        default = f"{given['name']} <newsletter@example.org>"
    while True:
        answer = click.prompt(_PROMPTS[key], default=default, show_default=bool(default))
        try:
            value = _identity_value(key, answer, click.UsageError)
        except click.UsageError as err:
            click.echo(f"  {err.message}", err=True)
            continue
        if key == "base_url" and not value.lower().startswith("https://"):
            click.echo("  note: one-click unsubscribe needs https; `build` will warn about this address",
                       err=True)
        return value


def _config_text(identity: dict[str, str]) -> bytes:
    """Return the scaffold's config.toml with the [newsletter] identity replaced, comments kept."""
    doc = tomlkit.parse((SCAFFOLD / "config.toml").read_text(encoding="utf-8"))
    section = doc["newsletter"]
    for key, value in identity.items():
        section[key] = value
    text = tomlkit.dumps(doc).replace("# The sample newsletter's configuration.",
                                      "# This newsletter's configuration.", 1)
    return text.encode("utf-8")


@cli.group("issue")
def issue_group() -> None:
    """Create and list issue files."""


@issue_group.command("new")
@click.argument("issue_id")
@click.option("--title", default="", help="The issue's title (default: 'Issue ID').")
@click.option("--intro", default="", help="An optional introduction (Markdown; merge fields allowed).")
@pass_app
def issue_new(app: AppContext, issue_id: str, title: str, intro: str) -> None:
    """Create issues/ISSUE_ID.toml, ready for `newsletter add`."""
    path = pipeline.new_issue(app.config, issue_id, title, intro=intro)
    say(f"created {path}")


@issue_group.command("list")
@json_option
@pass_app
def issue_list(app: AppContext, as_json: bool) -> None:
    """List the issue files with their item counts."""
    found, broken = [], []
    for issue_id in issues.list_issue_ids(app.config.paths.issues):
        try:
            issue = issues.load_issue(app.config.paths.issues, issue_id)
        except IssueError as err:
            # One broken issue file never hides the others: name it and list the rest.
            broken.append({"id": issue_id, "error": str(err)})
            continue
        found.append({"id": issue_id, "date": issue.date, "items": len(issue.items), "title": issue.title})
    if as_json:
        emit_json(found + broken if broken else found)
    else:
        for entry in found:
            say(f"{entry['id']}\t{entry['date']}\t{_items(entry['items'])}\t{entry['title']}")
        for entry in broken:
            warn(entry["error"])
    if broken:
        raise SystemExit(1)


@issue_group.command("show")
@click.argument("issue_id")
@json_option
@pass_app
def issue_show(app: AppContext, issue_id: str, as_json: bool) -> None:
    """Show the issue's items and the links removed from it (which `add` will not bring back)."""
    config = app.config
    tombstones, new = pipeline.curate(config, issue_id)
    issue = issues.load_issue(config.paths.issues, issue_id)
    if as_json:
        emit_json({"id": issue.id, "title": issue.title, "date": issue.date,
                   "items": [dataclasses.asdict(i) for i in issue.items], "removed": tombstones})
        return
    say(f"{issue.id}: {issue.title} ({issue.date}), {_items(len(issue.items))}")
    for n, item in enumerate(issue.items, start=1):
        where = f"[{item.section}] " if item.section else ""
        say(f"{n:>3}. {where}{item.title}\t{item.url or '(no link)'}")
    if tombstones:
        say(f"removed ({len(tombstones)}; `add` skips these unless --force; delete a line of "
            f"`removed` in {issues.issue_path(config.paths.issues, issue_id)} to allow it again):")
        for link in tombstones:
            say(f"  {link}" + ("  (just noticed)" if link in new else ""))


def _items(count: int) -> str:
    """Return "1 item" or "N items"."""
    return f"{count} item" if count == 1 else f"{count} items"


def _report_add(report: AddReport, issue_id: str, path: Path) -> None:
    """Print what `add` did: one line per problem naming its source once, then the totals."""
    for link in report.remembered:
        say(f"remembered as removed from {issue_id}: {link} (`add` skips it; see `removed` in {path})")
    for source, why in report.skipped:
        warn(f"{source}: skipped, {why} (use --force to add it anyway)")
    for _source, line in report.failed:
        warn(line)
    for source, fix in report.warnings:
        warn(f"{source}: {fix}")
    for link in report.cleared:
        say(f"{link}: no longer in `removed` of {issue_id} (added with --force)")
    for item in report.added:
        say(f"added: {item.title}")
    left_out = [f"{n} {what}" for n, what in ((report.older, "older than --since"),
                                             (report.beyond_limit, "past --limit"),
                                             (report.undated_seen, "undated and seen before")) if n]
    say(f"{len(report.added)} added to {issue_id}, {len(report.skipped)} skipped, "
        f"{len(report.failed)} failed" + "".join(f", {part}" for part in left_out))


def _add_json(report: AddReport, issue_id: str) -> dict:
    """Return the AddReport as JSON-ready data."""
    return {"issue": issue_id, "added": [dataclasses.asdict(i) for i in report.added],
            "skipped": [{"source": s, "reason": r} for s, r in report.skipped],
            "failed": [{"source": s, "error": e} for s, e in report.failed],
            "warnings": [{"source": s, "warning": w} for s, w in report.warnings],
            "remembered_removed": report.remembered, "cleared_removed": report.cleared,
            "feed_entries_left_out": {"older_than_since": report.older, "past_limit": report.beyond_limit,
                                      "undated_seen_before": report.undated_seen},
            "feed_entries_undated_taken": report.undated_new}


@cli.command()
@click.argument("sources", nargs=-1)
@click.option("--issue", "issue_id", required=True, help="The issue to append to.")
@click.option("--section", default="", help="Put the new items in this section.")
@click.option("--feed", "feeds", multiple=True, help="Add the recent items of this RSS/Atom feed.")
@click.option("--since", default=None, help="With --feed: only items newer than this (7d, 12h, 2026-11-01).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="With --feed: at most N items.")
@click.option("--url", default=None, help="The web address of a single saved file or stdin article.")
@click.option("--summarizer", default=None, help="Summariser plugin to use (default from config).")
@click.option("--force", is_flag=True,
              help="Add stories even when already in this or a sent issue, or removed from this one.")
@json_option
@pass_app
def add(app: AppContext, sources: tuple[str, ...], issue_id: str, section: str, feeds: tuple[str, ...],
        since: str | None, limit: int | None, url: str | None, summarizer: str | None, force: bool,
        as_json: bool) -> None:
    """Fetch, extract and summarise SOURCES (URLs, .html/.txt/.md files, - for stdin) into an issue.

    Exits with 1 when any source or feed failed (the others are added all the same)."""
    from ..articles.feeds import parse_since

    if not sources and not feeds:
        raise click.UsageError("give at least one SOURCE or --feed URL")
    if (since or limit) and not feeds:
        raise click.UsageError("--since and --limit go with --feed")
    config = app.config
    cutoff = parse_since(since) if since else None
    report = AddReport()
    with adding_progress() as progress:
        if sources:
            report.merge(pipeline.add_sources(config, issue_id, list(sources), section=section, force=force,
                                              url=url, summarizer=summarizer,
                                              progress=progress.part("sources")))
        for feed in feeds:
            try:
                report.merge(pipeline.add_feed(config, issue_id, feed, since=cutoff, limit=limit,
                                               section=section, force=force,
                                               progress=progress.part(f"feed {feed}")))
            except SourceError as err:
                report.failed.append((feed, one_line(feed, err)))
    if as_json:
        emit_json(_add_json(report, issue_id))
    else:
        _report_add(report, issue_id, issues.issue_path(config.paths.issues, issue_id))
    if report.failed:
        raise click.exceptions.Exit(1)


@cli.command()
@click.argument("issue_id")
@click.option("--strict", is_flag=True, help="Treat pre-send warnings as errors (nothing is saved).")
@click.option("--check-links", is_flag=True, help="Also ask every link and image whether it answers.")
@json_option
@pass_app
def build(app: AppContext, issue_id: str, strict: bool, check_links: bool, as_json: bool) -> None:
    """Render the issue once: state/issues/ID/email.html, email.txt, preview.eml, and preview.html
    and preview.txt filled for a sample subscriber (open those to look at the issue)."""
    try:
        report = pipeline.build_issue(app.config, issue_id, strict=strict, check_links=check_links)
    except ChecksFailed as err:
        for problem in err.problems:
            click.echo(f"error: {problem}", err=True)
        raise
    size = len(report.rendered.html.encode("utf-8"))
    if as_json:
        emit_json({"issue": issue_id, "folder": str(report.folder), "subject": report.rendered.subject,
                   "html_bytes": size, "warnings": report.warnings})
        return
    for problem in report.warnings:
        warn(problem)
    say(f"built {issue_id}: {report.folder} (HTML {size / 1024:.0f} KB, {len(report.warnings)} warnings)")
    say(f"look at it: {report.folder / PREVIEW_HTML} and {PREVIEW_TEXT} (filled for a sample subscriber)")

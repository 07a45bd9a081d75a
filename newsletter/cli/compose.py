"""Commands that make an issue: issue new/list/show, add, build (init, which makes the newsletter, is in init.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from .. import issues, pipeline
from ..articles.compose import AddReport, one_line
from ..errors import ChecksFailed, IssueError, SourceError
from ..render.saved import PREVIEW_HTML, PREVIEW_TEXT
from .common import AppContext, emit_json, json_option, pass_app, say, warn
from .group import cli
from .progress import adding_progress

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

"""Commands that make an issue: init, issue new/list, add, build."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from .. import issues, pipeline
from ..errors import ChecksFailed, ConfigError, SourceError
from .common import AppContext, pass_app, say, warn
from .group import cli

SCAFFOLD = Path(__file__).resolve().parent.parent / "scaffold"


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def init(directory: Path) -> None:
    """Create a new newsletter in DIRECTORY: config.toml, templates/, subscribers/, issues/."""
    if (directory / "config.toml").exists():
        raise ConfigError(f"{directory / 'config.toml'} already exists: not overwriting it")
    directory.mkdir(parents=True, exist_ok=True)
    for entry in sorted(SCAFFOLD.iterdir()):
        target = directory / entry.name
        if entry.is_dir():
            shutil.copytree(entry, target, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", ".*"))
        else:
            shutil.copyfile(entry, target)
    (directory / "issues").mkdir(exist_ok=True)
    say(f"created a newsletter in {directory}")
    say(f"next: cd {directory} && newsletter issue new w1 && newsletter add articles/* --issue w1 "
        "&& newsletter build w1")


@cli.group("issue")
def issue_group() -> None:
    """Create and list issue files."""


@issue_group.command("new")
@click.argument("issue_id")
@click.option("--title", default="", help="The issue's title (default: 'Issue ID').")
@click.option("--intro", default="", help="An optional introduction paragraph.")
@pass_app
def issue_new(app: AppContext, issue_id: str, title: str, intro: str) -> None:
    """Create issues/ISSUE_ID.toml, ready for `newsletter add`."""
    path = issues.create_issue(app.config.paths.issues, issue_id, title, intro=intro)
    say(f"created {path}")


@issue_group.command("list")
@pass_app
def issue_list(app: AppContext) -> None:
    """List the issue files with their item counts."""
    for issue_id in issues.list_issue_ids(app.config.paths.issues):
        issue = issues.load_issue(app.config.paths.issues, issue_id)
        say(f"{issue_id}\t{issue.date}\t{len(issue.items)} items\t{issue.title}")


def _report_add(report: pipeline.AddReport, issue_id: str) -> None:
    for source, why in report.skipped:
        warn(f"{source}: skipped, {why} (use --force to add it anyway)")
    for source, err in report.failed:
        warn(f"{source}: {err}" if source in err else err)
    for item in report.added:
        say(f"added: {item.title}")
    say(f"{len(report.added)} added to {issue_id}, {len(report.skipped)} skipped, "
        f"{len(report.failed)} failed")


@cli.command()
@click.argument("sources", nargs=-1)
@click.option("--issue", "issue_id", required=True, help="The issue to append to.")
@click.option("--section", default="", help="Put the new items in this section.")
@click.option("--feed", "feeds", multiple=True, help="Add the recent items of this RSS/Atom feed.")
@click.option("--since", default=None, help="With --feed: only items newer than this (7d, 12h, 2026-11-01).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="With --feed: at most N items.")
@click.option("--url", default=None, help="The web address of a single saved file or stdin article.")
@click.option("--summarizer", default=None, help="Summariser plugin to use (default from config).")
@click.option("--force", is_flag=True, help="Add URLs even when already in this or a sent issue.")
@pass_app
def add(app: AppContext, sources: tuple[str, ...], issue_id: str, section: str, feeds: tuple[str, ...],
        since: str | None, limit: int | None, url: str | None, summarizer: str | None, force: bool) -> None:
    """Fetch, extract and summarise SOURCES (URLs, .html/.txt/.md files, - for stdin) into an issue."""
    if not sources and not feeds:
        raise click.UsageError("give at least one SOURCE or --feed URL")
    if (since or limit) and not feeds:
        raise click.UsageError("--since and --limit go with --feed")
    config = app.config
    report = pipeline.AddReport()
    if sources:
        report = pipeline.add_sources(config, issue_id, list(sources), section=section, force=force,
                                      url=url, summarizer=summarizer)
    from ..articles.feeds import parse_since

    cutoff = parse_since(since) if since else None
    for feed in feeds:
        try:
            part = pipeline.add_feed(config, issue_id, feed, since=cutoff, limit=limit,
                                     section=section, force=force)
        except SourceError as err:
            report.failed.append((feed, str(err)))
            continue
        report.added += part.added
        report.skipped += part.skipped
        report.failed += part.failed
    _report_add(report, issue_id)
    if report.failed and not report.added and not report.skipped:
        raise click.exceptions.Exit(1)


@cli.command()
@click.argument("issue_id")
@click.option("--strict", is_flag=True, help="Treat pre-send warnings as errors (nothing is saved).")
@pass_app
def build(app: AppContext, issue_id: str, strict: bool) -> None:
    """Render the issue once: state/issues/ID/email.html, email.txt and preview.eml."""
    try:
        report = pipeline.build_issue(app.config, issue_id, strict=strict)
    except ChecksFailed as err:
        for problem in err.problems:
            click.echo(f"error: {problem}", err=True)
        raise
    for problem in report.warnings:
        warn(problem)
    size = len(report.rendered.html.encode("utf-8")) / 1024
    say(f"built {issue_id}: {report.folder} (HTML {size:.0f} KB, {len(report.warnings)} warnings)")

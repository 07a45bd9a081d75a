"""The whole story in one place: sources → items in an issue file → render once → deliver."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from . import frozen, issues
from .config import Config
from .errors import IssueError, RenderError, SourceError
from .models import Article, Item, RawDocument, Rendered

# The stage modules (trafilatura, feedparser, MJML, premailer) are imported where they are used:
# commands such as `status` or `send` then start without paying for them.

if TYPE_CHECKING:
    from .summarize import Summarizer

log = logging.getLogger(__name__)

_FETCH_THREADS = 4      # fetching is I/O bound; extraction and summaries stay on one thread


@dataclass
class AddReport:
    """What `add` did: the items appended, the sources skipped as duplicates, the failures."""

    added: list[Item] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (source, reason)
    failed: list[tuple[str, str]] = field(default_factory=list)    # (source, one-line error)


class ChecksFailed(RenderError):
    """The pre-send checks found problems and --strict asked to treat them as errors."""

    def __init__(self, issue_id: str, problems: list[str]):
        super().__init__(f"issue {issue_id!r}: {len(problems)} pre-send check(s) failed; nothing saved")
        self.problems = problems


@dataclass
class BuildReport:
    """What `build` produced: the render, where it was saved, and the pre-send warnings."""

    rendered: Rendered
    folder: Path
    warnings: list[str]


def normalise_url(url: str) -> str:
    """Return url without fragment and trailing slash, for duplicate detection."""
    url = url.split("#", 1)[0].strip()
    return url[:-1] if url.endswith("/") else url


def item_from_article(article: Article, summary: str, section: str, url: str | None = None) -> Item:
    """Return the issue Item for an extracted and summarised article."""
    return Item(url=url or article.url or "", title=article.title or (url or article.url or ""),
                summary=summary, source=article.site_name, author=article.author,
                date=article.date, image=article.image,
                image_alt=article.title if article.image else "", section=section)


def _sent_urls(config: Config, exclude: str) -> set[str]:
    """Return the URLs of every item in issues that were already sent (besides exclude)."""
    from .ledger import Ledger
    from .store import get_engine

    urls: set[str] = set()
    for issue_id, _when in Ledger(get_engine(config)).sent_issues():
        if issue_id == exclude:
            continue
        try:
            sent = issues.load_issue(config.paths.issues, issue_id)
        except IssueError:
            continue        # a sent issue whose file was removed blocks nothing
        urls.update(normalise_url(i.url) for i in sent.items if i.url)
    return urls


class _DuplicateGuard:
    """Knows the URLs already in this issue and in sent issues; says why a URL must be skipped."""

    def __init__(self, config: Config, issue_id: str, force: bool):
        current = issues.load_issue(config.paths.issues, issue_id)
        self.in_issue = {normalise_url(i.url) for i in current.items if i.url}
        self.in_sent = set() if force else _sent_urls(config, issue_id)
        self.force = force

    def reason(self, url: str) -> str | None:
        """Return why url is a duplicate, or None; remembers nothing."""
        if self.force or not url:
            return None
        key = normalise_url(url)
        if key in self.in_issue:
            return "already in this issue"
        if key in self.in_sent:
            return "already in an issue that was sent"
        return None

    def remember(self, url: str) -> None:
        """Count url as part of the issue from now on."""
        if url:
            self.in_issue.add(normalise_url(url))


def _fetch_all(config: Config, sources: list[str]) -> list[RawDocument | SourceError]:
    """Fetch every source (URLs in parallel); return a document or the error for each, in order."""
    from .sources import fetch, is_url

    def one(source: str) -> RawDocument | SourceError:
        try:
            return fetch(source, config.fetch)
        except SourceError as err:
            return err
    remote = sum(1 for s in sources if is_url(s))
    if remote < 2:
        return [one(s) for s in sources]
    with ThreadPoolExecutor(max_workers=_FETCH_THREADS) as pool:
        return list(pool.map(one, sources))


def compose_items(docs: list[tuple[str, RawDocument | SourceError]], section: str,
                  guard: _DuplicateGuard, report: AddReport, summarizer: "Summarizer",
                  url: str | None = None) -> None:
    """Extract and summarise each fetched document into report.added; failures go to report.failed."""
    from .extract import extract

    for source, doc in docs:
        if isinstance(doc, SourceError):
            report.failed.append((source, str(doc)))
            continue
        try:
            article = extract(doc)
            link = url or article.url or doc.url or ""
            why = guard.reason(link)
            if why:
                report.skipped.append((source, why))
                continue
            summary = summarizer.summarize(article)
        except SourceError as err:
            report.failed.append((source, str(err)))
            continue
        guard.remember(link)
        report.added.append(item_from_article(article, summary, section, link))


def add_sources(config: Config, issue_id: str, sources: list[str], *, section: str = "",
                force: bool = False, url: str | None = None, summarizer: str | None = None) -> AddReport:
    """Append an item per source to the issue; returns the report, raises IssueError/ConfigError."""
    from .sources import is_url
    from .summarize import make_summarizer

    if url and len(sources) != 1:
        raise SourceError("--url names the address of one source; give exactly one")
    guard = _DuplicateGuard(config, issue_id, force)
    report = AddReport()
    todo = []
    for source in sources:
        why = guard.reason(source) if is_url(source) else None
        if why:
            report.skipped.append((source, why))
        else:
            todo.append(source)
    docs = list(zip(todo, _fetch_all(config, todo)))
    compose_items(docs, section, guard, report, make_summarizer(config.summarize, summarizer), url)
    issues.append_items(config.paths.issues, issue_id, report.added)
    return report


def add_feed(config: Config, issue_id: str, feed: str, *, since: datetime | None = None,
             limit: int | None = None, section: str = "", force: bool = False) -> AddReport:
    """Append the feed's recent items (newest first, at most limit); raises SourceError for the feed."""
    from .sources import read_feed

    entries = read_feed(feed, config.fetch, since=since, limit=limit)
    return add_sources(config, issue_id, [e.url for e in entries if e.url], section=section, force=force)


def is_frozen(config: Config, issue_id: str) -> bool:
    """Return True once any message of the issue was queued: its render may no longer change."""
    from .ledger import Ledger
    from .store import get_engine

    return Ledger(get_engine(config)).is_frozen(issue_id)


def build_issue(config: Config, issue_id: str, *, strict: bool = False) -> BuildReport:
    """Render the issue once and save email.html, email.txt, preview.eml; raises IssueError/RenderError.

    With strict, any pre-send warning raises ChecksFailed and nothing is saved."""
    from .checks import check_rendered
    from .personalize import sample_message
    from .render import render_issue

    issue = issues.load_issue(config.paths.issues, issue_id)
    if is_frozen(config, issue_id):
        raise IssueError(f"issue {issue_id!r} is being sent or was sent: its render is frozen "
                         "(start a new issue to change it)")
    rendered = render_issue(issue, config)
    warnings = check_rendered(rendered, issue)
    if strict and warnings:
        raise ChecksFailed(issue_id, warnings)
    folder = frozen.save_rendered(config.paths.state, rendered)
    preview = sample_message(rendered, config, config.delivery.default_list)
    frozen.write_atomic(folder / frozen.PREVIEW_FILE, preview)
    return BuildReport(rendered=rendered, folder=folder, warnings=warnings)


DEMO_ISSUE = "sample"
ARTICLE_SUFFIXES = (".html", ".htm", ".txt", ".md")


@dataclass
class DemoReport:
    """What the demo did: the issue composed and built, the list imported, and the send's result."""

    issue_id: str
    added: AddReport | None
    build: BuildReport | None
    imported: object
    sent: object
    outbox: Path


def run_demo(config: Config, progress=None) -> DemoReport:
    """Compose the sample issue from articles/, import the sample list and deliver it; idempotent."""
    from .deliver import send_issue
    from .store import get_engine
    from .subscribers import SubscriberStore

    added = None
    if not issues.issue_path(config.paths.issues, DEMO_ISSUE).exists():
        issues.create_issue(config.paths.issues, DEMO_ISSUE, "This week in science and space",
                            intro="The stories we enjoyed this week, each in a few sentences.")
        articles = sorted(p for p in (config.root / "articles").iterdir()
                          if p.suffix.lower() in ARTICLE_SUFFIXES)
        added = add_sources(config, DEMO_ISSUE, [str(p) for p in articles])
    build = None if is_frozen(config, DEMO_ISSUE) else build_issue(config, DEMO_ISSUE)
    store = SubscriberStore(get_engine(config))
    imported = store.import_csv(config.paths.subscribers / "sample.csv", config.delivery.default_list)
    sent = send_issue(config, DEMO_ISSUE, progress=progress)
    return DemoReport(issue_id=DEMO_ISSUE, added=added, build=build, imported=imported, sent=sent,
                      outbox=config.delivery.file.dir / DEMO_ISSUE)

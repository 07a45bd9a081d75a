"""Sources → issue items, for `add` and the automatic digest: extract, find the story's link,
skip duplicates, summarise; every outcome lands in an AddReport, one line per source.

The summariser is passed in (summarize is a sibling layer); fetching runs in a few threads while
earlier documents are extracted and summarised.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import Config
from ..errors import SourceError
from ..models import Article, Item, RawDocument

if TYPE_CHECKING:
    from ..summarize import Summarizer
    from .curation import Appended
    from .duplicates import DuplicateGuard

FETCH_THREADS = 4       # fetching is I/O bound; extraction and summaries stay on one thread
AddProgress = Callable[[int, int, str], None]   # (sources done, sources in all, the source just done)


@dataclass
class AddReport:
    """What `add` did: the items appended, the sources skipped (duplicates, removed by the editor),
    the failures, and the warnings; each source is named once in its line."""

    added: list[Item] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (source, reason)
    failed: list[tuple[str, str]] = field(default_factory=list)    # (source, one line naming it)
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (source, what to fix)
    remembered: list[str] = field(default_factory=list)   # links the editor deleted: now tombstones
    cleared: list[str] = field(default_factory=list)      # tombstones --force took back
    older: int = 0                  # feed entries before --since
    beyond_limit: int = 0           # feed entries past --limit
    undated_new: int = 0            # feed entries without a usable date, taken once
    undated_seen: int = 0           # ... and those taken before, left out

    def merge(self, other: "AddReport") -> None:
        """Add other's outcomes to this report (one `add` over several sources and feeds)."""
        for name, value in vars(other).items():
            setattr(self, name, getattr(self, name) + value)


def compose_items(docs: Iterable[tuple[str, RawDocument | SourceError]], section: str,
                  guard: "DuplicateGuard", report: AddReport, summarizer: "Summarizer",
                  url: str | None = None, tick: Callable[[str], None] | None = None) -> list["Appended"]:
    """Extract and summarise each fetched document into report.added (skips, failures and
    warnings go to the report); return what was appended, with the sources it came from."""
    from .curation import Appended
    from .extract import extract
    from .links import article_link

    appended: list["Appended"] = []
    for source, doc in docs:
        try:
            if isinstance(doc, SourceError):
                raise doc
            article = extract(doc)
            link, _where = (url, "--url") if url else article_link(doc, article)
            why = guard.reason(link, source if source != "-" else None, doc.url)
            if why:
                report.skipped.append((source, why))
                continue
            summary = summarizer.summarize(article)
        except SourceError as err:
            report.failed.append((source, one_line(source, err)))
            continue
        finally:
            if tick is not None:
                tick(source)
        if not link:
            report.warnings.append((source, no_link_fix(doc)))
        guard.remember(link, doc.url)
        report.added.append(item_from_article(article, summary, section, link))
        if link:        # a story without a link cannot be told apart: nothing to remember
            appended.append(Appended(link, tuple(dict.fromkeys(
                u for u in (source, doc.url) if u and u != link and u != "-"))))
    return appended


@dataclass(frozen=True)
class Composed:
    """One source read on its own: the document fetched, its article, the story's link ("" when
    the page names none) and the summary written for it."""

    doc: RawDocument
    article: Article
    link: str
    summary: str


def compose_one(config: Config, source: str, summarizer: "Summarizer") -> Composed:
    """Fetch, extract and summarise one source (a URL or a file path) without adding it anywhere:
    the inbox's candidates and a regenerated blurb. Raises SourceError when it cannot be fetched
    or read, with one line naming the source."""
    from .extract import extract
    from .links import article_link
    from .sources import fetch

    try:
        doc = fetch(source, config.fetch)
        article = extract(doc)
    except SourceError as err:
        raise SourceError(one_line(source, err), source) from err
    link, _where = article_link(doc, article)
    return Composed(doc, article, link or "", summarizer.summarize(article).strip())


def no_link_fix(doc: RawDocument) -> str:
    """Return the warning for an item added without a link, with the way to give it one."""
    if doc.kind == "html":
        return ("added without a link: the page names none (no canonical link, og:url or browser "
                '"saved from" note); give it one with --url URL or set url in the issue file')
    return ("added without a link: give it one with --url URL, a `url:` line in the file's front "
            "matter, or set url in the issue file")


def one_line(source: str, err: SourceError) -> str:
    """Return err as one line that names the source exactly once ("x.html: file not found")."""
    text = str(err)
    for name in dict.fromkeys(n for n in (err.source, source, str(Path(source)) if source != "-" else "")
                              if n):
        if text.startswith(name + ": "):
            return f"{source}: {text[len(name) + 2:]}"
    if source in text or (err.source and err.source in text):
        return text
    return f"{source}: {text}"


def item_from_article(article: Article, summary: str, section: str, url: str | None = None) -> Item:
    """Return the issue Item for an extracted and summarised article."""
    return Item(url=url or article.url or "", title=article.title or (url or article.url or ""),
                summary=summary, source=article.site_name, author=article.author,
                date=article.date, image=article.image,
                image_alt=article.title if article.image else "", section=section)


def counter(progress: AddProgress | None, total: int) -> Callable[[str], None]:
    """Return a function that counts one finished source and reports (done, total, source)."""
    done = [0]

    def tick(source: str) -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], total, source)
    return tick


def fetch_all(config: Config, sources: list[str]) -> Iterator[RawDocument | SourceError]:
    """Yield the fetched document or the error of each source, in order, as soon as it is ready
    (URLs are fetched in parallel while earlier ones are extracted and summarised)."""
    from .sources import fetch, is_url

    def one(source: str) -> RawDocument | SourceError:
        try:
            return fetch(source, config.fetch)
        except SourceError as err:
            return err
    if sum(1 for s in sources if is_url(s)) < 2:
        yield from (one(s) for s in sources)
        return
    with ThreadPoolExecutor(max_workers=FETCH_THREADS) as pool:
        yield from pool.map(one, sources)

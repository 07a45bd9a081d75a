"""What the admin pages and the API both do to an issue beyond the file edit itself: keep what a
save removed, list and restore tombstones, regenerate a blurb with a chosen summariser."""

from __future__ import annotations

import dataclasses
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from ..config import Config
from ..errors import ConfigError, SourceError
from ..issues import append_items, load_issue, load_tombstones
from ..models import Item
from ..plugins import SUMMARIZERS
from ..workspace.issue_edit import IssueEdit, SavedEdit, save_edit
from ..workspace.removed import forget_removed, load_removed, remember_removed

if TYPE_CHECKING:
    from ..articles.compose import AddReport
    from ..workspace.inbox import Candidate

_ITEM_KEYS = {f.name for f in dataclasses.fields(Item)}
SOURCES = "_sources"        # kept beside a removed item's fields: where `add` fetched it from


def save_issue_edit(config: Config, issue_id: str, edit: IssueEdit, digest: str) -> SavedEdit:
    """Save edit (workspace.issue_edit.save_edit: refused with EditConflict when the file changed
    since digest) and keep the fields of the items it removed, so they can be restored."""
    from ..articles.curation import load_appended

    saved = save_edit(config.paths.issues, issue_id, edit, digest)
    if saved.removed:
        # The addresses `add` fetched each from: a restored item can be fetched (re-summarised) again.
        sources = {a.link: a.sources for a in load_appended(config, issue_id)}
        remember_removed(config.paths.state, issue_id, [
            {**r, SOURCES: "\n".join(sources.get(r.get("url", ""), ()))} for r in saved.removed])
    return saved


def removed_items(config: Config, issue_id: str) -> list[dict[str, str]]:
    """Return [{"url", "title"}] of the issue's tombstones, in file order (title "" when unknown).

    Raises IssueError for a missing or invalid issue file."""
    kept = load_removed(config.paths.state, issue_id)
    return [{"url": url, "title": kept.get(url, {}).get("title", "")}
            for url in load_tombstones(config.paths.issues, issue_id)]


def restore_item(config: Config, issue_id: str, url: str) -> str:
    """Put the removed item url back at the end of the issue and clear its tombstone; return its title.

    The fields kept when the editor removed it are restored as they were; an item removed
    elsewhere is fetched and summarised again (pipeline.add_sources, forced past its tombstone).
    Raises IssueError when url is not one of the issue's tombstones, SourceError when it cannot
    be fetched again.
    """
    from ..articles.curation import Appended, clear_tombstones, record_appended
    from ..errors import IssueError
    from ..pipeline import add_sources

    if url not in load_tombstones(config.paths.issues, issue_id):
        raise IssueError(f"{url!r} is not among the items removed from issue {issue_id!r}")
    if url in {i.url for i in load_issue(config.paths.issues, issue_id).items}:
        clear_tombstones(config, issue_id, [url])       # put back by hand meanwhile
        return url
    fields = load_removed(config.paths.state, issue_id).get(url)
    if fields:
        item = Item(**{"title": "", **{k: v for k, v in fields.items() if k in _ITEM_KEYS}})
        # The item first, then the tombstone: a crash in between leaves it in the issue (and still
        # tombstoned, which only keeps `add` from adding it twice), never lost.
        append_items(config.paths.issues, issue_id, [item])
        record_appended(config, issue_id, [Appended(url, tuple(fields.get(SOURCES, "").split()))])
        clear_tombstones(config, issue_id, [url])
        forget_removed(config.paths.state, issue_id, url)
        return item.title or url
    report = add_sources(config, issue_id, [url], force=True)
    if not report.added:
        reasons = report.failed + report.skipped
        raise SourceError(reasons[0][1] if reasons else f"{url}: nothing could be read", url)
    clear_tombstones(config, issue_id, [url])
    return report.added[0].title or url


def summarizer_names() -> list[str]:
    """Return the names of the installed summariser plugins (entry points), sorted, default first."""
    names = sorted({ep.name for ep in entry_points(group=SUMMARIZERS)})
    return sorted(names, key=lambda n: n != "default")


def regenerate_blurb(config: Config, issue_id: str, url: str, summarizer: str) -> str:
    """Fetch and extract the article of item url again and return the blurb summarizer writes.

    The article is fetched from the address `add` fetched it from (remembered in articles.curation:
    often not the item's canonical link), else from url. Raises SourceError when the page cannot
    be fetched or read, ConfigError when the summariser is neither an installed plugin nor the
    configured summarize.summarizer, or cannot start (an LLM endpoint that is not configured).
    """
    from ..articles.curation import load_appended
    from ..articles.sources import is_url
    from ..pipeline import read_article

    # Only the installed plugins and the configured one: a "pkg.mod:Class" from a request would
    # import whatever module it names (and run its top-level code) before being refused.
    offered = [*summarizer_names(), config.summarize.summarizer]
    if summarizer not in offered:
        raise ConfigError(f"unknown summariser {summarizer!r} (choose one of: {', '.join(dict.fromkeys(offered))})")
    sources = [s for a in load_appended(config, issue_id) if a.link == url for s in a.sources]
    sources = [s for s in dict.fromkeys([*sources, url]) if is_url(s)]
    if not sources:
        raise SourceError(f"{url or 'this item'}: has no web address to fetch the article from", url)
    for source in sources:
        try:
            blurb = read_article(config, source, summarizer).summary
            break
        except SourceError as err:
            if source == sources[-1]:
                raise SourceError(f"{url}: {err}" if url not in str(err) else str(err), url) from err
    if not blurb:
        raise SourceError(f"{url}: the {summarizer} summariser wrote nothing for this article", url)
    return blurb


def move_candidate(config: Config, engine: object, candidate: "Candidate", issue_id: str) -> "AddReport":
    """Append an inbox candidate to issue_id and mark it moved there (also when the issue already
    had it); the article fetched when it arrived is used, else it is fetched now. Returns the
    AddReport; raises IssueError for the issue file, ConfigError for the summariser."""
    from ..pipeline import add_sources
    from ..schedule.inbox_prefetch import append_prefetched
    from ..workspace.inbox import Inbox

    report = append_prefetched(config, issue_id, candidate) or add_sources(config, issue_id, [candidate.url])
    if report.added or report.skipped:
        Inbox(engine).mark_added(candidate.id, issue_id)       # type: ignore[arg-type]
    return report

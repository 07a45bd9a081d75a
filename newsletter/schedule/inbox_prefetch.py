"""The inbox's background fetch: each new candidate is fetched, extracted and summarised once, so
the inbox shows its title, site, date, image and offline blurb, and moving it into an issue
needs no second fetch (the issue item is kept with the candidate).

Run by the web app's background thread when links arrive and by the daemon's feed job; a
candidate is claimed before it is fetched, so two runners never fetch the same one.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from urllib.parse import urlsplit

from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from ..config import Config
from ..errors import ConfigError, SourceError
from ..models import Item
from ..workspace.inbox import Candidate, Inbox

if TYPE_CHECKING:
    from ..articles.compose import AddReport

log = logging.getLogger(__name__)

FETCHED_FROM = "_fetched_from"      # kept beside the item's fields: the address actually fetched
BATCH = 200                         # candidates one drain looks at (the rest wait for the next)


def prefetch(config: Config, engine: Engine, candidate_id: int) -> str:
    """Fetch, extract and summarise one candidate and store what was found on it.

    Returns "fetched", "failed" or "" (gone, or claimed by another runner). Never raises for
    the page: a failure is stored on the candidate as one line the inbox shows.
    """
    from ..articles.compose import item_from_article
    from ..pipeline import read_article

    inbox = Inbox(engine)
    candidate = inbox.get(candidate_id)
    if candidate is None or not inbox.claim_fetch(candidate_id):
        return ""
    try:
        read = read_article(config, candidate.url)
    except SourceError as err:
        inbox.record_fetch(candidate_id, error=str(err))
        return "failed"
    except ConfigError as err:
        inbox.record_fetch(candidate_id, error=f"the summariser cannot run: {err}")
        return "failed"
    doc, article, link, summary = read.doc, read.article, read.link, read.summary
    item = item_from_article(article, summary, "", link or candidate.url)
    fields = {**dataclasses.asdict(item), FETCHED_FROM: doc.url or candidate.url}
    inbox.record_fetch(candidate_id, title=article.title, site=article.site_name or urlsplit(candidate.url).hostname or "",
                       published=article.date, image=article.image, blurb=summary,
                       item=json.dumps(fields, ensure_ascii=False))
    return "fetched"


def prefetch_waiting(config: Config, engine: Engine) -> int:
    """Fetch every waiting candidate not fetched yet, oldest first; return how many were fetched."""
    done = 0
    for candidate in Inbox(engine).unfetched(BATCH):
        if prefetch(config, engine, candidate.id) == "fetched":
            done += 1
    return done


def prefetched_item(candidate: Candidate) -> tuple[Item, str] | None:
    """Return (the issue item made from the candidate's fetched article, the address it was fetched
    from), or None when it was not fetched (or what was stored cannot be read)."""
    if candidate.fetch_state != "fetched" or not candidate.item:
        return None
    try:
        fields = json.loads(candidate.item)
        fetched_from = str(fields.pop(FETCHED_FROM, candidate.url))
        return Item(**{k: str(v) for k, v in fields.items()}), fetched_from
    except (ValueError, TypeError, AttributeError) as err:
        log.warning("inbox candidate %s: stored article unreadable (%s); it is fetched again", candidate.id, err)
        return None


def append_prefetched(config: Config, issue_id: str, candidate: Candidate) -> "AddReport | None":
    """Append the candidate's already fetched article to the issue, as `add` would have (the same
    duplicate and tombstone checks, remembered for curation); return the AddReport, or None when
    the candidate was not fetched (then `add` it: pipeline.add_sources). Raises IssueError."""
    from ..articles import curation
    from ..articles.compose import AddReport
    from ..articles.duplicates import DuplicateGuard
    from ..issues import append_items

    found = prefetched_item(candidate)
    if found is None:
        return None
    item, fetched_from = found
    report = AddReport()
    tombstones, kept, report.remembered = curation.sync_tombstones(config, issue_id)
    guard = DuplicateGuard(config, issue_id, False, removed=tombstones,
                           aliases=[s for entry in kept for s in entry.sources])
    why = guard.reason(item.url, candidate.url, fetched_from)
    if why:
        report.skipped.append((candidate.url, why))
        return report
    append_items(config.paths.issues, issue_id, [item])
    report.added.append(item)
    sources = tuple(dict.fromkeys(u for u in (candidate.url, fetched_from) if u and u != item.url))
    curation.record_appended(config, issue_id, [curation.Appended(item.url, sources)])
    return report

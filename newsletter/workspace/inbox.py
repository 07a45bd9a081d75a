"""The editors' inbox: candidate links waiting to be moved into an issue, and dismissed links.

Candidates come from the configured feeds, the bookmarklet, pasted URLs and the API; a
dismissed link is remembered (by the SHA-256 of its URL) and never offered again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Engine

from ..db import dismissed_links, inbox_candidates, utcnow, write_transaction
from ..errors import SourceError

ORIGINS = ("feed", "bookmarklet", "paste", "api")
MAX_URL = 2000
MAX_ID = 2**31 - 1      # the id column is a 32-bit integer on PostgreSQL; larger ids name nothing


@dataclass(frozen=True)
class Candidate:
    """One link in the inbox; added_to is the issue it was moved into ("" while waiting)."""

    id: int
    url: str
    title: str
    site: str
    origin: str
    published: str
    added_to: str
    created_at: datetime
    image: str = ""
    blurb: str = ""
    fetch_state: str = ""       # "" (not yet), "fetching", "fetched" or "failed"
    fetch_error: str = ""       # one line: why the fetch failed
    item: str = ""              # the issue item made from the fetched article (JSON), or ""


def url_key(url: str) -> str:
    """Return the hex SHA-256 of url, the key under which the inbox knows it."""
    return hashlib.sha256(url.strip().encode("utf-8")).hexdigest()


def check_url(url: str) -> str:
    """Return url stripped when it is an http(s) URL of sane length; raise SourceError otherwise."""
    from urllib.parse import urlsplit

    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > MAX_URL or any(
            c.isspace() for c in url):
        raise SourceError(f"not a web address: {url[:200]!r} (give an http:// or https:// URL)", url)
    return url


class Inbox:
    """The candidates and dismissed links stored in one database."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def add(self, url: str, origin: str, title: str = "", site: str = "", published: str = "") -> Candidate | None:
        """Add url as a candidate and return it; None when it was dismissed before.

        A url already in the inbox is returned as it is (its title filled in when it had none).
        Raises SourceError for a url that is not an http(s) address.
        """
        url = check_url(url)
        if origin not in ORIGINS:
            raise ValueError(f"unknown origin {origin!r}")
        key = url_key(url)
        with write_transaction(self.engine) as conn:
            if conn.execute(select(dismissed_links.c.url_key).where(dismissed_links.c.url_key == key)).first():
                return None
            row = conn.execute(select(inbox_candidates).where(inbox_candidates.c.url_key == key)).first()
            if row is None:
                conn.execute(insert(inbox_candidates).values(
                    url=url, url_key=key, title=title[:1000], site=site[:300], origin=origin,
                    published=published[:40], added_to="", created_at=utcnow()))
            elif title and not row.title:
                conn.execute(update(inbox_candidates).where(inbox_candidates.c.id == row.id)
                             .values(title=title[:1000]))
            row = conn.execute(select(inbox_candidates).where(inbox_candidates.c.url_key == key)).one()
        return _candidate(row)

    def get(self, candidate_id: int) -> Candidate | None:
        """Return candidate candidate_id, or None."""
        if not 0 < candidate_id <= MAX_ID:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(select(inbox_candidates).where(inbox_candidates.c.id == candidate_id)).first()
        return _candidate(row) if row else None

    def list(self, *, waiting_only: bool = False, offset: int = 0, limit: int = 100) -> tuple[list[Candidate], int]:
        """Return (a page of candidates, newest first, the total count)."""
        query = select(inbox_candidates)
        count = select(func.count()).select_from(inbox_candidates)
        if waiting_only:
            query = query.where(inbox_candidates.c.added_to == "")
            count = count.where(inbox_candidates.c.added_to == "")
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(inbox_candidates.c.id.desc()).offset(offset).limit(limit)).all()
            total = conn.execute(count).scalar_one()
        return [_candidate(r) for r in rows], total

    def mark_added(self, candidate_id: int, issue_id: str) -> None:
        """Record that candidate candidate_id was moved into issue issue_id."""
        with write_transaction(self.engine) as conn:
            conn.execute(update(inbox_candidates).where(inbox_candidates.c.id == candidate_id)
                         .values(added_to=issue_id))

    def unfetched(self, limit: int = 100) -> list[Candidate]:
        """Return waiting candidates not fetched yet (oldest first), at most limit."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(inbox_candidates).where(
                inbox_candidates.c.added_to == "", inbox_candidates.c.fetch_state == "")
                .order_by(inbox_candidates.c.id).limit(limit)).all()
        return [_candidate(r) for r in rows]

    def claim_fetch(self, candidate_id: int) -> bool:
        """Mark the candidate as being fetched; False when it is gone or claimed already (another
        thread or process fetches it)."""
        with write_transaction(self.engine) as conn:
            done = conn.execute(update(inbox_candidates).where(
                inbox_candidates.c.id == candidate_id, inbox_candidates.c.fetch_state == "")
                .values(fetch_state="fetching"))
        return done.rowcount == 1

    def record_fetch(self, candidate_id: int, *, error: str = "", title: str = "", site: str = "",
                     published: str = "", image: str = "", blurb: str = "", item: str = "") -> None:
        """Store what the background fetch found (fetched), or why it failed (error: failed).

        A title the candidate already has (from the feed or the bookmarklet) is kept."""
        with write_transaction(self.engine) as conn:
            row = conn.execute(select(inbox_candidates).where(inbox_candidates.c.id == candidate_id)).first()
            if row is None:
                return
            if error:
                values = {"fetch_state": "failed", "fetch_error": error[:500]}
            else:
                values = {"fetch_state": "fetched", "fetch_error": "", "title": row.title or title[:1000],
                          "site": site[:300] or row.site, "published": row.published or published[:40],
                          "image": image[:2000], "blurb": blurb, "item": item}
            conn.execute(update(inbox_candidates).where(inbox_candidates.c.id == candidate_id).values(**values))

    def reset_interrupted(self) -> int:
        """Make fetches a stopped process left "fetching" run again; return how many."""
        with write_transaction(self.engine) as conn:
            return conn.execute(update(inbox_candidates).where(inbox_candidates.c.fetch_state == "fetching")
                                .values(fetch_state="")).rowcount

    def retry_fetch(self, candidate_id: int) -> None:
        """Let a failed (or interrupted) fetch of the candidate run again."""
        with write_transaction(self.engine) as conn:
            conn.execute(update(inbox_candidates).where(inbox_candidates.c.id == candidate_id)
                         .values(fetch_state="", fetch_error=""))

    def dismiss(self, candidate_id: int) -> bool:
        """Remove candidate candidate_id and remember its URL as dismissed; False when unknown."""
        if not 0 < candidate_id <= MAX_ID:
            return False
        with write_transaction(self.engine) as conn:
            row = conn.execute(select(inbox_candidates).where(inbox_candidates.c.id == candidate_id)).first()
            if row is None:
                return False
            conn.execute(delete(inbox_candidates).where(inbox_candidates.c.id == candidate_id))
            if not conn.execute(select(dismissed_links.c.url_key)
                                .where(dismissed_links.c.url_key == row.url_key)).first():
                conn.execute(insert(dismissed_links).values(url_key=row.url_key, url=row.url,
                                                            dismissed_at=utcnow()))
        return True


def _candidate(row: object) -> Candidate:
    """Return the Candidate of a database row."""
    return Candidate(row.id, row.url, row.title, row.site, row.origin, row.published,  # type: ignore[attr-defined]
                     row.added_to, row.created_at, row.image, row.blurb,  # type: ignore[attr-defined]
                     row.fetch_state, row.fetch_error, row.item)  # type: ignore[attr-defined]

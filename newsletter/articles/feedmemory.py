"""Which undated feed entries were taken already: an entry without a usable date counts as new
once, the first time a feed is read with a cut-off; its GUID (else its link) is remembered here."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import Column, Float, MetaData, String, Table, exc, insert, select
from sqlalchemy.engine import Engine

from ..config import Config
from ..db import create_tables, get_engine, write_transaction
from ..errors import ConfigError
from .sources import is_url

feed_memory_metadata = MetaData()
# Keys are SHA-256 digests of the feed's address and the entry's GUID: fixed length, whatever
# the feed writes (some GUIDs are whole URLs with long query strings).
feed_entries_seen = Table(
    "feed_entries_seen", feed_memory_metadata,
    Column("feed", String(64), primary_key=True),
    Column("guid", String(64), primary_key=True),
    Column("seen_at", Float, nullable=False),
)


def _key(value: str) -> str:
    """Return the fixed-length key of a feed address or GUID."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def feed_name(url_or_path: str) -> str:
    """Return the name a feed is remembered by: its URL, or a local file's absolute path."""
    return url_or_path if is_url(url_or_path) else str(Path(url_or_path).resolve())


class FeedMemory:
    """Remembers the undated entries each feed already offered (one row per feed and GUID)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        try:
            # Checked each time (a feed is read rarely): an engine's id may be reused after disposal.
            create_tables(engine, feed_memory_metadata)
        except exc.SQLAlchemyError as err:
            raise ConfigError(f"database: cannot create the feed memory table: {err}") from err

    @classmethod
    def of(cls, config: Config) -> "FeedMemory":
        """Return the memory in config's database; raises ConfigError."""
        return cls(get_engine(config))

    def seen(self, feed: str) -> set[str]:
        """Return the keys (see _key) of the GUIDs remembered for feed."""
        t = feed_entries_seen
        with self.engine.connect() as conn:
            return set(conn.execute(select(t.c.guid).where(t.c.feed == _key(feed_name(feed)))).scalars())

    def is_new(self, seen: set[str], guid: str) -> bool:
        """Return True when guid is not among seen (the keys self.seen returned)."""
        return _key(guid) not in seen

    def remember(self, feed: str, guids: Iterable[str]) -> None:
        """Remember guids as taken from feed (already remembered ones are left as they are)."""
        keys = {_key(g) for g in guids if g}
        if not keys:
            return
        t = feed_entries_seen
        name = _key(feed_name(feed))
        with write_transaction(self.engine) as conn:
            known = set(conn.execute(select(t.c.guid).where(t.c.feed == name, t.c.guid.in_(keys))).scalars())
            rows = [{"feed": name, "guid": k, "seen_at": time.time()} for k in keys - known]
            if rows:
                conn.execute(insert(t), rows)

"""The addresses an import has seen so far, kept on disk rather than in memory.

A million addresses in a Python set cost about 100 MB; an import only needs to ask, once per
batch, which of the batch's addresses an earlier batch of the same file had (a duplicate row).
SQLite's page cache is bounded (about 2 MB by default), so memory stays flat whatever the file's
size. The file holds 16-byte BLAKE2b digests of the address keys, never an address (personal
data), in a private temporary folder removed when the import ends.
"""

from __future__ import annotations

import hashlib
import sqlite3
import tempfile
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

_SLICE = 500            # keys per statement: within SQLite's limit of bound parameters


def _digest(key: str) -> bytes:
    """Return the 16-byte digest an address key is kept as (a collision every ~10^19 pairs)."""
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class SeenKeys:
    """A context manager: the set of address keys an import has merged so far."""

    def __enter__(self) -> "SeenKeys":
        self._folder = tempfile.TemporaryDirectory(prefix="newsletter-import-")   # 0700
        self._db = sqlite3.connect(Path(self._folder.name) / "seen.db", isolation_level=None)
        self._db.execute("PRAGMA journal_mode=OFF")         # scratch data: nothing to recover
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("CREATE TABLE seen (digest BLOB PRIMARY KEY) WITHOUT ROWID")
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._db.close()
        self._folder.cleanup()

    def add_new(self, keys: Iterable[str]) -> int:
        """Add keys (distinct) to the set; return how many of them were in it already."""
        digests = [_digest(k) for k in keys]
        before = 0
        self._db.execute("BEGIN")
        for i in range(0, len(digests), _SLICE):
            part = digests[i:i + _SLICE]
            before += self._db.execute(f"SELECT count(*) FROM seen WHERE digest IN ({','.join('?' * len(part))})",
                                       part).fetchone()[0]
            self._db.executemany("INSERT OR IGNORE INTO seen (digest) VALUES (?)", [(d,) for d in part])
        self._db.execute("COMMIT")
        return before

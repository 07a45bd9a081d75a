"""The rows a run takes from the ledger: claimed in chunks into a reserve, handed out as needed."""

from __future__ import annotations

from ..ledger import Claimed, Ledger

CLAIM_ROWS = 512        # rows claimed per transaction at least (a claim costs milliseconds)


class Claims:
    """Claims the rows of (issue, list) in id order, a chunk per transaction, for one run.

    Rows wait in a reserve until a task takes them. Each claimed row carries the run's id while
    "sending", so that after a crash the run's journal settles it; rows still in the reserve
    when the run stops go back to pending (see release).
    """

    def __init__(self, ledger: Ledger, issue_id: str, list_name: str, *, retry_unknown: bool,
                 run_id: str, chunk: int = CLAIM_ROWS, rows: tuple[int, int] | None = None):
        """rows, when given, is the inclusive range of row ids to keep within (a queue chunk)."""
        self.ledger, self.issue_id, self.list_name = ledger, issue_id, list_name
        self.retry_unknown, self.run_id, self.chunk = retry_unknown, run_id, max(1, chunk)
        self.reserve: list[Claimed] = []
        self.exhausted = False      # the ledger has no claimable row left after the cursor
        self._cursor = rows[0] - 1 if rows else 0
        self._until = rows[1] if rows else None

    @property
    def empty(self) -> bool:
        """Return True when no row is left to take."""
        return self.exhausted and not self.reserve

    def take(self, n: int) -> tuple[list[Claimed], int]:
        """Return up to n rows, claiming more when the reserve runs short, and how many rows the
        claim skipped (their subscribers left: marked "skipped")."""
        skipped = 0
        if n > len(self.reserve) and not self.exhausted:
            ask = max(n - len(self.reserve), self.chunk)
            rows, skipped, self._cursor = self.ledger.claim(
                self.issue_id, self.list_name, after_id=self._cursor, limit=ask,
                retry_unknown=self.retry_unknown, until_id=self._until, run_id=self.run_id)
            self.exhausted = len(rows) + skipped < ask
            self.reserve += rows
        taken = self.reserve[:n]
        del self.reserve[:n]
        return taken, skipped

    def again(self, row_ids: list[int]) -> list[Claimed]:
        """Claim deferred rows again for an in-run retry; return those still deferred and active."""
        return self.ledger.claim_rows(row_ids, self.run_id) if row_ids else []

    def release(self) -> list[Claimed]:
        """Return (and forget) the rows claimed but never handed to a task: to go back to pending."""
        rows, self.reserve = self.reserve, []
        return rows

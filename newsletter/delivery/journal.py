"""The send journal: which messages a run handed to the transport, and which came back delivered.

The ledger records results in batches (one transaction per tenth of a second), so a run killed
between a message going out and its batch being recorded leaves the row "sending" without
saying whether it went. The journal says it, cheaply: one small append-only file per issue next
to its send lock (state/issues/<id>/journal), one unbuffered write per message or batch, never
fsync'ed. A process killed even by SIGKILL loses nothing the kernel already holds (the page
cache outlives the process); only a machine crash can lose the tail, so the file names the boot
it was written in and is trusted in that boot only. Lines, one event each:

    B <boot id> <run id>              the first line: the boot and the run it belongs to
    W <subscriber id>                 the message is about to be handed over: it may arrive
    S <subscriber id> <message-id>    delivered
    N <subscriber id>                 done without being delivered (refused, deferred, untried)

An ambiguous result writes nothing, so its row stays "W". After a crash the last event of each
subscriber decides what its "sending" row becomes (see Ledger.recover): W unknown, S sent, N or
nothing pending (resent normally: its message never left). The journal speaks only for the rows
its own run claimed (the ledger marks each claimed row with the run id), never for rows another
run, or another host sharing the database, had in flight. Queue chunks, which another host may
retry, keep the same events in the ledger rows instead (LedgerJournal, ledger/marks.py).
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..ledger import marks
from ..models import Delivery, Recipient

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

JOURNAL_FILE = "journal"
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")      # Linux: changes at every boot

Settled = dict[int, tuple[str, str]]     # subscriber id -> (last event "W" | "S" | "N", message id)


def boot_id() -> str | None:
    """Return this machine's current boot id, or None where the system does not tell."""
    try:
        return BOOT_ID.read_text(encoding="ascii").strip() or None
    except OSError:
        return None


def read_journal(folder: Path) -> tuple[str, Settled] | None:
    """Return (run id, the last event of each subscriber) of folder's journal, or None when it
    cannot be trusted.

    None means: no journal, an unreadable one, or one written before the machine last booted
    (its tail may be lost), and then every row left "sending" must count as maybe delivered.
    """
    try:
        lines = (folder / JOURNAL_FILE).read_text(encoding="utf-8", errors="replace").split("\n")
    except OSError:
        return None
    boot = boot_id()
    head = lines[0].split(" ")
    if boot is None or len(head) != 3 or head[:2] != ["B", boot] or not head[2]:
        return None
    settled: Settled = {}
    for line in lines[1:]:
        kind, _, rest = line.partition(" ")
        sid, _, message_id = rest.partition(" ")
        if kind in ("W", "S", "N") and sid.isdigit():
            settled[int(sid)] = (kind, message_id)
        elif line:
            log.warning("%s: ignoring a damaged line: %r", folder / JOURNAL_FILE, line[:80])
    return head[2], settled


class Journal:
    """An open journal of one run; its methods may be called from several threads at once.

    Each call is one os.write to a file opened with O_APPEND: the kernel keeps each write
    whole and in order, so threads need no lock.
    """

    def __init__(self, folder: Path):
        """Start a fresh journal in folder for a new run (the previous one must have been read
        already); .run_id names the run (claim rows with it)."""
        self.path = folder / JOURNAL_FILE
        self.run_id = secrets.token_hex(8)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
            os.write(self._fd, f"B {boot_id() or '-'} {self.run_id}\n".encode("ascii"))
        except OSError as err:
            raise ConfigError(f"{self.path}: cannot write the send journal: {err.strerror or err}") from err

    def handed(self, recipients: Sequence[Recipient]) -> None:
        """Note that the messages of recipients are about to be handed over (Backend.on_handover)."""
        os.write(self._fd, "".join([f"W {r.subscriber_id}\n" for r in recipients
                                    if r.subscriber_id is not None]).encode("ascii"))

    def settled(self, results: Iterable[tuple[Recipient, object]]) -> None:
        """Note each (recipient, result) that ended: "S" for a Delivery, "N" for a result that
        says the message did not go. Ambiguous results are given as None and write nothing."""
        lines = []
        for r, result in results:
            if r.subscriber_id is None or result is None:
                continue
            if type(result) is Delivery:
                lines.append(f"S {r.subscriber_id} {r.message_id}\n")
            else:
                lines.append(f"N {r.subscriber_id}\n")
        if lines:
            os.write(self._fd, "".join(lines).encode("utf-8"))

    def close(self, *, remove: bool) -> None:
        """Close the file; remove it when the ledger holds every result (nothing left "sending")."""
        os.close(self._fd)
        if remove:
            try:
                self.path.unlink()
            except OSError as err:
                log.debug("cannot remove %s: %s", self.path, err)


class LedgerJournal:
    """A journal kept in the ledger rows (ledger/marks.py), for queue chunks: a chunk retried on
    another host after its worker died reads it there. Same methods as Journal; each call is one
    short transaction, so each message costs two round trips to the database (measured by
    bench/workers.py: they hide behind a relay's 50 ms a message)."""

    def __init__(self, engine: "Engine", issue_id: str):
        """Start the journal of a new run of issue_id's chunk; .run_id names the run (claim rows with it)."""
        self.engine, self.issue_id = engine, issue_id
        self.run_id = marks.new_run_id()

    def handed(self, recipients: Sequence[Recipient]) -> None:
        """Note that the messages of recipients are about to be handed over (Backend.on_handover)."""
        marks.mark_handed(self.engine, self.issue_id, self.run_id,
                          [r.subscriber_id for r in recipients if r.subscriber_id is not None])

    def settled(self, results: Iterable[tuple[Recipient, object]]) -> None:
        """Note each (recipient, result) that ended, as Journal.settled does."""
        marks.mark_settled(self.engine, self.issue_id, self.run_id,
                           [(r.subscriber_id, "S" if type(result) is Delivery else "N", r.message_id)
                            for r, result in results if r.subscriber_id is not None and result is not None])

    def close(self, *, remove: bool) -> None:
        """Nothing to close: recording a row replaces its mark."""


AnyJournal = Journal | LedgerJournal

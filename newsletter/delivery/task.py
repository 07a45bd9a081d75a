"""The worker side of the send loop: personalise one task's rows and send them in backend-sized batches."""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..backends.base import Backend, MessageSource
from ..errors import ConfigError, DeliveryError, NewsletterError, StopRun
from ..ledger import Claimed, Outcome
from ..models import Delivery, DeliveryState, Recipient
from .pacing import RateLimiter


class Marker:
    """Stands for a row's result when the backend gave none.

    kind "release": handed back untried (the run stopped first); "broken": its batch failed
    unexpectedly, so it may or may not have gone out; "fatal": its batch hit a ConfigError, not
    sent and the run stops; "unbuildable": its message could not be personalised.
    """

    def __init__(self, kind: str, error: BaseException | None = None):
        self.kind, self.error = kind, error


RELEASE = Marker("release")
NO_RECIPIENT = Recipient(email="", message_id="")
Result = Delivery | DeliveryError | Marker
# What a task hands back: its rows, their recipients and results, index for index (three lists
# rather than a tuple per row: fewer objects for the garbage collector to scan while in flight),
# and, when every row was delivered, the outcomes to record: made on the worker, whose time is
# plentiful, rather than on the main thread, which the whole pipeline waits for.
TaskResult = tuple[list[Claimed], list[Recipient], list[Result], "list[Outcome] | None"]
_tuple_new = tuple.__new__


class TaskRunner:
    """Runs on a worker thread: called with claimed rows, returns their TaskResult (never raises)."""

    def __init__(self, *, recipient: Callable[..., Recipient], backend: Backend, source: MessageSource,
                 batch: int, limiter: RateLimiter, stop: threading.Event):
        self.recipient, self.backend, self.source = recipient, backend, source
        self.batch, self.limiter, self.stop = batch, limiter, stop

    def __call__(self, claimed: list[Claimed]) -> TaskResult:
        """Personalise and send claimed in batches; return each row with its recipient and result."""
        rows: list[Claimed] = []
        recipients: list[Recipient] = []
        results: list[Result] = []
        ok_rows: list[Claimed] = []
        ok_recipients: list[Recipient] = []
        # Built here rather than in the main thread, which meanwhile talks to the database.
        for c in claimed:
            try:
                ok_recipients.append(self.recipient(c.email, c.name, c.fields, c.subscriber_id))
            except NewsletterError as err:
                rows.append(c)
                recipients.append(NO_RECIPIENT)
                results.append(Marker("unbuildable", err))
            else:
                ok_rows.append(c)
        for i in range(0, len(ok_rows), self.batch):
            part = ok_recipients[i:i + self.batch]
            rows += ok_rows[i:i + self.batch]
            recipients += part
            if self.stop.is_set() or not self.limiter.acquire(len(part), self.stop):
                results += [RELEASE] * len(part)
                continue
            results += self._send(part)
        delivered = None
        if rows and all(type(r) is Delivery for r in results):
            # tuple.__new__ skips the Python-level __new__ a NamedTuple adds (same object).
            delivered = [_tuple_new(Outcome, (c.row_id, DeliveryState.SENT, d.message_id or rec.message_id,
                                              d.provider_id, d.reply, None))
                         for c, rec, d in zip(rows, recipients, results)]
        return rows, recipients, results, delivered

    def _send(self, part: list[Recipient]) -> list[Result]:
        """Return the backend's result for each recipient of part, or a Marker when it gave none."""
        try:
            sent: list[Result] = list(self.backend.send(self.source, part))
        except (ConfigError, StopRun) as err:
            self.stop.set()
            return [Marker("fatal", err)] * len(part)
        except DeliveryError as err:
            return [err] * len(part)               # the whole batch failed the same way
        except Exception as err:  # noqa: BLE001 - a backend bug must not lose track of the rows
            self.stop.set()
            return [Marker("broken", err)] * len(part)
        if len(sent) != len(part):
            self.stop.set()
            return [Marker("broken", ValueError(f"{len(sent)} results for {len(part)} messages"))] * len(part)
        return sent

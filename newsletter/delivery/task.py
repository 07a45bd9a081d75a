"""The worker side of the send loop: personalise one task's rows, send them in backend-sized
batches, journal and weigh each batch's results as soon as they come."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from ..backends.base import Backend, MessageSource
from ..errors import AmbiguousDelivery, ConfigError, DeliveryError, NewsletterError, PolicyRefusal, StopRun
from ..ledger import Claimed, Outcome, format_reply
from ..models import Delivery, DeliveryState, Recipient, ReplyClass
from .journal import AnyJournal
from .pacing import CircuitBreaker, RateLimiter


class Marker:
    """Stands for a row's result when the backend gave none.

    kind "release": handed back untried (the run stopped first); "broken": its batch failed
    unexpectedly, so it may or may not have gone out; "fatal": its batch hit a ConfigError or
    StopRun, not sent and the run stops; "unbuildable": its message could not be personalised.
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
_DELIVERED = format_reply(ReplyClass.DELIVERED, "")


class TaskRunner:
    """Runs on a worker thread: called with claimed rows, returns their TaskResult (never raises).

    After each backend call it notes the results in the journal (when there is one) and in the
    circuit breaker, and sets stop when the run must not go on (a StopRun, a ConfigError, the
    breaker tripped), so the other workers stop before their next batch.
    """

    def __init__(self, *, recipient: Callable[..., Recipient], backend: Backend, source: MessageSource,
                 batch: int, limiter: RateLimiter, stop: threading.Event, breaker: CircuitBreaker,
                 journal: AnyJournal | None = None):
        self.recipient, self.backend, self.source = recipient, backend, source
        self.batch, self.limiter, self.stop = batch, limiter, stop
        self.breaker, self.journal = breaker, journal

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
                self._weigh([Marker("unbuildable", err)])
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
                                              d.provider_id, _DELIVERED + d.reply, None))
                         for c, rec, d in zip(rows, recipients, results)]
        return rows, recipients, results, delivered

    def _send(self, part: list[Recipient]) -> list[Result]:
        """Return the backend's result for each recipient of part, or a Marker when it gave none."""
        backend = self.backend
        if not backend.reports_handover:
            backend.handing_over(part)              # as far as we know, all of them may go now
        results: list[Result]
        reported = False
        try:
            results = list(backend.send(self.source, part))
            reported = backend.reports_results
        except (ConfigError, StopRun) as err:
            results = [Marker("fatal", err)] * len(part)
        except DeliveryError as err:
            results = [err] * len(part)             # the whole batch failed the same way
        except Exception as err:  # noqa: BLE001 - a backend bug must not lose track of the rows
            results = [Marker("broken", err)] * len(part)
        else:
            if len(results) != len(part):
                results = [Marker("broken", ValueError(f"{len(results)} results for {len(part)} messages"))] * len(part)
                reported = False
        if not reported:
            self.settle(part, results)
        return results

    def settle(self, part: Sequence[Recipient], results: Sequence[Result]) -> None:
        """Note results in the journal and the circuit breaker (Backend.on_results, or after send()).

        Ambiguous and broken results stay "handed over" in the journal: they may have arrived.
        """
        if self.journal is not None:
            self.journal.settled((r, None if isinstance(x, AmbiguousDelivery) or
                                  (isinstance(x, Marker) and x.kind == "broken") else x)
                                 for r, x in zip(part, results))
        self._weigh(results)

    def _weigh(self, results: Sequence[Result]) -> None:
        """Add results to the circuit breaker; set stop when they stop the run."""
        failures: list[bool] = []
        last = ""
        stop = False
        for x in results:
            if type(x) is Delivery:
                failures.append(False)
            elif isinstance(x, PolicyRefusal):
                failures.append(True)                # one mailbox's filter, or everyone's: the breaker tells
                last = x.reply or str(x)
            elif isinstance(x, StopRun) or (isinstance(x, Marker) and x.kind in ("fatal", "broken")):
                stop = True                          # stops the run by itself: not a cluster
            elif isinstance(x, DeliveryError):
                failures.append(True)
                last = x.reply or str(x)
            elif isinstance(x, Marker) and x.kind == "unbuildable":
                failures.append(True)
                last = str(x.error)
        if failures and not any(failures):
            self.breaker.add_successes(len(failures))
        elif failures and self.breaker.add(failures, last):
            stop = True
        if stop:
            self.stop.set()


def reply_of(error: BaseException) -> str:
    """Return the reply to record for an error: its class and the server's reply (or its message).

    A ConfigError (credentials, endpoint) stops the run like a refusal of the sender does.
    """
    reply = getattr(error, "reply", "") or str(error)
    kind = ReplyClass.SENDER if isinstance(error, ConfigError) else getattr(error, "reply_class", None)
    return format_reply(kind, reply) if kind is not None else reply

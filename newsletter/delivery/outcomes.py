"""What the send loop makes of each row's result: its ledger outcome, an in-run retry, the tally."""

from __future__ import annotations

import heapq
import logging
import threading
import time
from dataclasses import dataclass

from ..errors import (AmbiguousDelivery, DeliveryError, PolicyRefusal, RecipientRejected, StopRun,
                      TransientDeliveryError)
from ..ledger import Outcome, format_reply
from ..models import Delivery, DeliveryState, Recipient, ReplyClass
from .record import Recorder
from .task import Marker, reply_of

log = logging.getLogger("newsletter.delivery.loop")

MAX_RETRY_WAIT = 300.0  # a retry further away than this is left deferred for the next run


@dataclass
class LoopTally:
    """What one run did, row by row."""

    sent: int = 0
    bounced: int = 0
    deferred: int = 0       # left deferred for the next run
    failed: int = 0
    skipped: int = 0
    unknown: int = 0        # may have been delivered: ambiguous replies, batches that broke
    released: int = 0       # claimed but handed back untried (or held bounces voided) when the run stopped
    retries: int = 0
    paused: str = ""        # why the circuit breaker stopped the run, when it did


class RowOutcomes:
    """The result half of SendLoop (a mixin: it needs the loop's book, tally, stop, fatal, done,
    backoff, max_attempts and its retry heap and per-row attempt counts)."""

    book: Recorder
    tally: LoopTally
    stop: threading.Event
    fatal: BaseException | None
    refusal: PolicyRefusal | None       # the first policy refusal of one message in this run
    done: int
    backoff: float
    max_attempts: int
    _retries: list[tuple[float, int]]
    _tries: dict[int, int]

    def _one(self, rid: int, sid: int | None, rec: Recipient, result: object, tries: int) -> None:
        """Turn one row's result into its outcome (tries: this row's attempts in this run)."""
        book, tally = self.book, self.tally
        if isinstance(result, Delivery):
            book.add(Outcome(rid, DeliveryState.SENT, result.message_id or rec.message_id,
                             result.provider_id, reply_of_delivery(result)))
            tally.sent += 1
        elif isinstance(result, RecipientRejected):
            log.warning("%s rejected: %s", rec.email, result.reply or result)
            book.hold(Outcome(rid, DeliveryState.BOUNCED, rec.message_id, reply=reply_of(result), subscriber_id=sid))
        elif isinstance(result, TransientDeliveryError):
            self._transient(rid, rec, result, tries)
            return
        elif isinstance(result, AmbiguousDelivery):
            log.warning("%s: %s", rec.email, result)
            book.add(Outcome(rid, DeliveryState.UNKNOWN, rec.message_id, reply=reply_of(result)))
            tally.unknown += 1
        elif isinstance(result, PolicyRefusal):
            # Failed for this mailbox, if the run goes on without the breaker tripping; else the
            # server refuses everyone and the row goes back to pending (Recorder.void_held).
            log.warning("%s refused: %s", rec.email, result.reply or result)
            book.hold(Outcome(rid, DeliveryState.FAILED, rec.message_id, reply=reply_of(result)))
            self.refusal = self.refusal or result
        elif isinstance(result, StopRun):
            # Not sent, or refused for a reason that is not the address: the row stays pending.
            if result.reply and (self.fatal is None or not getattr(self.fatal, "reply", "")):
                self.fatal = result
            book.add(Outcome(rid, DeliveryState.PENDING, reply=reply_of(result) if result.reply else ""))
            tally.released += 1
            return
        elif isinstance(result, DeliveryError):
            log.warning("%s failed: %s", rec.email, result.reply or result)
            book.add(Outcome(rid, DeliveryState.FAILED, rec.message_id, reply=reply_of(result)))
            tally.failed += 1
        elif not isinstance(result, Marker):
            raise TypeError(f"not a result: {result!r}")
        elif result.kind == "unbuildable":
            book.add(Outcome(rid, DeliveryState.FAILED, reply=format_reply(ReplyClass.FAILED, str(result.error))))
            tally.failed += 1
        elif result.kind == "fatal":
            self.fatal = self.fatal or result.error
            book.add(Outcome(rid, DeliveryState.PENDING, reply=reply_of(result.error)))
            tally.released += 1
            return
        elif result.kind == "broken":
            self.fatal = self.fatal or result.error
            book.add(Outcome(rid, DeliveryState.UNKNOWN, rec.message_id,
                             reply=format_reply(ReplyClass.AMBIGUOUS, f"backend error: {result.error}")))
            tally.unknown += 1
        else:
            book.add(Outcome(rid, DeliveryState.PENDING))
            tally.released += 1
            return
        self.done += 1

    def _transient(self, rid: int, rec: Recipient, err: TransientDeliveryError, tries: int) -> None:
        """Record a temporary failure and schedule the retry, or leave the row for the next run."""
        reply = reply_of(err)
        delay = err.retry_after if err.retry_after is not None else self.backoff * 2 ** (tries - 1)
        outcome = Outcome(rid, DeliveryState.DEFERRED, rec.message_id, reply=reply)
        self.book.add(outcome)
        if tries < self.max_attempts and delay <= MAX_RETRY_WAIT and not self.stop.is_set():
            log.debug("%s deferred (%s): retry %d in %.1fs", rec.email, reply, tries + 1, delay)
            heapq.heappush(self._retries, (time.monotonic() + delay, rid))
            self._tries[rid] = tries
        else:
            log.warning("%s deferred to the next run (attempt %d failed): %s", rec.email, tries, reply)
            self.tally.deferred += 1
            self.done += 1


def reply_of_delivery(delivery: Delivery) -> str:
    """Return the reply to record for a delivered message."""
    return format_reply(ReplyClass.DELIVERED, delivery.reply)

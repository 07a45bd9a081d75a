"""SMTP backend: a pool of persistent connections, one classified transaction per message."""

from __future__ import annotations

import logging
import queue
import smtplib
import threading
from collections.abc import Sequence
from email.utils import parseaddr
from typing import TYPE_CHECKING

import idna

from ..errors import (
    AmbiguousDelivery,
    ConfigError,
    DeliveryError,
    NewsletterError,
    PolicyRefusal,
    StopRun,
    TransientDeliveryError,
)
from ..models import Delivery, Recipient, ReplyClass
from .base import Backend, MessageSource
from .replies import Stage, classify_smtp, error_for
from .smtp_session import Connector, Unreachable, drop
from .smtp_wire import Envelope, Lost, envelope, envelope_address, hand_over, open_envelope, pipelines

if TYPE_CHECKING:
    from ..config import Config

log = logging.getLogger(__name__)


class SMTPBackend(Backend):
    """Sends each message in its own SMTP transaction over up to smtp.connections reused connections.

    Timeouts follow RFC 5321 §4.5.3.2 unless configured: delivery.smtp.timeout (5 minutes) for
    the greeting and each command, delivery.smtp.data_timeout (10 minutes) for the reply to a
    message. A connection lost after the message was written makes that one message ambiguous;
    one lost before it is retried once on a new connection.
    """

    # Up to 8 messages a call on one connection, each message's envelope pipelined with the
    # message before it. Each result is reported as it comes and the loop is asked between
    # messages whether the run stops, so a batch never runs on past a tripped breaker.
    max_batch = 8
    reports_handover = True
    reports_results = True

    def __init__(self, config: "Config"):
        super().__init__(config)
        cfg = config.delivery.smtp
        if cfg.connections < 1:
            raise ConfigError("delivery.smtp.connections: must be at least 1")
        self.cfg = cfg
        self._connector = Connector(cfg)
        self.where = self._connector.where
        self.sender = parseaddr(config.newsletter.sender)[1]
        self._idle: queue.LifoQueue[smtplib.SMTP] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(cfg.connections)

    # -- connections ----------------------------------------------------------------------

    def open(self) -> None:
        """Connect and log in once so that wrong settings stop the send; raises ConfigError."""
        try:
            conn = self._connector.connect()
        except Unreachable as err:
            raise ConfigError(f"cannot reach SMTP server {self.where}: {err}") from err
        self._idle.put(conn)

    def close(self) -> None:
        """Say QUIT on every idle connection."""
        while True:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                return
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError) as err:
                log.debug("QUIT to %s failed: %s", self.where, err)
                drop(conn)

    # -- sending --------------------------------------------------------------------------

    def send(self, source: MessageSource, batch: Sequence[Recipient]) -> list[Delivery | DeliveryError]:
        """Send one message per recipient over one pooled connection; see Backend.send.

        Between messages it asks should_stop(); after a refusal that stops the run (StopRun),
        or once the run is stopping, the rest of the batch is not tried: each gets a StopRun
        without a reply. Raises ConfigError or TransientDeliveryError when no connection can be
        made for the first message.
        """
        results: list[Delivery | DeliveryError] = []
        built: list[bytes | None] = [None] * len(batch)
        ahead = False               # the envelope of the next message went out with the last one
        with self._slots:
            try:
                conn: smtplib.SMTP | None = self._idle.get_nowait()
            except queue.Empty:
                conn = None
            clean = False           # any exception may leave a transaction open: then drop
            try:
                for i in range(len(batch)):
                    if i and self.stopping():
                        self._report(results, batch[i:], _unsent(batch[i:], StopRun("the run is stopping")))
                        break
                    try:
                        conn, result, ahead = self._send_one(conn, source, batch, i, built, ahead)
                    except (ConfigError, TransientDeliveryError) as err:
                        if not results:
                            raise       # nothing of this batch went out: fail it whole
                        self._report(results, batch[i:], _unsent(batch[i:], err))
                        break
                    self._report(results, batch[i:i + 1], [result])
                    if isinstance(result, StopRun) and not isinstance(result, PolicyRefusal):
                        self._report(results, batch[i + 1:], _unsent(batch[i + 1:], result))
                        break
                clean = True
            finally:
                if conn is not None and (ahead or not clean):
                    drop(conn)     # an envelope may be open: closing discards it (RFC 5321 §3.8)
                elif conn is not None:
                    self._idle.put(conn)
        return results

    def _report(self, results: list[Delivery | DeliveryError], recipients: Sequence[Recipient],
                new: list[Delivery | DeliveryError]) -> None:
        """Add new results (of recipients) to results and report them to the send loop."""
        if new:
            results += new
            self.reporting(recipients, new)

    def _send_one(self, conn: smtplib.SMTP | None, source: MessageSource, batch: Sequence[Recipient], i: int,
                  built: list[bytes | None], ahead: bool
                  ) -> tuple[smtplib.SMTP | None, Delivery | DeliveryError, bool]:
        """Send batch[i]; return the connection to go on with, the result, and whether the next
        message's envelope went out with this one (ahead: this one's envelope already did).

        Raises TransientDeliveryError when no connection can be made, ConfigError on wrong settings.
        """
        recipient = batch[i]
        rcpt = recipient.email
        message = built[i] if built[i] is not None else source.build(recipient)
        for attempt in (1, 2):
            if conn is None:
                try:
                    conn = self._connector.connect()
                except Unreachable as err:
                    raise TransientDeliveryError(f"cannot reach SMTP server {self.where}: {err}",
                                                 rcpt, str(err)) from err
                ahead = False
            to = self._envelope_rcpt(conn, rcpt)
            if isinstance(to, DeliveryError):
                return conn, to, False
            try:
                refusal = open_envelope(conn, envelope(conn, self._envelope_sender(conn, source, recipient), to,
                                                        len(message)),
                                        written=ahead)
                ahead = False
                if refusal is None:
                    then = self._lookahead(conn, source, batch, i + 1, built)
                    self.handing_over((recipient,))
                    reply = hand_over(conn, message, data_timeout=self.cfg.data_timeout, then=then)
                    ahead = then is not None
                else:
                    reply = refusal
            except Lost as err:
                drop(conn)
                conn, ahead = None, False
                if err.handed:
                    return None, AmbiguousDelivery(
                        f"SMTP server {self.where}: no reply to the message to {rcpt} ({err}); "
                        "it may have been accepted", rcpt, f"no reply after the message: {err}"), False
                if attempt == 2:
                    return None, TransientDeliveryError(
                        f"SMTP server {self.where} dropped the connection: {err}", rcpt, str(err)), False
                continue        # nothing was handed over: a fresh connection cannot duplicate it
            if reply.code == 421:
                drop(conn)     # the server is closing this connection (RFC 5321 §3.8)
                conn, ahead = None, False
            kind = classify_smtp(reply.code, reply.text, reply.stage)
            if kind is ReplyClass.DELIVERED:
                return conn, Delivery(recipient=rcpt, message_id=recipient.message_id, reply=reply.line), ahead
            return conn, error_for(kind, f"SMTP server {self.where} refused the message to {rcpt} "
                                   f"at {reply.stage}: {reply.line}", rcpt, reply.line,
                                   one_message=reply.stage in (Stage.RCPT, Stage.END)), ahead
        raise AssertionError("unreachable")

    def _lookahead(self, conn: smtplib.SMTP, source: MessageSource, batch: Sequence[Recipient], j: int,
                   built: list[bytes | None]) -> Envelope | None:
        """Return the envelope of batch[j] to send right after the current message, or None when
        there is none to send that way (no pipelining, the end of the batch, the run stopping,
        an address this server cannot take, a message that cannot be built: those go alone)."""
        if j >= len(batch) or not pipelines(conn) or self.stopping():
            return None
        to = self._envelope_rcpt(conn, batch[j].email)
        if isinstance(to, DeliveryError):
            return None
        try:
            built[j] = message = source.build(batch[j])
        except NewsletterError:
            return None          # raised again, for that message, when its turn comes
        return envelope(conn, self._envelope_sender(conn, source, batch[j]), to, len(message))

    def _envelope_rcpt(self, conn: smtplib.SMTP, rcpt: str) -> str | DeliveryError:
        """Return rcpt as this connection's envelope carries it, or the row's error when it cannot."""
        try:
            to = envelope_address(rcpt, "smtputf8" in conn.esmtp_features)
        except idna.IDNAError as err:
            return DeliveryError(f"{rcpt}: the domain has no IDNA form ({err})", rcpt, "")
        if to is None:
            return DeliveryError(f"{rcpt}: SMTP server {self.where} does not offer SMTPUTF8 (RFC 6531), "
                                 "so an address with a non-ASCII local part cannot go through it", rcpt, "")
        return to

    def _envelope_sender(self, conn: smtplib.SMTP, source: MessageSource, recipient: Recipient) -> str:
        """Return the MAIL FROM address of recipient's message: its VERP return path when the source
        gives one (bounces.return_path: a bounce then names its message), else the From address.
        Raises ConfigError when the address cannot go through this server."""
        return_path = getattr(source, "return_path", None)
        address = (return_path(recipient) if return_path is not None else "") or self.sender
        try:
            sender = envelope_address(address, "smtputf8" in conn.esmtp_features)
        except idna.IDNAError as err:
            raise ConfigError(f"newsletter.sender: the domain of {address} has no IDNA form ({err})") from err
        if sender is None:
            raise ConfigError(f"newsletter.sender: SMTP server {self.where} does not offer SMTPUTF8, "
                              f"so the non-ASCII address {address} cannot send through it")
        return sender


def _unsent(rest: Sequence[Recipient], err: Exception) -> list[DeliveryError]:
    """Return, for each recipient a failure kept from being tried, an error of the same class.

    A transient failure leaves them to be retried; anything else stops the run with them
    untried (StopRun without a reply: their rows stay pending).
    """
    if isinstance(err, TransientDeliveryError):
        return [TransientDeliveryError(f"not sent to {r.email}: {err}", r.email, str(err)) for r in rest]
    return [StopRun(f"not sent to {r.email}: {err}", r.email, "") for r in rest]

"""SMTP backend: a pool of persistent smtplib connections; maps SMTP replies to results."""

from __future__ import annotations

import logging
import queue
import smtplib
import socket
import ssl
import threading
from collections.abc import Sequence
from email.utils import parseaddr
from functools import lru_cache
from typing import TYPE_CHECKING

from ..config import secret
from ..errors import (
    ConfigError,
    DeliveryError,
    RecipientRejected,
    TransientDeliveryError,
)
from ..models import Delivery, Recipient
from .base import Backend, MessageSource

if TYPE_CHECKING:
    from ..config import Config

log = logging.getLogger(__name__)

SECURITY = ("none", "starttls", "ssl")
# What a disconnect or network failure looks like from smtplib.
_LINK_ERRORS = (smtplib.SMTPServerDisconnected, OSError)


class _Unreachable(Exception):
    """A connection could not be made (refused, timed out, dropped while greeting)."""


@lru_cache(maxsize=1)
def _local_hostname() -> str:
    """Return the name this host gives in EHLO (looked up once, not per connection)."""
    return socket.getfqdn()


def _reply(code: int, text: bytes | str) -> str:
    """Return an SMTP reply as one line: "550 5.1.1 no such user"."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {' '.join(text.split())}".strip()


class SMTPBackend(Backend):
    """Sends each message in its own SMTP transaction over up to smtp.connections reused connections."""

    max_batch = 50

    def __init__(self, config: "Config"):
        super().__init__(config)
        cfg = config.delivery.smtp
        if cfg.security not in SECURITY:
            raise ConfigError(f"delivery.smtp.security: {cfg.security!r} is not one of {', '.join(SECURITY)}")
        if cfg.connections < 1:
            raise ConfigError("delivery.smtp.connections: must be at least 1")
        self.cfg = cfg
        self.where = f"{cfg.host}:{cfg.port}"
        self.sender = parseaddr(config.newsletter.sender)[1]
        self._password = secret(cfg.password_env, "delivery.smtp.password_env") if cfg.username else ""
        self._tls: ssl.SSLContext | None = None
        if cfg.security != "none":
            # Certificates and host names are always verified; ca_file adds a private CA.
            try:
                self._tls = ssl.create_default_context(cafile=cfg.ca_file or None)
            except (OSError, ssl.SSLError) as err:
                raise ConfigError(f"delivery.smtp.ca_file: cannot load {cfg.ca_file}: {err}") from err
        self._idle: queue.LifoQueue[smtplib.SMTP] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(cfg.connections)

    # -- connections ----------------------------------------------------------------------

    def open(self) -> None:
        """Connect and log in once so that wrong settings stop the send; raises ConfigError."""
        try:
            conn = self._connect()
        except _Unreachable as err:
            raise ConfigError(f"cannot reach SMTP server {self.where}: {err}") from err
        self._idle.put(conn)

    def _connect(self) -> smtplib.SMTP:
        """Return a new connection, greeted, secured and logged in; raises ConfigError or _Unreachable."""
        cfg, host = self.cfg, _local_hostname()
        try:
            if cfg.security == "ssl":
                conn: smtplib.SMTP = smtplib.SMTP_SSL(cfg.host, cfg.port, host, timeout=cfg.timeout,
                                                      context=self._tls)
            else:
                conn = smtplib.SMTP(cfg.host, cfg.port, host, timeout=cfg.timeout)
        except ssl.SSLError as err:
            raise ConfigError(f"TLS with SMTP server {self.where} failed: {err}") from err
        except smtplib.SMTPConnectError as err:
            return self._refused_greeting(err)
        except _LINK_ERRORS as err:
            raise _Unreachable(str(err) or type(err).__name__) from err
        try:
            conn.ehlo_or_helo_if_needed()
            if cfg.security == "starttls":
                if not conn.has_extn("starttls"):
                    raise ConfigError(f"SMTP server {self.where} does not offer STARTTLS")
                conn.starttls(context=self._tls)
                conn.ehlo()
            if cfg.username:
                conn.login(cfg.username, self._password)
            return conn
        except ssl.SSLError as err:
            _drop(conn)
            raise ConfigError(f"TLS with SMTP server {self.where} failed: {err}") from err
        except smtplib.SMTPAuthenticationError as err:
            _drop(conn)
            raise ConfigError(f"SMTP server {self.where} refused the login of {cfg.username!r}: "
                              f"{_reply(err.smtp_code, err.smtp_error)}") from err
        except smtplib.SMTPNotSupportedError as err:
            _drop(conn)
            raise ConfigError(f"SMTP server {self.where}: {err} (check delivery.smtp.security)") from err
        except smtplib.SMTPResponseException as err:
            _drop(conn)
            if 400 <= err.smtp_code < 500:
                raise _Unreachable(_reply(err.smtp_code, err.smtp_error)) from err
            raise ConfigError(f"SMTP server {self.where} refused the session: "
                              f"{_reply(err.smtp_code, err.smtp_error)}") from err
        except _LINK_ERRORS as err:
            _drop(conn)
            raise _Unreachable(str(err) or type(err).__name__) from err
        except BaseException:
            _drop(conn)
            raise

    def _refused_greeting(self, err: smtplib.SMTPConnectError) -> smtplib.SMTP:
        """Raise _Unreachable for a 4xx greeting (busy, try later) and ConfigError for a 5xx one."""
        reply = _reply(err.smtp_code, err.smtp_error)
        if 400 <= err.smtp_code < 500:
            raise _Unreachable(reply) from err
        raise ConfigError(f"SMTP server {self.where} refused the connection: {reply}") from err

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
                _drop(conn)

    # -- sending --------------------------------------------------------------------------

    def send(self, source: MessageSource, batch: Sequence[Recipient]) -> list[Delivery | DeliveryError]:
        """Send one message per recipient over one pooled connection; see Backend.send."""
        results: list[Delivery | DeliveryError] = []
        with self._slots:
            try:
                conn: smtplib.SMTP | None = self._idle.get_nowait()
            except queue.Empty:
                conn = None
            try:
                for recipient in batch:
                    try:
                        conn, result = self._send_one(conn, source, recipient)
                    except (ConfigError, TransientDeliveryError) as err:
                        if not results:
                            raise       # nothing of this batch went out: fail it whole
                        # Part of the batch went out: report it, and let the next batch stop or wait.
                        results += _unsent(batch[len(results):], err)
                        break
                    results.append(result)
            finally:
                if conn is not None:
                    self._idle.put(conn)
        return results

    def _send_one(self, conn: smtplib.SMTP | None, source: MessageSource,
                  recipient: Recipient) -> tuple[smtplib.SMTP | None, Delivery | DeliveryError]:
        """Return the connection to go on with and the result of one transaction.

        Raises TransientDeliveryError when no connection can be made, ConfigError on wrong settings.
        """
        message = source.build(recipient)
        for attempt in (1, 2):
            if conn is None:
                try:
                    conn = self._connect()
                except _Unreachable as err:
                    raise TransientDeliveryError(f"cannot reach SMTP server {self.where}: {err}",
                                                 recipient.email, str(err)) from err
            try:
                return conn, self._transaction(conn, message, recipient)
            except _Stale as err:
                # The server closed an idle connection before our MAIL FROM: nothing was sent,
                # so reconnecting and trying once more cannot duplicate the message.
                _drop(conn)
                conn = None
                if attempt == 2:
                    return None, TransientDeliveryError(
                        f"SMTP server {self.where} dropped the connection: {err}", recipient.email, str(err))
            except _Lost as err:
                _drop(conn)
                return None, TransientDeliveryError(
                    f"SMTP server {self.where} dropped the connection while sending to "
                    f"{recipient.email}: {err}", recipient.email, str(err))
        raise AssertionError("unreachable")

    def _transaction(self, conn: smtplib.SMTP, message: bytes, recipient: Recipient) -> Delivery | DeliveryError:
        """Run MAIL, RCPT, DATA for one message; return a Delivery or the recipient's DeliveryError."""
        rcpt = recipient.email
        options = []
        if conn.has_extn("size"):
            options.append(f"SIZE={len(message)}")
        if not (rcpt.isascii() and self.sender.isascii()):
            if not conn.has_extn("smtputf8"):
                # Our relay's limit, not a bad address: a failure of this message (status
                # --failures shows it), never a bounce that would suppress the subscriber.
                return DeliveryError(f"SMTP server {self.where} cannot take the non-ASCII "
                                     f"address {rcpt} (no SMTPUTF8)", rcpt,
                                     f"SMTP server {self.where} offers no SMTPUTF8 for a non-ASCII address")
            options.append("SMTPUTF8")
        try:
            code, text = conn.mail(self.sender, options)
        except _LINK_ERRORS as err:
            raise _Stale(str(err)) from err
        if code != 250:
            self._reset(conn)
            reply = _reply(code, text)
            if 400 <= code < 500:
                return TransientDeliveryError(f"SMTP server {self.where} deferred sender {self.sender}: "
                                              f"{reply}", rcpt, reply)
            raise ConfigError(f"SMTP server {self.where} refused sender {self.sender}: {reply}")
        try:
            code, text = conn.rcpt(rcpt)
            if code not in (250, 251):
                self._reset(conn)
                return _refused(f"SMTP server {self.where} refused {rcpt}", code, text, rcpt)
            try:
                code, text = conn.data(message)
            except smtplib.SMTPDataError as err:      # DATA itself refused (no 354)
                self._reset(conn)
                return _refused(f"SMTP server {self.where} refused data for {rcpt}",
                                err.smtp_code, err.smtp_error, rcpt)
        except _LINK_ERRORS as err:
            raise _Lost(str(err) or type(err).__name__) from err
        if code != 250:
            return _refused(f"SMTP server {self.where} refused the message to {rcpt}", code, text, rcpt)
        reply = _reply(code, text)
        return Delivery(recipient=rcpt, message_id=recipient.message_id, reply=reply)

    def _reset(self, conn: smtplib.SMTP) -> None:
        """Send RSET so the connection can carry the next transaction; a dead link shows up next time."""
        try:
            conn.rset()
        except _LINK_ERRORS as err:
            log.debug("RSET to %s failed: %s", self.where, err)


class _Stale(Exception):
    """The connection failed before the server accepted anything of this message."""


class _Lost(Exception):
    """The connection failed mid-transaction: the server may or may not have the message."""


def _refused(what: str, code: int, text: bytes | str, rcpt: str) -> DeliveryError:
    """Return RecipientRejected for a 5xx reply and TransientDeliveryError for anything else."""
    reply = _reply(code, text)
    if 500 <= code < 600:
        return RecipientRejected(f"{what}: {reply}", rcpt, reply)
    return TransientDeliveryError(f"{what}: {reply}", rcpt, reply)


def _unsent(rest: Sequence[Recipient], err: Exception) -> list[DeliveryError]:
    """Return a TransientDeliveryError for each recipient a failure kept from being tried."""
    return [TransientDeliveryError(f"not sent to {r.email}: {err}", r.email, str(err)) for r in rest]


def _drop(conn: smtplib.SMTP) -> None:
    """Close a connection without a goodbye (it is broken or unwanted)."""
    try:
        conn.close()
    except OSError:
        pass

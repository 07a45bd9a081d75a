"""Opening SMTP connections: TCP or implicit TLS, greeting, EHLO, STARTTLS and login (smtplib)."""

from __future__ import annotations

import smtplib
import socket
import ssl
from functools import lru_cache
from typing import TYPE_CHECKING

from ..config import secret
from ..errors import ConfigError
from .smtp_wire import LINK_ERRORS, reply_line

if TYPE_CHECKING:
    from ..config import SMTPSection

SECURITY = ("none", "starttls", "ssl")


class Unreachable(Exception):
    """A connection could not be made (refused, timed out, dropped or "busy" while greeting)."""


@lru_cache(maxsize=1)
def _local_hostname() -> str:
    """Return the name this host gives in EHLO (looked up once, not per connection)."""
    return socket.getfqdn()


class Connector:
    """Makes connections to the configured server; checks the settings once (raises ConfigError)."""

    def __init__(self, cfg: "SMTPSection"):
        if cfg.security not in SECURITY:
            raise ConfigError(f"delivery.smtp.security: {cfg.security!r} is not one of {', '.join(SECURITY)}")
        if cfg.timeout <= 0 or cfg.data_timeout <= 0:
            raise ConfigError("delivery.smtp.timeout and delivery.smtp.data_timeout: must be positive")
        self.cfg = cfg
        self.where = f"{cfg.host}:{cfg.port}"
        self._password = secret(cfg.password_env, "delivery.smtp.password_env") if cfg.username else ""
        self._tls: ssl.SSLContext | None = None
        if cfg.security != "none":
            # Certificates and host names are always verified; ca_file adds a private CA.
            try:
                self._tls = ssl.create_default_context(cafile=cfg.ca_file or None)
            except (OSError, ssl.SSLError) as err:
                raise ConfigError(f"delivery.smtp.ca_file: cannot load {cfg.ca_file}: {err}") from err

    def connect(self) -> smtplib.SMTP:
        """Return a new connection, greeted, secured and logged in; raises ConfigError or Unreachable."""
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
        except LINK_ERRORS as err:
            raise Unreachable(str(err) or type(err).__name__) from err
        try:
            # The next envelope follows each message as a small write of its own: without this
            # Nagle's algorithm holds it until the server acknowledges the message (up to 40 ms).
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
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
            drop(conn)
            raise ConfigError(f"TLS with SMTP server {self.where} failed: {err}") from err
        except smtplib.SMTPAuthenticationError as err:
            drop(conn)
            raise ConfigError(f"SMTP server {self.where} refused the login of {cfg.username!r}: "
                              f"{reply_line(err.smtp_code, err.smtp_error)}") from err
        except smtplib.SMTPNotSupportedError as err:
            drop(conn)
            raise ConfigError(f"SMTP server {self.where}: {err} (check delivery.smtp.security)") from err
        except smtplib.SMTPResponseException as err:
            drop(conn)
            if 400 <= err.smtp_code < 500:
                raise Unreachable(reply_line(err.smtp_code, err.smtp_error)) from err
            raise ConfigError(f"SMTP server {self.where} refused the session: "
                              f"{reply_line(err.smtp_code, err.smtp_error)}") from err
        except LINK_ERRORS as err:
            drop(conn)
            raise Unreachable(str(err) or type(err).__name__) from err
        except BaseException:
            drop(conn)
            raise

    def _refused_greeting(self, err: smtplib.SMTPConnectError) -> smtplib.SMTP:
        """Raise Unreachable for a 4xx greeting (busy, try later) and ConfigError for a 5xx one."""
        reply = reply_line(err.smtp_code, err.smtp_error)
        if 400 <= err.smtp_code < 500:
            raise Unreachable(reply) from err
        raise ConfigError(f"SMTP server {self.where} refused the connection: {reply}") from err


def drop(conn: smtplib.SMTP) -> None:
    """Close a connection without a goodbye (it is broken or unwanted)."""
    try:
        conn.close()
    except OSError:
        pass

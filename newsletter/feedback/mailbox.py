"""Read bounce and complaint reports from the bounce mailbox (a Maildir folder or IMAP over TLS).

Each message not yet seen is parsed (dsn.reports_in), its reports applied, and only then marked
seen (Maildir: moved to cur/ with the S flag; IMAP: \\Seen), so a crash in between reads it again
and the event keys make that second reading harmless. A message that cannot be parsed is left
unseen and named in the result; it never stops the others.
"""

from __future__ import annotations

import imaplib
import logging
import mailbox
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import secret
from ..db import get_engine
from ..errors import ConfigError
from .apply import Applied, apply_all
from .dsn import reports_in

if TYPE_CHECKING:
    from ..config import BouncesSection, Config

log = logging.getLogger(__name__)

IMAP_TIMEOUT = 60.0           # seconds for connecting and for each reply
SECURITY = ("ssl", "starttls")


@dataclass
class FetchReport:
    """What one reading of the mailbox did."""

    where: str                    # the folder or server read
    messages: int = 0             # messages looked at
    not_reports: int = 0          # messages that are neither a bounce nor a complaint (marked seen)
    unreadable: list[tuple[str, str]] = field(default_factory=list)   # (message, why): left unseen
    applied: list[Applied] = field(default_factory=list)


def fetch(config: "Config", maildir: str | None = None) -> FetchReport:
    """Read the configured bounce mailbox (or the Maildir folder given) and apply its reports.

    Returns the FetchReport; raises ConfigError when no mailbox is configured or it cannot be
    opened (unreachable server, refused login, no such folder).
    """
    settings = config.bounces
    engine = get_engine(config)

    def take(raw: bytes, name: str, report: FetchReport) -> bool:
        """Apply the reports in one message; return True when it may be marked seen."""
        report.messages += 1
        try:
            found = reports_in(raw, settings.return_path)
        except Exception as err:  # noqa: BLE001 - any parser failure is one bad message, not a stop
            report.unreadable.append((name, f"{type(err).__name__}: {err}"))
            log.warning("bounce mailbox: %s cannot be read (%s); left unseen", name, err)
            return False
        if not found:
            report.not_reports += 1
        report.applied += apply_all(engine, settings, found)
        return True

    if maildir or settings.maildir:
        return read_maildir(config.file_path(maildir or settings.maildir), take)
    if settings.imap_host:
        return read_imap(settings, take)
    raise ConfigError("no bounce mailbox: set bounces.maildir or bounces.imap_host in the config "
                      "(or give --maildir)")


Take = Callable[[bytes, str, FetchReport], bool]


def read_maildir(path: Path, take: Take) -> FetchReport:
    """Hand each unseen message of the Maildir at path to take; mark those it accepts seen."""
    if not all((path / sub).is_dir() for sub in ("new", "cur", "tmp")):
        raise ConfigError(f"bounces.maildir: {path} is not a Maildir folder (no new/, cur/ and tmp/)")
    box = mailbox.Maildir(str(path), factory=None, create=False)
    report = FetchReport(str(path))
    for key in sorted(box.keys()):
        message = box.get_message(key)
        if message.get_subdir() == "cur" and "S" in message.get_flags():
            continue
        if take(box.get_bytes(key), f"{path}/{key}", report):
            message.set_subdir("cur")
            message.add_flag("S")
            box[key] = message            # mailbox renames it into cur/ with the flag
    box.close()
    return report


def _imap_connect(settings: "BouncesSection") -> imaplib.IMAP4:
    """Return a logged-in IMAP connection over TLS (certificate and host name verified); raises ConfigError."""
    where = f"IMAP server {settings.imap_host}:{settings.imap_port}"
    if settings.imap_security not in SECURITY:
        raise ConfigError(f"bounces.imap_security: {settings.imap_security!r} is not one of {', '.join(SECURITY)}")
    password = secret(settings.password_env, "bounces.password_env")
    try:
        context = ssl.create_default_context(cafile=settings.ca_file or None)
    except (OSError, ssl.SSLError) as err:
        raise ConfigError(f"bounces.ca_file: cannot load {settings.ca_file}: {err}") from err
    conn: imaplib.IMAP4 | None = None
    try:
        if settings.imap_security == "ssl":
            conn = imaplib.IMAP4_SSL(settings.imap_host, settings.imap_port, ssl_context=context,
                                     timeout=IMAP_TIMEOUT)
        else:
            conn = imaplib.IMAP4(settings.imap_host, settings.imap_port, timeout=IMAP_TIMEOUT)
            conn.starttls(ssl_context=context)
        conn.login(settings.imap_user, password)
        return conn
    except imaplib.IMAP4.error as err:
        _logout(conn)
        raise ConfigError(f"{where} refused us ({settings.imap_user!r}): {err}") from err
    except (OSError, ssl.SSLError, socket.timeout) as err:
        _logout(conn)
        raise ConfigError(f"cannot reach {where}: {err}") from err


def _logout(conn: imaplib.IMAP4 | None) -> None:
    """Say LOGOUT when a connection exists, ignoring a dead link."""
    if conn is not None:
        try:
            conn.logout()
        except (imaplib.IMAP4.error, OSError):
            pass


def _unseen(conn: imaplib.IMAP4, folder: str) -> Iterator[tuple[bytes, bytes]]:
    """Yield (uid, message bytes) of the folder's unseen messages, read without setting \\Seen."""
    kind, data = conn.select(_quoted(folder))
    if kind != "OK":
        raise ConfigError(f"bounces.folder: the IMAP server has no folder {folder!r}: {data}")
    kind, data = conn.uid("SEARCH", None, "UNSEEN")
    for uid in (data[0] or b"").split() if kind == "OK" else []:
        kind, parts = conn.uid("FETCH", uid, "(BODY.PEEK[])")
        raw = next((p[1] for p in parts or [] if isinstance(p, tuple)), None) if kind == "OK" else None
        if raw is not None:
            yield uid, raw


def _quoted(folder: str) -> str:
    """Return folder as an IMAP quoted string (names may hold spaces)."""
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def read_imap(settings: "BouncesSection", take: Take) -> FetchReport:
    """Hand each unseen message of the IMAP folder to take; set \\Seen on those it accepts."""
    conn = _imap_connect(settings)
    report = FetchReport(f"imap://{settings.imap_user}@{settings.imap_host}:{settings.imap_port}/{settings.folder}")
    try:
        for uid, raw in _unseen(conn, settings.folder):
            if take(raw, f"{settings.folder} UID {uid.decode()}", report):
                conn.uid("STORE", uid, "+FLAGS.SILENT", "(\\Seen)")
        conn.close()
    except (imaplib.IMAP4.error, OSError) as err:
        raise ConfigError(f"IMAP server {settings.imap_host}: {err} (what was applied stays applied; "
                          "the rest is read next time)") from err
    finally:
        _logout(conn)
    return report

"""SMTP mail transactions on an open smtplib connection, and the envelope addresses they need.

smtplib opens the session (greeting, EHLO, STARTTLS, AUTH). The transaction itself is written
here because smtplib's sendmail() costs more than the rest of a send put together on a fast
relay: it waits for a reply to each command, and it dot-stuffs every message with a regular
expression anchored at each line. Here, when the server offers PIPELINING (RFC 2920), the
envelope (MAIL, RCPT, DATA) goes out in one write, and the next message's envelope right after
a message, so each message costs one round trip; without it, one command at a time.
"""

from __future__ import annotations

import re
import smtplib
from typing import NamedTuple

import idna

from .replies import Stage

LINK_ERRORS = (smtplib.SMTPServerDisconnected, OSError)
_DOT_LINE = re.compile(rb"\r\n\.")
_ENVELOPE_OK = {Stage.MAIL: (250,), Stage.RCPT: (250, 251), Stage.DATA: (354,)}


class Reply(NamedTuple):
    """The reply that decided a transaction: the final one, or the first refusal of the envelope."""

    code: int
    text: str
    stage: Stage

    @property
    def line(self) -> str:
        """Return the reply as one line: "550 5.1.1 no such user"."""
        return f"{self.code} {' '.join(self.text.split())}".strip()


class Lost(Exception):
    """The connection failed or timed out during a transaction.

    .handed is True once the whole message, final "." included, was written: the server may
    then have accepted it without our hearing so (RFC 5321 §4.5.3.2.6 warns of exactly this).
    """

    def __init__(self, why: str, handed: bool):
        super().__init__(why)
        self.handed = handed


def reply_line(code: int, text: bytes | str) -> str:
    """Return an SMTP reply as one line: "550 5.1.1 no such user"."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return Reply(code, text, Stage.MAIL).line


def envelope_address(address: str, smtputf8: bool) -> str | None:
    """Return address as the envelope may carry it, or None when it cannot go without SMTPUTF8.

    With SMTPUTF8 (RFC 6531) the address goes as it is. Without it an internationalised domain
    goes in its ASCII form (IDNA 2008 with UTS 46 mapping: "bücher.example" becomes
    "xn--bcher-kva.example"), and a non-ASCII local part cannot go at all. Raises
    idna.IDNAError when the domain has no IDNA form.
    """
    if smtputf8 or address.isascii():
        return address
    local, _, domain = address.rpartition("@")
    if not local.isascii():
        return None
    return f"{local}@{idna.encode(domain, uts46=True).decode('ascii')}"


def stuffed(message: bytes) -> bytes:
    """Return message (CRLF line ends, as MessageSource.build promises) as DATA sends it:
    dot-stuffed (RFC 5321 §4.5.2), then "."."""
    if message.startswith(b"."):
        message = b"." + message
    # A regular expression with a literal start is the fastest way here: bytes.replace of a
    # 3-byte pattern costs four times as much on quoted-printable text (and smtplib's
    # "(?m)^\." ten times), and quoted-printable soft breaks put dots at line starts often.
    message = _DOT_LINE.sub(b"\r\n..", message)
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    return message + b".\r\n"


class Envelope(NamedTuple):
    """The envelope commands of one message (MAIL FROM, RCPT TO, DATA), ready to write."""

    commands: tuple[tuple[Stage, bytes], ...]

    @property
    def data(self) -> bytes:
        """Return the commands as one write (RFC 2920: DATA may end a pipelined group)."""
        return b"".join(cmd for _, cmd in self.commands)


def envelope(conn: smtplib.SMTP, sender: str, rcpt: str, size: int) -> Envelope:
    """Return the envelope from sender to rcpt (envelope forms) for a message of size bytes."""
    smtputf8 = not (sender.isascii() and rcpt.isascii())
    options = f" SIZE={size}" if "size" in conn.esmtp_features else ""
    if smtputf8:
        options += " SMTPUTF8"
    encoding = "utf-8" if smtputf8 else "ascii"
    return Envelope(((Stage.MAIL, f"MAIL FROM:<{sender}>{options}\r\n".encode(encoding)),
                     (Stage.RCPT, f"RCPT TO:<{rcpt}>\r\n".encode(encoding)), (Stage.DATA, b"DATA\r\n")))


def pipelines(conn: smtplib.SMTP) -> bool:
    """Return True when the server takes pipelined commands (RFC 2920 PIPELINING)."""
    return "pipelining" in conn.esmtp_features


def open_envelope(conn: smtplib.SMTP, env: Envelope, *, written: bool = False) -> Reply | None:
    """Give the envelope (unless written already, with the previous message); return None once
    the server invites the message (354), else its first refusal, after resetting the
    transaction (RSET; not after a 421: the server is closing). Raises Lost(handed=False)."""
    refusal: Reply | None = None
    try:
        if pipelines(conn):
            if not written:
                conn.send(env.data)
            code = 0
            for stage, _ in env.commands:             # every pipelined command gets its reply
                code, text = conn.getreply()
                if refusal is None and code not in _ENVELOPE_OK[stage]:
                    refusal = Reply(code, text.decode("utf-8", "replace"), stage)
            if refusal is not None and code == 354:
                # A server that refused the envelope yet invites the data: end it empty.
                conn.send(b".\r\n")
                conn.getreply()
        else:
            for stage, cmd in env.commands:
                conn.send(cmd)
                code, text = conn.getreply()
                if code not in _ENVELOPE_OK[stage]:
                    refusal = Reply(code, text.decode("utf-8", "replace"), stage)
                    break
    except LINK_ERRORS as err:
        raise Lost(str(err) or type(err).__name__, handed=False) from err
    if refusal is not None and refusal.code != 421:
        _reset(conn)
    return refusal


def hand_over(conn: smtplib.SMTP, message: bytes, *, data_timeout: float, then: Envelope | None = None) -> Reply:
    """Write message after an open envelope, then (pipelined) the next message's envelope; return
    the reply to the message. Raises Lost: handed=False while the message was not all written,
    handed=True once it was (the server may have it: RFC 5321 §4.5.3.2.6)."""
    try:
        conn.send(stuffed(message))
    except LINK_ERRORS as err:
        # The final "." is the last byte written: a write that failed never delivered it.
        raise Lost(str(err) or type(err).__name__, handed=False) from err
    try:
        if then is not None:
            conn.send(then.data)       # RFC 2920 §3.1: the next envelope rides with this message
        conn.sock.settimeout(data_timeout)
        code, text = conn.getreply()
    except LINK_ERRORS as err:
        raise Lost(str(err) or type(err).__name__, handed=True) from err
    finally:
        if conn.sock is not None:
            conn.sock.settimeout(conn.timeout)
    return Reply(code, text.decode("utf-8", "replace"), Stage.END)


def _reset(conn: smtplib.SMTP) -> None:
    """Send RSET so the connection can carry the next transaction; a dead link shows up next time."""
    try:
        conn.rset()
    except LINK_ERRORS:
        pass

"""One SMTP mail transaction on an open smtplib connection, and the envelope addresses it needs.

smtplib opens the session (greeting, EHLO, STARTTLS, AUTH). The transaction itself is written
here because smtplib's sendmail() costs more than the rest of a send put together on a fast
relay: it waits for a reply to each command, and it dot-stuffs every message with a regular
expression over each line. Here the envelope (MAIL, RCPT, DATA) goes out in one write when the
server offers PIPELINING (RFC 2920), one command at a time otherwise; our messages already have
CRLF line ends, so dot-stuffing is one bytes.replace.
"""

from __future__ import annotations

import re
import smtplib
from collections.abc import Callable
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


def transact(conn: smtplib.SMTP, sender: str, rcpt: str, message: bytes, *, data_timeout: float,
             handover: Callable[[], None]) -> Reply:
    """Send message from sender to rcpt (envelope forms) in one transaction; return the deciding Reply.

    A refusal of MAIL, RCPT or DATA is returned with its stage after the transaction was reset
    (RSET), except a 421 (the server is closing: drop the connection). handover() is called right
    before the message is written. Raises Lost when the connection fails.
    """
    smtputf8 = not (sender.isascii() and rcpt.isascii())
    options = f" SIZE={len(message)}" if "size" in conn.esmtp_features else ""
    if smtputf8:
        options += " SMTPUTF8"
    commands = ((Stage.MAIL, f"MAIL FROM:<{sender}>{options}\r\n"), (Stage.RCPT, f"RCPT TO:<{rcpt}>\r\n"),
                (Stage.DATA, "DATA\r\n"))
    encoding = "utf-8" if smtputf8 else "ascii"
    refusal: Reply | None = None
    try:
        if "pipelining" in conn.esmtp_features:
            conn.send("".join(cmd for _, cmd in commands).encode(encoding))
            for stage, _ in commands:                  # every pipelined command gets its reply
                code, text = conn.getreply()
                if refusal is None and code not in _ENVELOPE_OK[stage]:
                    refusal = Reply(code, text.decode("utf-8", "replace"), stage)
            if refusal is not None and code == 354:
                # A server that refused the envelope yet invites the data: end it empty.
                conn.send(b".\r\n")
                conn.getreply()
        else:
            for stage, cmd in commands:
                conn.send(cmd.encode(encoding))
                code, text = conn.getreply()
                if code not in _ENVELOPE_OK[stage]:
                    refusal = Reply(code, text.decode("utf-8", "replace"), stage)
                    break
    except LINK_ERRORS as err:
        raise Lost(str(err) or type(err).__name__, handed=False) from err
    if refusal is not None:
        if refusal.code != 421:
            _reset(conn)
        return refusal
    handover()
    try:
        conn.send(stuffed(message))
    except LINK_ERRORS as err:
        # The final "." is the last byte written: a write that failed never delivered it.
        raise Lost(str(err) or type(err).__name__, handed=False) from err
    sock = conn.sock
    try:
        sock.settimeout(data_timeout)      # RFC 5321 §4.5.3.2.6: the server may take a while
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

"""MIME building blocks made once per issue and spliced per subscriber: header encoding, QP bodies."""

from __future__ import annotations

import binascii
import html
import re
from collections.abc import Callable, Mapping
from email.header import Header
from email.utils import parseaddr
from functools import lru_cache

from ..errors import ConfigError
from ..render.placeholders import ANY_TOKEN, token

CRLF = "\r\n"
_SOFT_BREAK = b"=\r\n"          # a quoted-printable line break that decodes to nothing
_EOL = re.compile(r"\r\n|\r|\n")
_EOL_BYTES = re.compile(rb"\r\n|\r|\n")
# RFC 5322 "specials" (plus the characters that make a display name ambiguous): quote the name.
_SPECIALS = re.compile(r'[()<>\[\]:;@\\,."]')


def check_header(name: str, value: str) -> str:
    """Return value unchanged; raise ConfigError naming the header when it holds CR or LF."""
    if "\r" in value or "\n" in value:
        raise ConfigError(f"header {name}: value contains a line break (CR or LF): {value[:60]!r}")
    return value


def crlf(text: str) -> str:
    """Return text with every line ending (CR, LF or CRLF) made CRLF."""
    return _EOL.sub(CRLF, text)


def qp(data: bytes) -> bytes:
    """Return data quoted-printable encoded, its line ends made CRLF, in lines of at most 76 characters."""
    if b"\r" in data or b"\n" in data:
        data = _EOL_BYTES.sub(b"\r\n", data)
        enc = binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)
    else:
        # b2a_qp copies the line-end style it finds first; without one its soft breaks are bare LF.
        enc = binascii.b2a_qp(data, quotetabs=False, istext=True, header=False).replace(b"\n", b"\r\n")
    return _rewrap(enc) if len(enc) > 76 else enc


def _rewrap(enc: bytes) -> bytes:
    """Return enc with any line over 76 characters broken by soft breaks.

    b2a_qp writes "=20" for a space before a line end without checking the length, so a line
    can come out at 77 or 78 characters.
    """
    lines = enc.split(b"\r\n")
    if all(len(line) <= 76 for line in lines):
        return enc
    out = []
    for line in lines:
        while len(line) > 76:
            cut = 75
            while b"=" in line[cut - 2:cut]:     # never split an "=XX" escape
                cut -= 1
            out.append(line[:cut] + b"=")
            line = line[cut:]
        out.append(line)
    return b"\r\n".join(out)


def qp_open(data: bytes) -> bytes:
    """Return qp(data) ending in a soft line break, so whatever follows starts a line of its own."""
    enc = qp(data)
    if not enc or enc.endswith(b"\r\n"):
        return enc
    start = enc.rfind(b"\n") + 1
    if len(enc) - start < 76:
        return enc + _SOFT_BREAK
    # b2a_qp lets a last line run to 76 characters, one too many for the "=": break it earlier,
    # never inside an "=XX" escape.
    cut = start + 72
    while b"=" in enc[cut - 2:cut]:
        cut -= 1
    return enc[:cut] + _SOFT_BREAK + enc[cut:] + _SOFT_BREAK


def html_escape(value: str) -> str:
    """Return value escaped for HTML text and attributes (the same escaping tokens.html_template uses)."""
    return html.escape(value, quote=True)


def encode_unstructured(name: str, value: str) -> str:
    """Return value folded (and RFC 2047 encoded when not ASCII) for the header name, without CRLF."""
    check_header(name, value)
    if value.isascii() and len(name) + 2 + len(value) <= 78:
        return value
    return _header(name, value, "us-ascii" if value.isascii() else "utf-8")


@lru_cache(maxsize=256)
def _header(name: str, value: str, charset: str) -> str:
    """Return the folded or encoded form of a header value (cached: subjects repeat per issue)."""
    return Header(value, charset, header_name=name).encode(linesep=CRLF)


def encode_phrase(name: str) -> str:
    """Return a display name as a header phrase: as is, quoted, or RFC 2047 encoded words."""
    if not name:
        return ""
    if name.isascii():
        if _SPECIALS.search(name):
            return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return name
    return _header("", name, "utf-8")


def encode_addr_spec(addr: str) -> str:
    """Return the address with an internationalised domain in its ASCII (IDNA) form."""
    local, at, domain = addr.rpartition("@")
    if at and not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError as err:
            raise ConfigError(f"address {addr!r}: domain cannot be encoded: {err}") from err
    return f"{local}{at}{domain}"


def sender_domain(sender: str) -> str:
    """Return the domain of the From address in sender ("Name <a@b>" or "a@b"), in IDNA form,
    or "" when it has none; raises ConfigError when the domain cannot be encoded.

    The one place the sender's domain is taken from: Message-IDs (RFC 5322 §3.6.4 wants a
    domain we own), DKIM's d= (RFC 6376 §3.5, A-labels), List-Id and confirmation mails.
    """
    return encode_addr_spec(parseaddr(sender)[1]).rpartition("@")[2]


def format_address(header: str, name: str, addr: str) -> str:
    """Return 'phrase <addr>' encoded for a raw header; raises ConfigError on CR or LF."""
    check_header(header, name)
    check_header(header, addr)
    phrase = encode_phrase(name)
    spec = encode_addr_spec(addr)
    return f"{phrase} <{spec}>" if phrase else spec


def display_address(name: str, addr: str) -> str:
    """Return 'Name <addr>' as readable text (for HTTP APIs, which encode headers themselves)."""
    if not name:
        return addr
    if _SPECIALS.search(name):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{addr}>"


def token_fields(body: str, nonce: str) -> list[tuple[int, int, str]]:
    """Return (start, end, field) of each token of this nonce in body; raises ValueError on a foreign token."""
    prefix, _, suffix = token(nonce, "x").partition("_x_")
    prefix, suffix = prefix + "_", "_" + suffix
    found = []
    for m in ANY_TOKEN.finditer(body):
        text = m.group()
        field = text[len(prefix):-len(suffix)]
        if not text.startswith(prefix) or token(nonce, field) != text:
            raise ValueError(f"body holds a token of another issue: {text}")
        found.append((m.start(), m.end(), field))
    return found


class QPTemplate:
    """A body split at its tokens once, its constant text quoted-printable encoded once.

    fill() only encodes the per-subscriber values and joins bytes. Every piece is encoded on its
    own and followed by a soft line break, which decodes to nothing, so no line exceeds 76.
    """

    def __init__(self, body: str, nonce: str, escape: Callable[[str], str] | None = None):
        body = crlf(body)
        spans = token_fields(body, nonce)
        texts, fields, pos = [], [], 0
        for start, end, field in spans:
            texts.append(body[pos:start])
            fields.append(field)
            pos = end
        texts.append(body[pos:])
        self._escape = escape or (lambda s: s)
        self._fields = fields
        self.fields = frozenset(fields)
        # Each constant text but the last ends its own line (a soft break) before a value comes,
        # and each value ends its line before the next text: no line can outgrow 76 characters.
        last = len(texts) - 1
        self._parts = [(qp_open if i < last else qp)(text.encode("utf-8")) for i, text in enumerate(texts)]

    def encode_value(self, value: str) -> bytes:
        """Return one value escaped and quoted-printable encoded, ending in a soft break, ready to splice."""
        return qp_open(self._escape(value).encode("utf-8")) or b""

    def fill(self, values: Mapping[str, str]) -> bytes:
        """Return the encoded body with every token replaced (missing values become empty)."""
        parts = self._parts
        out = [parts[0]]
        done: dict[str, bytes] = {}
        for i, field in enumerate(self._fields, 1):
            enc = done.get(field)
            if enc is None:
                enc = done[field] = self.encode_value(values.get(field, ""))
            out.append(enc)
            out.append(parts[i])
        return b"".join(out)

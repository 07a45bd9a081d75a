"""Where articles come from: URLs, local files and stdin, decoded to text; raises SourceError."""

from __future__ import annotations

import codecs
import logging
import re
import sys
from pathlib import Path
from typing import BinaryIO

import charset_normalizer

from ..config import FetchSection
from ..errors import SourceError
from ..models import RawDocument
from .download import download

log = logging.getLogger(__name__)

HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})
TEXT_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".text"})
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_TEXT_TYPES = frozenset({"text/plain", "text/markdown", "text/x-markdown"})
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_META_CHARSET = re.compile(rb"""<meta[^>]+?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
_HTML_START = re.compile(r"<(?:!doctype\s+html|html|head|body|meta|title|article|main|div|p|h[1-6])\b",
                         re.I)
# Browsers read these labels as windows-1252 (WHATWG Encoding); so must we, or curly quotes break.
_AS_CP1252 = frozenset({"latin_1", "iso8859-1", "ascii", "cp1252"})


def is_url(source: str) -> bool:
    """Return True when source names an http(s) URL."""
    return source.lower().startswith(("http://", "https://"))


def fetch(source: str, cfg: FetchSection, stdin: BinaryIO | None = None) -> RawDocument:
    """Return the raw document named by source (URL, .html/.htm/.txt/.md file, or "-" for stdin).

    Raises SourceError naming the source when it cannot be read, is not HTML or text, is
    binary, or is larger than cfg.max_bytes.
    """
    try:
        if source == "-":
            return read_stdin(cfg, stdin)
        if is_url(source):
            return _fetch_url(source, cfg)
        return read_file(Path(source), cfg)
    except SourceError as err:
        err.source = err.source or source          # the message may spell it differently
        raise


def _fetch_url(url: str, cfg: FetchSection) -> RawDocument:
    """Return the page at url as a RawDocument; raises SourceError for non-HTML/text content."""
    got = download(url, cfg, accept="text/html,application/xhtml+xml;q=0.9,text/plain;q=0.5")
    if got.content_type in _HTML_TYPES:
        kind = "html"
    elif got.content_type in _TEXT_TYPES:
        kind = "text"
    elif not got.content_type:
        kind = ""                                   # no header: look at the bytes instead
    else:
        raise SourceError(f"{url}: not an HTML page (content type {got.content_type})")
    body = decode(got.data, url, declared=got.charset, html=kind != "text")
    return RawDocument(source=url, body=body, kind=kind or sniff_kind(body), url=got.url)


def read_file(path: Path, cfg: FetchSection) -> RawDocument:
    """Return a local .html/.htm/.txt/.md file as a RawDocument; raises SourceError."""
    suffix = path.suffix.lower()
    if suffix in HTML_SUFFIXES:
        kind = "html"
    elif suffix in TEXT_SUFFIXES:
        kind = "text"
    elif not path.exists():
        raise SourceError(f"{path}: file not found")
    else:
        raise SourceError(f"{path}: unknown file type {suffix or '(no extension)'!r} "
                          "(expected .html, .htm, .txt or .md, or an http(s) URL)")
    data = _read_bytes(path, cfg)
    return RawDocument(source=str(path), body=decode(data, str(path), html=kind == "html"), kind=kind)


def read_stdin(cfg: FetchSection, stream: BinaryIO | None = None) -> RawDocument:
    """Return standard input (or stream) as a RawDocument, sniffing HTML from text; raises SourceError."""
    stream = stream if stream is not None else sys.stdin.buffer
    data = stream.read(cfg.max_bytes + 1)
    if len(data) > cfg.max_bytes:
        raise SourceError(f"stdin: input larger than {cfg.max_bytes} bytes (limit fetch.max_bytes)")
    body = decode(data, "stdin", html=True)
    return RawDocument(source="-", body=body, kind=sniff_kind(body))


def _read_bytes(path: Path, cfg: FetchSection) -> bytes:
    """Return the bytes of path, at most cfg.max_bytes; raises SourceError."""
    try:
        with path.open("rb") as f:
            data = f.read(cfg.max_bytes + 1)
    except FileNotFoundError as err:
        raise SourceError(f"{path}: file not found") from err
    except IsADirectoryError as err:
        raise SourceError(f"{path}: is a directory, not a file") from err
    except OSError as err:
        raise SourceError(f"{path}: cannot read: {err.strerror or err}") from err
    if len(data) > cfg.max_bytes:
        raise SourceError(f"{path}: file larger than {cfg.max_bytes} bytes (limit fetch.max_bytes)")
    return data


def sniff_kind(body: str) -> str:
    """Return "html" when body starts like an HTML document or fragment, else "text"."""
    head = body[:2048].lstrip()
    return "html" if head.startswith("<") and _HTML_START.search(head) else "text"


def decode(data: bytes, where: str, declared: str = "", html: bool = True) -> str:
    """Return data decoded by BOM, declared charset, <meta charset>, UTF-8 or detection.

    Raises SourceError naming `where` when the bytes are binary (NUL bytes) or undecodable.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    if b"\x00" in data:
        raise SourceError(f"{where}: binary content (NUL bytes), not an article")
    candidates = [declared]
    if html:
        found = _META_CHARSET.search(data[:8192])
        candidates.append(found.group(1).decode("ascii") if found else "")
    for label in candidates:
        encoding = _codec(label)
        if encoding:
            # A declared charset is authoritative (as in browsers): stray bad bytes become U+FFFD.
            return data.decode(encoding, errors="replace")
    try:
        return data.decode("utf-8")     # most undeclared pages; much faster than detection
    except UnicodeDecodeError:
        pass
    matches = charset_normalizer.from_bytes(data[:200_000])
    best = matches.best()
    if best is None or best.encoding is None:
        raise SourceError(f"{where}: binary or undecodable content, not an article")
    encoding = best.encoding
    # Western text fits several code pages equally well; on a tie take windows-1252, the web's
    # most common legacy encoding (and browsers' default), not whichever sorted first.
    if any(m.encoding == "cp1252" and (m.chaos, m.coherence) == (best.chaos, best.coherence)
           for m in matches):
        encoding = "cp1252"
    return data.decode(encoding, errors="replace")


def _codec(label: str) -> str:
    """Return the Python codec for a charset label ("" when unknown), latin-1 read as windows-1252."""
    if not label:
        return ""
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return ""
    return "cp1252" if name in _AS_CP1252 else name

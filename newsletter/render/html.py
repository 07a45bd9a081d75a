"""HTML the email clients can take: MJML compiled to HTML (mjml-python), CSS inlined (premailer,
offline), URLs in ASCII; raises RenderError."""

from __future__ import annotations

import contextlib
import logging
import re
import xml.dom
from collections.abc import Iterator
from urllib.parse import quote, urlsplit, urlunsplit

from lxml import etree
from mjml import mjml2html
from premailer import Premailer
from premailer.premailer import (
    ExternalFileLoadingError,
    ExternalNotFoundError,
    PremailerError,
)

from ..errors import RenderError

DOCTYPE = "<!DOCTYPE html>\n"
_URL_SAFE = "/:@!$&'()*+,;=?#[]%~-._"    # RFC 3986 reserved + unreserved, and existing escapes


def iri_to_uri(url: str) -> str:
    """Return url in ASCII: IDNA host, other non-ASCII characters and spaces percent-encoded."""
    url = url.strip()
    if url.isascii() and " " not in url:
        return url
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    host, colon, port = hostport.partition(":")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:  # not a valid domain name: keep it, escaped
        host = quote(host, safe="")
    netloc = quote(userinfo, safe=_URL_SAFE) + at + host + colon + port
    return urlunsplit((parts.scheme, netloc, quote(parts.path, safe=_URL_SAFE),
                       quote(parts.query, safe=_URL_SAFE), quote(parts.fragment, safe=_URL_SAFE)))


def compile_mjml(source: str, where: str = "digest.mjml.j2") -> str:
    """Return the HTML compiled from MJML source; raises RenderError naming where on a compile error."""
    try:
        # fonts={} keeps MRML from linking Google Fonts: the email uses system fonts only.
        return mjml2html(source, disable_comments=True, fonts={})
    except ValueError as err:
        raise RenderError(f"{where}: MJML compile error: {err}{_near(source, str(err))}") from err


def _near(source: str, message: str) -> str:
    """Return " (line N of the generated MJML, near '...')" for MRML's "position A:B", else ""."""
    match = re.search(r"position (\d+)", message)
    if not match:
        return ""
    # MRML counts bytes of UTF-8; cut the bytes, then count characters.
    start = len(source.encode("utf-8")[:int(match.group(1))].decode("utf-8", "ignore"))
    line = source.count("\n", 0, start) + 1
    return f" (line {line} of the generated MJML, near {source[max(0, start - 40):start + 40]!r})"


def inline_css(html: str) -> str:
    """Return html with its CSS inlined by premailer (offline), @media rules kept, doctype restored."""
    inliner = Premailer(
        base_url=None,                      # links are absolute already: never rewrite them
        allow_network=False,                # never fetch a <link>ed stylesheet
        allow_loading_external_files=False,
        strip_important=False,              # MJML's @media column widths need their !important
        disable_validation=True,            # cssutils' property validation is slow and only logs
        cache_css_parsing=True,
        # MJML writes the width/height attributes Outlook needs; premailer would turn an image's
        # CSS width:100% into width="100%" and lose the pixel width.
        disable_basic_attributes=["width", "height"],
    )
    try:
        with _quiet_cssutils():
            out = inliner.transform(html, pretty_print=False)
    except (ValueError, etree.LxmlError, xml.dom.DOMException, PremailerError,
            ExternalNotFoundError, ExternalFileLoadingError) as err:
        raise RenderError(f"premailer could not inline the compiled email: {err}") from err
    # premailer drops MJML's lowercase doctype; without one, clients render in quirks mode.
    return DOCTYPE + out.lstrip()


@contextlib.contextmanager
def _quiet_cssutils() -> Iterator[None]:
    """Silence cssutils (it logs a line per mso-/-webkit- property) for the block, then restore it."""
    logger = logging.getLogger("CSSUTILS")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)

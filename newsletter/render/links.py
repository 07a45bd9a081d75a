"""`build --check-links`: ask every http(s) link and image of a render whether it still answers;
returns one warning line per dead one, never raises for a link."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import lxml.html
import requests
from lxml import etree

from ..articles.download import default_user_agent
from ..config import FetchSection
from .markdown import is_web_url

MAX_PARALLEL = 8        # links checked at once: polite to sites, quick for a 12-item issue
_RETRY_WITH_GET = {403, 405, 501}   # servers that refuse HEAD (RFC 9110 §9.3.2 allows it) but serve GET
# The page is there but will not show itself to a script (login or bot walls, rate limits): not dead.
_REFUSED_BUT_THERE = {401, 403, 429}


@dataclass(frozen=True)
class LinkResult:
    """What one link answered: the final status (0 when none) and, for a dead link, why."""

    url: str
    status: int
    problem: str = ""       # "" when the link works


def link_targets(html: str) -> list[str]:
    """Return the distinct http(s) URLs of the links and images in html, in document order."""
    try:
        doc = lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        return []
    urls = (u.strip() for u in doc.xpath("//a/@href | //img/@src"))
    return list(dict.fromkeys(u for u in urls if is_web_url(u)))


def check_links(urls: Iterable[str], fetch: FetchSection, parallel: int = MAX_PARALLEL) -> list[LinkResult]:
    """Return a LinkResult per URL (same order), asking at most `parallel` at a time.

    Each request has fetch.connect_timeout / fetch.read_timeout and follows at most
    fetch.max_redirects redirects; HEAD first, GET (body not read) when HEAD is refused. A link is
    dead on a 4xx/5xx after both (except 401, 403 and 429: a wall for scripts, not a missing
    page), a host that does not resolve, a refused connection, a timeout or a redirect loop.
    """
    urls = list(urls)
    if not urls:
        return []
    with requests.Session() as session:
        session.max_redirects = fetch.max_redirects
        session.headers["User-Agent"] = fetch.user_agent or default_user_agent()
        with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(urls)))) as pool:
            return list(pool.map(lambda url: _check(session, url, fetch), urls))


def dead_link_warnings(results: Iterable[LinkResult]) -> list[str]:
    """Return one warning line per dead link."""
    return [f"link {r.url} is dead: {r.problem}" for r in results if r.problem]


def _check(session: requests.Session, url: str, fetch: FetchSection) -> LinkResult:
    """Return how url answers (never raises for the link's own failures)."""
    timeout = (fetch.connect_timeout, fetch.read_timeout)
    try:
        with session.head(url, allow_redirects=True, timeout=timeout) as resp:
            status = resp.status_code
        if status in _RETRY_WITH_GET or status >= 500:
            with session.get(url, allow_redirects=True, timeout=timeout, stream=True) as resp:
                status = resp.status_code
    except requests.TooManyRedirects:
        return LinkResult(url, 0, f"more than {fetch.max_redirects} redirects")
    except requests.Timeout:
        return LinkResult(url, 0, f"no answer within {fetch.connect_timeout:g}/{fetch.read_timeout:g} s")
    except requests.ConnectionError as err:
        return LinkResult(url, 0, _connection_problem(err))
    except requests.RequestException as err:
        return LinkResult(url, 0, f"cannot be fetched ({type(err).__name__})")
    if status >= 400 and status not in _REFUSED_BUT_THERE:
        return LinkResult(url, status, f"HTTP {status}")
    return LinkResult(url, status)


def _connection_problem(err: BaseException) -> str:
    """Return why a connection failed, in a few words ("host not found", "connection refused")."""
    text = repr(err)
    if "NameResolutionError" in text or "Name or service not known" in text or "getaddrinfo" in text:
        return "host not found"
    if "Connection refused" in text or "ConnectionRefused" in text:
        return "connection refused"
    if "SSL" in text or "CERTIFICATE" in text:
        return "TLS error (certificate or handshake)"
    return "cannot connect"

"""Download one URL's bytes with timeouts, a redirect limit and a size cap; raises SourceError."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from urllib.parse import urlsplit

import requests
import urllib3

from ..config import FetchSection
from ..errors import SourceError

_CHUNK = 64 * 1024
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")


@dataclass(frozen=True)
class Download:
    """A fetched response body and what its headers said about it."""

    url: str                # the final URL, after redirects
    data: bytes             # the body, decompressed
    content_type: str       # media type in lower case without parameters; "" when absent
    charset: str            # the Content-Type charset parameter; "" when absent


@lru_cache(maxsize=1)
def default_user_agent() -> str:
    """Return "newsletter/<version>", plus "(+<home page>)" when the package metadata names one."""
    try:
        meta = metadata.metadata("newsletter")
        version = meta.get("Version", "0")
    except metadata.PackageNotFoundError:
        return "newsletter"
    urls = [u.split(",", 1)[-1].strip() for u in meta.get_all("Project-URL") or []]
    home = meta.get("Home-page") or (urls[0] if urls else "")
    return f"newsletter/{version} (+{home})" if home else f"newsletter/{version}"


def parse_content_type(header: str) -> tuple[str, str]:
    """Return (media type in lower case, charset parameter) of a Content-Type header value."""
    media, _, params = (header or "").partition(";")
    charset = ""
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip("\"'")
    return media.strip().lower(), charset


def download(url: str, cfg: FetchSection, accept: str = "*/*") -> Download:
    """Return the body of url (following at most cfg.max_redirects redirects); raises SourceError.

    The body is streamed and abandoned as soon as it passes cfg.max_bytes, and it must arrive
    within cfg.read_timeout seconds of the response headers (so a server that trickles bytes
    cannot hold a compose forever; requests' own read timeout only bounds each single read).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SourceError(f"{url}: not an http(s) URL")
    headers = {"User-Agent": cfg.user_agent or default_user_agent(), "Accept": accept}
    with requests.Session() as session:
        session.max_redirects = cfg.max_redirects
        try:
            with session.get(url, headers=headers, stream=True,
                             timeout=(cfg.connect_timeout, cfg.read_timeout)) as resp:
                if resp.status_code >= 400:
                    reason = f" {resp.reason}" if resp.reason else ""
                    raise SourceError(f"{url}: HTTP {resp.status_code}{reason}")
                media, charset = parse_content_type(resp.headers.get("Content-Type", ""))
                data = _read_capped(url, resp, cfg)
                return Download(url=resp.url, data=data, content_type=media, charset=charset)
        except requests.TooManyRedirects as err:
            raise SourceError(f"{url}: more than {cfg.max_redirects} redirects "
                              "(limit fetch.max_redirects)") from err
        except requests.ConnectTimeout as err:
            raise SourceError(f"{url}: cannot connect to {parts.hostname} within "
                              f"{cfg.connect_timeout:g} s") from err
        except (requests.ReadTimeout, urllib3.exceptions.ReadTimeoutError) as err:
            raise SourceError(f"{url}: no data for {cfg.read_timeout:g} s "
                              "(limit fetch.read_timeout)") from err
        except urllib3.exceptions.HTTPError as err:      # raised while reading the body
            raise SourceError(f"{url}: broken response: {_reason(err)}") from err
        except requests.exceptions.SSLError as err:
            raise SourceError(f"{url}: TLS error talking to {parts.hostname}: {_reason(err)}") from err
        except requests.ConnectionError as err:
            raise SourceError(f"{url}: cannot reach {parts.hostname}: {_reason(err)}") from err
        except requests.RequestException as err:
            raise SourceError(f"{url}: request failed: {_reason(err)}") from err


def _read_capped(url: str, resp: requests.Response, cfg: FetchSection) -> bytes:
    """Return the response body, raising SourceError once it passes the cap or the deadline."""
    too_big = f"{url}: page larger than {cfg.max_bytes} bytes (limit fetch.max_bytes)"
    declared = resp.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > cfg.max_bytes:
        raise SourceError(too_big)
    deadline = time.monotonic() + cfg.read_timeout
    chunks: list[bytes] = []
    size = 0
    # read1 returns whatever has arrived (iter_content would wait for a full chunk, so a server
    # trickling bytes could dodge the deadline) and decompresses, so the cap also bounds what a
    # gzip bomb would expand to.
    while chunk := resp.raw.read1(_CHUNK, decode_content=True):
        size += len(chunk)
        if size > cfg.max_bytes:
            raise SourceError(too_big)
        if time.monotonic() > deadline:
            raise SourceError(f"{url}: body not received within {cfg.read_timeout:g} s "
                              "(limit fetch.read_timeout)")
        chunks.append(chunk)
    return b"".join(chunks)


def _reason(err: BaseException) -> str:
    """Return the short OS-level reason inside a requests/urllib3 error ("Connection refused")."""
    text = str(err)
    found = _ERRNO.search(text)
    if found:
        return found.group(1).strip()
    if "NameResolutionError" in text or "Name or service not known" in text:
        return "host name not found"
    return text.splitlines()[0][:160] if text else type(err).__name__

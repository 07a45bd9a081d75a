"""HTTP API backend: batches to the provider's limit, retries 429/5xx, normalises per-recipient results."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

from ..config import secret
from ..errors import (
    AmbiguousDelivery,
    ConfigError,
    DeliveryError,
    RecipientRejected,
    StopRun,
    TransientDeliveryError,
)
from ..models import Delivery, Recipient
from .base import Backend, MessageSource
from .generic import Provider
from .payloads import reply_text
from .providers import PROVIDERS

if TYPE_CHECKING:
    from ..config import Config

log = logging.getLogger(__name__)

# Longest pause the backend takes itself; a longer Retry-After goes back to the send loop,
# which can do other work (and survives a restart) while it waits.
MAX_WAIT_SECONDS = 30.0

Result = Delivery | DeliveryError
# Replies that say the URL or the request format is wrong, whoever the recipients are.
_ENDPOINT_ERRORS = frozenset({404, 405, 406, 415})


def retry_after(response: requests.Response) -> float | None:
    """Return the seconds a Retry-After header asks for (delta or HTTP date), or None."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


class HTTPBackend(Backend):
    """Sends through an HTTP mail API (postmark, mailgun, sendgrid or a generic JSON endpoint).

    Replies are read by status and the provider's documented error codes: 2xx per the
    provider's result shape, 401/403 (key) and 404/405/406/415 (endpoint) stop the send as a
    ConfigError, 429 and 5xx are retried, 413 splits the batch, and any other 4xx stops the run
    unless the provider's reply names the refused recipients.
    """

    reports_handover = True

    def __init__(self, config: "Config"):
        super().__init__(config)
        cfg = config.delivery.http
        cls = PROVIDERS.get(cfg.provider)
        if cls is None:
            raise ConfigError(f"delivery.http.provider: unknown provider {cfg.provider!r} "
                              f"(known: {', '.join(sorted(PROVIDERS))})")
        if cfg.api_key_env or cls is not Provider:
            api_key = secret(cfg.api_key_env, f"delivery.http.api_key_env ({cfg.provider})")
        else:
            api_key = ""                      # a generic endpoint may need no key
        self.cfg = cfg
        self.provider: Provider = cls(cfg, api_key, cfg.message_stream)
        self.max_batch = min(cls.limit, cfg.batch_size) if cfg.batch_size > 0 else cls.limit
        self.where = f"{cfg.provider} at {self.provider.url}"
        self.session: requests.Session | None = None

    def open(self) -> None:
        """Create the session with a connection pool as large as delivery.concurrency."""
        session = requests.Session()
        size = max(1, self.config.delivery.concurrency)
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=size, pool_block=True, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        self.provider.configure(session)
        self.session = session

    def close(self) -> None:
        """Close the session's connections."""
        if self.session is not None:
            self.session.close()
            self.session = None

    def send(self, source: MessageSource, batch: Sequence[Recipient]) -> list[Result]:
        """Send batch in calls of at most the provider's limit; see Backend.send.

        A call refused for a reason that is not an address (the sender, the account, the
        request) stops the run: its recipients and the rest of the batch get StopRun results.
        Raises ConfigError (key, endpoint) when the first call already fails that way.
        """
        if self.session is None:
            self.open()
        step = self.max_batch
        results: list[Result] = []
        for i in range(0, len(batch), step):
            try:
                results.extend(self._deliver(source, batch[i:i + step]))
            except ConfigError as err:
                if not results:
                    raise
                # Earlier calls went out: report them; the rest is not tried and stays pending.
                results += [StopRun(f"not sent to {r.email}: {err}", r.email, "") for r in batch[len(results):]]
                break
            if any(isinstance(r, StopRun) for r in results[-step:]):
                results += [StopRun(f"not sent to {r.email}: the run stops", r.email, "")
                            for r in batch[len(results):]]
                break
        return results

    def _deliver(self, source: MessageSource, chunk: Sequence[Recipient]) -> list[Result]:
        """Return the results of one call for chunk; raises ConfigError for a wrong key or endpoint.

        Only a reply too large for the provider (413) is split and sent again in halves: a
        refusal that names no recipient is never halved down to single recipients, since each
        would then be refused alike and bounced for a fault of the request.
        """
        request = self.provider.request(source, chunk)
        self.handing_over(chunk)
        sent = self._post(request, chunk)
        if isinstance(sent, list):
            return sent
        response = sent
        if response.status_code < 300:
            return self.provider.accepted(response, chunk)
        status = response.status_code
        if status in _ENDPOINT_ERRORS:
            raise ConfigError(f"{self.where}: HTTP {status}: {reply_text(response)} "
                              "(check delivery.http.url and provider)")
        if status == 413 and len(chunk) > 1:
            return self._halves(source, chunk)          # too large: the halves are smaller
        refusal = self.provider.refusal(response, chunk)
        if not refusal.rejected:
            reply = f"HTTP {status}: {refusal.reply}"
            return [StopRun(f"{self.where} refused the request: {reply}", r.email, reply) for r in chunk]
        # The reply names the bad addresses: reject those, send the rest again without them.
        results: list[Result | None] = [None] * len(chunk)
        for i, why in refusal.rejected.items():
            r = chunk[i]
            results[i] = RecipientRejected(f"{self.where} refused {r.email}: HTTP {status}: {why}", r.email,
                                           f"HTTP {status}: {why}")
        rest = [i for i in range(len(chunk)) if results[i] is None]
        for i, result in zip(rest, self._deliver(source, [chunk[i] for i in rest]) if rest else []):
            results[i] = result
        return [r for r in results if r is not None]

    def _halves(self, source: MessageSource, chunk: Sequence[Recipient]) -> list[Result]:
        """Return the results of sending each half of chunk on its own."""
        mid = len(chunk) // 2
        return self._deliver(source, chunk[:mid]) + self._deliver(source, chunk[mid:])

    def _post(self, kwargs: dict[str, Any], chunk: Sequence[Recipient]) -> requests.Response | list[Result]:
        """POST, retrying 429, 5xx and failures to connect; return the response or the chunk's results.

        No reply to a request that was sent (a read timeout, the connection dropped after the
        request) makes every message of the call ambiguous: the provider may have accepted it,
        and posting again could send it twice.
        """
        assert self.session is not None
        timeout = self.cfg.timeout
        backoff = max(self.config.delivery.backoff_seconds, 0.0)
        for attempt in range(self.cfg.max_retries + 1):
            wait: float | None
            try:
                response = self.session.post(self.provider.url, timeout=timeout, **kwargs)
            except requests.ConnectionError as err:     # ConnectTimeout included
                if not _never_sent(err):
                    return _ambiguous(chunk, f"{self.where}: the connection failed after the request was "
                                      f"sent ({_why(err)}); the provider may have accepted it")
                why, wait = f"cannot connect: {_why(err)}", None
            except requests.Timeout:               # a read timeout (ConnectTimeout is caught above)
                return _ambiguous(chunk, f"{self.where}: no reply within {timeout:g} s "
                                  "(delivery.http.timeout); the provider may have accepted the call")
            except requests.RequestException as err:
                raise ConfigError(f"{self.where}: {err} (check delivery.http.url)") from err
            else:
                status = response.status_code
                if status in (401, 403):
                    raise ConfigError(f"{self.where} refused the API key (HTTP {status}): "
                                      f"{reply_text(response)}")
                if status != 429 and status < 500:
                    return response
                why, wait = f"HTTP {status}: {reply_text(response)}", retry_after(response)
            delay = wait if wait is not None else min(backoff * 2 ** attempt, MAX_WAIT_SECONDS)
            if attempt == self.cfg.max_retries or delay > MAX_WAIT_SECONDS:
                return _transient(chunk, f"{self.where}: {why}", why, delay)
            log.info("%s: %s; retrying in %.1f s", self.where, why, delay)
            time.sleep(delay)
        raise AssertionError("unreachable")


def _never_sent(err: requests.ConnectionError) -> bool:
    """Return True when a connection error happened before the request could leave (no
    connection, TLS handshake, proxy): then posting again cannot duplicate anything."""
    if isinstance(err, (requests.ConnectTimeout, requests.exceptions.SSLError, requests.exceptions.ProxyError)):
        return True
    reason = err.args[0] if err.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, (NewConnectionError, ConnectTimeoutError))


def _why(err: Exception) -> str:
    """Return the innermost reason of a requests error, briefly."""
    reason = err.args[0] if err.args else err
    reason = getattr(reason, "reason", reason)
    return str(reason)[:200]


def _ambiguous(chunk: Sequence[Recipient], message: str) -> list[Result]:
    """Return an AmbiguousDelivery for every recipient of chunk."""
    return [AmbiguousDelivery(f"{message} (to {r.email})", r.email, message) for r in chunk]


def _transient(chunk: Sequence[Recipient], message: str, reply: str,
               delay: float | None = None) -> list[Result]:
    """Return a TransientDeliveryError for every recipient of chunk."""
    return [TransientDeliveryError(f"{message} (to {r.email})", r.email, reply, retry_after=delay)
            for r in chunk]

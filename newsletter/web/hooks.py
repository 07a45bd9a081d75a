"""Provider webhooks: POST /hooks/postmark, /hooks/mailgun, /hooks/sendgrid and /hooks/ses.

Each view checks the request's credentials or signature first (401 when it carries none, 403 when
they are wrong or stale; nothing is applied either way), then hands the reports to the feedback
package. A provider without its [webhooks.NAME] settings answers 404. The views are exempt from
the forms' CSRF check, never from their signatures. Replays are harmless: each event is applied
once (feedback.apply).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, abort, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from ..config import Config, secret
from ..errors import ConfigError, FeedbackError, SignatureError
from ..feedback import providers, ses, signatures
from ..feedback.apply import apply_all
from ..feedback.report import Report
from .context import services
from .security import csrf_exempt

log = logging.getLogger(__name__)

bp = Blueprint("hooks", __name__, url_prefix="/hooks")
KEYS = "newsletter.hooks"
USED_TOKENS = "newsletter.hooks.used_tokens"
MAX_HOOK_BYTES = 2 * 1024 * 1024     # a SendGrid batch or an SNS message with full headers fits


@dataclass(frozen=True)
class HookKeys:
    """The secrets of the configured webhooks, read once when the app starts (None = off)."""

    postmark: tuple[str, str] | None = None       # (username, password)
    mailgun: str | None = None                    # the webhook signing key
    sendgrid: Any = None                          # the ECDSA public key
    ses: Any = None                               # the SNS signing certificate


def load_keys(config: Config) -> HookKeys:
    """Return the secrets of every webhook configured in config; raises ConfigError naming the key."""
    hooks = config.webhooks
    postmark = mailgun = sendgrid = ses_cert = None
    if hooks.postmark.password_env:
        if not hooks.postmark.username:
            raise ConfigError("webhooks.postmark.username: required when webhooks.postmark.password_env is set")
        postmark = (hooks.postmark.username, secret(hooks.postmark.password_env, "webhooks.postmark.password_env"))
    if hooks.mailgun.signing_key_env:
        mailgun = secret(hooks.mailgun.signing_key_env, "webhooks.mailgun.signing_key_env")
    if hooks.sendgrid.public_key_file:
        sendgrid = signatures.load_sendgrid_key(config.file_path(hooks.sendgrid.public_key_file))
    if hooks.ses.certificate_file:
        ses_cert = signatures.load_sns_certificate(config.file_path(hooks.ses.certificate_file))
    return HookKeys(postmark, mailgun, sendgrid, ses_cert)


class UsedTokens:
    """Mailgun's signature covers only timestamp + token, not the body: whoever saw one signed
    request could post any other event under it while its timestamp is fresh. Each token is
    therefore bound to the first body it came with (kept in memory until its timestamp is stale,
    like the web app's rate limits): the same request again is a harmless replay, another body
    under a used token is refused."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[str, float]] = {}      # token -> (body digest, kept until)

    def claim(self, token: str, body: bytes, max_age: int, now: float | None = None) -> bool:
        """Return True when token is new, or was used with this very body; else False."""
        now = time.time() if now is None else now
        digest = hashlib.sha256(body).hexdigest()
        with self._lock:
            if len(self._seen) > 10_000:
                self._seen = {t: v for t, v in self._seen.items() if v[1] > now}
            seen = self._seen.get(token)
            if seen is not None and seen[1] > now:
                return seen[0] == digest
            self._seen[token] = (digest, now + 2 * max_age)   # timestamps count max_age either way
            return True

    def release(self, token: str) -> None:
        """Forget token (its request failed before anything was applied, so a retry may use it)."""
        with self._lock:
            self._seen.pop(token, None)


def init_hooks(app: Flask, config: Config) -> None:
    """Load the webhooks' secrets into app and register the blueprint; raises ConfigError."""
    app.extensions[KEYS] = load_keys(config)
    app.extensions[USED_TOKENS] = UsedTokens()
    app.register_blueprint(bp)


def _keys() -> HookKeys:
    """Return the current app's webhook secrets."""
    return current_app.extensions[KEYS]


@bp.before_request
def _allow_larger_bodies() -> None:
    """Let webhook bodies be larger than the forms' limit (a batch of events)."""
    request.max_content_length = MAX_HOOK_BYTES


@bp.errorhandler(SignatureError)
def _refused(err: SignatureError) -> ResponseReturnValue:
    """Answer 401 (nothing presented) or 403 (wrong or stale) and log why; nothing was applied."""
    log.warning("webhook %s refused: %s (from %s)", err.source, err, request.remote_addr)
    code = 401 if err.missing else 403
    headers = {"WWW-Authenticate": 'Basic realm="newsletter webhooks"'} if err.missing and err.source == "postmark" else {}
    return jsonify(error="not authenticated" if err.missing else "forbidden"), code, headers


@bp.errorhandler(FeedbackError)
def _unreadable(err: FeedbackError) -> ResponseReturnValue:
    """Answer 400 for an authenticated body of the wrong shape (the provider's retries will not help)."""
    log.warning("webhook %s: %s", err.source, err)
    return jsonify(error=str(err)), 400


def _apply(reports: list[Report]) -> ResponseReturnValue:
    """Apply the reports and answer 200 with what happened to them."""
    s = services()
    done = apply_all(s.engine, s.config.bounces, reports)
    outcomes = Counter(a.outcome for a in done)
    for applied in done:
        if applied.paused:
            log.warning("%s", applied.paused)
    return jsonify(reports=len(done), **{str(k): v for k, v in outcomes.items()}), 200


@bp.post("/postmark")
@csrf_exempt      # a provider's POST: the credentials are checked below, never skipped
def postmark() -> ResponseReturnValue:
    """Take a Postmark bounce or spam-complaint webhook (HTTP basic auth from [webhooks.postmark])."""
    keys = _keys()
    if keys.postmark is None:
        abort(404)
    auth = request.authorization
    basic = auth is not None and auth.type == "basic"
    signatures.check_basic_auth(auth.username if basic else None, auth.password if basic else None, *keys.postmark)
    return _apply(providers.postmark(providers.loads(request.get_data(), "postmark")))


def _signed_json(provider: str) -> Any:
    """Return the JSON body of a request whose signature is inside it; unreadable = unsigned (401)."""
    try:
        return providers.loads(request.get_data(), provider)
    except FeedbackError as err:
        raise SignatureError(f"no signature ({err})", provider, missing=True) from err


@bp.post("/mailgun")
@csrf_exempt      # the signature block is checked below, never skipped
def mailgun() -> ResponseReturnValue:
    """Take a Mailgun webhook: HMAC-SHA256 signature with the webhook signing key, fresh timestamp."""
    keys = _keys()
    if keys.mailgun is None:
        abort(404)
    payload = _signed_json("mailgun")
    block = payload.get("signature") if isinstance(payload, dict) else None
    max_age = services().config.webhooks.max_age_seconds
    signatures.check_mailgun(keys.mailgun, block, max_age)
    used: UsedTokens = current_app.extensions[USED_TOKENS]
    token = str(block["token"])       # check_mailgun made sure block is a dict with a token
    if not used.claim(token, request.get_data(), max_age):
        raise SignatureError("Mailgun signature token already used (a replayed or altered request)", "mailgun")
    try:
        return _apply(providers.mailgun(payload))
    except Exception:
        used.release(token)
        raise


@bp.post("/sendgrid")
@csrf_exempt      # the ECDSA signature is checked below, never skipped
def sendgrid() -> ResponseReturnValue:
    """Take a SendGrid Signed Event Webhook POST (ECDSA P-256 over timestamp + body)."""
    keys = _keys()
    if keys.sendgrid is None:
        abort(404)
    body = request.get_data()
    signatures.check_sendgrid(keys.sendgrid, request.headers.get("X-Twilio-Email-Event-Webhook-Signature"),
                              request.headers.get("X-Twilio-Email-Event-Webhook-Timestamp"), body,
                              services().config.webhooks.max_age_seconds)
    return _apply(providers.sendgrid(providers.loads(body, "sendgrid")))


@bp.post("/ses")
@csrf_exempt      # the SNS signature is checked below, never skipped
def amazon_ses() -> ResponseReturnValue:
    """Take an Amazon SNS message carrying SES bounce and complaint notifications."""
    keys = _keys()
    if keys.ses is None:
        abort(404)
    try:
        message = ses.sns_message(request.get_data())
    except FeedbackError as err:
        raise SignatureError(f"no signature ({err})", "ses", missing=True) from err
    signatures.check_sns(message, keys.ses, services().config.webhooks.ses.topic_arns)
    header = request.headers.get("x-amz-sns-message-type")
    if header is not None and header != message["Type"]:
        raise FeedbackError(f"ses webhook: header type {header!r} differs from the message's {message['Type']!r}", "ses")
    if message["Type"] == "SubscriptionConfirmation":
        # We never fetch URLs ourselves: a person confirms the subscription once.
        log.warning("Amazon SNS asks to confirm the subscription of topic %s: open %s (or confirm it in "
                    "the SNS console)", message.get("TopicArn"), message.get("SubscribeURL"))
        return jsonify(reports=0, confirm=message.get("SubscribeURL", "")), 200
    return _apply(ses.reports(message))

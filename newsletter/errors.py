"""Every exception the library raises on purpose; only the CLI and the web layer turn them into
messages and status codes. Each carries its context as attributes, not only in its text.

    NewsletterError
    ├── ConfigError          bad config, template, plugin or credentials: stop, say what and where
    ├── SourceError          one article or feed could not be used: skip it (.source)
    ├── IssueError           an issue file is missing, invalid or in the wrong state
    │   ├── StaleRender      the saved render is older than its issue file, templates or config
    │   └── EditConflict     the file changed since the editor loaded it (.issue_id)
    ├── RenderError          the issue cannot be rendered: nothing is sent
    │   └── ChecksFailed     pre-send checks failed under --strict (.problems)
    ├── SubscriberError      a bad address, list or import
    │   ├── InputError       a name, list name or custom field breaks its rule (.kind, .reason)
    │   └── TokenError       a link token forged, altered, expired or not ours
    ├── ScheduleError        a time, job or issue cannot be scheduled as asked
    ├── AccountError         a user or API token cannot be added, found or used (.name)
    ├── SendStopped          a run stopped as asked (signal, shutdown); it resumes later
    ├── SendPaused           complaints paused a list's scheduled sends (.list_name, .issue_id)
    ├── FeedbackError        a bounce/complaint report or webhook body cannot be read (.source)
    │   └── SignatureError   a webhook's credentials or signature are missing or wrong
    ├── QueueError           the send queue (workers on PostgreSQL) cannot do what was asked
    │   └── ChunkBusy        a chunk is being sent by another worker right now (.chunk_id)
    └── DeliveryError        one message failed (.recipient, .reply, .reply_class)
        ├── RecipientRejected        permanent for this address: suppressed
        ├── TransientDeliveryError   retried with backoff (.retry_after)
        ├── StopRun                  would fail for every message: stop the run, rows stay pending
        └── AmbiguousDelivery        may have been accepted: unknown, never retried automatically

Each DeliveryError class stands for one models.ReplyClass (its .reply_class); a plain
DeliveryError is a message that failed on its own (ReplyClass.FAILED).
"""

from __future__ import annotations

from .models import ReplyClass


class NewsletterError(Exception):
    """Base of every error the library raises on purpose; its str() is one line for the user."""


class ConfigError(NewsletterError):
    """Bad config, template, plugin or credentials: stop, say what and where."""


class SourceError(NewsletterError):
    """One article or feed could not be fetched, extracted or summarised: skip it, say why.

    .source is what the user named (URL, path or "-") when known.
    """

    def __init__(self, message: str, source: str | None = None):
        super().__init__(message)
        self.source = source


class IssueError(NewsletterError):
    """An issue file is missing, unreadable, invalid TOML or in the wrong state for the request."""


class StaleRender(IssueError):
    """The saved render no longer matches what it was built from (.issue_id, .changed: the inputs
    that changed, in words): sending it would send something else than the editor sees."""

    def __init__(self, message: str, issue_id: str, changed: list[str]):
        super().__init__(message)
        self.issue_id = issue_id
        self.changed = changed


class RenderError(NewsletterError):
    """The issue cannot be rendered: stop before anything is sent."""


class ChecksFailed(RenderError):
    """The pre-send checks found problems and --strict asked to treat them as errors."""

    def __init__(self, issue_id: str, problems: list[str]):
        super().__init__(f"issue {issue_id!r}: {len(problems)} pre-send check(s) failed; nothing saved")
        self.issue_id = issue_id
        self.problems = problems


class SubscriberError(NewsletterError):
    """An address or subscriber list is invalid, unknown or cannot be imported."""


class InputError(SubscriberError):
    """A name, list name or custom field breaks its rule (newsletter/inputs.py).

    .kind says which input ("name", "list name", "field"), .reason what is wrong with it in a few
    words ("is longer than 200 characters"), .value is what was given.
    """

    def __init__(self, message: str, kind: str, reason: str, value: object = None):
        super().__init__(message)
        self.kind = kind
        self.reason = reason
        self.value = value


class TokenError(SubscriberError):
    """A token was forged, altered, cut, expired or is not one of ours."""


class ScheduleError(NewsletterError):
    """A time, job or issue cannot be scheduled (or unscheduled) as asked."""


class AccountError(NewsletterError):
    """A user or API token cannot be added, found or used."""

    def __init__(self, message: str, name: str = ""):
        super().__init__(message)
        self.name = name


class EditConflict(IssueError):
    """An issue file changed (another browser, the CLI, $EDITOR) since the editor loaded it."""

    def __init__(self, message: str, issue_id: str = ""):
        super().__init__(message)
        self.issue_id = issue_id


class SendRefused(IssueError):
    """A send asked for in the web editor or the API was not started: .reason is "confirm" (the
    confirmation does not match), "running" (a send of the issue runs now), "sent" (everyone
    on the list had it) or "empty" (the list has no active subscriber)."""

    def __init__(self, message: str, issue_id: str, reason: str):
        super().__init__(message)
        self.issue_id = issue_id
        self.reason = reason


class SendStopped(NewsletterError):
    """A send stopped part-way because it was asked to (SIGINT/SIGTERM, the scheduler shutting
    down); what went out is recorded and the next run resumes."""

    def __init__(self, message: str, issue_id: str | None = None):
        super().__init__(message)
        self.issue_id = issue_id


class SendPaused(NewsletterError):
    """Complaints about an issue passed bounces.complaint_pause_ratio: scheduled sends of the list
    wait until `newsletter bounces resume` (.list_name, .issue_id: the issue that drew them)."""

    def __init__(self, message: str, list_name: str, issue_id: str | None = None):
        super().__init__(message)
        self.list_name = list_name
        self.issue_id = issue_id


class FeedbackError(NewsletterError):
    """A bounce or complaint report, or a webhook's body, cannot be read (.source: provider or file)."""

    def __init__(self, message: str, source: str | None = None):
        super().__init__(message)
        self.source = source


class SignatureError(FeedbackError):
    """A webhook request's credentials or signature are missing, stale or wrong: nothing is applied.

    .missing is True when the request carried no credentials or signature at all (401), False
    when they were there but wrong or too old (403).
    """

    def __init__(self, message: str, source: str | None = None, missing: bool = False):
        super().__init__(message, source)
        self.missing = missing


class QueueError(NewsletterError):
    """The send queue cannot do what was asked: no queue schema, a chunk or issue in the wrong state."""


class ChunkBusy(QueueError):
    """A chunk of ledger rows is being sent by another worker right now (its lock is held)."""

    def __init__(self, message: str, chunk_id: int | None = None):
        super().__init__(message)
        self.chunk_id = chunk_id


class DeliveryError(NewsletterError):
    """A message could not be delivered; carries the recipient and the server's reply.

    As such: this one message failed, not because of its address (nobody is suppressed).
    """

    reply_class = ReplyClass.FAILED

    def __init__(self, message: str, recipient: str | None = None, reply: str | None = None):
        super().__init__(message)
        self.recipient = recipient
        self.reply = reply


class RecipientRejected(DeliveryError):
    """Permanent failure for this address: it is suppressed (bounced)."""

    reply_class = ReplyClass.RECIPIENT


class TransientDeliveryError(DeliveryError):
    """Temporary failure: retried with backoff, then left deferred for the next run."""

    reply_class = ReplyClass.TRANSIENT

    def __init__(self, message: str, recipient: str | None = None, reply: str | None = None,
                 retry_after: float | None = None):
        super().__init__(message, recipient, reply)
        self.retry_after = retry_after


class StopRun(DeliveryError):
    """The transport refused in a way that would fail for every message (sender, credentials,
    policy, content): the run stops at once and its rows stay pending; nobody is suppressed."""

    reply_class = ReplyClass.SENDER


class PolicyRefusal(StopRun):
    """A policy or system refusal (RFC 3463 X.3, X.5, X.6, X.7, or a basic 5xx that names no
    address) given to one message's RCPT TO or end of DATA. It may concern that mailbox alone (a
    recipient's own filter) or every message (a relay refusing us): the send loop goes on and lets
    the circuit breaker tell them apart. Refused alone, the row is failed (never suppressed);
    refused for everyone, the run stops after a few as a StopRun would, and the rows stay pending."""


class AmbiguousDelivery(DeliveryError):
    """The message may have been accepted: the connection was lost (or no reply came) after it
    was handed over, or a batch reply lacks its result. Its row becomes "unknown" and is resent
    only on request (`send --retry-unknown`): resending could deliver it twice."""

    reply_class = ReplyClass.AMBIGUOUS

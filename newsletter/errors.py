"""Every exception the library raises on purpose; only the CLI and the web layer turn them into
messages and status codes. Each carries its context as attributes, not only in its text.

    NewsletterError
    ├── ConfigError          bad config, template, plugin or credentials: stop, say what and where
    ├── SourceError          one article or feed could not be used: skip it (.source)
    ├── IssueError           an issue file is missing, invalid or in the wrong state
    ├── RenderError          the issue cannot be rendered: nothing is sent
    │   └── ChecksFailed     pre-send checks failed under --strict (.problems)
    ├── SubscriberError      a bad address, list or import
    │   └── TokenError       a link token forged, altered, expired or not ours
    ├── ScheduleError        a time, job or issue cannot be scheduled as asked
    ├── SendStopped          a run stopped as asked (signal, shutdown); it resumes later
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


class TokenError(SubscriberError):
    """A token was forged, altered, cut, expired or is not one of ours."""


class ScheduleError(NewsletterError):
    """A time, job or issue cannot be scheduled (or unscheduled) as asked."""


class SendStopped(NewsletterError):
    """A send stopped part-way because it was asked to (SIGINT/SIGTERM, the scheduler shutting
    down); what went out is recorded and the next run resumes."""

    def __init__(self, message: str, issue_id: str | None = None):
        super().__init__(message)
        self.issue_id = issue_id


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


class AmbiguousDelivery(DeliveryError):
    """The message may have been accepted: the connection was lost (or no reply came) after it
    was handed over, or a batch reply lacks its result. Its row becomes "unknown" and is resent
    only on request (`send --retry-unknown`): resending could deliver it twice."""

    reply_class = ReplyClass.AMBIGUOUS

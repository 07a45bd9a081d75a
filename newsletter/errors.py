"""The exception hierarchy: the library raises these, only the CLI turns them into messages."""

from __future__ import annotations


class NewsletterError(Exception):
    """Base of every error the library raises on purpose; its str() is one line for the user."""


class ConfigError(NewsletterError):
    """Bad config, template, plugin or credentials: stop, say what and where."""


class SourceError(NewsletterError):
    """One article or feed could not be fetched, extracted or summarised: skip it, say why."""


class IssueError(NewsletterError):
    """An issue file is missing, unreadable, invalid TOML or in the wrong state for the request."""


class RenderError(NewsletterError):
    """The issue cannot be rendered: stop before anything is sent."""


class SubscriberError(NewsletterError):
    """An address or subscriber list is invalid, unknown or cannot be imported."""


class DeliveryError(NewsletterError):
    """A message could not be delivered; carries the recipient and the server's reply."""

    def __init__(self, message: str, recipient: str | None = None, reply: str | None = None):
        super().__init__(message)
        self.recipient = recipient
        self.reply = reply


class RecipientRejected(DeliveryError):
    """Permanent failure for this address: it is suppressed (bounced)."""


class TransientDeliveryError(DeliveryError):
    """Temporary failure: retried with backoff, then left deferred for the next run."""

    def __init__(self, message: str, recipient: str | None = None, reply: str | None = None,
                 retry_after: float | None = None):
        super().__init__(message, recipient, reply)
        self.retry_after = retry_after

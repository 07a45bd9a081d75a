"""Plain data passed between the pipeline's stages (frozen dataclasses, no behaviour), and the
states of each state machine (one StrEnum each; a member equals its string in the database)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any


class SubscriberStatus(StrEnum):
    """A subscriber's consent state in one list; the last three are suppressions."""

    ACTIVE = "active"
    UNCONFIRMED = "unconfirmed"       # signed up, double opt-in not yet confirmed
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"               # a permanent failure for this address
    COMPLAINED = "complained"         # marked a message as spam


class SuppressionSource(StrEnum):
    """Where a suppression (bounced, complained, unsubscribed) came from; kept with its reason and time."""

    REPLY = "reply"                   # the sending server's or API's reply during a send
    WEBHOOK = "webhook"               # a provider's signed webhook (Postmark, Mailgun, SendGrid, SES)
    DSN = "dsn"                       # a delivery status notification (RFC 3464) from the bounce mailbox
    ARF = "arf"                       # an abuse/complaint feedback report (RFC 5965) from the mailbox
    LINK = "link"                     # the subscriber's own unsubscribe link (one-click or page)
    IMPORT = "import"                 # a CSV import that named the state
    MANUAL = "manual"                 # a command (`subscribers add --status`, the API)


class FeedbackKind(StrEnum):
    """What a bounce or complaint report says about one message to one address."""

    HARD_BOUNCE = "hard_bounce"       # the address is bad (RFC 3463 X.1.1, X.2.1, ...): suppress
    SOFT_BOUNCE = "soft_bounce"       # not delivered for now (mailbox full, 4.x.x): N in a row suppress
    BLOCKED = "blocked"               # refused for policy or content, not the address: never suppresses
    DELAYED = "delayed"               # still being retried by the relay: informational
    COMPLAINT = "complaint"           # marked as spam: complained (and so unsubscribed)
    OTHER = "other"                   # a report we read but that says nothing about delivery


class FeedbackOutcome(StrEnum):
    """What applying one report did."""

    SUPPRESSED = "suppressed"         # the subscriber is now bounced or complained
    RECORDED = "recorded"             # kept with its message; no state changed
    UNMATCHED = "unmatched"           # no ledger row or subscriber matches it: nothing changed
    DUPLICATE = "duplicate"           # seen before (a replay or a second copy): nothing changed


class DeliveryState(StrEnum):
    """A ledger row (one issue × one subscriber): pending → sending → sent, or another outcome."""

    PENDING = "pending"               # planned, never tried
    SENDING = "sending"               # claimed by a run: on the wire or about to be
    SENT = "sent"
    DEFERRED = "deferred"             # temporary failures: the next run tries again
    BOUNCED = "bounced"               # permanent failure for this address
    FAILED = "failed"                 # this message cannot be built or sent (not the address)
    UNKNOWN = "unknown"               # a run died while it was sending: maybe delivered
    SKIPPED = "skipped"               # unsubscribed or removed after the issue was planned


class ReplyClass(StrEnum):
    """What a transport's reply means for one message (decided in backends/replies.py by RFC 3463
    enhanced status codes and the providers' documented error codes, never by the reply's words)."""

    DELIVERED = "delivered"           # accepted: the row is sent
    RECIPIENT = "recipient"           # permanent for this address: bounced, the subscriber suppressed
    TRANSIENT = "transient"           # temporary: retried with backoff, then deferred to the next run
    SENDER = "sender"                 # sender, credentials, policy or content: would fail for everyone,
                                      # so the run stops at once; its rows stay pending, nobody suppressed
    FAILED = "failed"                 # this one message cannot go (not the address's fault): failed
    AMBIGUOUS = "ambiguous"           # may have been accepted (lost after the message was handed
                                      # over): unknown, never retried automatically


class IssueState(StrEnum):
    """An issue's delivery to a list: sending until no row is open, then sent."""

    SENDING = "sending"
    SENT = "sent"


class ChunkState(StrEnum):
    """A chunk of an issue's ledger rows sent by the workers: queued → running → done, or paused
    (too many failures), failed (the backend or config stopped it), held (not run: its issue was
    paused or failed in another chunk). `newsletter send` queues the unfinished ones again."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    PAUSED = "paused"
    FAILED = "failed"
    HELD = "held"


class JobState(StrEnum):
    """A scheduled job: send jobs scheduled → running → done | failed, or missed, cancelled
    (with [queue] on: running → queued, handed to the workers → done when they finish the send);
    the automatic digest's job is active until cancelled."""

    SCHEDULED = "scheduled"
    RUNNING = "running"
    QUEUED = "queued"
    DONE = "done"
    FAILED = "failed"
    MISSED = "missed"
    CANCELLED = "cancelled"
    ACTIVE = "active"


class DigestState(StrEnum):
    """One firing of the automatic digest: building → draft (review) | sending → sent; or skipped
    (too few new items), failed (could not build), cancelled (a draft whose send was unscheduled)."""

    BUILDING = "building"
    DRAFT = "draft"
    SENDING = "sending"
    SENT = "sent"
    SKIPPED = "skipped"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class RawDocument:
    """What a source yields before extraction: the body as text plus where it came from."""

    source: str                 # what the user named: URL, path or "-"
    body: str                   # decoded text (HTML or plain text)
    kind: str                   # "html" or "text"
    url: str | None = None      # final URL after redirects (None for local files/stdin)


@dataclass(frozen=True)
class Article:
    """An extracted article: clean text and metadata."""

    text: str
    title: str = ""
    url: str | None = None
    author: str = ""
    date: str = ""              # ISO 8601 date (YYYY-MM-DD) when known
    site_name: str = ""
    image: str = ""
    description: str = ""


@dataclass(frozen=True)
class Item:
    """One entry of an issue, as stored in the issue file."""

    url: str
    title: str
    summary: str = ""
    source: str = ""            # site name
    author: str = ""
    date: str = ""
    image: str = ""
    image_alt: str = ""
    section: str = ""
    note: str = ""              # the editor's own comment (Markdown), shown apart from the blurb


@dataclass(frozen=True)
class Issue:
    """An issue as loaded from its TOML file: ordered items grouped by section."""

    id: str
    title: str
    date: str = ""              # ISO date shown in the header
    intro: str = ""             # Markdown, may hold merge fields
    preheader: str = ""
    items: tuple[Item, ...] = ()
    outro: str = ""             # Markdown after the items, may hold merge fields

    def sections(self) -> list[tuple[str, list[Item]]]:
        """Return (section name, items) pairs in first-appearance order; "" is the unnamed section."""
        groups: dict[str, list[Item]] = {}
        for item in self.items:
            groups.setdefault(item.section, []).append(item)
        return list(groups.items())


@dataclass(frozen=True)
class Rendered:
    """An issue rendered once: bodies still holding per-subscriber tokens of this nonce."""

    issue_id: str
    subject: str
    preheader: str
    html: str
    text: str
    nonce: str
    # The per-subscriber merge fields: (token field, Jinja snippet evaluated for each subscriber).
    merge_fields: tuple[tuple[str, str], ...] = ()
    # What the render found and dropped (unsafe links, merge fields it cannot evaluate); not saved.
    warnings: tuple[str, ...] = ()


@dataclass
class BuildReport:
    """What `build` produced: the render, where it was saved, and the pre-send warnings."""

    rendered: Rendered
    folder: Path
    warnings: list[str]


@dataclass(frozen=True)
class Subscriber:
    """A subscriber of one list."""

    email: str
    name: str = ""
    list: str = "default"
    status: str = "active"      # active | unconfirmed | unsubscribed | bounced | complained
    fields: dict[str, Any] = field(default_factory=dict)
    id: int | None = None


@dataclass(frozen=True)
class Delivery:
    """The normalised result of handing one message to a backend."""

    recipient: str
    message_id: str
    provider_id: str = ""       # the transport's id for the message, when it gives one
    reply: str = ""             # the server's reply line


@dataclass(frozen=True)
class Recipient:
    """One addressee of a send: who, the deterministic Message-ID, and the token values to fill."""

    email: str
    message_id: str                         # "<...@domain>", deterministic per (issue, subscriber)
    values: dict[str, str] = field(default_factory=dict)   # token field -> value
    subscriber_id: int | None = None

"""The schema: every table of the project's own (SQLAlchemy Core), on one MetaData, and the
subscriber states that suppress. Alembic revisions (migrations/) build exactly these."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from ..models import SubscriberStatus

metadata = MetaData()

# Subscriber states. Only "active" receives issues; the last three are suppressions that an
# import never undoes (only an explicit set_status, e.g. a confirmed web sign-up, does).
STATUSES = tuple(SubscriberStatus)
SUPPRESSED = frozenset({SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED})

subscribers = Table(
    "subscribers", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("list", String(200), nullable=False),
    Column("email", String(320), nullable=False),          # normalised, spelling as first given
    Column("email_key", String(320), nullable=False),      # lower-cased: uniqueness per list
    Column("name", String(500), nullable=False, default=""),
    Column("fields", JSON, nullable=False, default=dict),  # custom CSV columns for templates
    Column("status", String(20), nullable=False, default="active"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("confirmed_at", DateTime(timezone=True)),
    UniqueConstraint("list", "email_key", name="uq_subscribers_list_email"),
    Index("ix_subscribers_list_status", "list", "status", "id"),
)

issues = Table(
    "issues", metadata,
    Column("id", String(200), primary_key=True),
    Column("list", String(200), primary_key=True),         # one issue may go to several lists
    Column("state", String(20), nullable=False),           # sending | sent
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
)

# The ledger: one row per (issue, subscriber). The row outlives the subscriber (history), so the
# subscriber link becomes NULL when a subscriber is removed and the email column keeps the address.
deliveries = Table(
    "deliveries", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("issue_id", String(200), nullable=False),
    Column("list", String(200), nullable=False),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id", ondelete="SET NULL")),
    Column("email", String(320), nullable=False),
    Column("status", String(20), nullable=False),   # pending|sending|sent|deferred|bounced|failed|unknown|skipped
    Column("attempts", Integer, nullable=False, default=0),
    Column("message_id", String(400), nullable=False, default=""),
    Column("provider_id", String(400), nullable=False, default=""),
    Column("reply", Text, nullable=False, default=""),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("issue_id", "subscriber_id", name="uq_deliveries_issue_subscriber"),
    ForeignKeyConstraint(["issue_id", "list"], ["issues.id", "issues.list"], ondelete="CASCADE"),
    # (issue, list, id) lets the send loop walk an issue's rows in id order, chunk by chunk.
    Index("ix_deliveries_issue_list_id", "issue_id", "list", "id"),
    # Bounce and complaint reports name a message by its Message-ID or the provider's id, and a
    # VERP token by the subscriber (newsletter/feedback/match.py).
    Index("ix_deliveries_message_id", "message_id"),
    Index("ix_deliveries_provider_id", "provider_id"),
    Index("ix_deliveries_subscriber_id", "subscriber_id"),
)

# Why an address stopped receiving: one row per suppression (bounced, complained, unsubscribed)
# with its reason, source (models.SuppressionSource) and time. Reactivating sets lifted_at; the
# open row (lifted_at NULL) of a subscriber explains its current state.
suppressions = Table(
    "suppressions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(20), nullable=False),          # bounced | complained | unsubscribed
    Column("source", String(20), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("issue_id", String(200)),                       # the issue whose message drew it, when known
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("lifted_at", DateTime(timezone=True)),
    Column("lifted_reason", Text, nullable=False, default=""),
    Index("ix_suppressions_subscriber", "subscriber_id", "lifted_at"),
    Index("ix_suppressions_created", "created_at"),
    Index("ix_suppressions_issue", "issue_id"),
)

# Every bounce or complaint report taken in, once: event_key (provider + its event id, or the
# report's own Message-ID + recipient) makes a replayed webhook or a re-read report harmless.
feedback_events = Table(
    "feedback_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_key", String(400), nullable=False),
    Column("kind", String(20), nullable=False),            # models.FeedbackKind
    Column("source", String(20), nullable=False),          # models.SuppressionSource
    Column("provider", String(40), nullable=False, default=""),
    Column("email", String(320), nullable=False, default=""),
    Column("issue_id", String(200)),
    Column("list", String(200)),
    Column("delivery_id", Integer),                        # the ledger row (kept if the row goes)
    Column("subscriber_id", Integer),
    Column("code", String(40), nullable=False, default=""),   # enhanced status or provider code
    Column("detail", Text, nullable=False, default=""),
    Column("outcome", String(20), nullable=False),         # models.FeedbackOutcome
    Column("received_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("event_key", name="uq_feedback_events_key"),
    Index("ix_feedback_events_delivery", "delivery_id"),
    Index("ix_feedback_events_issue", "issue_id", "list", "kind"),
)

# Lists whose scheduled sends wait because an issue drew too many complaints; one row per
# (list, issue). resumed_at is set by `newsletter bounces resume`; an open row pauses the list.
list_pauses = Table(
    "list_pauses", metadata,
    Column("list", String(200), primary_key=True),
    Column("issue_id", String(200), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("paused_at", DateTime(timezone=True), nullable=False),
    Column("resumed_at", DateTime(timezone=True)),
)

# Facts about this database, one row each, written once (the first writer wins).
meta = Table(
    "newsletter_meta", metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)
# When a release that puts opaque subscriber references in links first opened this database: links
# of issues sent before then name the address itself (see web/links.py, signing.legacy_link_days).
OPAQUE_LINKS_SINCE = "opaque_links_since"

# The editors' workspace (web/admin, web/api). Accounts: passwords and API tokens are stored
# only as hashes (argon2 for passwords, SHA-256 for the random 256-bit tokens).
users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

api_tokens = Table(
    "api_tokens", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("token_hash", String(64), nullable=False, unique=True),   # hex SHA-256 of the token
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True)),
)

# The editors' login sessions: the cookie carries a random token, the database its SHA-256, so
# logging out (or removing the user) ends the session for good, even for a copied cookie.
admin_sessions = Table(
    "admin_sessions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),   # hex SHA-256 of the token
    Column("user_name", String(100), nullable=False, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
)

# The inbox: links waiting to be put into an issue (from feeds, the bookmarklet, pasting, the API).
inbox_candidates = Table(
    "inbox_candidates", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("url", String(2000), nullable=False),
    Column("url_key", String(64), nullable=False, unique=True),       # hex SHA-256 of the URL
    Column("title", String(1000), nullable=False, default=""),
    Column("site", String(300), nullable=False, default=""),
    Column("origin", String(20), nullable=False),                     # feed|bookmarklet|paste|api
    Column("published", String(40), nullable=False, default=""),
    Column("added_to", String(200), nullable=False, default=""),      # issue id once moved in
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Filled by the background fetch (fetch, extract, summarise) once the link arrives:
    Column("image", String(2000), nullable=False, default="", server_default=""),
    Column("blurb", Text, nullable=False, default="", server_default=""),
    Column("fetch_state", String(20), nullable=False, default="", server_default=""),   # ""|fetching|fetched|failed
    Column("fetch_error", String(500), nullable=False, default="", server_default=""),
    Column("item", Text, nullable=False, default="", server_default=""),   # the issue item, JSON, to move in unfetched
)

# Links the editor dismissed: never offered again, whatever brings them back.
dismissed_links = Table(
    "dismissed_links", metadata,
    Column("url_key", String(64), primary_key=True),
    Column("url", String(2000), nullable=False),
    Column("dismissed_at", DateTime(timezone=True), nullable=False),
)

# Addresses erased at their owner's request: only a SHA-256 of the lower-cased address is kept,
# so an import or a manual add cannot bring the address back, and nothing else about it remains.
erased_addresses = Table(
    "erased_addresses", metadata,
    Column("list", String(200), primary_key=True),
    Column("address_hash", String(64), primary_key=True),
    Column("erased_at", DateTime(timezone=True), nullable=False),
)

# The newest revision in newsletter/migrations/versions: a database there needs no upgrade.
# A new revision sets this too (tests/test_migrations.py checks that they agree).

"""Bounce and complaint intake, opaque links and feed memory: suppressions, feedback_events,
list_pauses, newsletter_meta, feed_entries_seen, auto_digest_carry (the automatic digest's
overflow), and indexes on deliveries for matching reports.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: Union[str, Sequence[str], None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Create the tables and indexes of bounce/complaint intake, opaque links and feed memory."""
    op.create_table(
        "suppressions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("issue_id", sa.String(200)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lifted_at", sa.DateTime(timezone=True)),
        sa.Column("lifted_reason", sa.Text, nullable=False),
    )
    op.create_index("ix_suppressions_subscriber", "suppressions", ["subscriber_id", "lifted_at"])
    op.create_index("ix_suppressions_created", "suppressions", ["created_at"])
    op.create_index("ix_suppressions_issue", "suppressions", ["issue_id"])
    op.create_table(
        "feedback_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_key", sa.String(400), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("provider", sa.String(40), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("issue_id", sa.String(200)),
        sa.Column("list", sa.String(200)),
        sa.Column("delivery_id", sa.Integer),
        sa.Column("subscriber_id", sa.Integer),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("event_key", name="uq_feedback_events_key"),
    )
    op.create_index("ix_feedback_events_delivery", "feedback_events", ["delivery_id"])
    op.create_index("ix_feedback_events_issue", "feedback_events", ["issue_id", "list", "kind"])
    op.create_table(
        "list_pauses",
        sa.Column("list", sa.String(200), primary_key=True),
        sa.Column("issue_id", sa.String(200), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resumed_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "newsletter_meta",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "feed_entries_seen",
        sa.Column("feed", sa.String(64), primary_key=True),
        sa.Column("guid", sa.String(64), primary_key=True),
        sa.Column("seen_at", sa.Float, nullable=False),
    )
    op.create_table(
        "auto_digest_carry",
        sa.Column("issue_id", sa.String(200), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("published", sa.Float, nullable=False),
        sa.Column("feed_order", sa.Integer, nullable=False),
        sa.Column("section", sa.Text, nullable=False),
        sa.Column("feed", sa.Text, nullable=False),
        sa.Column("guid", sa.Text, nullable=False),
    )
    # Reports name a message by its Message-ID or the provider's id, a VERP token by the subscriber.
    op.create_index("ix_deliveries_message_id", "deliveries", ["message_id"])
    op.create_index("ix_deliveries_provider_id", "deliveries", ["provider_id"])
    op.create_index("ix_deliveries_subscriber_id", "deliveries", ["subscriber_id"])


def downgrade() -> None:
    """Drop what upgrade() created."""
    for index in ("ix_deliveries_subscriber_id", "ix_deliveries_provider_id", "ix_deliveries_message_id"):
        op.drop_index(index, table_name="deliveries")
    for table in ("auto_digest_carry", "feed_entries_seen", "newsletter_meta", "list_pauses", "feedback_events", "suppressions"):
        op.drop_table(table)

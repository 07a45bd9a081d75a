"""The send queue's tables (queue_sends, queue_chunks, queue_workers, queue_rates).

Procrastinate's own tables are created and upgraded by `newsletter db upgrade` from the SQL that
ships with it (PostgreSQL only), not by this revision.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: Union[str, Sequence[str], None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Create the queue's tables."""
    op.create_table(
        "queue_sends",
        sa.Column("issue_id", sa.String(200), primary_key=True),
        sa.Column("list", sa.String(200), primary_key=True),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("preheader", sa.Text, nullable=False),
        sa.Column("html", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("nonce", sa.String(100), nullable=False),
        sa.Column("retry_unknown", sa.Boolean, nullable=False),
        sa.Column("halted", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["issue_id", "list"], ["issues.id", "issues.list"], ondelete="CASCADE"),
    )
    op.create_table(
        "queue_chunks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("issue_id", sa.String(200), nullable=False),
        sa.Column("list", sa.String(200), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("first_row", sa.Integer, nullable=False),
        sa.Column("last_row", sa.Integer, nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("job_id", sa.BigInteger),
        sa.Column("worker_id", sa.BigInteger),
        sa.Column("worker", sa.String(200), nullable=False),
        sa.Column("runs", sa.Integer, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("issue_id", "list", "seq", name="uq_queue_chunks_issue_seq"),
        sa.ForeignKeyConstraint(["issue_id", "list"], ["queue_sends.issue_id", "queue_sends.list"],
                                ondelete="CASCADE"),
    )
    op.create_table(
        "queue_workers",
        sa.Column("worker_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("queues", sa.String(500), nullable=False),
        sa.Column("concurrency", sa.Integer, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "queue_rates",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("next_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    """Drop the queue's tables."""
    for name in ("queue_rates", "queue_workers", "queue_chunks", "queue_sends"):
        op.drop_table(name)

"""Baseline: the schema of newsletter 0.1 (before migrations), as its code created it.

Tables of db.py (subscribers, issues, deliveries), of the scheduler (scheduled_jobs,
auto_digests, scheduler_lease) and APScheduler 3's job store (apscheduler_jobs).

Databases made before migrations existed have no version: `newsletter db upgrade` checks their
tables against this revision and then runs it, so only the tables missing there are created
(the scheduler's were created on first use, so an older database may lack some).

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def _subscribers() -> None:
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("list", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("email_key", sa.String(320), nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("fields", sa.JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("list", "email_key", name="uq_subscribers_list_email"),
    )
    op.create_index("ix_subscribers_list_status", "subscribers", ["list", "status", "id"])


def _issues() -> None:
    op.create_table(
        "issues",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("list", sa.String(200), primary_key=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
    )


def _deliveries() -> None:
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("issue_id", sa.String(200), nullable=False),
        sa.Column("list", sa.String(200), nullable=False),
        sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id", ondelete="SET NULL")),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("message_id", sa.String(400), nullable=False),
        sa.Column("provider_id", sa.String(400), nullable=False),
        sa.Column("reply", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("issue_id", "subscriber_id", name="uq_deliveries_issue_subscriber"),
        sa.ForeignKeyConstraint(["issue_id", "list"], ["issues.id", "issues.list"], ondelete="CASCADE"),
    )
    op.create_index("ix_deliveries_issue_list_id", "deliveries", ["issue_id", "list", "id"])


def _scheduled_jobs() -> None:
    op.create_table(
        "scheduled_jobs",
        sa.Column("job_id", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("issue_id", sa.String(200), nullable=False),
        sa.Column("list", sa.String(200), nullable=False),
        sa.Column("cron", sa.String(200), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("run_at", sa.Float, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def _auto_digests() -> None:
    op.create_table(
        "auto_digests",
        sa.Column("issue_id", sa.String(200), primary_key=True),
        sa.Column("fired_at", sa.Float, nullable=False, unique=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("items", sa.Integer, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def _scheduler_lease() -> None:
    op.create_table(
        "scheduler_lease",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started", sa.String(40), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )


def _apscheduler_jobs() -> None:
    # As APScheduler 3's SQLAlchemyJobStore creates it (tablename "apscheduler_jobs").
    op.create_table(
        "apscheduler_jobs",
        sa.Column("id", sa.Unicode(191), primary_key=True),
        sa.Column("next_run_time", sa.Float(25), index=True),
        sa.Column("job_state", sa.LargeBinary, nullable=False),
    )


TABLES = {
    "subscribers": _subscribers, "issues": _issues, "deliveries": _deliveries,
    "scheduled_jobs": _scheduled_jobs, "auto_digests": _auto_digests,
    "scheduler_lease": _scheduler_lease, "apscheduler_jobs": _apscheduler_jobs,
}


def upgrade() -> None:
    """Create the baseline tables that do not exist yet (all of them in a new database)."""
    present = set(sa.inspect(op.get_bind()).get_table_names())
    for name, create in TABLES.items():
        if name not in present:
            create()


def downgrade() -> None:
    """Drop every baseline table (the data goes with them)."""
    for name in reversed(list(TABLES)):
        op.drop_table(name)

"""The web editor's tables: users, api_tokens, inbox_candidates, dismissed_links, erased_addresses.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: Union[str, Sequence[str], None] = "0003"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Create the editors' accounts, API tokens, the inbox and the erasure list."""
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "inbox_candidates",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("url_key", sa.String(64), nullable=False, unique=True),
        sa.Column("title", sa.String(1000), nullable=False),
        sa.Column("site", sa.String(300), nullable=False),
        sa.Column("origin", sa.String(20), nullable=False),
        sa.Column("published", sa.String(40), nullable=False),
        sa.Column("added_to", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "dismissed_links",
        sa.Column("url_key", sa.String(64), primary_key=True),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("dismissed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "erased_addresses",
        sa.Column("list", sa.String(200), primary_key=True),
        sa.Column("address_hash", sa.String(64), primary_key=True),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    """Drop what upgrade() created."""
    for table in ("erased_addresses", "dismissed_links", "inbox_candidates", "api_tokens", "users"):
        op.drop_table(table)

"""The inbox's background fetch: image, blurb, fetch state and the ready issue item per candidate.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: Union[str, Sequence[str], None] = "0004"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_COLUMNS = (("image", sa.String(2000)), ("blurb", sa.Text()), ("fetch_state", sa.String(20)),
            ("fetch_error", sa.String(500)), ("item", sa.Text()))


def upgrade() -> None:
    """Add the fetched details to inbox_candidates (existing rows: not fetched yet)."""
    with op.batch_alter_table("inbox_candidates") as batch:
        for name, kind in _COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=False, server_default=""))


def downgrade() -> None:
    """Drop the fetched details."""
    with op.batch_alter_table("inbox_candidates") as batch:
        for name, _kind in reversed(_COLUMNS):
            batch.drop_column(name)

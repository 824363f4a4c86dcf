"""Schema 4: two-way pairs with their per-field baselines (``ds_pairs``), rows marked missing (``ds_missing``).

``ds_pairs`` holds one row per pair of twin records of a two-way route (``sync_assets.routes.TwoWayRoute``):
the key on side A, the key on side B, and the hash of every field's value when the two sides last
agreed, so that a pass tells an edit from the echo of its own write. ``ds_missing`` holds the rows a
route with ``on_missing`` has marked as no longer at the source.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create ``ds_pairs`` and ``ds_missing``."""
    op.create_table(
        "ds_pairs",
        sa.Column("pair", sa.String(200), primary_key=True),
        sa.Column("a_key", sa.String(1024), primary_key=True),
        sa.Column("b_key", sa.String(1024), nullable=False),
        sa.Column("fields", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ds_pairs_b", "ds_pairs", ["pair", "b_key"], unique=True)
    op.create_table(
        "ds_missing",
        sa.Column("route", sa.String(200), primary_key=True),
        sa.Column("primary_key", sa.String(1024), primary_key=True),
        sa.Column("destination_id", sa.String(1024), nullable=False),
        sa.Column("marked_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    """Back to schema 3 (pairs and missing marks are lost)."""
    op.drop_table("ds_missing")
    op.drop_index("ds_pairs_b", table_name="ds_pairs")
    op.drop_table("ds_pairs")

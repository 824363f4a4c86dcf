"""Schema 2: route-level listing facts, and the partition and listing leases.

``ds_route_state`` keeps when the last complete listing started and (some of) the keys it found
twice, so that status and checks never re-scan ``ds_listing``; ``ds_leases`` is new.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add the listing facts to ``ds_route_state`` and create ``ds_leases``."""
    op.add_column("ds_route_state", sa.Column("listing_started_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("ds_route_state", sa.Column("duplicate_keys", sa.Text, nullable=True))
    op.create_table(
        "ds_leases",
        sa.Column("route", sa.String(200), primary_key=True),
        sa.Column("name", sa.String(300), primary_key=True),
        sa.Column("holder", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("renewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    """Back to schema 1 (the leases and the listing facts are lost)."""
    op.drop_table("ds_leases")
    op.drop_column("ds_route_state", "duplicate_keys")
    op.drop_column("ds_route_state", "listing_started_at")

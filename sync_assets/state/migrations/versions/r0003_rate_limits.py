"""Schema 3: one rate-limit row per credential, shared by every process (``ds_rate_limits``).

A row holds the credential's GCRA state: ``tat`` (the theoretical arrival time of the next request,
epoch seconds) and ``blocked_until`` (the end of a server-named wait, a 429's ``Retry-After``).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create ``ds_rate_limits``."""
    op.create_table(
        "ds_rate_limits",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("tat", sa.Float, nullable=False),
        sa.Column("blocked_until", sa.Float, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    """Back to schema 2 (the shared limits start afresh)."""
    op.drop_table("ds_rate_limits")

"""Schema 1: the state store as the releases before migrations created it.

A frozen copy of those tables (not an import of today's ``_schema``, which moves on). A database a
release before migrations created carries ``schema_version`` 1 in ``ds_meta`` instead of a version
row: ``durable-sync migrate`` stamps it at this revision and upgrades it from here.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _when(name: str, nullable: bool = False) -> sa.Column[dt.datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Create the schema-1 tables."""
    op.create_table(
        "ds_links",
        sa.Column("route", sa.String(200), primary_key=True),
        sa.Column("primary_key", sa.String(1024), primary_key=True),
        sa.Column("partition", sa.String(300), nullable=True),
        sa.Column("destination_id", sa.String(1024), nullable=True),
        sa.Column("content_hash", sa.String(64), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        _when("synced_at", nullable=True),
    )
    op.create_index("ds_links_partition", "ds_links", ["route", "partition"])
    op.create_index("ds_links_state", "ds_links", ["route", "state"])
    op.create_table(
        "ds_listing",
        sa.Column("route", sa.String(200), nullable=False),
        sa.Column("reconcile_id", sa.String(40), nullable=False),
        sa.Column("primary_key", sa.String(1024), nullable=False),
        sa.Column("destination_id", sa.String(1024), nullable=False),
    )
    op.create_index("ds_listing_key", "ds_listing", ["route", "reconcile_id", "primary_key"])
    op.create_table(
        "ds_route_state",
        sa.Column("route", sa.String(200), primary_key=True),
        _when("last_reconciled_at", nullable=True),
        sa.Column("reconcile_id", sa.String(40), nullable=True),
        sa.Column("listed", sa.Integer, nullable=True),
        sa.Column("duplicates", sa.Integer, nullable=False),
    )
    op.create_table(
        "ds_record_outcomes",
        sa.Column("route", sa.String(200), primary_key=True),
        sa.Column("partition", sa.String(300), primary_key=True),
        sa.Column("primary_key", sa.String(1024), primary_key=True),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        _when("first_failed_at"),
        _when("last_seen"),
    )
    op.create_table(
        "ds_checkpoints",
        sa.Column("route", sa.String(200), primary_key=True),
        sa.Column("partition", sa.String(300), primary_key=True),
        sa.Column("pass_id", sa.String(40), nullable=False),
        sa.Column("cursor", sa.Text, nullable=True),
        sa.Column("stats", sa.Text, nullable=False),
        sa.Column("options", sa.Text, nullable=False),
        _when("started_at"),
        _when("updated_at"),
    )
    op.create_table(
        "ds_passes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("route", sa.String(200), nullable=False),
        sa.Column("partition", sa.String(300), nullable=False),
        sa.Column("pass_id", sa.String(40), nullable=False),
        sa.Column("mode", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        _when("started_at"),
        _when("finished_at"),
        sa.Column("stats", sa.Text, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("run_id", sa.String(64), nullable=True),
    )
    op.create_index("ds_passes_partition", "ds_passes", ["route", "partition", "id"])
    op.create_table(
        "ds_pauses",
        sa.Column("scope", sa.String(400), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        _when("paused_at"),
        sa.Column("fingerprint", sa.String(128), nullable=True),
        sa.Column("source", sa.String(20), nullable=False),
    )
    op.create_table(
        "ds_requests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("route", sa.String(200), nullable=False),
        sa.Column("partition", sa.String(300), nullable=False),
        sa.Column("only_items", sa.Text, nullable=True),
        sa.Column("full_refresh", sa.Boolean, nullable=False),
        sa.Column("reason", sa.String(40), nullable=False),
        _when("created_at"),
        _when("taken_at", nullable=True),
        sa.Column("run_key", sa.String(300), nullable=True),
    )
    op.create_index("ds_requests_pending", "ds_requests", ["taken_at", "id"])
    op.create_table(
        "ds_partition_state",
        sa.Column("route", sa.String(200), primary_key=True),
        sa.Column("partition", sa.String(300), primary_key=True),
        _when("not_before", nullable=True),
        sa.Column("last_failure", sa.Text, nullable=True),
        _when("last_failure_at", nullable=True),
        sa.Column("last_failure_run_id", sa.String(64), nullable=True),
    )
    op.create_table(
        "ds_tokens",
        sa.Column("account", sa.String(200), primary_key=True),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        _when("updated_at"),
    )
    op.create_table(
        "ds_blobs",
        sa.Column("namespace", sa.String(100), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("value", sa.LargeBinary, nullable=False),
        _when("updated_at"),
    )
    op.create_table(
        "ds_locks",
        sa.Column("name", sa.String(200), primary_key=True),
        _when("taken_at", nullable=True),
    )
    op.create_table(
        "ds_meta",
        sa.Column("key", sa.String(50), primary_key=True),
        sa.Column("value", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    """Drop every state-store table (and everything in them)."""
    for table in (
        "ds_meta",
        "ds_locks",
        "ds_blobs",
        "ds_tokens",
        "ds_partition_state",
        "ds_requests",
        "ds_pauses",
        "ds_passes",
        "ds_checkpoints",
        "ds_record_outcomes",
        "ds_route_state",
        "ds_listing",
        "ds_links",
    ):
        op.drop_table(table)

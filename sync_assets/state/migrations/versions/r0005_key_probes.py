"""Schema 5: indexes that leave PostgreSQL one way to probe a row by its key, statistics or not.

``ds_links_state`` (route, state) and ``ds_links_partition`` (route, partition) were also indexes on
the route alone, and ``ds_pairs_b`` (pair, b_key) one on the pair alone. PostgreSQL without
statistics (a new database, a route that just grew) estimated a route's rows at a handful, costed a
walk of them like the primary key's probe by (route, primary_key), and took it for each probe of the
listing merge and of a page's keys. Now only the primary key leads with the route or the pair:
``ds_links_state`` is (state, route, primary_key), ``ds_links_partition`` (partition, route,
primary_key) — the key last, so a state's or a partition's links are read in key order — and
``ds_pairs_b`` is (b_key, pair).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def _links_indexes(state: list[str], partition: list[str]) -> None:
    op.drop_index("ds_links_state", table_name="ds_links")
    op.drop_index("ds_links_partition", table_name="ds_links")
    op.create_index("ds_links_state", "ds_links", state)
    op.create_index("ds_links_partition", "ds_links", partition)


def upgrade() -> None:
    """Rebuild the three indexes with the route (or the pair) after the columns that select."""
    _links_indexes(["state", "route", "primary_key"], ["partition", "route", "primary_key"])
    op.drop_index("ds_pairs_b", table_name="ds_pairs")
    op.create_index("ds_pairs_b", "ds_pairs", ["b_key", "pair"], unique=True)


def downgrade() -> None:
    """Back to schema 4's indexes."""
    _links_indexes(["route", "state"], ["route", "partition"])
    op.drop_index("ds_pairs_b", table_name="ds_pairs")
    op.create_index("ds_pairs_b", "ds_pairs", ["pair", "b_key"], unique=True)

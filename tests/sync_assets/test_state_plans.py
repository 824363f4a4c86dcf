"""The state store's per-page and per-status queries are index-driven on both databases, with no
ANALYZE run (a fresh deployment has no statistics), and an older state database upgrades in place."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from sync_assets.cli import main
from sync_assets.state import SCHEMA_VERSION, Fence, StateSchemaError, StateStore

ROUTE = "r"


def _fill(store: StateStore, links: int = 5_000, listed: int = 5_000) -> None:
    store.commit_page(ROUTE, "p", linked=[(f"k{i:06d}", f"id{i}", "h") for i in range(links)])
    rid = store.begin_listing(ROUTE)
    store.add_listing(ROUTE, rid, [(f"k{i:06d}", f"id{i}") for i in range(listed)])
    store.add_listing(ROUTE, rid, [(f"k{i:06d}", f"dup{i}") for i in range(60)])  # keys listed twice
    store.finish_listing(ROUTE, rid, authoritative=True, partition="p")


def _plan(store: StateStore, sql: str, params: dict) -> str:
    with store.engine.connect() as conn:
        prefix = "EXPLAIN QUERY PLAN " if store.dialect == "sqlite" else "EXPLAIN "
        rows = conn.execute(sa.text(prefix + sql), params).all()
    return "\n".join(str(r[-1]) for r in rows)


HOT_QUERIES = {
    # The page lookup (claim_creates / get_links), the intent count, the lease, the route's
    # listing facts (status and checks read them every run), a partition's failed records.
    "page lookup": (
        "SELECT primary_key, destination_id, content_hash, state, partition FROM ds_links "
        "WHERE route = :r AND primary_key IN (:a, :b, :c)",
        {"r": ROUTE, "a": "k000001", "b": "k010000", "c": "nope"},
    ),
    "pending intents": (
        "SELECT count(*) FROM ds_links WHERE route = :r AND state = 'creating' AND partition = :p",
        {"r": ROUTE, "p": "p"},
    ),
    "lease": ("SELECT holder FROM ds_leases WHERE route = :r AND name = :n", {"r": ROUTE, "n": "p"}),
    "last reconcile": (
        "SELECT last_reconciled_at, duplicates, duplicate_keys FROM ds_route_state WHERE route = :r",
        {"r": ROUTE},
    ),
    "failed records": (
        "SELECT primary_key FROM ds_record_outcomes WHERE route = :r AND partition = :p ORDER BY primary_key",
        {"r": ROUTE, "p": "p"},
    ),
}


def test_hot_queries_use_indexes_without_statistics(store):
    _fill(store)
    for name, (sql, params) in HOT_QUERIES.items():
        plan = _plan(store, sql, params)
        if store.dialect == "sqlite":
            # SEARCH = an index (or primary key) lookup; SCAN = a walk over the whole table.
            assert "SEARCH ds_" in plan and "SCAN ds_" not in plan, (name, plan)
        else:
            assert "Seq Scan" not in plan, (name, plan)
            assert "Index" in plan, (name, plan)


def test_last_reconcile_reads_stored_duplicates_not_the_listing(store):
    _fill(store, links=500, listed=500)
    when, dups, keys = store.last_reconcile(ROUTE)
    assert when is not None and dups == 60 and len(keys) == 50
    assert keys[0] == ("k000000", ["dup0", "id0"])
    # The listing rows may go (a later listing replaces them): the answer stays.
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM ds_listing")
    assert store.last_reconcile(ROUTE)[1:] == (60, keys)


def _downgrade_to_v1(store: StateStore) -> None:
    """Make the database look like one written by the schema-1 release (its tables and data)."""
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE ds_leases")
        # Tables of later schemas (3: rate limits; 4: two-way pairs, missing marks).
        for table in ("ds_rate_limits", "ds_pairs", "ds_missing"):
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
        conn.exec_driver_sql("ALTER TABLE ds_route_state DROP COLUMN listing_started_at")
        conn.exec_driver_sql("ALTER TABLE ds_route_state DROP COLUMN duplicate_keys")
        conn.exec_driver_sql("DROP TABLE ds_alembic_version")  # that release kept its version in ds_meta only
        conn.exec_driver_sql("DELETE FROM ds_meta WHERE key = 'schema_version'")
        conn.exec_driver_sql("INSERT INTO ds_meta (key, value) VALUES ('schema_version', '1')")


def test_a_schema_1_database_is_refused_then_migrated_in_place_and_keeps_its_data(store):
    _fill(store, links=300, listed=300)
    store.commit_page(ROUTE, "p", failures=[("bad", "boom")])
    _downgrade_to_v1(store)
    store.dispose()
    with pytest.raises(StateSchemaError, match=r"revision 0001 .*run `durable-sync migrate`"):
        StateStore(store.url)
    assert main(["migrate", "--url", store.url]) == 0
    upgraded = StateStore(store.url)
    try:
        with upgraded.engine.connect() as conn:
            version = conn.exec_driver_sql("SELECT value FROM ds_meta WHERE key = 'schema_version'").scalar_one()
        assert int(version) == SCHEMA_VERSION
        assert upgraded.link_count(ROUTE) == 300
        assert [o.primary_key for o in upgraded.failed_records(ROUTE, "p")] == ["bad"]
        assert upgraded.last_reconcile(ROUTE)[1] == 60  # the count survives; the keys come with the next listing
        assert upgraded.acquire_lease(ROUTE, "p", "h", seconds=20)[0]
        upgraded.release_lease(ROUTE, Fence("p", "h", 20))
        # Opening it again is a no-op.
        StateStore(store.url).dispose()
    finally:
        upgraded.dispose()

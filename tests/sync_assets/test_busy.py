"""A run of a partition another pass holds ends without writing and without failing (any launch path)."""

from __future__ import annotations

import dagster as dg

from sync_assets.state import Fence
from sync_assets.testing import materialize_route
from tests.sync_assets.helpers import memory_route, records


def test_a_run_of_a_held_partition_succeeds_without_a_materialization(sqlite_store, monkeypatch):
    monkeypatch.setenv("DURABLE_SYNC_LEASE_WAIT", "0.2")
    route = memory_route({"all": records(30)})
    # Another pass (a run launched from the UI, say) holds the partition right now.
    assert sqlite_store.acquire_lease(route.name, "all", "other", seconds=60, run_id="run-other")[0]
    with dg.instance_for_test() as instance:
        run = materialize_route(route, "all", store=sqlite_store, instance=instance)
        logs = "\n".join(entry.user_message for entry in instance.all_logs(run.result.run_id))
        assert run.success
        assert "ASSET_MATERIALIZATION" not in run.event_types
        assert set(run.checks) >= {"no_failed_records", "no_duplicate_keys"}
    assert route.destination.counters.writes == 0
    assert "another pass holds it (run run-other)" in logs
    # Once the other pass lets go, the next run syncs.
    sqlite_store.release_lease(route.name, Fence("all", "other", 60))
    run = materialize_route(route, "all", store=sqlite_store)
    assert run.success and run.stats.created == 30

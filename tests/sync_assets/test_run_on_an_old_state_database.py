"""A run against a state database that needs `durable-sync migrate` fails once, saying so.

No retry can help (the schema does not change by itself), so the run is not retried: the asset's retry
policy would otherwise spend its retries and backoff on it and end with Dagster's "Exceeded
max_retries", hiding the instruction.
"""

from __future__ import annotations

import dagster as dg

from connectors.core import Record
from connectors.memory import MemoryDestination, MemorySource
from sync_assets.factory import build_route
from sync_assets.io_managers import LinkMapIOManager
from sync_assets.resources import SyncStateResource
from sync_assets.routes import Route
from tests.sync_assets.test_state_migrations import _create_schema_1_database


def test_a_run_on_a_state_database_needing_migrate_fails_at_once_without_retries(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    _create_schema_1_database(url)
    route = Route(MemorySource([Record("a", {"Name": "a"})]), MemoryDestination(), name="old_state")
    rd = build_route(route, dg.AssetKey([route.source.name]), (), retry_policy=dg.RetryPolicy(max_retries=3))
    instance = dg.DagsterInstance.ephemeral()
    (partition,) = route.specs_by_partition()
    instance.add_dynamic_partitions(route.name, [partition])
    state = SyncStateResource(url=url)
    result = dg.materialize(
        [rd.asset],
        partition_key=partition,
        resources={"sync_state": state, "link_map_io_manager": LinkMapIOManager(state=state)},
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    events = result.all_events
    assert not [e for e in events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    (failure,) = [e for e in events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    message = failure.step_failure_data.error.message
    assert "run `durable-sync migrate`" in message and "at revision 0001" in message, message

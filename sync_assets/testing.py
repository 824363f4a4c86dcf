"""Test helpers: materialize a route in one line.

    from sync_assets.testing import materialize_route

    def test_my_route(tmp_path):
        result = materialize_route(my_route, state_url=f"sqlite:///{tmp_path}/state.db")
        assert result.stats.created == 3

Each call runs the real asset through ``dagster.materialize`` (checks, metadata, retry policy and
all) on an ephemeral instance unless one is given, after registering the partition.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg

from connectors.memory import MemoryDestination, MemorySource
from sync_assets.engine import PassStats
from sync_assets.factory import SyncConfig, build_route
from sync_assets.io_managers import LinkMapIOManager
from sync_assets.resources import SyncStateResource
from sync_assets.routes import Route
from sync_assets.state import StateStore

__all__ = ["MemoryDestination", "MemorySource", "RouteRun", "materialize_route"]


@dataclass
class RouteRun:
    """The outcome of ``materialize_route``."""

    result: dg.ExecuteInProcessResult
    route: Route
    partition: str

    @property
    def success(self) -> bool:
        return self.result.success

    @property
    def metadata(self) -> dict[str, Any]:
        mats = self.result.asset_materializations_for_node(self.route.name)
        if not mats:
            return {}
        return {k: getattr(v, "value", v) for k, v in mats[-1].metadata.items()}

    @property
    def stats(self) -> PassStats:
        md = self.metadata
        if not md:
            raise AssertionError(f"{self.route.name}/{self.partition} did not materialize: {self.failure}")
        return PassStats.from_dict(md)

    @property
    def checks(self) -> dict[str, dg.AssetCheckEvaluation]:
        return {e.check_name: e for e in self.result.get_asset_check_evaluations()}

    @property
    def failure(self) -> str | None:
        for event in self.result.all_events:
            if event.is_step_failure and event.step_failure_data is not None:
                data = event.step_failure_data
                if data.user_failure_data is not None and data.user_failure_data.description:
                    return data.user_failure_data.description
                return data.error.message if data.error else "step failed"
        return None

    @property
    def event_types(self) -> list[str]:
        return [e.event_type_value for e in self.result.all_events]


def materialize_route(
    route: Route,
    partition: str | None = None,
    *,
    store: StateStore | None = None,
    state_url: str | None = None,
    config: SyncConfig | None = None,
    instance: dg.DagsterInstance | None = None,
    assets: Sequence[dg.AssetsDefinition] = (),
    raise_on_error: bool = False,
    tags: dict[str, str] | None = None,
    retry_policy: dg.RetryPolicy | None = None,
) -> RouteRun:
    """Materialize one partition of a route through Dagster.

    Args:
        route: The route.
        partition: Partition key; default: the only spec's.
        store: A state store to use (registered as the shared store of its URL).
        state_url: Or the URL of one; default: the environment (``DURABLE_SYNC_STATE_URL`` /
            ``DAGSTER_HOME``).
        config: Run config (targeted items, full refresh, reconcile).
        instance: A Dagster instance; default: an ephemeral one.
        assets: Downstream assets to materialize in the same run.
        raise_on_error: Raise instead of returning a failed result.
        retry_policy: Override the asset's retry policy (e.g. no delay in tests).
    """
    if store is not None:
        StateStore._shared[store.url] = store
        state_url = store.url
    specs = route.specs_by_partition()
    if partition is None:
        if len(specs) != 1:
            raise ValueError(f"{route.name} has {len(specs)} specs; pass partition= one of {sorted(specs)}")
        partition = next(iter(specs))
    rd = build_route(
        route,
        dg.AssetKey([route.source.name]),
        assets,
        **({"retry_policy": retry_policy} if retry_policy is not None else {}),
    )
    instance = instance or dg.DagsterInstance.ephemeral()
    if partition not in instance.get_dynamic_partitions(route.name):
        instance.add_dynamic_partitions(route.name, [partition])
    state = SyncStateResource(url=state_url)
    run_config = dg.RunConfig(ops={rd.asset.op.name: config}) if config is not None else None
    result = dg.materialize(
        [rd.asset, *assets],
        partition_key=partition,
        resources={
            "sync_state": state,
            "link_map_io_manager": LinkMapIOManager(state=state),
        },
        instance=instance,
        run_config=run_config,
        raise_on_error=raise_on_error,
        tags=tags,
    )
    return RouteRun(result=result, route=route, partition=partition)

"""What a sync run is to everything that launches or watches one: its tags, its config, a route's defs.

The factory builds a route's asset and job; the sensors, the stale-run monitor, the CLI and the test
helpers launch or read those runs. They share this vocabulary, not each other: with the tags and
``SyncConfig`` living in the factory, the factory (which registers the sensors) and the sensors
(which need the tags) imported each other, one side from inside a function.

No ``from __future__ import annotations`` here: Dagster reads ``SyncConfig``'s annotations at runtime.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg

from sync_assets.routes import Route

__all__ = ["PARTITION_TAG", "ROUTE_TAG", "TRIGGER_TAG", "RouteDefs", "SyncConfig", "route_of_run", "run_tags"]

PARTITION_TAG = "durable_sync/partition"
ROUTE_TAG = "durable_sync/route"
TRIGGER_TAG = "durable_sync/trigger"


class SyncConfig(dg.Config):
    """Run config of one sync run (set by the sync-now sensor, the CLI or the launchpad).

    Attributes:
        only_items: Sync only these primary keys (a targeted pass); None syncs the whole partition.
        full_refresh: Rewrite every record, changed or not.
        reconcile: List the destination in this pass (adopt, re-create, report duplicates).
    """

    only_items: list[str] | None = None
    full_refresh: bool = False
    reconcile: bool = False


@dataclass(frozen=True)
class RouteDefs:
    """The Dagster objects built for one route: what the sensors and schedules launch.

    Attributes:
        route: The route.
        partitions_def: Its dynamic partitions (one per source spec), named after the route.
        asset: The partitioned sync asset.
        job: The sync job of one partition (Dagster's ``UnresolvedAssetJobDefinition``).
    """

    route: Route
    partitions_def: dg.DynamicPartitionsDefinition
    asset: dg.AssetsDefinition
    job: Any  # dagster's UnresolvedAssetJobDefinition (not exported at the top level)

    @property
    def job_name(self) -> str:
        """The name of the route's sync job."""
        return self.job.name

    @property
    def asset_key(self) -> dg.AssetKey:
        """The key of the route's sync asset."""
        return self.asset.key


def run_tags(route: Route, partition: str, trigger: str) -> dict[str, str]:
    """Tags of a sync run: the per-partition tag carries the one-run-per-partition limit.

    Args:
        route: The route the run syncs.
        partition: The partition key.
        trigger: What launched the run (``interval``, a request's reason, ``reconcile``…), for the UI and status.

    Returns:
        The run's tags.
    """
    return {PARTITION_TAG: f"{route.name}/{partition}", ROUTE_TAG: route.name, TRIGGER_TAG: trigger}


def route_of_run(run: dg.DagsterRun, route_defs: Sequence[RouteDefs]) -> RouteDefs | None:
    """The route a run syncs, however it was launched.

    Our sensors launch ``<route>_sync`` with the route tag; the UI's Materialize button, a backfill
    or ``dagster asset materialize`` launch Dagster's ``__ASSET_JOB`` with only ``dagster/partition``,
    so the run's selected assets name the route then.

    Args:
        run: A Dagster run.
        route_defs: The routes of this code location.

    Returns:
        The route's defs, or None when the run syncs none of them.
    """
    for rd in route_defs:
        if run.job_name == rd.job_name or run.tags.get(ROUTE_TAG) == rd.route.name:
            return rd
    selected = set(run.asset_selection or ())
    for rd in route_defs:
        if rd.asset_key in selected:
            return rd
    return None

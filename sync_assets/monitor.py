"""Runs that say STARTED with nothing behind them: find them by their lease and mark them failed.

A run worker killed with its host (or cut off from the database) never reports its end. Dagster's run
monitoring catches a dead worker only while the code server that launched it still answers; after a
host-style crash the run stays STARTED until ``max_runtime_seconds`` (hours), holding its partition's
run slot and its destination pool. The partition itself is no longer blocked — the engine's lease
expires 20 s after the last renewal and the next pass takes over — but the UI lies and the slots stay
taken.

A live sync run renews its partition's lease every few seconds and writes events; this sensor marks
failed a STARTED sync run that, for ``DURABLE_SYNC_STALE_RUN_SECONDS`` (default 180 s), has neither
held a live lease nor written an event. The failure names why, so the failure sensor and the UI tell
the truth; the next pass resumes from the partition's checkpoint.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Sequence

import dagster as dg

from sync_assets.resources import SyncStateResource
from sync_assets.runs import RouteDefs, route_of_run
from sync_assets.state import utcnow

__all__ = ["STALE_RUN_SECONDS", "stale_run_sensor", "stale_runs"]

log = logging.getLogger(__name__)

STALE_RUN_SECONDS = 180.0


def _stale_after() -> float:
    raw = os.environ.get("DURABLE_SYNC_STALE_RUN_SECONDS", "").strip()
    try:
        return max(30.0, float(raw)) if raw else STALE_RUN_SECONDS
    except ValueError:
        log.warning("DURABLE_SYNC_STALE_RUN_SECONDS=%r is not a number; using %d", raw, STALE_RUN_SECONDS)
        return STALE_RUN_SECONDS


def stale_runs(
    instance: dg.DagsterInstance,
    route_defs: Sequence[RouteDefs],
    sync_state: SyncStateResource,
    *,
    stale_after: float,
    now: dt.datetime | None = None,
) -> list[tuple[dg.DagsterRun, str]]:
    """STARTED sync runs with no live lease and no event for ``stale_after`` seconds, with why.

    Args:
        instance: The Dagster instance.
        route_defs: The routes whose sync runs to look at.
        sync_state: The state store resource (for the partition leases).
        stale_after: Seconds without a live lease or an event after which a run counts as gone.
        now: The current time (default: now).

    Returns:
        Each stale run and a sentence saying why it is taken for gone.
    """
    now = now or utcnow()
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED], job_name=None), limit=500
    )
    store = sync_state.store()
    out: list[tuple[dg.DagsterRun, str]] = []
    for record in records:
        run = record.dagster_run
        rd = route_of_run(run, route_defs)  # the UI launches __ASSET_JOB with only dagster/partition
        partition = run.tags.get("dagster/partition")
        if rd is None or not partition or record.start_time is None:
            continue
        started = dt.datetime.fromtimestamp(record.start_time, dt.UTC)
        if (now - started).total_seconds() < stale_after:
            continue
        lease = store.lease(rd.route.name, partition)
        if lease is not None and lease.run_id == run.run_id:
            if lease.live(now):
                continue
            last_sign = lease.released_at or lease.renewed_at
            if (now - last_sign).total_seconds() < stale_after:
                continue  # released or expired just now: give the run time to finish or be seen
        events = instance.get_records_for_run(run.run_id, limit=1, ascending=False).records
        if events:
            last_event = dt.datetime.fromtimestamp(events[0].event_log_entry.timestamp, dt.UTC)
            if (now - last_event).total_seconds() < stale_after:
                continue
        if lease is not None and lease.run_id == run.run_id:
            why = f"its lease on {rd.route.name}/{partition} was last renewed at {lease.renewed_at:%H:%M:%S} UTC"
        else:
            why = f"it holds no lease on {rd.route.name}/{partition}"
        out.append((run, why))
    return out


def stale_run_sensor(route_defs: Sequence[RouteDefs]) -> dg.SensorDefinition:
    """A sensor that marks failed the sync runs whose worker is gone (see the module docstring).

    Args:
        route_defs: The routes whose sync runs it watches.

    Returns:
        The sensor, running by default every 30 s.
    """

    @dg.sensor(
        name="durable_sync_stale_runs",
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Marks failed a STARTED sync run whose worker is gone: no live partition lease and no event "
            "for DURABLE_SYNC_STALE_RUN_SECONDS (180 s), so its run slot and pool free up."
        ),
    )
    def _stale_runs(context: dg.SensorEvaluationContext, sync_state: SyncStateResource) -> dg.SkipReason:
        stale_after = _stale_after()
        found = stale_runs(context.instance, route_defs, sync_state, stale_after=stale_after)
        for run, why in found:
            message = (
                f"durable-sync: the run's worker is gone: {why}, and it wrote no event for "
                f"{int(stale_after)} s. Marked failed so its partition's run slot and pool free up; the "
                "next pass resumes from the partition's checkpoint."
            )
            context.instance.report_run_failed(run, message=message)
            context.log.warning("%s: %s", run.run_id, message)
        if found:
            return dg.SkipReason(f"marked {len(found)} run(s) failed: " + ", ".join(r.run_id[:8] for r, _ in found))
        return dg.SkipReason("no stale sync runs")

    return _stale_runs

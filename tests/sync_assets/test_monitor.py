"""The stale-run sensor: a STARTED sync run with no live lease and no recent event is marked failed."""

from __future__ import annotations

import datetime as dt
import uuid

import dagster as dg
import pytest
from dagster._core.events import DagsterEvent, DagsterEventType
from dagster._core.storage.dagster_run import DagsterRun

from sync_assets import monitor
from sync_assets.factory import build_definitions, build_route
from sync_assets.resources import SyncStateResource
from sync_assets.state import utcnow
from tests.sync_assets.helpers import memory_route, records


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


@pytest.fixture
def route():
    return memory_route({"a": records(5), "b": records(5, prefix="b")})


def started_run(instance: dg.DagsterInstance, route, partition: str) -> DagsterRun:
    run = DagsterRun(
        job_name=f"{route.name}_sync",
        run_id=str(uuid.uuid4()),
        status=dg.DagsterRunStatus.STARTED,
        tags={"dagster/partition": partition},
    )
    instance.add_run(run)
    instance.report_dagster_event(
        DagsterEvent(DagsterEventType.RUN_START.value, job_name=run.job_name), run_id=run.run_id
    )
    return instance.get_run_by_id(run.run_id)


def test_only_runs_without_a_live_lease_or_recent_event_are_stale(instance, route, sqlite_store):
    rd = build_route(route, dg.AssetKey("memory"))
    state = SyncStateResource(url=sqlite_store.url)
    later = utcnow() + dt.timedelta(minutes=10)
    alive = started_run(instance, route, "a")
    dead = started_run(instance, route, "b")
    # "a" renews its lease (as of ten minutes from now); "b"'s lease ran out long ago.
    assert sqlite_store.acquire_lease(route.name, "a", "h-a", seconds=20, run_id=alive.run_id, now=later)[0]
    assert sqlite_store.acquire_lease(route.name, "b", "h-b", seconds=20, run_id=dead.run_id)[0]
    assert monitor.stale_runs(instance, [rd], state, stale_after=180) == []  # both are young
    found = monitor.stale_runs(instance, [rd], state, stale_after=180, now=later)
    assert [(run.run_id, "last renewed" in why) for run, why in found] == [(dead.run_id, True)]
    # A run that never took its lease (it died before its pass began) is stale too.
    never = started_run(instance, route, "b")
    found = monitor.stale_runs(instance, [rd], state, stale_after=180, now=later)
    assert {run.run_id for run, _ in found} == {dead.run_id, never.run_id}


def test_the_sensor_marks_a_stale_run_failed_naming_why(instance, route, sqlite_store, monkeypatch):
    defs = build_definitions([route], state=SyncStateResource(url=sqlite_store.url))
    dead = started_run(instance, route, "a")
    assert sqlite_store.acquire_lease(route.name, "a", "h", seconds=20, run_id=dead.run_id)[0]
    monkeypatch.setattr(monitor, "utcnow", lambda: dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10))
    sensor = defs.resolve_sensor_def("durable_sync_stale_runs")
    ctx = dg.build_sensor_context(
        instance=instance, resources={"sync_state": SyncStateResource(url=sqlite_store.url)}, definitions=defs
    )
    result = sensor(ctx)
    assert "marked 1 run(s) failed" in result.skip_message
    run = instance.get_run_by_id(dead.run_id)
    assert run.status == dg.DagsterRunStatus.FAILURE
    failure = instance.get_records_for_run(dead.run_id, of_type=DagsterEventType.RUN_FAILURE).records
    assert "the run's worker is gone" in failure[0].event_log_entry.dagster_event.message


def test_a_run_launched_from_the_ui_is_found_by_its_asset(instance, route, sqlite_store):
    from sync_assets.sensors import in_flight_partitions

    rd = build_route(route, dg.AssetKey("memory"))
    state = SyncStateResource(url=sqlite_store.url)
    # The Materialize button launches Dagster's asset job with only dagster/partition.
    run = DagsterRun(
        job_name="__ASSET_JOB",
        run_id=str(uuid.uuid4()),
        status=dg.DagsterRunStatus.STARTED,
        tags={"dagster/partition": "a"},
        asset_selection=frozenset({rd.asset_key}),
    )
    instance.add_run(run)
    instance.report_dagster_event(
        DagsterEvent(DagsterEventType.RUN_START.value, job_name=run.job_name), run_id=run.run_id
    )
    assert in_flight_partitions(instance, [rd]) == {f"{route.name}/a"}
    later = utcnow() + dt.timedelta(minutes=10)
    found = monitor.stale_runs(instance, [rd], state, stale_after=180, now=later)
    assert [r.run_id for r, _ in found] == [run.run_id]

"""Freshness: a partition not synced within twice its interval fails the route's ``not_overdue`` check."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import dagster as dg
import pytest

from connectors.core import Record, TransientError
from connectors.memory import MemoryDestination, MemorySource
from sync_assets import freshness
from sync_assets.factory import build_definitions
from sync_assets.freshness import NOT_OVERDUE
from sync_assets.resources import SyncStateResource
from sync_assets.routes import Route
from sync_assets.state import StateStore, utcnow
from sync_assets.testing import materialize_route
from tests.sync_assets.helpers import memory_route, records

INTERVAL = 30  # MemorySource's default interval_minutes


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


@pytest.fixture
def route():
    return memory_route({"a": records(3), "b": records(3, prefix="b")})


@pytest.fixture
def clock(monkeypatch):
    """The sensor's clock, moved by hand."""
    now = {"t": utcnow()}
    monkeypatch.setattr(freshness, "utcnow", lambda: now["t"])
    return now


def synced(store: StateStore, route: Route, partition: str, at: dt.datetime, *, status: str = "success") -> None:
    """A pass of ``partition`` that finished at ``at``, as the engine records it."""
    store.finish_pass(
        route.name,
        partition,
        pass_id=uuid.uuid4().hex,
        mode="full",
        status=status,
        started_at=at - dt.timedelta(minutes=1),
        stats={},
        now=at,
    )


class Sensor:
    """The freshness sensor of a deployment, ticked the way the daemon ticks it."""

    def __init__(self, routes: list[Route], store: StateStore, instance: dg.DagsterInstance) -> None:
        StateStore._shared[store.url] = store  # the resource resolves the store by URL: this very one
        self.state = SyncStateResource(url=store.url)
        self.defs = build_definitions(routes, state=self.state)
        self.instance = instance
        self.cursor: str | None = None

    def tick(self) -> list[dg.AssetCheckEvaluation]:
        """One evaluation; its events are stored as the daemon stores them. Returns the events."""
        sensor = self.defs.resolve_sensor_def("durable_sync_freshness")
        ctx = dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursor,
            resources={"sync_state": self.state},
            definitions=self.defs,
        )
        result = sensor(ctx)
        assert isinstance(result, dg.SensorResult)
        self.cursor = result.cursor
        for event in result.asset_events:
            self.instance.report_runless_asset_event(event)
        return list(result.asset_events)


def latest(instance: dg.DagsterInstance, route: Route):
    return instance.get_latest_asset_check_evaluation_record(dg.AssetCheckKey(dg.AssetKey(route.name), NOT_OVERDUE))


def test_recently_synced_partitions_pass_and_a_run_reports_the_same_verdict(route, sqlite_store, instance):
    for partition in ("a", "b"):
        run = materialize_route(route, partition, store=sqlite_store, instance=instance)
        assert run.success
        check = run.checks[NOT_OVERDUE]
        assert check.passed and check.metadata["verdict"].value == "pass"
        assert check.metadata["partitions_checked"].value == 2
    # The run's result is what the UI shows, and it is the sensor's verdict: nothing to add.
    sensor = Sensor([route], sqlite_store, instance)
    assert sensor.tick() == []
    assert latest(instance, route).status.value == "SUCCEEDED"


def test_a_partition_not_synced_within_twice_its_interval_fails_naming_it(route, store, instance, clock):
    now = clock["t"]
    synced(store, route, "a", now - dt.timedelta(minutes=2 * INTERVAL + 1))
    synced(store, route, "b", now - dt.timedelta(minutes=INTERVAL + 15))  # late, within twice: not overdue
    synced(store, route, "a", now - dt.timedelta(minutes=5), status="failed")  # a failed pass is no sync
    store.record_failure(route.name, "a", "GET /items -> 503")
    sensor = Sensor([route], store, instance)
    (event,) = sensor.tick()
    assert not event.passed and event.severity == dg.AssetCheckSeverity.WARN
    assert event.metadata["verdict"].value == "fail:a"
    table = event.metadata["overdue_partitions"].value
    last_sync = (now - dt.timedelta(minutes=2 * INTERVAL + 1)).isoformat(timespec="seconds")
    assert "`a`" in table and last_sync in table and "GET /items -> 503" in table
    assert "`b`" not in table
    assert "a (last synced" in event.description and "b (" not in event.description
    assert latest(instance, route).status.value == "FAILED"
    # The same partitions a minute later: b is still within twice its interval.
    clock["t"] = now + dt.timedelta(minutes=1)
    assert sensor.tick() == []


def test_a_never_synced_partition_is_overdue_once_it_has_existed_twice_its_interval(
    route, sqlite_store, instance, clock
):
    t0 = clock["t"]
    synced(sqlite_store, route, "a", t0)
    sensor = Sensor([route], sqlite_store, instance)
    (first,) = sensor.tick()
    assert first.passed  # b has never synced, but it has only just appeared
    clock["t"] = t0 + dt.timedelta(minutes=2 * INTERVAL - 1)
    synced(sqlite_store, route, "a", clock["t"])
    assert sensor.tick() == []
    clock["t"] = t0 + dt.timedelta(minutes=2 * INTERVAL)
    (event,) = sensor.tick()
    assert not event.passed and event.metadata["verdict"].value == "fail:b"
    assert f"never (seen since {t0.isoformat(timespec='seconds')})" in event.metadata["overdue_partitions"].value


def test_paused_partitions_are_not_reported_overdue(route, sqlite_store, instance, clock):
    old = clock["t"] - dt.timedelta(hours=3)
    synced(sqlite_store, route, "a", old)
    synced(sqlite_store, route, "b", old)
    sqlite_store.pause(f"partition:{route.name}/a", "by hand")
    sensor = Sensor([route], sqlite_store, instance)
    (event,) = sensor.tick()
    assert event.metadata["verdict"].value == "fail:b" and event.metadata["paused_not_counted"].value == "a"
    sqlite_store.pause(f"route:{route.name}", "by hand")
    (event,) = sensor.tick()
    assert event.passed and event.metadata["partitions_checked"].value == 0
    assert "2 paused partition(s) not counted" in event.description


def test_disabled_routes_and_removed_specs_are_not_reported(sqlite_store, instance, clock):
    on = Route(MemorySource({"a": [Record("1", {})], "gone": []}), MemoryDestination(), name="on")
    off = Route(MemorySource({"a": [Record("1", {})]}, name="m2"), MemoryDestination(), name="off", enabled=False)
    old = clock["t"] - dt.timedelta(hours=3)
    for r in (on, off):
        synced(sqlite_store, r, "a", old)
    synced(sqlite_store, on, "gone", old)
    del on.source.records["gone"]  # the source no longer has that spec
    sensor = Sensor([on, off], sqlite_store, instance)
    events = sensor.tick()
    assert [(e.asset_key, e.metadata["verdict"].value) for e in events] == [(dg.AssetKey("on"), "fail:a")]
    assert latest(instance, off) is None


def test_an_unchanged_verdict_is_not_reported_again(route, sqlite_store, instance, clock):
    now = clock["t"]
    synced(sqlite_store, route, "a", now - dt.timedelta(hours=2))
    synced(sqlite_store, route, "b", now)
    sensor = Sensor([route], sqlite_store, instance)
    (event,) = sensor.tick()
    assert not event.passed
    for minutes in (1, 2, 30):  # later ticks, the verdict unchanged: no new row in the event log
        clock["t"] = now + dt.timedelta(minutes=minutes)
        assert sensor.tick() == []
    assert json.loads(sensor.cursor) == {route.name: "fail:a"}
    synced(sqlite_store, route, "a", clock["t"])
    (event,) = sensor.tick()
    assert event.passed
    assert sensor.tick() == []
    history = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey(route.name), NOT_OVERDUE), limit=10
    )
    assert [r.status.value for r in history] == ["SUCCEEDED", "FAILED"]  # each runless result is kept


def test_a_run_that_fails_without_the_check_is_replaced_by_the_verdict_on_the_next_tick(
    route, sqlite_store, instance, clock
):
    synced(sqlite_store, route, "a", clock["t"])
    synced(sqlite_store, route, "b", clock["t"])
    sensor = Sensor([route], sqlite_store, instance)
    assert sensor.tick()[0].passed
    # An error the asset does not catch: the step fails and its planned checks never execute.
    route.source.fail_at_page = {0: TransientError("GET /items -> 503")}
    run = materialize_route(route, "a", store=sqlite_store, instance=instance)
    assert not run.success
    assert latest(instance, route).status.value == "PLANNED"  # the run's plan, which did not execute
    (event,) = sensor.tick()
    assert event.passed
    assert latest(instance, route).status.value == "SUCCEEDED"


def test_while_a_run_evaluates_the_check_only_a_change_is_reported(route, sqlite_store, instance, clock):
    from dagster._core.events import AssetCheckEvaluationPlanned, DagsterEvent, DagsterEventType
    from dagster._core.storage.dagster_run import DagsterRun

    now = clock["t"]
    synced(sqlite_store, route, "a", now)
    synced(sqlite_store, route, "b", now)
    sensor = Sensor([route], sqlite_store, instance)
    assert sensor.tick()[0].passed
    # A long pass of "b" is under way: its run planned the check and reports it only at its end.
    run = DagsterRun(job_name=f"{route.name}_sync", run_id=str(uuid.uuid4()), status=dg.DagsterRunStatus.STARTED)
    instance.add_run(run)
    planned = AssetCheckEvaluationPlanned(asset_key=dg.AssetKey(route.name), check_name=NOT_OVERDUE)
    instance.report_dagster_event(
        DagsterEvent(
            DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED.value, job_name=run.job_name, event_specific_data=planned
        ),
        run_id=run.run_id,
    )
    assert latest(instance, route).status.value == "PLANNED"
    clock["t"] = now + dt.timedelta(minutes=5)
    assert sensor.tick() == []  # still fresh: the run's own result will say so
    clock["t"] = now + dt.timedelta(minutes=2 * INTERVAL)
    (event,) = sensor.tick()  # meanwhile both partitions went overdue: not hidden by the long run
    assert event.metadata["verdict"].value == "fail:a,b"
    assert sensor.tick() == []

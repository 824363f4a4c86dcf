"""Dispatcher, sync-now, auth-resume and failure sensors, and the reconcile schedule."""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import json
import threading
import uuid

import dagster as dg
import pytest
from dagster._core.storage.dagster_run import DagsterRun

from connectors.core import TransientError
from connectors.memory import MemoryDestination, MemorySource
from sync_assets.factory import PARTITION_TAG, build_definitions
from sync_assets.resources import SyncStateResource
from sync_assets.routes import Route
from sync_assets.sensors import describe_step_error
from sync_assets.state import utcnow
from sync_assets.testing import materialize_route
from tests.sync_assets.helpers import FAST_RETRY, memory_route, records


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


@pytest.fixture
def route():
    return memory_route({"a": records(20), "b": records(20, prefix="b"), "c": records(5, prefix="c")})


@contextlib.contextmanager
def webhook_server():
    """A chat-webhook stand-in on a loopback port; yields (base URL, received JSON bodies)."""
    received: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def defs_for(route, store):
    return build_definitions([route], state=SyncStateResource(url=store.url), retry_policy=FAST_RETRY)


def tick(defs, name, instance, store, cursor=None):
    sensor = defs.resolve_sensor_def(name)
    ctx = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"sync_state": SyncStateResource(url=store.url)},
        definitions=defs,
    )
    return sensor(ctx)


def add_partitions(instance, route, keys=("a", "b", "c")):
    instance.add_dynamic_partitions(route.name, list(keys))


def test_dispatcher_adds_partitions_and_runs_every_spec_at_once(instance, route, sqlite_store):
    defs = defs_for(route, sqlite_store)
    result = tick(defs, f"{route.name}_dispatcher", instance, sqlite_store)
    (add,) = result.dynamic_partitions_requests
    assert sorted(add.partition_keys) == ["a", "b", "c"]
    assert sorted(r.partition_key for r in result.run_requests) == ["a", "b", "c"]
    for r in result.run_requests:
        assert r.tags[PARTITION_TAG] == f"{route.name}/{r.partition_key}"
        assert r.run_key.startswith(f"{r.partition_key}@")


def test_dispatcher_removes_partitions_of_vanished_specs(instance, route, sqlite_store):
    add_partitions(instance, route, ("a", "b", "c", "old"))
    result = tick(defs_for(route, sqlite_store), f"{route.name}_dispatcher", instance, sqlite_store)
    deletes = [r for r in result.dynamic_partitions_requests if isinstance(r, dg.DeleteDynamicPartitionsRequest)]
    assert [list(d.partition_keys) for d in deletes] == [["old"]]


def test_dispatcher_waits_for_the_interval_after_a_pass(instance, route, sqlite_store):
    add_partitions(instance, route)
    materialize_route(route, "a", store=sqlite_store)
    result = tick(defs_for(route, sqlite_store), f"{route.name}_dispatcher", instance, sqlite_store)
    assert sorted(r.partition_key for r in result.run_requests) == ["b", "c"]


def test_dispatcher_skips_paused_rate_limited_and_in_flight(instance, route, sqlite_store):
    add_partitions(instance, route)
    sqlite_store.pause(f"partition:{route.name}/a", "by hand")
    sqlite_store.set_not_before(route.name, "b", utcnow() + dt.timedelta(minutes=20))
    instance.add_run(
        DagsterRun(
            job_name=f"{route.name}_sync",
            run_id=str(uuid.uuid4()),
            status=dg.DagsterRunStatus.STARTED,
            tags={PARTITION_TAG: f"{route.name}/c"},
        )
    )
    result = tick(defs_for(route, sqlite_store), f"{route.name}_dispatcher", instance, sqlite_store)
    assert result.run_requests == []
    reason = result.skip_reason.skip_message
    assert "a: paused" in reason and "b: rate limited" in reason


def test_sync_now_with_items_and_full_beats_targeted(instance, route, sqlite_store):
    add_partitions(instance, route)
    sqlite_store.enqueue_request(route.name, "a", only_items=["k0001"])
    sqlite_store.enqueue_request(route.name, "a", only_items=["k0002"])
    sqlite_store.enqueue_request(route.name, "b", only_items=["b0001"])
    sqlite_store.enqueue_request(route.name, "b")  # a full pass wins over the targeted one
    sqlite_store.enqueue_request(route.name, "c", only_items=["c0001"])
    sqlite_store.enqueue_request(route.name, "c", full_refresh=True)
    defs = defs_for(route, sqlite_store)
    result = tick(defs, "durable_sync_sync_now", instance, sqlite_store)
    by_key = {r.partition_key: r.run_config["ops"][route.name]["config"] for r in result.run_requests}
    assert by_key["a"]["only_items"] == ["k0001", "k0002"]
    assert by_key["b"].get("only_items") is None and not by_key["b"].get("full_refresh")
    assert by_key["c"]["full_refresh"] is True
    assert sqlite_store.pending_requests() == []
    again = tick(defs, "durable_sync_sync_now", instance, sqlite_store)
    assert again.run_requests == []


def test_sync_now_run_config_executes(instance, route, sqlite_store):
    add_partitions(instance, route)
    materialize_route(route, "a", store=sqlite_store, instance=instance)
    route.source.records["a"] = records(20, version=9)
    sqlite_store.enqueue_request(route.name, "a", only_items=["k0003"])
    defs = defs_for(route, sqlite_store)
    (req,) = tick(defs, "durable_sync_sync_now", instance, sqlite_store).run_requests
    job = defs.resolve_job_def(req.job_name)
    result = job.execute_in_process(
        instance=instance, partition_key=req.partition_key, run_config=req.run_config, tags=req.tags
    )
    (mat,) = result.asset_materializations_for_node(route.name)
    assert mat.metadata["updated"].value == 1 and mat.metadata["mode"].value == "targeted"


def test_sync_now_waits_while_paused(instance, route, sqlite_store):
    add_partitions(instance, route)
    sqlite_store.pause(f"route:{route.name}", "maintenance")
    sqlite_store.enqueue_request(route.name, "a")
    result = tick(defs_for(route, sqlite_store), "durable_sync_sync_now", instance, sqlite_store)
    assert result.run_requests == [] and len(sqlite_store.pending_requests()) == 1


def test_auth_pause_skipped_by_dispatcher_then_resumed_by_new_credential(instance, route, sqlite_store):
    add_partitions(instance, route)
    route.destination.credential = None
    run = materialize_route(route, "a", store=sqlite_store, instance=instance, retry_policy=FAST_RETRY)
    assert not run.success
    defs = defs_for(route, sqlite_store)
    result = tick(defs, f"{route.name}_dispatcher", instance, sqlite_store)
    assert result.run_requests == []  # every partition uses the paused credential
    assert tick(defs, "durable_sync_auth_resume", instance, sqlite_store).run_requests == []

    route.destination.credential = "token-2"  # the user configured a new token
    result = tick(defs, "durable_sync_auth_resume", instance, sqlite_store)
    assert sorted(r.partition_key for r in result.run_requests) == ["a", "b", "c"]
    assert all(r.tags["durable_sync/trigger"] == "auth_resume" for r in result.run_requests)
    assert "credential:memory" not in sqlite_store.pauses()
    req = next(r for r in result.run_requests if r.partition_key == "a")
    job = defs.resolve_job_def(req.job_name)
    assert job.execute_in_process(instance=instance, partition_key="a", tags=req.tags).success
    assert route.destination.duplicates() == {}


def test_failure_sensor_records_the_root_cause_and_notifies(instance, route, sqlite_store, monkeypatch):
    add_partitions(instance, route)
    route.destination.credential = None
    defs = defs_for(route, sqlite_store)
    job = defs.resolve_job_def(f"{route.name}_sync")
    result = job.execute_in_process(instance=instance, partition_key="a", raise_on_error=False)
    assert not result.success
    (record,) = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    failure_event = record.dagster_event
    sensor = defs.resolve_sensor_def("durable_sync_failures")
    ctx = dg.build_run_status_sensor_context(
        sensor_name="durable_sync_failures",
        dagster_event=failure_event,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        resources={"sync_state": SyncStateResource(url=sqlite_store.url)},
    ).for_run_failure()
    with webhook_server() as (url, received):
        monkeypatch.setenv("DURABLE_SYNC_WEBHOOK_URL", f"{url}/services/T0/B0/s3cret")
        sensor(ctx)
    state = sqlite_store.partition_state(route.name, "a")
    assert "credential rejected" in state["last_failure"]
    assert state["last_failure_run_id"] == result.run_id
    (obs,) = instance.fetch_observations(dg.AssetKey(route.name), limit=1).records
    assert obs.partition_key == "a" and "credential rejected" in obs.asset_observation.metadata["last_failure"].value
    (payload,) = received
    assert payload["event"] == "credential_paused" and payload["scope"] == "credential:memory"
    assert payload["route"] == route.name and payload["partition"] == "a"


def test_reconcile_schedule_requests_one_listing_for_the_route(instance, route, sqlite_store):
    add_partitions(instance, route)
    defs = defs_for(route, sqlite_store)
    schedule = defs.resolve_schedule_def(f"{route.name}_reconcile")
    ctx = dg.build_schedule_context(
        instance=instance,
        resources={"sync_state": SyncStateResource(url=sqlite_store.url)},
        scheduled_execution_time=dt.datetime(2026, 1, 1, 3, tzinfo=dt.UTC),
        repository_def=defs.get_repository_def(),
    )
    requests = list(schedule.evaluate_tick(ctx).run_requests or [])
    assert [r.partition_key for r in requests] == ["a"]
    assert requests[0].run_config["ops"][route.name]["config"]["reconcile"]
    # A paused first partition hands the listing to the next one.
    sqlite_store.pause(f"partition:{route.name}/a", "by hand")
    requests = list(schedule.evaluate_tick(ctx).run_requests or [])
    assert [r.partition_key for r in requests] == ["b"]


class _DownAfterFirstPage(MemorySource):
    """Page 1 arrives; page 2 fails every time behind a wrapper, as a source that re-raises does."""

    async def fetch_page(self, spec, only_items, cursor):
        if cursor:
            try:
                raise TransientError("GitHub GET /orgs/acme/repos -> 503: service unavailable")
            except TransientError as err:
                raise RuntimeError("fetching page 2 failed") from err
        return await super().fetch_page(spec, only_items, cursor)


def _failure_context(defs, instance, result, store):
    (record,) = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    return dg.build_run_status_sensor_context(
        sensor_name="durable_sync_failures",
        dagster_event=record.dagster_event,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        resources={"sync_state": SyncStateResource(url=store.url)},
    ).for_run_failure()


def test_failure_sensor_keeps_the_503_behind_exhausted_retries(instance, sqlite_store):
    route = Route(_DownAfterFirstPage({"a": records(20)}, page_size=10), MemoryDestination(), name="memory_to_memory")
    add_partitions(instance, route, ("a",))
    defs = defs_for(route, sqlite_store)
    result = defs.resolve_job_def(f"{route.name}_sync").execute_in_process(
        instance=instance, partition_key="a", raise_on_error=False
    )
    assert not result.success
    defs.resolve_sensor_def("durable_sync_failures")(_failure_context(defs, instance, result, sqlite_store))
    failure = sqlite_store.partition_state(route.name, "a")["last_failure"]
    assert failure == (
        "RuntimeError: fetching page 2 failed (root cause: GitHub GET /orgs/acme/repos -> 503: service "
        f"unavailable); gave up after {FAST_RETRY.max_retries} retries"
    )
    (obs,) = instance.fetch_observations(dg.AssetKey(route.name), limit=1).records
    assert obs.asset_observation.metadata["last_failure"].value == failure


def test_describe_step_error_reads_the_chain_and_redacts_foreign_text():
    from dagster._utils.error import SerializableErrorInfo

    key = "AIza" + "Sy" + "k" * 33
    root = SerializableErrorInfo(
        f"httpx.HTTPStatusError: Server error '503' for url 'https://www.googleapis.com/youtube/v3/videos?key={key}'\n",
        [],
        "HTTPStatusError",
    )
    ours = SerializableErrorInfo("connectors.core.TransientError: YouTube listing failed\n", [], "TransientError")
    wrapper = SerializableErrorInfo(
        "dagster._core.errors.DagsterExecutionStepExecutionError: Error occurred while executing op\n",
        [],
        "DagsterExecutionStepExecutionError",
        cause=SerializableErrorInfo(ours.message, [], ours.cls_name, context=root),
    )
    text = describe_step_error(wrapper)
    assert key not in text
    assert text == (
        "YouTube listing failed (root cause: HTTPStatusError: Server error '503' for url "
        "'https://www.googleapis.com/youtube/v3/videos?key=[REDACTED]')"
    )
    assert describe_step_error(None) is None


def test_sync_now_never_takes_requests_of_another_code_locations_routes(instance, route, sqlite_store):
    other = Route(MemorySource({"x": records(3)}, name="elsewhere"), MemoryDestination(), name="other_location")
    add_partitions(instance, route)
    sqlite_store.enqueue_request(route.name, "a")
    theirs = sqlite_store.enqueue_request(other.name, "x")
    result = tick(defs_for(route, sqlite_store), "durable_sync_sync_now", instance, sqlite_store)
    assert [r.partition_key for r in result.run_requests] == ["a"]
    assert [r.id for r in sqlite_store.pending_requests()] == [theirs]  # still there for its owner

    instance.add_dynamic_partitions(other.name, ["x"])
    result = tick(defs_for(other, sqlite_store), "durable_sync_sync_now", instance, sqlite_store)
    assert [(r.job_name, r.partition_key) for r in result.run_requests] == [(f"{other.name}_sync", "x")]
    assert sqlite_store.pending_requests() == []


def test_dispatcher_shows_a_pause_set_between_runs_once_and_its_end(instance, route, sqlite_store):
    add_partitions(instance, route)
    defs = defs_for(route, sqlite_store)
    name = f"{route.name}_dispatcher"
    sqlite_store.pause(f"partition:{route.name}/a", "maintenance window")
    first = tick(defs, name, instance, sqlite_store)
    observations = [e for e in first.asset_events if isinstance(e, dg.AssetObservation)]
    assert [o.partition for o in observations] == ["a"]
    assert "maintenance window" in observations[0].description
    # Reported once: the next tick with the same pause adds nothing.
    again = tick(defs, name, instance, sqlite_store, cursor=first.cursor)
    assert again.asset_events == []
    sqlite_store.resume(f"partition:{route.name}/a")
    lifted = tick(defs, name, instance, sqlite_store, cursor=again.cursor)
    assert [(o.partition, o.metadata["paused"].value) for o in lifted.asset_events] == [("a", False)]


def test_an_auth_pause_without_a_fingerprint_is_probed_after_a_while(instance, route, sqlite_store, monkeypatch):
    """A credential nothing can fingerprint (no token variable) is never seen to change: after
    AUTH_PROBE_AFTER its pause is lifted for one probing pass; still refused, it pauses again."""
    import sync_assets.sensors as sensors

    add_partitions(instance, route)
    route.destination.credential = None
    assert not materialize_route(route, "a", store=sqlite_store, instance=instance, retry_policy=FAST_RETRY).success
    pause = sqlite_store.pauses()["credential:memory"]
    assert pause.fingerprint is None
    defs = defs_for(route, sqlite_store)
    assert tick(defs, "durable_sync_auth_resume", instance, sqlite_store).run_requests == []  # too soon
    monkeypatch.setattr(sensors, "AUTH_PROBE_AFTER", dt.timedelta(0))
    result = tick(defs, "durable_sync_auth_resume", instance, sqlite_store)
    assert sorted(r.partition_key for r in result.run_requests) == ["a", "b", "c"]
    assert "credential:memory" not in sqlite_store.pauses()
    req = next(r for r in result.run_requests if r.partition_key == "a")
    probe = defs.resolve_job_def(req.job_name).execute_in_process(
        instance=instance, partition_key="a", tags=req.tags, raise_on_error=False
    )
    assert not probe.success and "credential:memory" in sqlite_store.pauses()  # still refused: paused again

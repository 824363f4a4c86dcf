"""A pause that lasts escalates once (an ERROR check and one webhook); a credential pause notifies once."""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import json
import threading
from collections.abc import Iterator

import dagster as dg
import pytest

from connectors.memory import MemoryDestination
from sync_assets.checks import NOT_PAUSED, pause_verdict
from sync_assets.escalation import NO_LASTING_PAUSE, lasting_pause_verdict
from sync_assets.factory import build_definitions
from sync_assets.notify import NOTICES, forget_ended_notices, notify_once, pause_escalate_after
from sync_assets.resources import SyncStateResource
from sync_assets.routes import Route
from sync_assets.state import Pause, StateStore, pauses, utcnow
from sync_assets.testing import materialize_route
from tests.sync_assets.helpers import FAST_RETRY, memory_route, records

SENSOR = "durable_sync_pause_escalation"


@pytest.fixture(autouse=True)
def _no_deployment_settings(monkeypatch):
    """The defaults (escalation after 1 h, no webhook) whatever the shell running the tests has set."""
    monkeypatch.delenv("DURABLE_SYNC_PAUSE_ESCALATE_AFTER", raising=False)
    monkeypatch.delenv("DURABLE_SYNC_WEBHOOK_URL", raising=False)


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


@pytest.fixture
def route() -> Route:
    return memory_route({"a": records(3), "b": records(3, prefix="b")})


@contextlib.contextmanager
def webhook_receiver(statuses: list[int] | None = None) -> Iterator[tuple[str, list[dict]]]:
    """A chat-webhook stand-in on a loopback port; answers ``statuses`` in turn (then 200).

    Yields the URL to set (its path shaped like a chat webhook's token) and the JSON bodies it accepted.
    """
    received: list[dict] = []
    answers = list(statuses or [])

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            status = answers.pop(0) if answers else 200
            if status < 400:
                received.append(body)
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/services/T0/B0/test-token", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def backdate(store: StateStore, scope: str, ago: dt.timedelta) -> Pause:
    """Make ``scope``'s pause start ``ago`` before now (a pause set long ago); returns it as read back."""
    with store.db.write() as conn:
        conn.execute(pauses.update().where(pauses.c.scope == scope).values(paused_at=utcnow() - ago))
    return store.pauses()[scope]


class Deployment:
    """The route's definitions over ``store``, with the escalation sensor ticked as the daemon ticks it."""

    def __init__(self, route: Route, store: StateStore, instance: dg.DagsterInstance) -> None:
        StateStore._shared[store.url] = store  # the resource resolves the store by URL: this very one
        self.state = SyncStateResource(url=store.url)
        self.defs = build_definitions([route], state=self.state, retry_policy=FAST_RETRY)
        self.instance = instance
        self.cursor: str | None = None

    def tick(self) -> list[dg.AssetCheckEvaluation]:
        """One evaluation of the escalation sensor; its events are stored as the daemon stores them."""
        ctx = dg.build_sensor_context(
            instance=self.instance, cursor=self.cursor, resources={"sync_state": self.state}, definitions=self.defs
        )
        result = self.defs.resolve_sensor_def(SENSOR)(ctx)
        assert isinstance(result, dg.SensorResult)
        self.cursor = result.cursor
        for event in result.asset_events:
            self.instance.report_runless_asset_event(event)
        return list(result.asset_events)

    def restart(self) -> None:
        """A new daemon: the sensor's cursor is gone (the state store is not)."""
        self.cursor = None


# ------------------------------------------------------------------------------------------ settings


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(None, 3600), ("5400", 5400), ("90m", 5400), ("2h", 7200), ("1d", 86400), ("45 s", 45), ("soon", 3600)],
)
def test_escalate_after_reads_seconds_or_a_unit_and_falls_back_to_an_hour(monkeypatch, value, seconds):
    if value is None:
        monkeypatch.delenv("DURABLE_SYNC_PAUSE_ESCALATE_AFTER", raising=False)
    else:
        monkeypatch.setenv("DURABLE_SYNC_PAUSE_ESCALATE_AFTER", value)
    assert pause_escalate_after() == dt.timedelta(seconds=seconds)


def test_a_manual_pause_is_a_warning_until_it_lasts_then_an_error(monkeypatch):
    now = utcnow()
    pause = Pause("route:r", "paused by hand", now - dt.timedelta(minutes=30), None, "manual")
    passed, severity, description, metadata = pause_verdict("r", "a", pause, now=now)
    assert not passed and severity == dg.AssetCheckSeverity.WARN and metadata["lasting"] is False
    later = now + dt.timedelta(minutes=31)
    passed, severity, description, metadata = pause_verdict("r", "a", pause, now=later)
    assert severity == dg.AssetCheckSeverity.ERROR and metadata["lasting"] is True
    assert "longer than 1 h" in description
    monkeypatch.setenv("DURABLE_SYNC_PAUSE_ESCALATE_AFTER", "10m")
    assert pause_verdict("r", "a", pause, now=now)[1] == dg.AssetCheckSeverity.ERROR


def test_the_verdict_names_the_lasting_pauses_and_the_partitions_they_hold(route):
    now = utcnow()
    held = {
        route.source_scope: Pause(route.source_scope, "401 Unauthorized", now - dt.timedelta(hours=3), "f", "auth"),
        f"partition:{route.name}/b": Pause(
            f"partition:{route.name}/b", "by hand", now - dt.timedelta(minutes=5), None, "manual"
        ),
    }
    verdict = lasting_pause_verdict(route, held, now=now, after=dt.timedelta(hours=1))
    assert not verdict.passed
    ((lasting),) = verdict.lasting
    assert lasting.pause.scope == route.source_scope and lasting.partitions == ("a", "b")
    assert "for 3 h" in verdict.description and "401 Unauthorized" in verdict.description
    # Five minutes is not lasting; an hour later both are.
    verdict = lasting_pause_verdict(route, held, now=now + dt.timedelta(hours=1), after=dt.timedelta(hours=1))
    assert [lp.pause.scope for lp in verdict.lasting] == [route.source_scope, f"partition:{route.name}/b"]
    assert lasting_pause_verdict(route, {}, now=now).passed


# ------------------------------------------------------------------------------------------ the sensor


def test_a_lasting_pause_fails_the_check_with_error_and_notifies_once(route, sqlite_store, instance, monkeypatch):
    deployment = Deployment(route, sqlite_store, instance)
    sqlite_store.pause(route.destination_scope, "401 Unauthorized — renew the credential", source="auth")
    with webhook_receiver() as (url, received):
        monkeypatch.setenv("DURABLE_SYNC_WEBHOOK_URL", url)
        (first,) = deployment.tick()  # paused a moment ago: the check passes, nothing is sent
        assert first.check_name == NO_LASTING_PAUSE and first.passed
        assert received == []
        pause = backdate(sqlite_store, route.destination_scope, dt.timedelta(hours=2))
        (event,) = deployment.tick()
        assert not event.passed and event.severity == dg.AssetCheckSeverity.ERROR
        assert route.destination_scope in event.description and "for 2 h" in event.description
        assert event.metadata["paused_partitions"].value == 2
        (payload,) = received
        assert payload["event"] == "pause_escalated" and payload["scope"] == route.destination_scope
        assert payload["paused_by"] == "auth" and payload["routes"] == {route.name: ["a", "b"]}
        assert payload["paused_since"] == pause.paused_at.isoformat(timespec="seconds")
        assert 7200 <= payload["paused_for_seconds"] < 7300
        # Later ticks, and a restarted daemon without its cursor, add neither an event nor a webhook.
        assert deployment.tick() == []
        deployment.restart()
        assert deployment.tick() == []
        assert len(received) == 1
    stored = instance.get_latest_asset_check_evaluation_record(
        dg.AssetCheckKey(dg.AssetKey(route.name), NO_LASTING_PAUSE)
    )
    assert stored.status.value == "FAILED"


def test_a_new_pause_of_the_same_scope_escalates_again_and_resuming_clears_the_check(
    route, sqlite_store, instance, monkeypatch
):
    deployment = Deployment(route, sqlite_store, instance)
    scope = f"route:{route.name}"
    with webhook_receiver() as (url, received):
        monkeypatch.setenv("DURABLE_SYNC_WEBHOOK_URL", url)
        sqlite_store.pause(scope, "paused by hand (durable-sync pause)")
        backdate(sqlite_store, scope, dt.timedelta(hours=5))
        (failed,) = deployment.tick()
        assert not failed.passed and received[-1]["paused_by"] == "manual"
        sqlite_store.resume(scope)
        (cleared,) = deployment.tick()
        assert cleared.passed
        assert sqlite_store.blob_keys(NOTICES) == []  # the ended pause's notice is forgotten
        sqlite_store.pause(scope, "paused by hand again")
        backdate(sqlite_store, scope, dt.timedelta(hours=2))
        (again,) = deployment.tick()
        assert not again.passed
        assert [p["reason"] for p in received] == ["paused by hand (durable-sync pause)", "paused by hand again"]


def test_an_undelivered_escalation_is_tried_again_and_then_sent_once(route, sqlite_store, instance, monkeypatch):
    deployment = Deployment(route, sqlite_store, instance)
    sqlite_store.pause(route.source_scope, "401 Unauthorized", source="auth")
    backdate(sqlite_store, route.source_scope, dt.timedelta(hours=2))
    with webhook_receiver(statuses=[503]) as (url, received):
        monkeypatch.setenv("DURABLE_SYNC_WEBHOOK_URL", url)
        deployment.tick()
        assert received == []  # the receiver answered 503: not delivered, not remembered as sent
        deployment.tick()
        deployment.tick()
        assert [p["event"] for p in received] == ["pause_escalated"]


def test_without_a_webhook_the_check_still_escalates_and_a_webhook_set_later_is_told(
    route, sqlite_store, instance, monkeypatch
):
    monkeypatch.delenv("DURABLE_SYNC_WEBHOOK_URL", raising=False)
    monkeypatch.setenv("DURABLE_SYNC_PAUSE_ESCALATE_AFTER", "30m")
    deployment = Deployment(route, sqlite_store, instance)
    sqlite_store.pause(route.source_scope, "401 Unauthorized", source="auth")
    backdate(sqlite_store, route.source_scope, dt.timedelta(minutes=45))
    (event,) = deployment.tick()
    assert not event.passed and event.metadata["escalate_after_seconds"].value == 1800
    with webhook_receiver() as (url, received):
        monkeypatch.setenv("DURABLE_SYNC_WEBHOOK_URL", url)
        assert deployment.tick() == []  # the verdict is unchanged
        assert [p["scope"] for p in received] == [route.source_scope]


def test_a_run_reports_the_lasting_pause_and_its_partition_check_as_error(route, sqlite_store, instance):
    sqlite_store.pause(f"partition:{route.name}/a", "paused by hand")
    backdate(sqlite_store, f"partition:{route.name}/a", dt.timedelta(hours=2))
    run = materialize_route(route, "a", store=sqlite_store, instance=instance)  # a launch from the UI
    assert not run.success
    assert run.checks[NOT_PAUSED].severity == dg.AssetCheckSeverity.ERROR
    lasting = run.checks[NO_LASTING_PAUSE]
    assert not lasting.passed and lasting.severity == dg.AssetCheckSeverity.ERROR
    healthy = materialize_route(route, "b", store=sqlite_store, instance=instance)
    assert healthy.success and not healthy.checks[NO_LASTING_PAUSE].passed  # route-wide: a is still held
    sqlite_store.resume(f"partition:{route.name}/a")
    assert materialize_route(route, "b", store=sqlite_store, instance=instance).checks[NO_LASTING_PAUSE].passed


# ------------------------------------------------------------------------------------------ the failure sensor


def _fail(defs: dg.Definitions, instance: dg.DagsterInstance, partition: str) -> dg.ExecuteInProcessResult:
    job = defs.resolve_job_def("memory_to_memory_sync")
    result = job.execute_in_process(instance=instance, partition_key=partition, raise_on_error=False)
    assert not result.success
    return result


def _on_failure(defs: dg.Definitions, instance: dg.DagsterInstance, result, store: StateStore) -> None:
    (record,) = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    ctx = dg.build_run_status_sensor_context(
        sensor_name="durable_sync_failures",
        dagster_event=record.dagster_event,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        resources={"sync_state": SyncStateResource(url=store.url)},
    ).for_run_failure()
    defs.resolve_sensor_def("durable_sync_failures")(ctx)


def test_a_credential_pause_notifies_once_however_many_partition_runs_fail(route, sqlite_store, instance, monkeypatch):
    instance.add_dynamic_partitions(route.name, ["a", "b"])
    route.destination.credential = None  # the destination refuses the credential
    deployment = Deployment(route, sqlite_store, instance)
    first = _fail(deployment.defs, instance, "a")  # refused: the credential is paused
    second = _fail(deployment.defs, instance, "b")  # stopped by that pause
    with webhook_receiver() as (url, received):
        monkeypatch.setenv("DURABLE_SYNC_WEBHOOK_URL", url)
        for result in (first, second, first):  # the last: the same failure seen again after a restart
            _on_failure(deployment.defs, instance, result, sqlite_store)
    (payload,) = received
    assert payload["event"] == "credential_paused" and payload["scope"] == route.destination_scope
    assert payload["partition"] == "a" and payload["run_id"] == first.run_id
    assert payload["paused_since"] == sqlite_store.pauses()[route.destination_scope].paused_at.isoformat(
        timespec="seconds"
    )
    for partition in ("a", "b"):  # each run's failure is still recorded
        assert sqlite_store.partition_state(route.name, partition)["last_failure_run_id"] in (
            first.run_id,
            second.run_id,
        )


def test_a_credential_paused_again_by_a_run_in_flight_is_still_one_pause(route, sqlite_store, instance, monkeypatch):
    instance.add_dynamic_partitions(route.name, ["a"])
    route.destination.credential = None
    deployment = Deployment(route, sqlite_store, instance)
    refused = _fail(deployment.defs, instance, "a")
    first = sqlite_store.pauses()[route.destination_scope]
    with webhook_receiver() as (url, received):
        monkeypatch.setenv("DURABLE_SYNC_WEBHOOK_URL", url)
        _on_failure(deployment.defs, instance, refused, sqlite_store)
        # Another partition's pass, in flight when the credential was refused, is refused too: the
        # engine pauses the credential again: the same pause, its start kept.
        sqlite_store.pause(first.scope, first.reason, fingerprint=first.fingerprint, source="auth")
        assert sqlite_store.pauses()[first.scope].paused_at == first.paused_at
        _on_failure(deployment.defs, instance, refused, sqlite_store)
        deployment.tick()  # forgets nothing: the pause goes on
        _on_failure(deployment.defs, instance, refused, sqlite_store)
        assert len(received) == 1
        # A new credential, refused in its turn, is a new pause.
        sqlite_store.pause(first.scope, "401 again", fingerprint="another-credential", source="auth")
        _on_failure(deployment.defs, instance, refused, sqlite_store)
        assert len(received) == 2


def test_notify_once_sends_a_pause_notice_once_and_releases_an_undelivered_one(store, monkeypatch):
    monkeypatch.setenv("DURABLE_SYNC_WEBHOOK_URL", "http://127.0.0.1:9/test-token")
    store.pause("route:x", "by hand")
    pause = store.pauses()["route:x"]
    answers = [False, True, True]
    sent = []

    def send() -> bool:
        sent.append(1)
        return answers.pop(0)

    assert notify_once(store, "credential_paused", pause, send) is False  # not delivered: released
    assert notify_once(store, "credential_paused", pause, send) is True
    assert notify_once(store, "credential_paused", pause, send) is False  # already sent
    assert notify_once(store, "pause_escalated", pause, send) is True  # another event of the pause
    assert len(sent) == 3
    assert forget_ended_notices(store) == 0  # the pause goes on
    store.resume("route:x")
    assert forget_ended_notices(store) == 2
    store.pause("route:x", "by hand, again")
    answers.append(True)
    assert notify_once(store, "credential_paused", store.pauses()["route:x"], send) is True  # a new pause


def test_two_routes_share_one_escalation_of_their_credential(sqlite_store, instance, monkeypatch):
    one = memory_route({"a": records(2)})
    other = Route(one.source, MemoryDestination(), name="memory_to_other")
    StateStore._shared[sqlite_store.url] = sqlite_store
    state = SyncStateResource(url=sqlite_store.url)
    defs = build_definitions([one, other], state=state, retry_policy=FAST_RETRY)
    sqlite_store.pause(one.source_scope, "401 Unauthorized", source="auth")
    backdate(sqlite_store, one.source_scope, dt.timedelta(hours=2))
    with webhook_receiver() as (url, received):
        monkeypatch.setenv("DURABLE_SYNC_WEBHOOK_URL", url)
        ctx = dg.build_sensor_context(instance=instance, resources={"sync_state": state}, definitions=defs)
        result = defs.resolve_sensor_def(SENSOR)(ctx)
    assert {e.asset_key.path[0] for e in result.asset_events} == {one.name, other.name}
    (payload,) = received
    assert payload["routes"] == {one.name: ["a"], other.name: ["a"]}

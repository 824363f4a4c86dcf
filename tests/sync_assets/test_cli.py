"""The durable-sync CLI against the state store."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import threading
import time
import uuid

from connectors.core import RecordError, TransientError
from connectors.memory import MemoryDestination, MemorySource
from sync_assets.cli import main
from sync_assets.engine import PassOptions, run_pass
from sync_assets.routes import Route
from tests.sync_assets.helpers import memory_route, records


def run_cli(capsys, store, *args, routes, timeout=None):
    extra = ["--timeout", str(timeout)] if timeout is not None else []
    code = main(["--state-url", store.url, *args, *extra], routes=routes)
    out = capsys.readouterr()
    return code, out.out, out.err


async def test_status_shows_pause_last_pass_failures_requests_and_checkpoint(capsys, sqlite_store):
    route = memory_route(
        {"a": records(30), "b": records(3)},
        page_size=10,
        fail=lambda op, r: RecordError("400 bad title") if r.primary_key == "k0004" else None,
    )
    await run_pass(route, "a", sqlite_store)
    sqlite_store.pause(f"partition:{route.name}/b", "maintenance window")
    sqlite_store.enqueue_request(route.name, "a", only_items=["k0001"])
    code, out, _ = run_cli(capsys, sqlite_store, "status", routes=[route])
    assert code == 0
    assert "created 29" in out and "failed 1" in out
    assert "k0004 (attempts 1): 400 bad title" in out
    assert "PAUSED [partition:memory_to_memory/b]" in out and "maintenance window" in out
    assert "pending request" in out and "k0001" in out
    assert "last pass: never" in out  # partition b

    code, out, _ = run_cli(capsys, sqlite_store, "status", "--json", routes=[route])
    data = json.loads(out)
    (entry,) = data
    a = next(p for p in entry["partitions"] if p["partition"] == "a")
    assert a["failed_records"] == 1 and a["links"] == 29


async def test_status_shows_an_interrupted_pass_as_interrupted_not_in_flight(capsys, sqlite_store):
    from connectors.core import TransientError

    route = memory_route({"a": records(30)}, page_size=10)
    route.source.fail_at_page = {2: TransientError("503")}
    with contextlib.suppress(TransientError):
        await run_pass(route, "a", sqlite_store)
    _, out, _ = run_cli(capsys, sqlite_store, "status", routes=[route])
    # No Dagster run holds the partition: the checkpoint is a pass the next run resumes.
    assert "interrupted, resumes at page 3 on the next pass (2 pages done" in out
    assert "in flight" not in out
    assert "error: 503" in out


def test_sync_enqueues_requests(capsys, sqlite_store):
    route = memory_route({"a": records(3), "b": records(3)})
    code, out, _ = run_cli(
        capsys, sqlite_store, "sync", route.name, "--spec", "a", "--items", "k0001", "--no-wait", routes=[route]
    )
    assert code == 0 and "queued request" in out
    code, out, _ = run_cli(capsys, sqlite_store, "sync", route.name, "--full-refresh", routes=[route])
    pending = sqlite_store.pending_requests()
    assert [(p.partition, p.only_items, p.full_refresh) for p in pending] == [
        ("a", ["k0001"], False),
        ("a", None, True),
        ("b", None, True),
    ]


def test_unknown_route_and_spec_are_clear_errors(capsys, sqlite_store):
    route = memory_route({"a": records(1)})
    code, out, err = run_cli(capsys, sqlite_store, "sync", "nope", routes=[route])
    assert code == 2 and out == ""
    assert err.startswith("durable-sync: no route named 'nope' (routes: memory_to_memory)")
    assert "--module" in err
    code, _, err = run_cli(capsys, sqlite_store, "sync", route.name, "--spec", "zzz", routes=[route])
    assert code == 2 and "has no spec 'zzz'" in err
    assert sqlite_store.pending_requests() == []


def test_plan_prints_what_would_happen_and_writes_nothing(capsys, sqlite_store):
    import asyncio

    route = memory_route({"a": records(10)})
    asyncio.run(run_pass(route, "a", sqlite_store))
    route.source.records["a"] = records(10, version=1)[:3] + records(12)[3:]
    writes = route.destination.counters.writes
    code, out, _ = run_cli(capsys, sqlite_store, "plan", route.name, "--spec", "a", routes=[route])
    assert code == 0
    assert "would create 2, update 3; unchanged 7" in out
    assert route.destination.counters.writes == writes


async def test_pause_and_resume_route_queue_a_catch_up(capsys, sqlite_store):
    route = memory_route({"a": records(2), "b": records(2)})
    run_cli(capsys, sqlite_store, "pause", route.name, "--reason", "holiday", routes=[route])
    assert sqlite_store.pauses()[f"route:{route.name}"].reason == "holiday"
    sqlite_store.pause("credential:memory", "401", source="auth")
    _code, out, _ = run_cli(capsys, sqlite_store, "resume", route.name, routes=[route])
    assert "resumed route:memory_to_memory" in out and "resumed credential:memory" in out
    assert sqlite_store.pauses() == {}
    assert sorted(r.partition for r in sqlite_store.pending_requests()) == ["a", "b"]


async def test_resume_credential(capsys, sqlite_store):
    route = memory_route({"a": records(2)})
    sqlite_store.pause("credential:memory", "401", source="auth")
    _code, out, _ = run_cli(capsys, sqlite_store, "resume", "--credential", "memory", routes=[route])
    assert "resumed credential:memory" in out
    assert [r.reason for r in sqlite_store.pending_requests()] == ["resume"]


def test_connectors_lists_entry_points(capsys):
    assert main(["connectors"]) == 0
    out = capsys.readouterr().out
    assert "files" in out and "source" in out
    assert "sqlite" in out and "destination" in out


def test_status_shows_dagsters_runs_next_to_the_state_store(capsys, sqlite_store, tmp_path, monkeypatch):
    import dagster as dg

    from sync_assets.testing import materialize_route

    home = tmp_path / "dh"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    route = memory_route({"a": records(3), "b": records(2)})
    with dg.DagsterInstance.get() as instance:
        run = materialize_route(
            route, "a", store=sqlite_store, instance=instance, tags={"durable_sync/route": route.name}
        )
    code, out, _ = run_cli(capsys, sqlite_store, "status", routes=[route])
    assert code == 0
    assert f"last run: {run.result.run_id[:8]} SUCCESS" in out
    code, out, _ = run_cli(capsys, sqlite_store, "status", "--json", routes=[route])
    a = next(p for p in json.loads(out)[0]["partitions"] if p["partition"] == "a")
    assert a["last_run"]["run_id"] == run.result.run_id and a["last_run"]["status"] == "SUCCESS"


def test_auth_keygen_status_logout_never_print_a_token(capsys, sqlite_store, monkeypatch):
    import datetime as dt

    from connectors.auth.tokens import OAuthToken
    from sync_assets.tokens import EncryptedTokenStore

    assert main(["auth", "keygen", "--key-id", "k9"]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith("DURABLE_SYNC_ENC_KEY=k9:")
    monkeypatch.setenv("DURABLE_SYNC_ENC_KEY", line.split("=", 1)[1])
    token = OAuthToken(
        access_token="at-SECRET",
        refresh_token="rt-SECRET",
        expires_at=dt.datetime(2031, 5, 1, tzinfo=dt.UTC),
        client_id="c1",
        resource="https://mcp.example/mcp",
    )
    EncryptedTokenStore(sqlite_store).save("notion-mcp", token, expected_version=None)
    sqlite_store.pause("credential:notion-mcp:notion-mcp", "invalid_grant", source="auth")
    code, out, _ = run_cli(capsys, sqlite_store, "auth", "status", routes=[])
    assert code == 0 and "notion-mcp: version 1" in out and "2031-05-01" in out
    assert "PAUSED [credential:notion-mcp:notion-mcp]" in out
    assert "SECRET" not in out
    code, out, _ = run_cli(capsys, sqlite_store, "auth", "logout", "notion-mcp", routes=[])
    assert "removed the notion-mcp token" in out
    assert EncryptedTokenStore(sqlite_store).load("notion-mcp") is None


def test_auth_login_without_a_known_resource_says_what_to_give(capsys, sqlite_store, monkeypatch):
    monkeypatch.setenv("DURABLE_SYNC_ENC_KEY", "k1:" + "A" * 43 + "=")
    code, _, err = run_cli(capsys, sqlite_store, "auth", "login", "mystery", routes=[])
    assert code == 2 and "give --resource URL for account 'mystery'" in err


class _FullPassDown(MemorySource):
    """Targeted reads work; a full pass fails at page 2 behind a wrapper, every time."""

    async def fetch_page(self, spec, only_items, cursor):
        if cursor and only_items is None:
            try:
                raise TransientError("GitHub GET /orgs/acme/repos -> 503: service unavailable")
            except TransientError as err:
                raise RuntimeError("fetching page 2 failed") from err
        return await super().fetch_page(spec, only_items, cursor)


async def test_status_keeps_a_failing_full_pass_visible_after_a_targeted_success(capsys, sqlite_store):
    route = Route(_FullPassDown({"a": records(30)}, page_size=10), MemoryDestination(), name="memory_to_memory")
    with contextlib.suppress(RuntimeError):
        await run_pass(route, "a", sqlite_store)
    result = await run_pass(route, "a", sqlite_store, PassOptions(only_items=("k0003",)))
    assert result.mode == "targeted" and result.stats.unchanged == 1
    _, out, _ = run_cli(capsys, sqlite_store, "status", routes=[route])
    full = out.index("last full pass: failed")
    assert out.index("last targeted pass: success") > full
    assert (
        "error: RuntimeError: fetching page 2 failed (root cause: GitHub GET /orgs/acme/repos -> 503: "
        "service unavailable)" in out[full:]
    )
    assert "interrupted, resumes at page 2 on the next pass" in out and "in flight" not in out

    _, out, _ = run_cli(capsys, sqlite_store, "status", "--json", routes=[route])
    (a,) = json.loads(out)[0]["partitions"]
    assert a["last_full_pass"]["status"] == "failed" and "503" in a["last_full_pass"]["error"]
    assert a["last_targeted_pass"]["status"] == "success" and a["last_pass"]["mode"] == "targeted"
    assert a["in_flight"] is None and a["checkpoint"]["running"] is False and a["checkpoint"]["resumes_at_page"] == 2


async def test_status_says_in_flight_only_while_a_dagster_run_holds_the_partition(capsys, sqlite_store):
    import uuid

    import dagster as dg
    from dagster._core.storage.dagster_run import DagsterRun

    from connectors.core import TransientError as Transient

    route = memory_route({"a": records(30), "b": records(3)}, page_size=10)
    route.source.fail_at_page = {1: Transient("503")}
    with contextlib.suppress(Transient):
        await run_pass(route, "a", sqlite_store)
    run_id = str(uuid.uuid4())
    with dg.DagsterInstance.get() as instance:  # DAGSTER_HOME is the test's own
        instance.add_run(
            DagsterRun(
                job_name=f"{route.name}_sync",
                run_id=run_id,
                status=dg.DagsterRunStatus.STARTED,
                tags={"durable_sync/route": route.name, "dagster/partition": "a", "durable_sync/trigger": "interval"},
            )
        )
    _, out, _ = run_cli(capsys, sqlite_store, "status", routes=[route])
    assert f"in flight: run {run_id[:8]} STARTED (interval), 1 pages done" in out
    assert "interrupted" not in out


def test_sync_on_a_paused_partition_says_it_waits_for_resume(capsys, sqlite_store):
    route = memory_route({"a": records(2), "b": records(2)})
    sqlite_store.pause(f"partition:{route.name}/a", "maintenance window")
    code, out, _ = run_cli(capsys, sqlite_store, "sync", route.name, "--spec", "a", "--items", "k0001", routes=[route])
    assert code == 0
    assert (
        f"{route.name}/a (1 items); paused [partition:{route.name}/a]: maintenance window. The request stays "
        f"queued and runs after durable-sync resume {route.name}" in out
    )
    assert "waiting" not in out  # nothing to wait for until it is resumed
    assert [(r.partition, r.only_items) for r in sqlite_store.pending_requests()] == [("a", ["k0001"])]


def test_resume_with_nothing_paused_queues_nothing(capsys, sqlite_store):
    route = memory_route({"a": records(2), "b": records(2)})
    code, out, _ = run_cli(capsys, sqlite_store, "resume", route.name, routes=[route])
    assert code == 0 and out.strip() == "nothing paused"
    code, out, _ = run_cli(capsys, sqlite_store, "resume", "--credential", "memory", routes=[route])
    assert out.strip() == "nothing paused"
    assert sqlite_store.pending_requests() == []


@contextlib.contextmanager
def sync_now_worker(store, route):
    """Stands in for the sync-now sensor and its run: takes each request and runs its pass."""
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            for req in store.pending_requests(route.name):
                store.take_requests([req.id], run_key=f"test:{req.id}")
                options = PassOptions(only_items=tuple(req.only_items) if req.only_items else None)
                asyncio.run(run_pass(route, req.partition, store, options))
            time.sleep(0.05)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def test_sync_items_reports_keys_the_source_did_not_return(capsys, sqlite_store):
    route = memory_route({"a": records(5)})
    with sync_now_worker(sqlite_store, route):
        code, out, _ = run_cli(
            capsys, sqlite_store, "sync", route.name, "--items", "k0001", "typo-1", "k0002", "gone-7", routes=[route]
        )
    assert code == 0
    assert f"{route.name}/a: success targeted pass: created 2," in out
    assert "not found at source: typo-1, gone-7" in out
    code, out, _ = run_cli(capsys, sqlite_store, "sync", route.name, "--items", "k0003", routes=[route], timeout=0.5)
    assert code == 1 and "no code location has taken it yet" in out  # no worker: it stays queued
    assert [r.only_items for r in sqlite_store.pending_requests()] == [["k0003"]]


def test_module_in_the_working_directory_is_found_and_a_missing_one_is_a_clean_error(
    capsys, sqlite_store, tmp_path, monkeypatch
):
    name = f"my_routes_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        "from connectors.core import Record\n"
        "from connectors.memory import MemoryDestination, MemorySource\n"
        "from sync_assets import Route\n"
        "routes = [Route(MemorySource({'a': [Record('1', {'Name': 'x'})]}), MemoryDestination(), name='cwd_route')]\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", str(tmp_path))])
    try:
        code = main(["--module", name, "--state-url", sqlite_store.url, "sync", "cwd_route", "--no-wait"])
        out = capsys.readouterr()
        assert code == 0, out.err
        assert [r.route for r in sqlite_store.pending_requests()] == ["cwd_route"]

        code = main(["--module", "no_such_routes_module", "--state-url", sqlite_store.url, "status"])
        err = capsys.readouterr().err
        assert code == 2
        assert err.startswith(f"durable-sync: no module named 'no_such_routes_module' (looked in {tmp_path}")
        assert "Traceback" not in err
    finally:
        sys.modules.pop(name, None)


def test_dotenv_in_the_working_directory_is_read_without_overriding_the_environment(
    capsys, sqlite_store, tmp_path, monkeypatch
):
    (tmp_path / ".env").write_text(
        "# comment\nDURABLE_SYNC_ROUTES_MODULE=from_dotenv_module\nDS_TEST_ALREADY_SET=from-file\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DURABLE_SYNC_ROUTES_MODULE", raising=False)
    monkeypatch.setenv("DS_TEST_ALREADY_SET", "from-shell")
    code = main(["--state-url", sqlite_store.url, "status"])
    err = capsys.readouterr().err
    # The module named in .env is the one looked for.
    assert code == 2 and "no module named 'from_dotenv_module'" in err
    assert os.environ["DS_TEST_ALREADY_SET"] == "from-shell"
    monkeypatch.delenv("DURABLE_SYNC_ROUTES_MODULE")


def test_plan_items_names_the_keys_the_source_does_not_have(capsys, sqlite_store):
    route = memory_route({"a": records(5)})
    code, out, _ = run_cli(
        capsys, sqlite_store, "plan", route.name, "--spec", "a", "--items", "k0004", "nope-9", routes=[route]
    )
    assert code == 0
    assert "would create 1, update 0" in out and "not found at source: nope-9" in out

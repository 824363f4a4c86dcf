"""The durable-sync CLI against the state store."""

from __future__ import annotations

import contextlib
import json

from connectors.core import RecordError
from sync_assets.cli import main
from sync_assets.engine import run_pass
from tests.sync_assets.helpers import memory_route, records


def run_cli(capsys, store, *args, routes):
    code = main(["--state-url", store.url, *args], routes=routes)
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


async def test_status_shows_a_pass_in_flight(capsys, sqlite_store):
    from connectors.core import TransientError

    route = memory_route({"a": records(30)}, page_size=10)
    route.source.fail_at_page = {2: TransientError("503")}
    with contextlib.suppress(TransientError):
        await run_pass(route, "a", sqlite_store)
    _, out, _ = run_cli(capsys, sqlite_store, "status", routes=[route])
    assert "in flight since" in out and "2 pages done" in out
    assert "error: 503" in out


def test_sync_enqueues_requests(capsys, sqlite_store):
    route = memory_route({"a": records(3), "b": records(3)})
    code, out, _ = run_cli(capsys, sqlite_store, "sync", route.name, "--spec", "a", "--items", "k0001", routes=[route])
    assert code == 0 and "queued request" in out
    code, out, _ = run_cli(capsys, sqlite_store, "sync", route.name, "--full-refresh", routes=[route])
    pending = sqlite_store.pending_requests()
    assert [(p.partition, p.only_items, p.full_refresh) for p in pending] == [
        ("a", ["k0001"], False),
        ("a", None, True),
        ("b", None, True),
    ]


def test_unknown_route_and_spec_are_clear_errors(capsys, sqlite_store):
    import pytest

    route = memory_route({"a": records(1)})
    with pytest.raises(SystemExit, match="no route named 'nope'"):
        main(["--state-url", sqlite_store.url, "sync", "nope"], routes=[route])
    with pytest.raises(SystemExit, match="has no spec 'zzz'"):
        main(["--state-url", sqlite_store.url, "sync", route.name, "--spec", "zzz"], routes=[route])


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


def test_auth_login_without_a_known_resource_says_what_to_give(sqlite_store, monkeypatch):
    import pytest

    monkeypatch.setenv("DURABLE_SYNC_ENC_KEY", "k1:" + "A" * 43 + "=")
    with pytest.raises(SystemExit, match="give --resource URL for account 'mystery'"):
        main(["--state-url", sqlite_store.url, "auth", "login", "mystery"], routes=[])

"""A route into Notion over MCP with an OAuth login, through Dagster: the promises of the OAuth issue.

The fake authorization server rotates refresh tokens and revokes the whole family on a replay; the
fake MCP server authenticates bearer tokens against it; tokens live encrypted in the state store.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import dagster as dg
import httpx
import pytest

from connectors.auth.provider import OAuthBearerAuth, TokenProvider
from connectors.core import Record
from connectors.http import HttpSettings, Rate
from connectors.memory import MemorySource
from connectors.notion.mcp import NotionMcpDestination
from sync_assets.factory import build_definitions
from sync_assets.resources import SyncStateResource
from sync_assets.routes import Route
from sync_assets.testing import materialize_route
from sync_assets.tokens import ENC_KEY_ENV, EncryptedTokenStore, generate_key
from tests.connectors.auth.helpers import RESOURCE, grant_token, oauth_client
from tests.fakes.notion import FakeNotion
from tests.fakes.notion_mcp import IN_PROCESS_URL, FakeNotionMcp
from tests.fakes.oauth import FakeOAuthServer, ManualClock
from tests.sync_assets.helpers import FAST_RETRY

ACCOUNT = "notion-mcp"
SCOPE = "credential:notion-mcp:notion-mcp"
FAST = Rate(10_000, 1, burst=10_000)


def records(version: int) -> list[Record]:
    return [Record(f"repo-{i}", {"Name": f"repo {i}", "Stars": i * 10 + version}) for i in range(6)]


class World:
    """The fakes, the encrypted token store and a route over MCP that uses them."""

    def __init__(self, store) -> None:
        self.clock = ManualClock()
        self.oauth = FakeOAuthServer(clock=self.clock)
        self.notion = FakeNotion(rate=None)
        self.db = self.notion.add_database({"Name": "title", "Key": "rich_text", "Stars": "number"}, title="Repos")
        self.mcp = FakeNotionMcp(self.notion, validate=self.oauth.validate)
        self.tokens = EncryptedTokenStore(store)
        self.tokens.replace(ACCOUNT, grant_token(self.oauth, self.clock))
        self.source = MemorySource({"repos": records(0)}, page_size=2, name="github")

    def provider(self) -> TokenProvider:
        return TokenProvider(self.tokens, ACCOUNT, client=oauth_client(self.oauth), clock=self.clock)

    def route(self) -> Route:
        dest = NotionMcpDestination(
            self.db.id,
            key_property="Key",
            synced_property=None,
            auth=OAuthBearerAuth(self.provider()),
            token_store=self.tokens,
            account=ACCOUNT,
            mcp_url=IN_PROCESS_URL,
            http=HttpSettings(transport=httpx.ASGITransport(app=self.mcp.app)),
            rate=FAST,
        )
        return Route(self.source, dest, name="github_to_notion")

    def stars(self) -> dict[str, int]:
        return {
            v["Key"]: v["Stars"]
            for v in (self.notion.values(p.id) for p in self.notion.pages(self.db.data_source_ids[0]))
        }


@pytest.fixture
def world(store, monkeypatch) -> World:
    monkeypatch.setenv(ENC_KEY_ENV, generate_key("k1"))
    return World(store)


def test_two_consumers_that_both_need_a_refresh_make_exactly_one(world):
    world.clock.advance(3600 + 1)  # every access token has expired
    results: list[str] = []

    def consumer() -> None:
        # A separate provider (and event loop) each, as two run processes would have.
        results.append(asyncio.run(world.provider().access_token()))

    threads = [threading.Thread(target=consumer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert world.oauth.refreshes == 1
    assert len(set(results)) == 1 and world.oauth.validate(results[0])


def test_oauth_route_lifecycle_through_dagster(world, store, tmp_path, capfd, caplog):
    route = world.route()
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        instance.add_dynamic_partitions(route.name, ["repos"])

        # A full sync over MCP with the OAuth login.
        run = materialize_route(route, "repos", store=store, instance=instance, retry_policy=FAST_RETRY)
        assert run.success and run.stats.created == 6

        # The access token expires in the middle of a pass: refreshed on the 401, no pause.
        world.source.records["repos"] = records(1)
        world.oauth.expire_all_access_tokens()
        run = materialize_route(route, "repos", store=store, instance=instance, retry_policy=FAST_RETRY)
        assert run.success and run.stats.updated == 6
        assert world.oauth.refreshes == 1 and store.pauses() == {}

        # Someone replays an already-rotated refresh token: the whole family is revoked.
        rotated_away = grant_token_refresh_token_before(world)
        replay = asgi_call(
            world.oauth,
            httpx.Request(
                "POST",
                f"{RESOURCE.rsplit('/', 1)[0]}/token",
                data={"grant_type": "refresh_token", "refresh_token": rotated_away, "client_id": client_id(world)},
            ),
        )
        assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
        world.source.records["repos"] = records(2)
        run = materialize_route(route, "repos", store=store, instance=instance, retry_policy=FAST_RETRY)
        assert not run.success and "STEP_UP_FOR_RETRY" not in run.event_types
        assert "durable-sync auth login notion-mcp" in run.failure
        assert SCOPE in store.pauses()

        # While paused, nothing reaches the MCP server: neither a manual run nor the dispatcher.
        calls = world.mcp.counters.tool_calls
        served = sum(world.mcp.served.values())
        run = materialize_route(route, "repos", store=store, instance=instance)
        assert not run.success and "paused" in run.failure
        defs = build_definitions([route], state=SyncStateResource(url=store.url), retry_policy=FAST_RETRY)
        resources = {"sync_state": SyncStateResource(url=store.url)}
        tick = defs.resolve_sensor_def(f"{route.name}_dispatcher")(
            dg.build_sensor_context(instance=instance, resources=resources, definitions=defs)
        )
        assert tick.run_requests == []
        resume = defs.resolve_sensor_def("durable_sync_auth_resume")
        assert (
            resume(dg.build_sensor_context(instance=instance, resources=resources, definitions=defs)).run_requests == []
        )
        assert (world.mcp.counters.tool_calls, sum(world.mcp.served.values())) == (calls, served)

        # Log in again: the auth-resume sensor lifts the pause and asks for a catch-up run.
        world.tokens.replace(ACCOUNT, grant_token(world.oauth, world.clock))
        result = resume(dg.build_sensor_context(instance=instance, resources=resources, definitions=defs))
        assert [r.partition_key for r in result.run_requests] == ["repos"]
        assert result.run_requests[0].tags["durable_sync/trigger"] == "auth_resume"
        assert store.pauses() == {}
        run = materialize_route(route, "repos", store=store, instance=instance, retry_policy=FAST_RETRY)
        assert run.success and run.stats.updated == 6
        assert world.stars() == {f"repo-{i}": i * 10 + 2 for i in range(6)}

    # No access token, refresh token or code ever issued is anywhere: event log and run storage,
    # compute logs, process output, logs, and the state store (which holds only ciphertext).
    secrets = world.oauth.issued_secrets()
    assert len(secrets) >= 6
    out, err = capfd.readouterr()
    haystacks = {"stdout": out, "stderr": err, "logs": caplog.text}
    for path in Path(tmp_path).rglob("*"):
        if path.is_file():
            haystacks[str(path)] = path.read_bytes().decode("latin-1")
    with store.engine.connect() as conn:
        for table in ("ds_tokens", "ds_passes", "ds_partition_state", "ds_pauses", "ds_blobs", "ds_record_outcomes"):
            rows = conn.exec_driver_sql(f"SELECT * FROM {table}").all()
            haystacks[table] = repr(rows)
    leaks = [(where, s[:6]) for where, text in haystacks.items() for s in secrets if s in text]
    assert leaks == []
    assert any(str(p).endswith(".db") for p in haystacks)  # the instance's SQLite storage was searched


def grant_token_refresh_token_before(world: World) -> str:
    """A refresh token of the current grant that has already been rotated away (a stale copy)."""
    current, _ = world.tokens.load(ACCOUNT)
    grant = world.oauth.grant_of(current.refresh_token)
    stale = [
        t
        for t in world.oauth.issued_secrets()
        if t.startswith("fake-rt-") and world.oauth.grant_of(t) == grant and t != current.refresh_token
    ]
    assert stale, "the grant has not rotated yet"
    return stale[0]


def client_id(world: World) -> str:
    current, _ = world.tokens.load(ACCOUNT)
    return current.client_id


def asgi_call(fake: FakeOAuthServer, request: httpx.Request) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app)) as client:
            response = await client.send(request)
            await response.aread()
            return response

    return asyncio.run(go())

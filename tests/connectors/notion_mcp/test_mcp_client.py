"""connectors.mcp against the fake Notion MCP server: results, auth, rate limits, HTTP failures, loopback."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import httpx
import pytest

from connectors.core import AuthError, ConfigError, RateLimited, RecordError, SyncError, TransientError
from connectors.http import RetryPolicy
from connectors.mcp import BearerAuth, McpToolError, ToolResult, classify_tool_error, open_mcp_session
from tests.connectors.notion_mcp.conftest import FAST, FakeTime, RefreshingBearer, StaticBearer
from tests.fakes.notion import FakeDatabase, FakeNotion
from tests.fakes.notion_mcp import IN_PROCESS_URL, FakeNotionMcp, serve


def session(fake: FakeNotionMcp, time: FakeTime, auth: Any = None, **kwargs: Any) -> Any:
    options: dict[str, Any] = {
        "auth": auth if auth is not None else StaticBearer(fake.notion.token),
        "transport": httpx.ASGITransport(app=fake.app),
        "service": "Notion MCP",
        "credential": "notion-mcp:test",
        "rate": FAST,
        "sleep": time.sleep,
        "clock": time.clock,
        "read_only_tools": {"notion-fetch", "notion-query-data-sources"},
    }
    options.update(kwargs)
    return open_mcp_session(IN_PROCESS_URL, **options)


def query(ds_id: str, sql: str | None = None) -> dict[str, Any]:
    table = f'"collection://{ds_id}"'
    return {"data": {"data_source_urls": [f"collection://{ds_id}"], "query": sql or f"SELECT * FROM {table}"}}


def new_page(ds_id: str, name: str) -> dict[str, Any]:
    return {"parent": {"data_source_id": ds_id}, "pages": [{"properties": {"Name": name, "Key": name}}]}


async def test_a_tool_call_returns_its_text_and_structured_content(mcp_fake, time, notion, ds_id):
    notion.add_page(ds_id, {"Name": "one", "Stars": 3})
    async with session(mcp_fake, time) as mcp:
        result = await mcp.call("notion-query-data-sources", query(ds_id))
        assert "notion-fetch" in await mcp.tool_names()
    assert not result.is_error and result.tool == "notion-query-data-sources"
    (row,) = result.data()["results"]
    assert row["Name"] == "one" and row["Stars"] == 3
    assert result.data() == result.structured and '"one"' in result.text


async def test_a_revoked_token_is_an_auth_error_that_never_shows_the_token(mcp_fake, time, notion, caplog):
    caplog.set_level(logging.DEBUG)
    token = notion.token
    notion.revoke_token(token)
    with pytest.raises(AuthError) as caught:
        async with session(mcp_fake, time):
            pass
    assert caught.value.status_code == 401  # type: ignore[attr-defined]
    assert caught.value.credential == "notion-mcp:test"
    assert token not in str(caught.value) and token not in caplog.text
    assert mcp_fake.counters.http_401 == 1 and not mcp_fake.calls


async def test_the_auth_refreshes_once_on_a_401_before_it_is_an_auth_error(mcp_fake, time, notion, ds_id):
    old = notion.token
    new = notion.rotate_token(old)  # the stored access token was revoked; a refresh gets a good one
    current = {"token": old}

    def refresh() -> str:
        current["token"] = new
        return new

    auth = RefreshingBearer(lambda: current["token"], refresh)
    async with session(mcp_fake, time, auth=auth) as mcp:
        await mcp.call("notion-fetch", {"id": f"collection://{ds_id}"})
    assert auth.refreshes == 1

    dead = RefreshingBearer(lambda: "revoked-1234567890", lambda: "still-revoked-1234567890")
    with pytest.raises(AuthError):
        async with session(mcp_fake, time, auth=dead):
            pass
    assert dead.refreshes == 1


@pytest.mark.parametrize("is_async", [False, True])
async def test_a_token_callable_is_asked_for_the_current_token(mcp_fake, time, notion, ds_id, is_async):
    tokens = [notion.token]

    def sync_token() -> str:
        return tokens[-1]

    async def async_token() -> str:
        return tokens[-1]

    async with session(mcp_fake, time, auth=async_token if is_async else sync_token) as mcp:
        await mcp.call("notion-fetch", {"id": f"collection://{ds_id}"})
        tokens.append(notion.rotate_token(notion.token))  # renewed elsewhere: the next request uses it
        await mcp.call("notion-fetch", {"id": f"collection://{ds_id}"})
    assert isinstance(BearerAuth("x"), httpx.Auth)


async def test_a_rate_limited_tool_result_is_rate_limited_with_its_retry_after(mcp_fake, time, notion, ds_id):
    notion.set_rate(0.01, burst=1)  # after one request: wait 100 s, over the server's own 2 s retry
    async with session(mcp_fake, time, max_wait=0) as mcp:
        await mcp.call("notion-fetch", {"id": f"collection://{ds_id}"})
        with pytest.raises(RateLimited) as caught:
            await mcp.call("notion-fetch", {"id": f"collection://{ds_id}"})
    assert caught.value.retry_after == 100
    assert "integration_rate_limit" in str(caught.value)
    assert mcp_fake.counters.rate_limited == 1


async def test_a_tool_rate_limit_within_max_wait_is_waited_out_in_process(mcp_fake, time, notion, ds_id):
    notion.set_rate(0.01, burst=1)
    async with session(mcp_fake, time) as mcp:  # max_wait defaults to the toolkit's 120 s
        await mcp.call("notion-fetch", {"id": f"collection://{ds_id}"})
        result = await mcp.call("notion-fetch", {"id": f"collection://{ds_id}"})
    assert not result.is_error and 100 in time.sleeps


async def test_the_server_retries_a_short_429_itself(mcp_fake, time, notion, ds_id):
    notion.set_rate(1, burst=1)  # the second request waits 1 s: within the hosted server's 2 s
    async with session(mcp_fake, time) as mcp:
        await mcp.call("notion-fetch", {"id": f"collection://{ds_id}"})
        await mcp.call("notion-fetch", {"id": f"collection://{ds_id}"})
    assert mcp_fake.counters.internal_retries >= 1 and mcp_fake.counters.rate_limited == 0


@pytest.mark.parametrize(
    ("text", "structured", "expected"),
    [
        ("Error 429: Too Many Requests. Retry after 7 seconds", None, RateLimited),
        ("rate limited", {"error": {"code": "rate_limited", "retry_after_seconds": 12}}, RateLimited),
        ("Unknown tool: notion-frobnicate", None, ConfigError),
        ("Input validation error: 'pages' is a required property", None, ConfigError),
        ("API token is invalid. (unauthorized, 401)", {"error": {"code": "unauthorized"}}, AuthError),
        ("Notion is unavailable", {"error": {"code": "service_unavailable", "status": 503}}, TransientError),
        ("Internal server error", None, TransientError),
        ("Stars is not a property that exists.", {"error": {"code": "validation_error"}}, McpToolError),
    ],
)
def test_tool_errors_map_onto_the_error_tree(text, structured, expected):
    error = classify_tool_error(ToolResult("notion-create-pages", text, structured, True), service="Notion MCP")
    assert type(error) is expected
    if expected is RateLimited:
        assert error.retry_after in (7, 12)  # type: ignore[attr-defined]
    if expected is McpToolError:
        assert isinstance(error, RecordError) and error.code == "validation_error"  # type: ignore[attr-defined]


def test_a_tool_error_never_shows_a_token_it_echoes():
    token = "ntn_" + "abcdefghijklmnopqrstuvwxyz0123"  # built, so no token-shaped literal sits in the repo
    leaked = f"Bearer {token} was rejected: access_token=secret-value-123"
    error = classify_tool_error(ToolResult("notion-fetch", leaked, None, True))
    assert token not in str(error) and "secret-value-123" not in str(error)


async def test_an_unknown_tool_is_a_config_error(mcp_fake, time):
    async with session(mcp_fake, time) as mcp:
        with pytest.raises(ConfigError, match="Unknown tool"):
            await mcp.call("notion-frobnicate", {})
        result = await mcp.call("notion-frobnicate", {}, check=False)
    assert result.is_error


async def test_a_503_is_retried_and_a_500_on_a_create_is_not(mcp_fake, time, notion, ds_id):
    async with session(mcp_fake, time, retry=RetryPolicy(max_attempts=3)) as mcp:
        mcp_fake.fail_next_http(1, 503, retry_after=1)
        await mcp.call("notion-fetch", {"id": f"collection://{ds_id}"})  # retried by the toolkit
        mcp_fake.fail_next_http(1, 500)
        await mcp.call("notion-fetch", {"id": f"collection://{ds_id}"})  # a read: safe to resend
        mcp_fake.fail_next_http(1, 500)
        with pytest.raises(TransientError, match="500"):
            await mcp.call("notion-create-pages", new_page(ds_id, "a"))  # may have happened: not resent
        await mcp.call("notion-create-pages", new_page(ds_id, "b"))  # the session is still usable
    assert [notion.values(p.id)["Name"] for p in notion.pages(ds_id)] == ["b"]
    assert 1 in time.sleeps


async def test_one_failed_request_does_not_cancel_the_calls_in_flight(mcp_fake, time, notion, ds_id):
    async with session(mcp_fake, time, retry=RetryPolicy(max_attempts=1)) as mcp:
        mcp_fake.fail_next_http(1, 502)
        outcomes = await asyncio.gather(
            *(mcp.call("notion-create-pages", new_page(ds_id, f"p{i}")) for i in range(4)), return_exceptions=True
        )
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(failed) == 1 and isinstance(failed[0], TransientError)
    assert len(notion.pages(ds_id)) == 3


async def test_a_wrong_endpoint_is_a_config_error(mcp_fake, time):
    options: dict[str, Any] = {
        "auth": StaticBearer(mcp_fake.notion.token),
        "transport": httpx.ASGITransport(app=mcp_fake.app),
    }
    with pytest.raises(ConfigError, match="404"):
        async with open_mcp_session(IN_PROCESS_URL.replace("/mcp", "/nope"), rate=FAST, **options):
            pass


async def test_a_refused_connection_is_transient():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the request: nothing listens there
    with pytest.raises(TransientError):
        async with open_mcp_session(f"http://127.0.0.1:{port}/mcp", auth="t", retry=RetryPolicy(max_attempts=1)):
            pass


@pytest.mark.parametrize(("stateless", "json_response"), [(True, True), (False, False), (False, True)])
async def test_sessions_work_over_a_loopback_port(notion: FakeNotion, db: FakeDatabase, stateless, json_response):
    fake = FakeNotionMcp(notion, stateless=stateless, json_response=json_response)
    notion.add_page(db.data_source_ids[0], {"Name": "over the wire"})
    with serve(fake) as url:
        async with open_mcp_session(url, auth=notion.token, rate=FAST) as mcp:
            first = await mcp.call("notion-query-data-sources", query(db.data_source_ids[0]))
            second = await mcp.call("notion-fetch", {"id": db.id})
    assert first.data()["results"][0]["Name"] == "over the wire"
    assert f"collection://{db.data_source_ids[0]}" in second.text


async def test_errors_raised_inside_the_block_come_out_unchanged(mcp_fake, time):
    with pytest.raises(KeyError):
        async with session(mcp_fake, time):
            raise KeyError("mine")
    with pytest.raises(RecordError, match="this one"):
        async with session(mcp_fake, time):
            raise RecordError("this one")
    assert issubclass(McpToolError, SyncError)


async def test_a_bearer_token_is_never_sent_over_plain_http_to_a_remote_host():
    with pytest.raises(ConfigError, match="clear text"):
        async with open_mcp_session("http://mcp.example.com/mcp", auth="t"):
            pass
    with pytest.raises(ConfigError, match="not an http"):
        async with open_mcp_session("ftp://mcp.example.com/mcp", auth="t"):
            pass

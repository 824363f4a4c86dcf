"""Notion's hosted MCP server as it really answers, through ``connectors.mcp`` and ``connectors.notion.mcp``.

The fixtures below are written for these tests from what public code records of ``https://mcp.notion.com/mcp``,
not copied:

- every tool answer is one ``text`` content block holding JSON; ``notion-fetch`` wraps its Markdown-ish
  markup in an envelope ``{"metadata": {"type": "page"|"database"|"data_source"}, "title", "url", "text"}``
  (pages add ``page_last_edited_at``) and sends no ``structuredContent`` (the tool has no output schema in
  the server's ``tools/list``: alicat99/notion-mcp-proxy ``docs/notion_tools.json`` and its
  ``tests/test_fetch_permissions.py``; the envelope also in makenotion/notion-mcp-server#245 and a
  bun-test suite of a Notion connector that replays recorded answers);
- inside ``text``, URLs of databases, data sources and views are wrapped in ``{{…}}``
  (``<database url="{{https://app.notion.com/p/<32 hex>}}" inline="false">``,
  ``<data-source url="{{collection://<uuid>}}">``), each data source carries its
  ``<data-source-state>`` JSON (hosted type names: ``text``, ``person``…; options with ``url``) and its
  ``<sqlite-table>`` (``CREATE TABLE IF NOT EXISTS "collection://…" (url TEXT UNIQUE, …)``); a page names
  its data source in ``<ancestor-path><parent-data-source url="collection://…" name="…"/>`` and its
  values in ``<properties>`` (fetch outputs quoted in public skills and tests of 2026);
- ids of new objects are version-8 UUIDs (``…-80xx-…-000b…``), app URLs ``https://app.notion.com/p/<id>``;
- ``notion-query-data-sources`` answers ``{"results": [row, …]}``, rows in the flat format
  (``url`` first, dates as ``date:<P>:start|end|is_datetime``, multi-selects as JSON text);
- ``notion-create-pages`` answers ``{"pages": [{"id", "url"}]}``;
- errors: tool results with ``isError`` and Notion's message as text (lox/notion-cli#10;
  makenotion/notion-mcp-server#216 "body failed validation: …", #296 "Invalid Notion page or block URL: …");
  schema violations as JSON-RPC ``-32602`` with a zod issue list (anthropics/claude-code#28223,
  makenotion/notion-mcp-server#217); HTTP 401 from the OAuth layer (Cloudflare's workers-oauth-provider:
  ``WWW-Authenticate: Bearer realm="OAuth", resource_metadata=".../.well-known/oauth-protected-resource/mcp",
  error="invalid_token"`` and ``{"error": "invalid_token", "error_description": "Invalid access token"}``;
  the same header recorded against mcp.notion.com in a PHP client's discovery test);
- the protocol: ``initialize`` answered with the server's own ``protocolVersion`` and an
  ``Mcp-Session-Id`` header the client must echo (MCP 2025-06-18 "Lifecycle" and "Streamable HTTP";
  the result's keys follow the spec's example), answers as JSON or as an SSE ``message`` event.

They are served by a replay of the hosted server (:class:`HostedMcp`) on ``httpx.MockTransport``, so
what reaches the connector is exactly the recorded shape. Where the connector cannot read a real shape
yet, the test is a strict xfail naming what goes wrong. The bare markup (no envelope, URLs unwrapped) of
older and self-hosted servers is still read; tests keep it so.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from connectors.core import AuthError, ConfigError, RateLimited, Record, RecordError, SyncError, TransientError
from connectors.http import HttpSettings
from connectors.mcp import McpToolError, ToolResult, classify_tool_error, open_mcp_session
from connectors.notion.decode import decode_properties
from connectors.notion.mcp import (
    NotionMcpDestination,
    NotionMcpSource,
    page_id_of,
    row_to_properties,
    rows_from_result,
    schema_from_fetch,
)
from tests.connectors.notion_mcp.conftest import FAST, StaticBearer
from tests.fakes.common import FakeTime
from tests.fakes.notion import FakeNotion
from tests.fakes.notion_mcp import IN_PROCESS_URL, FakeNotionMcp

Json = dict[str, Any]

MCP_URL = "https://mcp.notion.com/mcp"
RESOURCE_METADATA = "https://mcp.notion.com/.well-known/oauth-protected-resource/mcp"
PROTOCOL_VERSION = "2025-06-18"  # what the server answers, whatever newer version the client offers

DATABASE_ID = "2a1c4e7f-93b0-80d1-a5c2-c81f0e3b9d47"
DATA_SOURCE_ID = "2a1c4e7f-93b0-8012-b7e4-000b6d2f81c9"
PARENT_PAGE_ID = "2a1c4e7f-93b0-8077-9c1d-e4f2a6b8c0d2"
VIEW_ID = "2a1c4e7f-93b0-8133-8e5f-000c7a9b1d3e"
PAGE_1 = "2a1c4e7f-93b0-81a0-9f3e-d2c4b6a8e0f1"
PAGE_2 = "2a1c4e7f-93b0-81b4-a0c6-e8f0a2b4c6d8"
CREATED = "2a1c4e7f-93b0-81c9-b1d7-f9a1b3c5d7e9"


def app_url(object_id: str) -> str:
    return f"https://app.notion.com/p/{object_id.replace('-', '')}"


def notion_token() -> str:
    """A token of the shape workers-oauth-provider issues (``<user id>:<grant id>:<secret>``), new per test."""
    return f"{uuid.uuid4()}:{secrets.token_urlsafe(12)}:{secrets.token_urlsafe(24)}"


# --------------------------------------------------------------------------------------------------
# Recorded-shape answers


def option(name: str, color: str) -> Json:
    key = secrets.token_urlsafe(6)
    return {
        "color": color,
        "description": "",
        "name": name,
        "url": f"collectionPropertyOption://{DATA_SOURCE_ID}/{key}",
    }


def column(name: str, kind: str, **extra: Any) -> Json:
    return {"description": "", "name": name, "type": kind, **extra}


STATE: Json = {
    "name": "Repositories",
    "schema": {
        "Name": column("Name", "title"),
        "Key": column("Key", "text"),
        "Stars": column("Stars", "number"),
        "Language": column("Language", "select", options=[option("Python", "blue"), option("Go", "green")]),
        "Topics": column("Topics", "multi_select", options=[option("sync", "purple"), option("mcp", "gray")]),
        "Pushed at": column("Pushed at", "date"),
        "Archived": column("Archived", "checkbox"),
        "Last synced": column("Last synced", "date"),
        "Edited": column("Edited", "last_edited_time"),
    },
    "url": f"collection://{DATA_SOURCE_ID}",
}

SQLITE_TABLE = "\n".join(
    [
        f'CREATE TABLE IF NOT EXISTS "collection://{DATA_SOURCE_ID}" (',
        "\turl TEXT UNIQUE,",
        '\t"Name" TEXT,',
        '\t"Key" TEXT,',
        '\t"Stars" FLOAT,',
        '\t"Language" TEXT,',
        '\t"Topics" TEXT,',
        '\t"date:Pushed at:start" TEXT,',
        '\t"date:Pushed at:end" TEXT,',
        '\t"date:Pushed at:is_datetime" INTEGER,',
        '\t"Archived" TEXT,',
        '\t"date:Last synced:start" TEXT,',
        '\t"date:Last synced:end" TEXT,',
        '\t"date:Last synced:is_datetime" INTEGER,',
        '\t"Edited" TEXT',
        ")",
    ]
)


def data_source_tag() -> str:
    return (
        f'<data-source url="{{{{collection://{DATA_SOURCE_ID}}}}}">\n'
        "The title of this Data Source is: Repositories\n\n"
        "Here is the database's configurable state:\n"
        "Properties with `readOnly: true` are synced or system-managed. Do not try to update their values "
        "with page update tools.\n"
        f"<data-source-state>\n{json.dumps(STATE, ensure_ascii=False)}\n</data-source-state>\n\n"
        "Here is the SQLite table definition for this data source:\n"
        f"<sqlite-table>\n{SQLITE_TABLE}\n</sqlite-table>\n"
        "</data-source>"
    )


def envelope(kind: str, title: str, url: str, text: str, **extra: Any) -> str:
    """A ``notion-fetch`` answer: the JSON envelope around the markup."""
    return json.dumps({"metadata": {"type": kind}, "title": title, "url": url, **extra, "text": text})


VIEW = json.dumps(
    {
        "dataSourceUrl": f"{{{{collection://{DATA_SOURCE_ID}}}}}",
        "displayProperties": ["Name", "Key", "Stars"],
        "name": "Default view",
        "type": "table",
    }
)

DATABASE_FETCH = envelope(
    "database",
    "Repositories",
    app_url(DATABASE_ID),
    f'<database url="{{{{{app_url(DATABASE_ID)}}}}}" inline="false">\n'
    "The title of this Database is: Repositories\n"
    "<ancestor-path>\n"
    f'<parent-page url="{app_url(PARENT_PAGE_ID)}" title="Engineering"/>\n'
    "</ancestor-path>\n"
    "Here are the Database's Data Sources:\n"
    'You can use the "fetch" tool on the URL of any Data Source to see its full schema configuration.\n'
    f"<data-sources>\n{data_source_tag()}\n</data-sources>\n"
    "Here are the Database's Views:\n"
    'You can use the "fetch" tool on the URL of any View to see its full configuration.\n'
    f'<views>\n<view url="{{{{view://{VIEW_ID}}}}}">\n{VIEW}\n</view>\n</views>\n'
    "</database>",
)

DATA_SOURCE_FETCH = envelope("data_source", "Repositories", app_url(DATABASE_ID), data_source_tag())


def row(page_id: str, name: str, key: str | None, **values: Any) -> Json:
    """A row of the data source's SQLite table, as ``notion-query-data-sources`` lists it."""
    base: Json = {
        "url": app_url(page_id),
        "Name": name,
        "Key": key,
        "Stars": None,
        "Language": None,
        "Topics": "[]",
        "date:Pushed at:start": None,
        "date:Pushed at:end": None,
        "date:Pushed at:is_datetime": None,
        "Archived": "__NO__",
        "date:Last synced:start": None,
        "date:Last synced:end": None,
        "date:Last synced:is_datetime": None,
        "Edited": "2026-09-12T17:45:00.000Z",
    }
    return base | values


BUG_BASH = row(
    PAGE_1,
    "Bug bash",
    "101",
    Stars=1234,
    Language="Python",
    Topics='["sync","mcp"]',
    **{"date:Pushed at:start": "2026-09-12", "date:Pushed at:is_datetime": 0, "Archived": "__YES__"},
)
RELEASE = row(PAGE_2, "Release", "102", Stars=1.5)


def query_answer(*rows: Json) -> str:
    return json.dumps({"results": list(rows)})


def page_fetch(page_id: str, values: Json) -> str:
    properties = {**values, "url": app_url(page_id)}
    properties.pop("Edited", None)
    text = (
        f'<page url="{app_url(page_id)}">\n<ancestor-path>\n'
        f'<parent-data-source url="collection://{DATA_SOURCE_ID}" name="Repositories"/>\n'
        f'<parent-page url="{app_url(PARENT_PAGE_ID)}" title="Engineering"/>\n'
        "</ancestor-path>\n"
        f"<properties>\n{json.dumps(properties, ensure_ascii=False)}\n</properties>\n"
        "<content>\nNotes of the bug bash.\n</content>\n</page>"
    )
    return envelope(
        "page", str(values["Name"]), f"{app_url(page_id)}?pvs=204", text, page_last_edited_at="2026-09-12T17:45:00.000Z"
    )


CREATE_ANSWER = json.dumps({"pages": [{"id": CREATED, "url": app_url(CREATED)}]})

# Notion's messages as the hosted server passes them on in tool errors (the rate-limit one is Notion's REST
# wording: no public record shows the hosted server's own words for its per-minute limits).
NOT_FOUND_TEXT = (
    f"Could not find page with ID: {PAGE_1}. Make sure the relevant pages and databases are shared with your "
    "integration."
)
BODY_VALIDATION_TEXT = "body failed validation: body.update_page.data should be defined, instead was `undefined`."
INVALID_URL_TEXT = "Invalid Notion page or block URL: https://example.com"
RATE_LIMITED_TEXT = "You have been rate limited. Please try again in a few minutes."
ZOD_INVALID_PARAMS = json.dumps(
    [
        {
            "code": "invalid_type",
            "expected": "string",
            "received": "undefined",
            "path": ["page_id"],
            "message": "Required",
        }
    ]
)


# --------------------------------------------------------------------------------------------------
# The replay of the hosted server


TOOL_NAMES = (
    "notion-search",
    "notion-fetch",
    "notion-create-pages",
    "notion-update-page",
    "notion-query-data-sources",
    "notion-create-database",
    "notion-update-data-source",
)
READ_ONLY = frozenset({"notion-search", "notion-fetch", "notion-query-data-sources"})


def listed(name: str) -> Json:
    """A ``tools/list`` entry as the hosted server lists it: a JSON Schema 2020-12 input, annotations, no output."""
    read_only = name in READ_ONLY
    return {
        "name": name,
        "title": name.removeprefix("notion-").replace("-", " ").capitalize(),
        "description": "…",
        "inputSchema": {
            "type": "object",
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "properties": {},
            "additionalProperties": {},
        },
        "annotations": {
            "readOnlyHint": read_only,
            "destructiveHint": False,
            "idempotentHint": read_only,
            "openWorldHint": False,
        },
    }


@dataclass
class Tool:
    """One answer of a tool: a text result (``error`` sets ``isError``) or a JSON-RPC error."""

    text: str = ""
    error: bool = False
    rpc_error: Json | None = None


@dataclass
class Http:
    """An HTTP-level answer before any JSON-RPC (the OAuth layer's 401, a gateway's 503)."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    method: str | None = "tools/call"  # the JSON-RPC method it answers (None: the next POST)


ToolAnswer = Tool | Callable[[Json], Tool]


@dataclass
class HostedMcp:
    """The hosted server's streamable HTTP endpoint, answering from a script (the last answer repeats)."""

    tools: dict[str, list[ToolAnswer]] = field(default_factory=dict)
    http: list[Http] = field(default_factory=list)
    sse: bool = False
    session_id: str = field(default_factory=lambda: secrets.token_hex(32))
    seen: list[httpx.Request] = field(default_factory=list)

    def add(self, tool: str, *answers: ToolAnswer) -> None:
        self.tools.setdefault(tool, []).extend(answers)

    def calls(self, tool: str) -> list[Json]:
        out = []
        for request in self.seen:
            message = json.loads(request.content or b"null") if request.method == "POST" else None
            if (
                isinstance(message, dict)
                and message.get("method") == "tools/call"
                and message["params"]["name"] == tool
            ):
                out.append(message["params"]["arguments"])
        return out

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        if request.method == "GET":  # no server-initiated stream offered
            return httpx.Response(405, headers={"allow": "POST, DELETE"})
        if request.method == "DELETE":
            return httpx.Response(200)
        message = json.loads(request.content)
        if self.http and self.http[0].method in (None, message.get("method")):
            refusal = self.http.pop(0)
            return httpx.Response(refusal.status, headers=refusal.headers, content=refusal.body)
        if "id" not in message:  # a notification
            return httpx.Response(202)
        headers = {"mcp-session-id": self.session_id}
        method = message["method"]
        if method == "initialize":
            result: Json = {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {"tools": {"listChanged": True}, "resources": {"listChanged": True}},
                "serverInfo": {"name": "Notion MCP", "version": "1.0.1"},
            }
            return self._answer(message["id"], {"result": result}, headers)
        if method == "tools/list":  # mcp asks before a call, for output schemas: the hosted tools have none
            return self._answer(message["id"], {"result": {"tools": [listed(name) for name in TOOL_NAMES]}}, headers)
        if method == "tools/call":
            name = message["params"]["name"]
            queue = self.tools.get(name)
            if not queue:
                return self._answer(
                    message["id"], {"error": {"code": -32602, "message": f"Tool {name} not found"}}, headers
                )
            item = queue.pop(0) if len(queue) > 1 else queue[0]
            answer = item(message["params"].get("arguments") or {}) if callable(item) else item
            if answer.rpc_error is not None:
                return self._answer(message["id"], {"error": answer.rpc_error}, headers)
            content = [{"type": "text", "text": answer.text}]
            return self._answer(message["id"], {"result": {"content": content, "isError": answer.error}}, headers)
        return self._answer(message["id"], {"error": {"code": -32601, "message": "Method not found"}}, headers)

    def _answer(self, rpc_id: Any, body: Json, headers: dict[str, str]) -> httpx.Response:
        payload = json.dumps({"jsonrpc": "2.0", "id": rpc_id, **body})
        if self.sse:
            return httpx.Response(
                200,
                headers={**headers, "content-type": "text/event-stream"},
                content=f"event: message\ndata: {payload}\n\n".encode(),
            )
        return httpx.Response(200, headers={**headers, "content-type": "application/json"}, content=payload.encode())

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)


def session(hosted: HostedMcp, time: FakeTime, token: str, **kwargs: Any) -> Any:
    options: dict[str, Any] = {
        "auth": StaticBearer(token),
        "transport": hosted.transport(),
        "service": "Notion MCP",
        "credential": "notion-mcp:test",
        "rate": FAST,
        "sleep": time.sleep,
        "clock": time.clock,
        "read_only_tools": {"notion-fetch", "notion-query-data-sources"},
    }
    options.update(kwargs)
    return open_mcp_session(MCP_URL, **options)


def connector_options(hosted: HostedMcp, time: FakeTime, token: str) -> dict[str, Any]:
    return {
        "auth": StaticBearer(token),
        "mcp_url": MCP_URL,
        "http": HttpSettings(transport=hosted.transport(), sleep=time.sleep, clock=time.clock),
        "rate": FAST,
    }


def bare_markup(fetched: str) -> str:
    """A ``notion-fetch`` answer as older and self-hosted servers send it: the markup alone, URLs unwrapped."""
    return re.sub(r"\{\{([^{}]+)\}\}", r"\1", str(json.loads(fetched)["text"]))


def resolvable(hosted: HostedMcp, *, bare: bool = False) -> None:
    """``notion-fetch`` of the database, its data source and its pages, as the hosted server answers them.

    With ``bare``, as older servers answer them: no envelope, no ``{{…}}``.
    """
    shaped = bare_markup if bare else str

    def fetch(arguments: Json) -> Tool:
        wanted = str(arguments.get("id"))
        if wanted.startswith("collection://") or DATA_SOURCE_ID in wanted:
            return Tool(shaped(DATA_SOURCE_FETCH))
        if DATABASE_ID in wanted or DATABASE_ID.replace("-", "") in wanted:
            return Tool(shaped(DATABASE_FETCH))
        for page_id, values in ((PAGE_1, BUG_BASH), (PAGE_2, RELEASE)):
            if page_id in wanted or page_id.replace("-", "") in wanted:
                return Tool(shaped(page_fetch(page_id, values)))
        return Tool(f"Could not find page with ID: {wanted}.", error=True)

    hosted.add("notion-fetch", fetch)


# --------------------------------------------------------------------------------------------------
# The fake produces these shapes


def fake_mcp(time: FakeTime) -> tuple[FakeNotion, FakeNotionMcp, str]:
    notion = FakeNotion(rate=None, clock=time.clock)
    db = notion.add_database({"Name": "title", "Key": "rich_text", "Stars": "number"}, title="Repositories")
    return notion, FakeNotionMcp(notion, sleep=time.sleep), db.data_source_ids[0]


async def test_the_fakes_401_names_the_resource_metadata_as_the_hosted_server_does() -> None:
    fake = FakeNotionMcp(FakeNotion(rate=None))
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app)) as client:
        refused = await client.post(IN_PROCESS_URL, json=body, headers={"Authorization": f"Bearer {notion_token()}"})
        anonymous = await client.post(IN_PROCESS_URL, json=body)

    metadata = "http://notion-mcp.test/.well-known/oauth-protected-resource/mcp"
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == (
        f'Bearer realm="OAuth", resource_metadata="{metadata}", error="invalid_token"'
    )
    assert refused.json() == {"error": "invalid_token", "error_description": "Invalid access token"}
    # OAuth 2.1 §5.3.2: no credentials, no error code in the challenge and no body.
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == f'Bearer realm="OAuth", resource_metadata="{metadata}"'
    assert anonymous.content == b""


async def test_the_fakes_answers_are_text_blocks_with_the_real_keys_and_id_formats(time: FakeTime) -> None:
    notion, fake, ds_id = fake_mcp(time)
    notion.add_page(ds_id, {"Name": "Bug bash", "Key": "101", "Stars": 1234})
    async with session_on_fake(fake, time, notion.token) as mcp:
        created = await mcp.call(
            "notion-create-pages",
            {"parent": {"data_source_id": ds_id}, "pages": [{"properties": {"Name": "New", "Key": "103"}}]},
        )
        rows = await mcp.call(
            "notion-query-data-sources",
            {"data": {"data_source_urls": [f"collection://{ds_id}"], "query": f'SELECT * FROM "collection://{ds_id}"'}},
        )

    (page,) = json.loads(created.text)["pages"]
    assert set(page) == {"id", "url"}  # as notion-create-pages answers: no property values echoed
    assert str(uuid.UUID(page["id"])) == page["id"]
    assert page["url"].endswith(page["id"].replace("-", ""))
    answer = json.loads(rows.text)
    assert set(answer) == {"results"}
    real, faked = BUG_BASH, answer["results"][0]
    assert next(iter(faked)) == "url" and re.fullmatch(r"https://www\.notion\.so/[0-9a-f]{32}", faked["url"])
    assert type(faked["Stars"]) is type(real["Stars"]) and faked["Key"] == "101"


async def test_the_fakes_tool_errors_are_is_error_results_with_notions_message_as_text(time: FakeTime) -> None:
    notion, fake, _ = fake_mcp(time)
    async with session_on_fake(fake, time, notion.token) as mcp:
        missing = await mcp.call("notion-fetch", {"id": PAGE_1}, check=False)
    assert missing.is_error and missing.text.startswith("Could not find")


async def test_the_fakes_fetch_answers_the_real_envelope(time: FakeTime) -> None:
    notion, fake, ds_id = fake_mcp(time)
    page = notion.add_page(ds_id, {"Name": "Bug bash", "Key": "101", "Stars": 1234})
    database_id = notion.data_sources[ds_id].database_id
    async with session_on_fake(fake, time, notion.token) as mcp:
        fetched = await mcp.call("notion-fetch", {"id": f"collection://{ds_id}"})
        database = await mcp.call("notion-fetch", {"id": database_id})
        paged = await mcp.call("notion-fetch", {"id": page.id})

    data = json.loads(fetched.text)
    assert fetched.structured is None  # no output schema: the envelope is the text block, as the hosted tool's
    assert set(data) == set(json.loads(DATA_SOURCE_FETCH))
    assert data["metadata"] == {"type": "data_source"} and f"{{{{collection://{ds_id}}}}}" in data["text"]
    db = json.loads(database.text)
    assert set(db) == set(json.loads(DATABASE_FETCH)) and db["metadata"] == {"type": "database"}
    assert re.search(r'<database url="\{\{https://[^"]+\}\}"', db["text"]) and "<data-source-state>" in db["text"]
    one = json.loads(paged.text)
    assert set(one) == set(json.loads(page_fetch(PAGE_1, BUG_BASH))) and one["metadata"] == {"type": "page"}
    assert f'<parent-data-source url="collection://{ds_id}"' in one["text"] and "<properties>" in one["text"]


def session_on_fake(fake: FakeNotionMcp, time: FakeTime, token: str) -> Any:
    return open_mcp_session(
        IN_PROCESS_URL,
        auth=StaticBearer(token),
        transport=httpx.ASGITransport(app=fake.app),
        service="Notion MCP",
        rate=FAST,
        sleep=time.sleep,
        clock=time.clock,
    )


# --------------------------------------------------------------------------------------------------
# The protocol: initialize, the session header, answers as JSON or SSE


@pytest.mark.parametrize("sse", [False, True], ids=["json", "sse"])
async def test_a_session_negotiates_the_servers_version_and_echoes_its_session_id(time, sse):
    hosted = HostedMcp(sse=sse)
    hosted.add("notion-query-data-sources", Tool(query_answer(BUG_BASH, RELEASE)))
    token = notion_token()

    async with session(hosted, time, token) as mcp:
        result = await mcp.call("notion-query-data-sources", {"data": {"data_source_urls": [], "query": "SELECT 1"}})

    assert result.structured is None and not result.is_error
    assert [r["url"] for r in result.data()["results"]] == [app_url(PAGE_1), app_url(PAGE_2)]
    initialize, *later = [r for r in hosted.seen if r.method == "POST"]
    assert "mcp-session-id" not in initialize.headers
    assert later and all(r.headers["mcp-session-id"] == hosted.session_id for r in later)
    assert all(r.headers["mcp-protocol-version"] == PROTOCOL_VERSION for r in later)
    assert all(r.headers["authorization"] == f"Bearer {token}" for r in hosted.seen)


# --------------------------------------------------------------------------------------------------
# Errors: HTTP, JSON-RPC and tool results -> the error tree, with the body's message and no token


def challenge(error: str | None = "invalid_token") -> dict[str, str]:
    value = f'Bearer realm="OAuth", resource_metadata="{RESOURCE_METADATA}"'
    return {"www-authenticate": value + (f', error="{error}"' if error else ""), "content-type": "application/json"}


async def test_the_oauth_layers_401_is_an_auth_error_without_the_token(time, caplog):
    body = json.dumps({"error": "invalid_token", "error_description": "Invalid access token"}).encode()
    hosted = HostedMcp(http=[Http(401, body, challenge(), method=None)])
    token = notion_token()
    caplog.set_level("DEBUG")

    with pytest.raises(AuthError) as raised:
        async with session(hosted, time, token):
            pass

    assert raised.value.status_code == 401  # type: ignore[attr-defined]
    assert raised.value.credential == "notion-mcp:test"
    for secret in (token, token.rsplit(":", 1)[-1]):
        assert secret not in str(raised.value) and secret not in caplog.text


async def test_a_zod_invalid_params_error_is_a_config_error_with_its_message(time):
    hosted = HostedMcp()
    hosted.add(
        "notion-update-page",
        Tool(rpc_error={"code": -32602, "message": f"MCP error -32602: Invalid arguments: {ZOD_INVALID_PARAMS}"}),
    )
    token = notion_token()
    async with session(hosted, time, token) as mcp:
        with pytest.raises(ConfigError) as raised:
            await mcp.call("notion-update-page", {"data": {"page_id": PAGE_1}})
    assert "invalid_type" in str(raised.value) and "-32602" in str(raised.value)
    assert token not in str(raised.value)


async def test_an_invalid_request_answered_with_http_400_is_a_config_error(time):
    body = {
        "jsonrpc": "2.0",
        "error": {"code": -32600, "message": "Invalid Request: invalid JSON-RPC message"},
        "id": None,
    }
    hosted = HostedMcp()
    hosted.add("notion-fetch", Tool(DATA_SOURCE_FETCH))
    async with session(hosted, time, notion_token()) as mcp:
        hosted.http.append(Http(400, json.dumps(body).encode(), {"content-type": "application/json"}))
        with pytest.raises(ConfigError, match=r"is .* the MCP endpoint"):
            await mcp.call("notion-fetch", {"id": DATABASE_ID})


async def test_a_gateways_503_is_retried_and_the_call_answers(time):
    hosted = HostedMcp()
    hosted.add("notion-query-data-sources", Tool(query_answer(BUG_BASH)))
    async with session(hosted, time, notion_token()) as mcp:
        hosted.http.append(Http(503, b"upstream connect error", {"content-type": "text/plain", "retry-after": "2"}))
        result = await mcp.call("notion-query-data-sources", {"data": {"data_source_urls": [], "query": "SELECT 1"}})
    assert rows_from_result(result)[0]["Key"] == "101"
    assert 2.0 in time.sleeps


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (BODY_VALIDATION_TEXT, McpToolError),
        (INVALID_URL_TEXT, McpToolError),
        (NOT_FOUND_TEXT, McpToolError),
        (RATE_LIMITED_TEXT, RateLimited),
    ],
    ids=["body-validation", "invalid-url", "not-found", "rate-limited"],
)
def test_real_tool_error_texts_are_classified_with_their_message(text, expected):
    token = notion_token()
    error = classify_tool_error(
        ToolResult("notion-update-page", text, None, True), service="Notion MCP", secrets=[token]
    )
    assert type(error) is expected
    assert text.split(":")[0] in str(error) and token not in str(error)
    if isinstance(error, RateLimited):
        assert error.retry_after == 60.0  # Notion names no wait: its budgets are per minute
    if isinstance(error, McpToolError):
        assert isinstance(error, RecordError) and error.tool == "notion-update-page"


async def test_a_real_rate_limit_is_waited_out_and_the_call_resent(time):
    hosted = HostedMcp()
    hosted.add("notion-fetch", Tool(RATE_LIMITED_TEXT, error=True), Tool(DATA_SOURCE_FETCH))
    async with session(hosted, time, notion_token(), max_wait=120) as mcp:
        result = await mcp.call("notion-fetch", {"id": f"collection://{DATA_SOURCE_ID}"})
    assert not result.is_error and len(hosted.calls("notion-fetch")) == 2
    assert 60.0 in time.sleeps


# --------------------------------------------------------------------------------------------------
# Rows and schemas as the connector maps them


def inner_text(fetched: str) -> str:
    return str(json.loads(fetched)["text"])


def test_real_sql_rows_decode_to_records_values() -> None:
    schema = schema_from_fetch(ToolResult("notion-fetch", inner_text(DATA_SOURCE_FETCH)))
    rows = rows_from_result(ToolResult("notion-query-data-sources", query_answer(BUG_BASH, RELEASE)))

    assert [page_id_of(r) for r in rows] == [PAGE_1, PAGE_2]
    bug = decode_properties(row_to_properties(rows[0], schema))
    assert bug["Name"] == "Bug bash" and bug["Key"] == "101"
    assert bug["Stars"] == 1234 and type(bug["Stars"]) is int
    assert bug["Language"] == "Python" and bug["Topics"] == ["sync", "mcp"]
    assert bug["Pushed at"] == dt.date(2026, 9, 12) and bug["Archived"] is True
    assert bug["Last synced"] is None
    assert decode_properties(row_to_properties(rows[1], schema))["Stars"] == 1.5


def test_the_hosted_type_names_map_to_the_rest_ones() -> None:
    schema = schema_from_fetch(ToolResult("notion-fetch", inner_text(DATA_SOURCE_FETCH)))
    assert {n: p["type"] for n, p in schema.items()} == {
        "Name": "title",
        "Key": "rich_text",
        "Stars": "number",
        "Language": "select",
        "Topics": "multi_select",
        "Pushed at": "date",
        "Archived": "checkbox",
        "Last synced": "date",
        "Edited": "last_edited_time",
    }
    assert [o["name"] for o in schema["Language"]["select"]["options"]] == ["Python", "Go"]


def test_a_real_create_answer_names_the_new_pages_id() -> None:
    (page,) = json.loads(CREATE_ANSWER)["pages"]
    assert page_id_of(page) == CREATED


# --------------------------------------------------------------------------------------------------
# The connectors over the real envelope (and over the bare markup of older servers)


@pytest.mark.parametrize("bare", [False, True], ids=["envelope", "bare"])
async def test_the_destination_resolves_a_real_database_fetch_and_writes(time, synced_at, bare):
    hosted = HostedMcp()
    resolvable(hosted, bare=bare)
    hosted.add("notion-query-data-sources", Tool(query_answer(BUG_BASH, RELEASE)))
    hosted.add("notion-create-pages", Tool(CREATE_ANSWER))
    dest = NotionMcpDestination(DATABASE_ID, key_property="Key", **connector_options(hosted, time, notion_token()))

    async with dest.connect() as writer:
        assert await writer.query_existing_ids() == {"101": PAGE_1, "102": PAGE_2}
        assert await writer.create(Record("103", {"Name": "New", "Stars": 3}), synced_at) == CREATED

    (sent,) = hosted.calls("notion-create-pages")
    assert sent["parent"] == {"data_source_id": DATA_SOURCE_ID}
    # The database (its markup holds its data source's state too) is resolved as a database, by its {{…}} URL.
    assert dest.describe().endswith(DATABASE_ID.replace("-", ""))
    assert [c["id"] for c in hosted.calls("notion-fetch")] == [DATABASE_ID, f"collection://{DATA_SOURCE_ID}"]


@pytest.mark.parametrize("bare", [False, True], ids=["envelope", "bare"])
async def test_the_source_reads_real_pages(time, bare):
    hosted = HostedMcp()
    resolvable(hosted, bare=bare)
    hosted.add("notion-query-data-sources", Tool(query_answer(BUG_BASH, RELEASE)))
    source = NotionMcpSource(DATABASE_ID, now=time.utcnow, **connector_options(hosted, time, notion_token()))

    records = await source.fetch(source.specs()[0])

    assert [r.primary_key for r in records] == [PAGE_1, PAGE_2]
    assert records[0].properties["Stars"] == 1234 and records[0].properties["Topics"] == ["sync", "mcp"]


@pytest.mark.parametrize("bare", [False, True], ids=["envelope", "bare"])
async def test_only_items_reads_real_fetched_pages(time, bare):
    hosted = HostedMcp()
    resolvable(hosted, bare=bare)
    source = NotionMcpSource(DATA_SOURCE_ID, now=time.utcnow, **connector_options(hosted, time, notion_token()))

    records = await source.fetch(source.specs()[0], only_items=[PAGE_1])

    assert [r.primary_key for r in records] == [PAGE_1]
    assert records[0].properties["Name"] == "Bug bash"


def test_a_fetch_envelope_is_read_as_the_bare_markup_is() -> None:
    enveloped = schema_from_fetch(ToolResult("notion-fetch", DATA_SOURCE_FETCH))
    assert enveloped == schema_from_fetch(ToolResult("notion-fetch", bare_markup(DATA_SOURCE_FETCH)))
    assert enveloped["Key"]["type"] == "rich_text" and enveloped["Edited"]["type"] == "last_edited_time"


@pytest.mark.parametrize(
    ("text", "expected", "named"),
    [
        (page_fetch(PAGE_1, BUG_BASH), ConfigError, "type 'page'"),
        (
            envelope("data_source", "Repositories", app_url(DATABASE_ID), "<data-source>new markup</data-source>"),
            ConfigError,
            "new markup",
        ),
        (DATA_SOURCE_FETCH[: len(DATA_SOURCE_FETCH) // 2], TransientError, "cut short"),
        (bare_markup(DATA_SOURCE_FETCH).split("</data-source-state>")[0], TransientError, "cut short"),
        ("Notion is temporarily unavailable. Please try again later.", TransientError, "temporarily unavailable"),
    ],
    ids=["a-page", "unknown-markup", "truncated-envelope", "truncated-markup", "busy"],
)
def test_a_fetch_answer_without_a_readable_schema_names_its_shape(text, expected, named) -> None:
    with pytest.raises(SyncError) as raised:
        schema_from_fetch(ToolResult("notion-fetch", text))
    # A shape we cannot read does not change by retrying: permanent; a cut or busy answer may read next time.
    assert type(raised.value) is expected
    assert "no data source schema" in str(raised.value) and named in str(raised.value)
    assert len(str(raised.value)) < 400


async def test_resolving_a_page_or_an_unreadable_database_is_a_config_error_naming_the_answer(time) -> None:
    hosted = HostedMcp()
    token = notion_token()
    pasted = f"ntn_{secrets.token_hex(20)}"  # an integration token someone pasted into the database's markup
    odd = envelope("database", "Repositories", app_url(DATABASE_ID), f"<database-v2 id='{DATABASE_ID}'/> {pasted}")
    hosted.add("notion-fetch", Tool(page_fetch(PAGE_1, BUG_BASH)), Tool(odd))

    page = NotionMcpSource(PAGE_1, now=time.utcnow, **connector_options(hosted, time, token))
    with pytest.raises(ConfigError, match=r"not a database or a data source .*shows a page"):
        await page.fetch(page.specs()[0])
    database = NotionMcpDestination(DATABASE_ID, key_property="Key", **connector_options(hosted, time, token))
    with pytest.raises(ConfigError, match=r"shows no data source.*type 'database'.*database-v2") as raised:
        async with database.connect():
            pass
    assert pasted not in str(raised.value) and token not in str(raised.value)
    assert len(hosted.calls("notion-fetch")) == 2  # neither retried


async def test_only_items_says_why_it_skips_a_page_it_cannot_read(time, caplog) -> None:
    hosted = HostedMcp()
    resolvable(hosted)
    source = NotionMcpSource(DATA_SOURCE_ID, now=time.utcnow, **connector_options(hosted, time, notion_token()))

    records = await source.fetch(source.specs()[0], only_items=[DATABASE_ID, PAGE_2])

    assert [r.primary_key for r in records] == [PAGE_2]
    assert f"page {DATABASE_ID} skipped" in caplog.text and "type 'database'" in caplog.text

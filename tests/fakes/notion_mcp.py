"""A fake of Notion's hosted MCP server (``https://mcp.notion.com/mcp``), backed by a ``FakeNotion``.

Built with the ``mcp`` package's server side (the low-level ``Server`` over its streamable HTTP
transport) and mounted as a Starlette app. Every tool is carried out as calls to the wrapped
``FakeNotion``'s REST app — as the hosted server calls Notion's API — so pages created over MCP are
visible through the REST fake and the other way round, and the REST fake's validation, rate limits,
faults (``fail_next``), request log and counters all apply::

    notion = FakeNotion(rate=None)
    mcp = FakeNotionMcp(notion)                       # bearer tokens: notion.tokens by default
    transport = httpx.ASGITransport(app=mcp.app)      # in-process, URL "http://notion-mcp.test/mcp"
    with serve(mcp) as url: ...                       # or on a loopback port: "http://127.0.0.1:<port>/mcp"

Tools (names and argument shapes of the hosted server; only what the connector uses):

- ``notion-fetch {"id"}``: as the hosted server, one text block holding the JSON envelope ``{"metadata":
  {"type": "database"|"data_source"|"page"}, "title", "url", "text"}`` (pages add ``page_last_edited_at``),
  the markup in ``text``: a database (``<database url="{{<app URL>}}">`` with one ``<data-source
  url="{{collection://…}}">`` tag per data source, each with its whole state), a data source
  (``collection://<id>`` or its bare id: its ``<data-source>`` tag, holding a ``<data-source-state>`` JSON
  with the schema and the ``CREATE TABLE`` of its SQLite table) or a page (``<page url="<app URL>">``, its
  ``<parent-data-source url="collection://…"/>`` and its ``<properties>`` JSON in the flat format). URLs of
  databases and data sources are wrapped in ``{{…}}`` as the hosted server wraps them; a page's are bare.
- ``notion-query-data-sources {"data": {"data_source_urls", "query", "params"?}}``: read-only SQLite
  over the data sources (each a table named ``"collection://<id>"``), executed by ``sqlite3``, so
  ``WHERE``/``ORDER BY``/``LIMIT``/``OFFSET``/``?`` parameters and ``datetime()`` behave as SQLite does.
  Pages in the trash are not rows. Answer: ``{"results": [row, ...]}``, whole numbers printed as the
  hosted server's JavaScript prints them (``3``, never ``3.0``).
- ``notion-create-pages {"parent": {"data_source_id"|"database_id"|"page_id"}, "pages": [{"properties",
  "content"?}]}``; answer ``{"pages": [{"id", "url"}]}`` (no values echoed, as the hosted tool).
- ``notion-update-page {"page_id", "command": "update_properties", "properties"}``.
- ``notion-create-database {"parent"?: {"page_id"}, "title"?, "schema": "CREATE TABLE (…)"}``.

The flat property format (SQL rows, fetched pages, and what create/update accept)::

    title, text        "plain text"                    null clears
    number             12.5 (a JSON number, not a string)
    checkbox           "__YES__" / "__NO__"             null unchecks
    select, status     "Option"
    multi_select       ["A", "B"] (or the JSON text '["A","B"]'; rows carry the JSON text)
    date               "date:<P>:start", "date:<P>:end", "date:<P>:is_datetime" (0/1)
    url, email, phone  "…"
    created/edited     ISO 8601 text (rows only)
    a property named "id" or "url" (any case) is "userDefined:<name>"; "url" is the page's URL

Text is stored verbatim (the hosted server reads it as Notion-flavoured Markdown). ``content`` becomes
paragraph blocks, one per blank-line separated paragraph.

Auth: ``Authorization: Bearer <token>`` checked by ``validate(token)`` (default: a token of the
wrapped FakeNotion; pass the OAuth fake's ``validate``); anything else answers HTTP 401 as the hosted
server's OAuth layer does: ``WWW-Authenticate: Bearer realm="OAuth", resource_metadata="<origin>/.well-known/
oauth-protected-resource/mcp", error="invalid_token"`` with ``{"error": "invalid_token", "error_description":
"Invalid access token"}`` (no ``error`` and no body when no token was sent). REST calls use the bearer token
itself when the FakeNotion knows it, else ``notion_token`` (default the FakeNotion's first token).

Rate limits, as the hosted server documents them: a REST 429 whose ``Retry-After`` is at most
``retry_within`` (2 s) is slept (``sleep``, injectable) and retried once; otherwise the tool answers an
error with ``structuredContent = {"error": {"code": "rate_limited", "retry_after_seconds": N,
"rate_limit_reason": …}}``. Other REST errors answer a tool error whose text is Notion's message, with
``{"error": {"code", "message", "status"}}`` structured.

Test-facing API: ``app``, ``calls`` / ``tool_calls(name)`` (every tool call), ``counters``, ``served``
(HTTP status -> responses), ``fail_next_http`` (HTTP-level faults on the MCP endpoint, by JSON-RPC
method and tool), ``serve(fake)``; everything else (state, REST faults, rate, tokens) through the wrapped
``notion``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import re
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from mcp import types
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tests.fakes import asgi
from tests.fakes.asgi import ToolCall
from tests.fakes.loopback import serve_app
from tests.fakes.notion import NOTION_VERSION, FakeNotion

__all__ = ["TOOLS", "FakeNotionMcp", "ToolCall", "serve"]

Json = dict[str, Any]

MCP_PATH = "/mcp"
IN_PROCESS_URL = "http://notion-mcp.test/mcp"
APP_BASE = "https://www.notion.so"
MAX_TEXT = 2000
MAX_CHILDREN = 100

# Hosted type names where they differ from the REST API's.
HOSTED_TYPES = {"rich_text": "text", "unique_id": "auto_increment_id", "people": "person", "files": "file"}
DDL_TYPES = {
    "TITLE": "title",
    "RICH_TEXT": "rich_text",
    "TEXT": "rich_text",
    "NUMBER": "number",
    "CHECKBOX": "checkbox",
    "DATE": "date",
    "URL": "url",
    "EMAIL": "email",
    "PHONE_NUMBER": "phone_number",
    "SELECT": "select",
    "MULTI_SELECT": "multi_select",
    "STATUS": "status",
    "PEOPLE": "people",
    "FILES": "files",
    "CREATED_TIME": "created_time",
    "LAST_EDITED_TIME": "last_edited_time",
    "UNIQUE_ID": "unique_id",
}
COMPUTED = frozenset({"formula", "rollup", "created_time", "created_by", "last_edited_time", "last_edited_by"})
COMPUTED |= {"unique_id", "button", "verification"}

_UUID = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")


def _schema_input(properties: Json, required: list[str] | None = None) -> Json:
    return {"type": "object", "properties": properties, "required": required or [], "additionalProperties": {}}


TOOLS: list[types.Tool] = [
    types.Tool(
        name="notion-fetch",
        title="Fetch Notion entities",
        description="Retrieves a Notion page, database or data source (collection://…) by URL or ID.",
        inputSchema=_schema_input({"id": {"type": "string"}}, ["id"]),
        annotations=types.ToolAnnotations(readOnlyHint=True, idempotentHint=True),
    ),
    types.Tool(
        name="notion-query-data-sources",
        title="Query Notion data sources",
        description="SQL mode: execute a read-only SQLite query against data sources (tables named by URL).",
        inputSchema=_schema_input(
            {
                "data": {
                    "type": "object",
                    "properties": {
                        "data_source_urls": {"type": "array", "items": {"type": "string"}, "maxItems": 100},
                        "query": {"type": "string"},
                        "mode": {"type": "string", "enum": ["sql"]},
                        "params": {"type": "array", "maxItems": 100},
                    },
                    "required": ["data_source_urls", "query"],
                    "additionalProperties": False,
                }
            },
            ["data"],
        ),
        annotations=types.ToolAnnotations(readOnlyHint=True, idempotentHint=True),
    ),
    types.Tool(
        name="notion-create-pages",
        title="Create pages in Markdown",
        description="Creates one or more Notion pages with the specified properties and content.",
        inputSchema=_schema_input(
            {
                "pages": {
                    "type": "array",
                    "maxItems": 100,
                    "items": {
                        "type": "object",
                        "properties": {
                            "properties": {
                                "type": "object",
                                "additionalProperties": {
                                    "anyOf": [
                                        {"type": "string"},
                                        {"type": "number"},
                                        {"type": "array", "items": {"type": "string"}, "maxItems": 100},
                                        {"type": "null"},
                                    ]
                                },
                            },
                            "content": {"type": "string"},
                            "icon": {"type": "string"},
                        },
                        "additionalProperties": False,
                    },
                },
                "parent": {"type": "object"},
            },
            ["pages"],
        ),
        annotations=types.ToolAnnotations(readOnlyHint=False, idempotentHint=False),
    ),
    types.Tool(
        name="notion-update-page",
        title="Update Notion page",
        description="Update a Notion page's properties (command update_properties).",
        inputSchema=_schema_input(
            {
                "page_id": {"type": "string"},
                "command": {
                    "type": "string",
                    "enum": ["update_properties", "update_content", "replace_content", "insert_content"],
                },
                "properties": {"type": "object"},
            },
            ["page_id", "command"],
        ),
        annotations=types.ToolAnnotations(readOnlyHint=False, idempotentHint=False),
    ),
    types.Tool(
        name="notion-update-data-source",
        title="Update Notion data source",
        description="Updates a data source's schema with SQL DDL statements (ADD COLUMN, DROP COLUMN, ...).",
        inputSchema=_schema_input(
            {"data_source_id": {"type": "string"}, "statements": {"type": "string"}}, ["data_source_id", "statements"]
        ),
        annotations=types.ToolAnnotations(readOnlyHint=False, idempotentHint=False),
    ),
    types.Tool(
        name="notion-create-database",
        title="Create Notion database",
        description="Creates a new Notion database from a SQL DDL CREATE TABLE statement.",
        inputSchema=_schema_input(
            {"parent": {"type": "object"}, "title": {"type": "string"}, "schema": {"type": "string"}}
        ),
        annotations=types.ToolAnnotations(readOnlyHint=False, idempotentHint=False),
    ),
]


@dataclass
class Counters:
    tool_calls: int = 0
    tool_errors: int = 0
    rate_limited: int = 0
    internal_retries: int = 0
    http_401: int = 0


@dataclass
class _HttpFault:
    status: int
    retry_after: int | None
    method: str | None
    tools: frozenset[str] | None

    def matches(self, message: Any) -> bool:
        if not isinstance(message, dict):
            return self.method is None and self.tools is None
        if self.method is not None and message.get("method") != self.method:
            return False
        return self.tools is None or (message.get("params") or {}).get("name") in self.tools


@dataclass
class _ToolFailure(Exception):
    """A tool error answer."""

    text: str
    structured: Json | None = None

    def result(self) -> types.CallToolResult:
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=self.text)], structuredContent=self.structured, isError=True
        )


@dataclass
class _Rest:
    """The REST API of the wrapped FakeNotion, as the hosted server would call it."""

    fake: FakeNotionMcp
    token: str
    client: httpx.AsyncClient = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.fake.notion.app),
            base_url="https://api.notion.com",
            headers={"Authorization": f"Bearer {self.token}", "Notion-Version": NOTION_VERSION},
        )

    async def __call__(self, method: str, path: str, body: Json | None = None) -> Json:
        retried = False
        while True:
            response = await self.client.request(method, path, json=body)
            payload = response.json() if response.content else {}
            if response.status_code < 400:
                return payload
            if response.status_code == 429:
                wait = int(response.headers.get("retry-after", "1"))
                if wait <= self.fake.retry_within and not retried:
                    retried = True
                    self.fake.counters.internal_retries += 1
                    await self.fake.sleep(wait)
                    continue
                self.fake.counters.rate_limited += 1
                reason = (payload.get("additional_data") or {}).get("rate_limit_reason") or "integration_rate_limit"
                raise _ToolFailure(
                    f"Notion API rate limit reached (429); retry after {wait} seconds.",
                    {"error": {"code": "rate_limited", "retry_after_seconds": wait, "rate_limit_reason": reason}},
                )
            code = str(payload.get("code") or "error")
            message = str(payload.get("message") or response.reason_phrase)
            raise _ToolFailure(
                f"{message} ({code}, {response.status_code})",
                {"error": {"code": code, "message": message, "status": response.status_code}},
            )


# --------------------------------------------------------------------------------------------------
# The fake


class FakeNotionMcp:
    """The fake hosted MCP server over a ``FakeNotion``. See the module docstring.

    Args:
        notion: The REST fake holding the state.
        validate: ``validate(token) -> bool`` for bearer tokens (default: a token the FakeNotion knows).
        notion_token: The REST token for bearer tokens the FakeNotion does not know (OAuth fakes).
        stateless: One MCP session per HTTP request (works in-process); False keeps sessions with ids
            (``Mcp-Session-Id``), which needs the app's lifespan: use it through :func:`serve`.
        json_response: Answer POSTs with JSON instead of an SSE stream.
        sleep: Awaitable sleep for the internal 429 retry (a fake clock's, in tests).
        retry_within: Longest REST ``Retry-After`` waited out internally (the hosted server: 2 s).
    """

    def __init__(
        self,
        notion: FakeNotion,
        *,
        validate: Callable[[str], bool] | None = None,
        notion_token: str | None = None,
        stateless: bool = True,
        json_response: bool = True,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        retry_within: float = 2.0,
    ) -> None:
        """A hosted-MCP front over ``notion``, with no calls yet."""
        self.notion = notion
        self.validate = validate or (lambda token: token in notion.tokens)
        self.notion_token = notion_token
        self.stateless = stateless
        self.json_response = json_response
        self.sleep = sleep
        self.retry_within = retry_within
        self.calls: list[ToolCall] = []
        self.counters = Counters()
        self.served: collections.Counter[int] = collections.Counter()  # HTTP status -> responses sent
        self._http_faults: list[_HttpFault] = []
        self._manager: StreamableHTTPSessionManager | None = None
        self.server = self._build_server()
        self.app = self._build_app()

    # -- test helpers ----------------------------------------------------------------------------

    def fail_next_http(
        self,
        n: int = 1,
        status: int = 503,
        *,
        retry_after: int | None = None,
        method: str | None = "tools/call",
        tool: str | Collection[str] | None = None,
    ) -> None:
        """Fail the next ``n`` matching POSTs with an HTTP error.

        Answer the next ``n`` POSTs of JSON-RPC ``method`` (None: any), calling ``tool`` (a name or
        several; None: any), with an HTTP error; nothing runs.
        """
        tools = None if tool is None else frozenset([tool] if isinstance(tool, str) else tool)
        self._http_faults += [_HttpFault(status, retry_after, method, tools) for _ in range(n)]

    def tool_calls(self, tool: str | None = None) -> list[ToolCall]:
        """The tool calls answered so far, of ``tool`` only if given."""
        return asgi.calls_of(self.calls, tool)

    # -- server ----------------------------------------------------------------------------------

    def _build_server(self) -> Server[Any, Any]:
        return asgi.tool_server("fake-notion-mcp", TOOLS, self._call)

    def _rest_token(self) -> str:
        request = self.server.request_context.request
        header = request.headers.get("authorization", "") if request is not None else ""
        token = header.partition(" ")[2].strip()
        if token in self.notion.tokens:
            return token
        return self.notion_token or self.notion.token

    async def _call(self, name: str, arguments: Json) -> types.CallToolResult:
        self.counters.tool_calls += 1
        handler = {
            "notion-fetch": self._fetch,
            "notion-query-data-sources": self._query,
            "notion-create-pages": self._create_pages,
            "notion-update-page": self._update_page,
            "notion-create-database": self._create_database,
            "notion-update-data-source": self._update_data_source,
        }.get(name)
        rest = _Rest(self, self._rest_token())
        try:
            if handler is None:
                raise _ToolFailure(f"Unknown tool: {name}")
            text, structured = await handler(rest, arguments)
            result = types.CallToolResult(
                content=[types.TextContent(type="text", text=text)], structuredContent=structured, isError=False
            )
        except _ToolFailure as failure:
            self.counters.tool_errors += 1
            result = failure.result()
        finally:
            await rest.client.aclose()
        text = "".join(b.text for b in result.content if isinstance(b, types.TextContent))
        self.calls.append(ToolCall(name, json.loads(json.dumps(arguments)), bool(result.isError), text))
        return result

    # -- notion-fetch ----------------------------------------------------------------------------

    async def _fetch(self, rest: _Rest, args: Json) -> tuple[str, Json | None]:
        raw = str(args.get("id") or "")
        object_id = _object_id(raw)
        kinds = ("data_source",) if raw.startswith("collection://") else ("database", "data_source", "page")
        for kind in kinds:
            try:
                if kind == "database":
                    return await self._database_text(rest, await rest("GET", f"/v1/databases/{object_id}")), None
                if kind == "data_source":
                    return self._data_source_text(await rest("GET", f"/v1/data_sources/{object_id}")), None
                page = await rest("GET", f"/v1/pages/{object_id}")
                return await self._page_text(rest, page), None
            except _ToolFailure as failure:
                if (failure.structured or {}).get("error", {}).get("status") != 404:
                    raise
        raise _ToolFailure(
            f"Could not find a page, database or data source with ID {raw}. Make sure it is shared with you.",
            {"error": {"code": "object_not_found", "message": "not found", "status": 404}},
        )

    async def _database_text(self, rest: _Rest, db: Json) -> str:
        # As the hosted server: each data source listed with its whole state, so a database's markup holds
        # <data-source-state> too (a reader must tell it from a data source's by the envelope or the tags).
        sources = [
            _data_source_markup(await rest("GET", f"/v1/data_sources/{ds['id']}"))
            for ds in db.get("data_sources") or []
        ]
        title = _plain(db.get("title"))
        markup = (
            f'<database url="{{{{{_page_url(db["id"])}}}}}" inline="false">\n'
            f"The title of this Database is: {title}\n"
            "Here are the Database's Data Sources:\n"
            f"<data-sources>\n{chr(10).join(sources)}\n</data-sources>\n</database>"
        )
        return _envelope("database", title, _page_url(db["id"]), markup)

    def _data_source_text(self, ds: Json) -> str:
        database_url = _page_url((ds.get("parent") or {}).get("database_id", ""))
        return _envelope("data_source", _plain(ds.get("title")), database_url, _data_source_markup(ds))

    async def _page_text(self, rest: _Rest, page: Json) -> str:
        parent = page.get("parent") or {}
        ancestor = ""
        if parent.get("data_source_id"):
            ancestor = (
                f'<ancestor-path><parent-data-source url="collection://{parent["data_source_id"]}"/></ancestor-path>\n'
            )
        blocks: list[Json] = []
        path = f"/v1/blocks/{page['id']}/children"
        while True:
            answer = await rest("GET", path)
            blocks += answer.get("results") or []
            if not answer.get("has_more"):
                break
            path = f"/v1/blocks/{page['id']}/children?start_cursor={answer['next_cursor']}"
        content = "\n\n".join(
            "".join(t.get("plain_text", "") for t in (b.get(b["type"]) or {}).get("rich_text", [])) for b in blocks
        )
        trash = ' in-trash="true"' if page.get("in_trash") else ""
        markup = (
            f'<page url="{_page_url(page["id"])}"{trash}>\n{ancestor}'
            f"<properties>\n{json.dumps(_flat_row(page), indent=2)}\n</properties>\n"
            f"<content>\n{content}\n</content>\n</page>"
        )
        title = next(
            (_plain(v.get("title")) for v in (page.get("properties") or {}).values() if v.get("type") == "title"), ""
        )
        return _envelope("page", title, _page_url(page["id"]), markup, page_last_edited_at=page.get("last_edited_time"))

    # -- notion-query-data-sources ---------------------------------------------------------------

    async def _query(self, rest: _Rest, args: Json) -> tuple[str, Json | None]:
        data = args.get("data")
        if not isinstance(data, dict):
            raise _ToolFailure('Invalid arguments: "data" is required.')
        urls = data.get("data_source_urls") or []
        query, params = str(data.get("query") or ""), list(data.get("params") or [])
        db = sqlite3.connect(":memory:")
        try:
            for url in urls:
                ds_id = _object_id(str(url))
                ds = await rest("GET", f"/v1/data_sources/{ds_id}")
                pages: list[Json] = []
                body: Json = {"page_size": 100}
                while True:
                    answer = await rest("POST", f"/v1/data_sources/{ds_id}/query", body)
                    pages += answer.get("results") or []
                    if not answer.get("has_more"):
                        break
                    body = {"page_size": 100, "start_cursor": answer["next_cursor"]}
                columns = _columns(ds)
                table = _sql_ident(f"collection://{ds_id}")
                db.execute(f'CREATE TABLE "{table}" ({", ".join(f"{_q(c)} {t}" for c, t in columns)})')
                names = [c for c, _ in columns]
                rows = [_flat_row(p) for p in pages]
                db.executemany(
                    f'INSERT INTO "{table}" VALUES ({", ".join("?" for _ in names)})',
                    [[_sql_value(row.get(n)) for n in names] for row in rows],
                )
            db.execute("PRAGMA query_only = ON")  # the tool is read-only, as the hosted one
            try:
                cursor = db.execute(query, params)
                headers = [d[0] for d in cursor.description or []]
                results = [{h: _js_number(v) for h, v in zip(headers, row, strict=True)} for row in cursor.fetchall()]
            except sqlite3.Error as err:
                raise _ToolFailure(f"SQL error: {err}") from None
        finally:
            db.close()
        answer = {"results": results}
        return json.dumps(answer), answer

    # -- notion-create-pages / notion-update-page ------------------------------------------------

    async def _create_pages(self, rest: _Rest, args: Json) -> tuple[str, Json | None]:
        parent = args.get("parent") or {}
        pages = args.get("pages")
        if not isinstance(pages, list) or not pages:
            raise _ToolFailure('Invalid arguments: "pages" must be a non-empty array.')
        schema: Json = {}
        if parent.get("data_source_id") or parent.get("database_id"):
            if parent.get("data_source_id"):
                ds_id = _object_id(str(parent["data_source_id"]))
            else:
                db = await rest("GET", f"/v1/databases/{_object_id(str(parent['database_id']))}")
                sources = db.get("data_sources") or []
                if len(sources) != 1:
                    raise _ToolFailure("This database has several data sources; use a data_source_id parent.")
                ds_id = sources[0]["id"]
            schema = (await rest("GET", f"/v1/data_sources/{ds_id}")).get("properties") or {}
            rest_parent: Json = {"type": "data_source_id", "data_source_id": ds_id}
        elif parent.get("page_id"):
            rest_parent = {"type": "page_id", "page_id": _object_id(str(parent["page_id"]))}
        else:
            raise _ToolFailure("This fake needs a parent (data_source_id, database_id or page_id).")
        created = []
        for spec in pages:
            flat = spec.get("properties") or {}
            if schema:
                properties = _rest_properties(schema, flat)
            else:
                properties = {"title": {"title": _rich(str(flat.get("title") or ""))}}
            blocks = _blocks(str(spec.get("content") or ""))
            body = {"parent": rest_parent, "properties": properties, "children": blocks[:MAX_CHILDREN]}
            page = await rest("POST", "/v1/pages", body)
            for i in range(MAX_CHILDREN, len(blocks), MAX_CHILDREN):
                await rest("PATCH", f"/v1/blocks/{page['id']}/children", {"children": blocks[i : i + MAX_CHILDREN]})
            created.append({"id": page["id"], "url": _page_url(page["id"])})
        answer = {"pages": created}
        return json.dumps(answer), answer

    async def _update_page(self, rest: _Rest, args: Json) -> tuple[str, Json | None]:
        if args.get("command") != "update_properties":
            raise _ToolFailure(f"This fake supports only the update_properties command, not {args.get('command')!r}.")
        page_id = _object_id(str(args.get("page_id") or ""))
        page = await rest("GET", f"/v1/pages/{page_id}")
        ds_id = (page.get("parent") or {}).get("data_source_id")
        if not ds_id:
            raise _ToolFailure("This fake updates only pages in a data source.")
        schema = (await rest("GET", f"/v1/data_sources/{ds_id}")).get("properties") or {}
        properties = _rest_properties(schema, args.get("properties") or {})
        page = await rest("PATCH", f"/v1/pages/{page_id}", {"properties": properties})
        answer = {"page_id": page["id"], "url": _page_url(page["id"])}
        return json.dumps(answer), answer

    # -- notion-create-database ------------------------------------------------------------------

    async def _update_data_source(self, rest: _Rest, args: Json) -> tuple[str, Json | None]:
        """``ADD COLUMN <column DDL>`` and ``DROP COLUMN "<name>"`` statements, separated by semicolons."""
        data_source_id = _object_id(str(args.get("data_source_id") or ""))
        properties: Json = {}
        for statement in _split_top(str(args.get("statements") or ""), ";"):
            if not statement.strip():
                continue
            drop = re.match(r'\s*DROP\s+COLUMN\s+"((?:[^"]|"")*)"\s*$', statement, re.I)
            if drop:
                properties[drop.group(1).replace('""', '"')] = None
                continue
            add = re.match(r"\s*ADD\s+COLUMN\s+(.*)$", statement, re.I | re.S)
            if not add:
                raise _ToolFailure(f"Unsupported statement: {statement.strip()[:100]}")
            properties.update(_parse_ddl(f"CREATE TABLE ({add.group(1)})", title=False))
        await rest("PATCH", f"/v1/data_sources/{data_source_id}", {"properties": properties})
        return f'Updated the data source <data-source url="collection://{data_source_id}"/>.', None

    async def _create_database(self, rest: _Rest, args: Json) -> tuple[str, Json | None]:
        specs = _parse_ddl(str(args.get("schema") or 'CREATE TABLE ("Name" TITLE)'))
        title = str(args.get("title") or "Untitled")
        parent = args.get("parent") or {}
        if parent.get("page_id"):
            body = {
                "parent": {"type": "page_id", "page_id": _object_id(str(parent["page_id"]))},
                "title": _rich(title),
                "initial_data_source": {"properties": specs},
            }
            db = await rest("POST", "/v1/databases", body)
            db_id, ds_id = db["id"], db["data_sources"][0]["id"]
        else:
            # A private page at the workspace level: something the REST API cannot do for integrations.
            created = self.notion.add_database(specs, title=title, workspace=self.notion.tokens[rest.token])
            db_id, ds_id = created.id, created.data_source_ids[0]
        text = (
            f'Created the database <database url="{_page_url(db_id)}">{title}</database> with the data source '
            f'<data-source url="collection://{ds_id}"/>.'
        )
        return text, None

    # -- HTTP -------------------------------------------------------------------------------------

    def _build_app(self) -> Starlette:
        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            if self.stateless:
                yield
                return
            self._manager = StreamableHTTPSessionManager(self.server, json_response=self.json_response)
            async with self._manager.run():
                yield
            self._manager = None

        return Starlette(
            routes=[Route(MCP_PATH, asgi.Endpoint(self), methods=["GET", "POST", "DELETE"])], lifespan=lifespan
        )

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one HTTP request to the MCP endpoint, counting the statuses sent."""

        async def counting_send(message: Any) -> None:
            if message.get("type") == "http.response.start":
                self.served[int(message["status"])] += 1
            await send(message)

        await self._handle(scope, receive, counting_send)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if await asgi.refuse_bad_bearer(scope, send, self.validate, resource_metadata=True):
            self.counters.http_401 += 1
            return
        if scope["method"] == "POST" and self._http_faults:
            body = await asgi.read_body(receive)
            rpc = asgi.json_rpc(body)
            fault = next((f for f in self._http_faults if f.matches(rpc)), None)
            if fault is not None:
                self._http_faults.remove(fault)
                extra = {"retry-after": str(fault.retry_after)} if fault.retry_after is not None else {}
                await asgi.respond(send, fault.status, {"error": "fault injected"}, extra)
                return
            receive = asgi.replay(body, receive)
        if not self.stateless:
            if self._manager is None:
                raise RuntimeError("a stateful FakeNotionMcp needs its lifespan: use it through serve()")
            await self._manager.handle_request(scope, receive, send)
            return
        await asgi.run_stateless(self.server, scope, receive, send, json_response=self.json_response)


# --------------------------------------------------------------------------------------------------
# Ids, rows and values


def _object_id(value: str) -> str:
    text = value.removeprefix("collection://").split("?", 1)[0]
    found = _UUID.findall(text)
    if not found:
        raise _ToolFailure(f"Invalid ID: {value!r} is not a Notion ID or URL.")
    return str(uuid.UUID(found[-1].replace("-", "")))


def _page_url(object_id: str) -> str:
    return f"{APP_BASE}/{object_id.replace('-', '')}"


def _column(name: str) -> str:
    return f"userDefined:{name}" if name.lower() in ("id", "url") else name


def _sql_ident(name: str) -> str:
    return name.replace('"', '""')


def _q(name: str) -> str:
    return f'"{_sql_ident(name)}"'


def _columns(ds: Json) -> list[tuple[str, str]]:
    """The SQLite columns of a data source's table: the page url, then one per property (dates: three)."""
    out = [("url", "TEXT UNIQUE")]
    for name, prop in (ds.get("properties") or {}).items():
        kind = prop["type"]
        if kind == "date":
            out += [
                (f"date:{name}:start", "TEXT"),
                (f"date:{name}:end", "TEXT"),
                (f"date:{name}:is_datetime", "INTEGER"),
            ]
        elif kind == "number":
            out.append((_column(name), "FLOAT"))
        else:
            out.append((_column(name), "TEXT"))
    return out


def _plain(rich: Any) -> str:
    return "".join(str(el.get("plain_text", "")) for el in rich or [])


def _envelope(kind: str, title: str, url: str, markup: str, **extra: Any) -> str:
    """A ``notion-fetch`` answer as the hosted server sends it: the markup as ``text`` in a JSON envelope."""
    return json.dumps({"metadata": {"type": kind}, "title": title, "url": url, **extra, "text": markup})


def _data_source_markup(ds: Json) -> str:
    """A data source's ``<data-source>`` tag: its state (hosted type names) and its SQLite table."""
    schema: Json = {}
    for name, prop in (ds.get("properties") or {}).items():
        kind = prop["type"]
        entry: Json = {"type": HOSTED_TYPES.get(kind, kind)}
        options = (prop.get(kind) or {}).get("options")
        if options is not None:
            entry["options"] = [{"name": o["name"], "color": o.get("color", "default")} for o in options]
        schema[name] = entry
    state = {
        "name": _plain(ds.get("title")),
        "url": f"collection://{ds['id']}",
        "parent": {"database_url": _page_url((ds.get("parent") or {}).get("database_id", ""))},
        "schema": schema,
    }
    columns = ", ".join(f'"{_sql_ident(c)}" {t}' for c, t in _columns(ds))
    return (
        f'<data-source url="{{{{collection://{ds["id"]}}}}}">\n'
        f"The title of this Data Source is: {state['name']}\n"
        f"<data-source-state>\n{json.dumps(state, indent=2)}\n</data-source-state>\n"
        f'<sqlite-table>\nCREATE TABLE IF NOT EXISTS "collection://{ds["id"]}" ({columns})\n</sqlite-table>\n'
        "</data-source>"
    )


def _flat_row(page: Json) -> Json:
    """A page as a row of its data source's SQLite table (the flat format of the module docstring)."""
    row: Json = {"url": _page_url(page["id"])}
    for name, value in (page.get("properties") or {}).items():
        kind = value.get("type")
        raw = value.get(kind)
        column = _column(name)
        if kind in ("title", "rich_text"):
            row[column] = _plain(raw) or None
        elif kind == "checkbox":
            row[column] = "__YES__" if raw else "__NO__"
        elif kind in ("select", "status"):
            row[column] = raw["name"] if raw else None
        elif kind == "multi_select":
            row[column] = json.dumps([o["name"] for o in raw or []], ensure_ascii=False)
        elif kind == "date":
            start = raw.get("start") if raw else None
            row[f"date:{name}:start"] = start
            row[f"date:{name}:end"] = raw.get("end") if raw else None
            row[f"date:{name}:is_datetime"] = (1 if "T" in start else 0) if start else None
        elif kind in ("created_by", "last_edited_by"):
            row[column] = f"user://{raw['id']}" if raw else None
        elif kind == "people":
            row[column] = json.dumps([f"user://{u['id']}" for u in raw or []])
        elif kind == "relation":
            row[column] = json.dumps([_page_url(r["id"]) for r in raw or []])
        elif kind == "files":
            row[column] = json.dumps([f.get("name") for f in raw or []])
        elif kind == "unique_id":
            number = (raw or {}).get("number")
            prefix = (raw or {}).get("prefix")
            row[column] = None if number is None else (f"{prefix}-{number}" if prefix else number)
        elif kind in ("formula", "rollup"):
            row[column] = (raw or {}).get((raw or {}).get("type", ""), None) if kind == "formula" else None
        else:
            row[column] = raw
    return row


def _js_number(value: Any) -> Any:
    """A SQLite value as the hosted server's JSON carries it: JavaScript numbers print 3.0 as ``3``."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _sql_value(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return value


def _rich(text: str) -> list[Json]:
    pieces: list[Json] = []
    piece = ""
    for ch in text:
        if len((piece + ch).encode("utf-16-le")) // 2 > MAX_TEXT:
            pieces.append({"type": "text", "text": {"content": piece}})
            piece = ""
        piece += ch
    if piece:
        pieces.append({"type": "text", "text": {"content": piece}})
    return pieces


def _blocks(content: str) -> list[Json]:
    paragraphs = [p.strip("\n") for p in re.split(r"\n\s*\n", content) if p.strip()]
    return [{"object": "block", "type": "paragraph", "paragraph": {"rich_text": _rich(p)}} for p in paragraphs]


def _wrong(name: str, expected: str, value: Any) -> _ToolFailure:
    return _ToolFailure(
        f'Invalid value for property "{name}": expected {expected}, got {json.dumps(value)[:100]}.',
        {"error": {"code": "validation_error", "message": "invalid property value", "status": 400}},
    )


def _rest_properties(schema: Mapping[str, Json], flat: Mapping[str, Any]) -> Json:
    """The REST ``properties`` of flat values (the hosted format) for a data source ``schema``."""
    out: Json = {}
    dates: dict[str, Json] = {}
    for key, value in flat.items():
        if key.startswith("date:") and key.count(":") >= 2:
            name, part = key[5:].rsplit(":", 1)
            if part not in ("start", "end", "is_datetime"):
                raise _ToolFailure(f'Unknown date field "{part}" in "{key}".')
            dates.setdefault(name, {})[part] = value
            continue
        if key.startswith("place:"):
            raise _ToolFailure("This fake does not support place properties.")
        name = key.removeprefix("userDefined:")
        if name.lower() in ("id", "url") and not key.startswith("userDefined:"):
            raise _ToolFailure(f'Property "{name}" must be written as "userDefined:{name}".')
        prop = schema.get(name)
        if prop is None:
            raise _ToolFailure(
                f"{name} is not a property that exists.",
                {"error": {"code": "validation_error", "message": "unknown property", "status": 400}},
            )
        kind = prop["type"]
        if kind in COMPUTED:
            raise _ToolFailure(f"{name} is a {kind} property, which cannot be set.")
        if kind in ("title", "rich_text"):
            if value is not None and not isinstance(value, (str, int, float)):
                raise _wrong(name, "text", value)
            out[name] = {kind: _rich("" if value is None else str(value))}
        elif kind == "number":
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise _wrong(name, "a number (not a string)", value)
            out[name] = {"number": value}
        elif kind == "checkbox":
            if value not in ("__YES__", "__NO__", None):
                raise _wrong(name, '"__YES__" or "__NO__"', value)
            out[name] = {"checkbox": value == "__YES__"}
        elif kind in ("select", "status"):
            if value is not None and not isinstance(value, str):
                raise _wrong(name, "an option name", value)
            out[name] = {kind: {"name": value} if value else None}
        elif kind == "multi_select":
            names = value
            if isinstance(value, str):
                try:
                    names = json.loads(value)
                except ValueError:
                    names = [value]
            if names is None:
                names = []
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise _wrong(name, "an array of option names", value)
            out[name] = {"multi_select": [{"name": n} for n in names]}
        elif kind in ("url", "email", "phone_number"):
            if value is not None and not isinstance(value, str):
                raise _wrong(name, "a string", value)
            out[name] = {kind: value or None}
        else:
            raise _ToolFailure(f"This fake cannot write {kind} properties ({name}).")
    for name, parts in dates.items():
        prop = schema.get(name)
        if prop is None or prop["type"] != "date":
            raise _ToolFailure(f"{name} is not a date property that exists.")
        start = parts.get("start")
        if start is None:
            out[name] = {"date": None}
            continue
        if not isinstance(start, str):
            raise _wrong(name, "an ISO 8601 date", start)
        if parts.get("is_datetime") in (0, "0") and "T" in start:
            start = start.split("T", 1)[0]
        out[name] = {"date": {"start": start, "end": parts.get("end")}}
    return out


_DDL_COLUMN = re.compile(r'\s*"((?:[^"]|"")+)"\s+([A-Za-z_]+)\s*(.*)$', re.S)
_DDL_OPTION = re.compile(r"'((?:[^']|'')*)'(?::\s*[a-z]+)?")


def _split_top(text: str, separator: str = ",") -> list[str]:
    parts, depth, quote, current = [], 0, "", ""
    for ch in text:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == separator and depth == 0:
            parts.append(current)
            current = ""
            continue
        current += ch
    if current.strip():
        parts.append(current)
    return parts


def _parse_ddl(ddl: str, *, title: bool = True) -> Json:
    """REST property specs from ``CREATE TABLE ("Name" TITLE, "Tags" MULTI_SELECT('a':blue), ...)``."""
    match = re.match(r'\s*CREATE\s+TABLE\s*(?:"[^"]*"\s*)?\((.*)\)\s*;?\s*$', ddl, re.S | re.I)
    if not match:
        raise _ToolFailure("Invalid schema: expected CREATE TABLE (...).")
    specs: Json = {}
    for column in _split_top(match.group(1)):
        found = _DDL_COLUMN.match(column)
        if not found:
            raise _ToolFailure(f"Invalid column definition: {column.strip()[:100]}")
        name, type_name, rest = found.group(1).replace('""', '"'), found.group(2).upper(), found.group(3)
        kind = DDL_TYPES.get(type_name)
        if kind is None:
            raise _ToolFailure(f"Unsupported column type {type_name} for {name}.")
        spec: Json = {"type": kind}
        if kind in ("select", "multi_select"):
            args = re.match(r"\s*\((.*)\)", rest, re.S)
            spec["options"] = [o.replace("''", "'") for o in _DDL_OPTION.findall(args.group(1) if args else "")]
        specs[name] = spec
    if title and not any(s["type"] == "title" for s in specs.values()):
        specs = {"Name": {"type": "title"}, **specs}
    return specs


# --------------------------------------------------------------------------------------------------
# Loopback server


@contextlib.contextmanager
def serve(fake: FakeNotionMcp, *, host: str = "127.0.0.1") -> Iterator[str]:
    """Run the fake on a free loopback port in a thread; yields the MCP endpoint URL."""
    with serve_app(fake.app, name="notion-mcp", lifespan="on", host=host) as url:
        yield url + MCP_PATH

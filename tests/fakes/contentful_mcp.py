"""A fake of Contentful's hosted MCP server (``https://mcp.contentful.com/mcp``), backed by a ``FakeContentful``.

Built on the ``mcp`` package's low-level ``Server`` over its streamable HTTP transport (stateless: one MCP
session per HTTP request, so it works in-process through ``httpx.ASGITransport``). Every tool is carried
out as CMA calls to the wrapped ``FakeContentful``'s app with its management token — as the hosted server
calls the CMA — so entries created over MCP are visible through the fake's CMA and (once published) CDA,
and the fake's validation (422 ``InvalidEntry``), versions (409), faults and request log all apply::

    contentful = FakeContentful(cma_rate=None)
    mcp = FakeContentfulMcp(contentful)             # bearer tokens: mcp.token by default
    transport = httpx.ASGITransport(app=mcp.app)    # in-process, URL IN_PROCESS_URL
    with serve(mcp) as url: ...                     # or on a loopback port

Tools (argument names of the hosted server; only what the connector uses)::

    get_initial_context  {}                                       must come first (per bearer token)
    get_content_type     {spaceId, environmentId, contentTypeId}  prose + the content type's JSON
    create_entry         {spaceId, environmentId, contentTypeId, fields}   the id is server-assigned
    get_entry            {spaceId, environmentId, entryId}
    update_entry         {spaceId, environmentId, entryId, version, fields}
                         fields are MERGED into the entry's by field id (a field sent replaces that
                         field's every locale; ``{}`` removes the field); a stale version answers an
                         error naming ``VersionMismatch``
    publish_entry        {spaceId, environmentId, entryId: [ids]}  (a list); the current version is
                         looked up by the server

Answers are prose-prefixed pseudo-XML, NOT valid XML (it has a ``<*>`` tag), e.g.::

    Entry created successfully:
    <entry><sys><space><id>S</id></space><id>ID</id><type>Entry</type><publishedVersion>2</publishedVersion>
    <version>3</version>…</sys><urn>crn:contentful:::content:spaces/S/environments/master/entries/ID</urn>
    <fields>{"title": {"en-US": "…"}}</fields><*>tags: none</*></entry>

``urn=False`` leaves the ``<urn>`` out (the client's fallback is ``</space><id>X</id>``).

Auth: ``Authorization: Bearer <token>`` checked by ``validate(token)`` (default: ``token``); anything else
answers HTTP 401 with ``WWW-Authenticate: Bearer error="invalid_token"``.

Test-facing API: ``app``, ``token``, ``calls`` / ``tool_calls(name)``, ``refuse_publish`` (publish_entry
answers a permission error, as an app installation without that tool's permission does),
``before_call`` (hooks ``(tool, arguments)`` run before each call: edit an entry meanwhile),
``lose_next_answer(tool)`` (the tool runs, then the HTTP answer is a 502: the client never learns the
result), ``answer_override`` (replace the next answer text of a tool), ``serve(fake)``.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
from mcp import types
from mcp.server.lowlevel import Server
from mcp.server.streamable_http import StreamableHTTPServerTransport
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tests.fakes.asgi import Endpoint, replay, respond
from tests.fakes.contentful import FakeContentful
from tests.fakes.loopback import serve_app

__all__ = ["IN_PROCESS_URL", "TOOLS", "FakeContentfulMcp", "ToolCall", "serve"]

Json = dict[str, Any]

MCP_PATH = "/mcp"
IN_PROCESS_URL = "http://contentful-mcp.test/mcp"


def _schema(properties: Json, required: list[str]) -> Json:
    return {"type": "object", "properties": properties, "required": required}


_BASE = {"spaceId": {"type": "string"}, "environmentId": {"type": "string"}}
TOOLS: list[types.Tool] = [
    types.Tool(name="get_initial_context", description="Call first.", inputSchema=_schema({}, [])),
    types.Tool(
        name="get_content_type",
        description="Get a content type.",
        inputSchema=_schema({**_BASE, "contentTypeId": {"type": "string"}}, ["spaceId", "contentTypeId"]),
    ),
    types.Tool(
        name="create_entry",
        description="Create an entry.",
        inputSchema=_schema(
            {**_BASE, "contentTypeId": {"type": "string"}, "fields": {"type": "object"}},
            ["spaceId", "contentTypeId", "fields"],
        ),
    ),
    types.Tool(
        name="get_entry",
        description="Get an entry.",
        inputSchema=_schema({**_BASE, "entryId": {"type": "string"}}, ["spaceId", "entryId"]),
    ),
    types.Tool(
        name="update_entry",
        description="Update an entry; fields are merged with the existing fields.",
        inputSchema=_schema(
            {**_BASE, "entryId": {"type": "string"}, "version": {"type": "integer"}, "fields": {"type": "object"}},
            ["spaceId", "entryId", "version", "fields"],
        ),
    ),
    types.Tool(
        name="publish_entry",
        description="Publish entries.",
        inputSchema=_schema(
            {**_BASE, "entryId": {"type": "array", "items": {"type": "string"}}}, ["spaceId", "entryId"]
        ),
    ),
]


@dataclass(frozen=True)
class ToolCall:
    tool: str
    arguments: Json
    is_error: bool
    text: str = ""


class _ToolFailure(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class FakeContentfulMcp:
    """The fake hosted MCP server over a ``FakeContentful`` (see the module docstring)."""

    def __init__(
        self,
        contentful: FakeContentful,
        validate: Callable[[str], bool] | None = None,
        *,
        urn: bool = True,
    ) -> None:
        self.contentful = contentful
        self.token = f"cf-mcp-{uuid.uuid4().hex}"
        self.validate = validate or (lambda token: token == self.token)
        self.urn = urn
        self.refuse_publish = False
        self.answer_override: dict[str, str] = {}
        self.calls: list[ToolCall] = []
        self.http_401 = 0
        self.before_call: list[Callable[[str, Json], None]] = []  # hooks run before each tool call
        self._contexts: set[str] = set()
        self._lose: list[str] = []
        self.server = self._build_server()
        self.app = Starlette(routes=[Route(MCP_PATH, Endpoint(self), methods=["GET", "POST", "DELETE"])])

    # -- test helpers ----------------------------------------------------------------------------

    def tool_calls(self, tool: str | None = None) -> list[ToolCall]:
        return [c for c in self.calls if tool is None or c.tool == tool]

    def lose_next_answer(self, tool: str) -> None:
        """The next call of ``tool`` runs, then its HTTP answer is replaced by a 502."""
        self._lose.append(tool)

    # -- server ----------------------------------------------------------------------------------

    def _build_server(self) -> Server[Any, Any]:
        server: Server[Any, Any] = Server("fake-contentful-mcp")

        @server.list_tools()
        async def list_tools() -> list[types.Tool]:
            return list(TOOLS)

        @server.call_tool()
        async def call_tool(name: str, arguments: dict[str, Any]) -> types.CallToolResult:
            return await self._call(name, arguments or {})

        return server

    def _bearer(self) -> str:
        request = self.server.request_context.request
        header = request.headers.get("authorization", "") if request is not None else ""
        return str(header.partition(" ")[2].strip())

    async def _call(self, name: str, arguments: Json) -> types.CallToolResult:
        handler = {
            "get_initial_context": self._initial_context,
            "get_content_type": self._get_content_type,
            "create_entry": self._create_entry,
            "get_entry": self._get_entry,
            "update_entry": self._update_entry,
            "publish_entry": self._publish_entry,
        }.get(name)
        token = self._bearer()
        for hook in list(self.before_call):
            hook(name, arguments)
        is_error = True
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.contentful.app),
            base_url="https://api.contentful.com",
            headers={"Authorization": f"Bearer {self.contentful.cma_token}"},
        ) as cma:
            try:
                if handler is None:
                    raise _ToolFailure(f"Unknown tool: {name}")
                if name != "get_initial_context" and token not in self._contexts:
                    raise _ToolFailure("Error: you must call get_initial_context first to load the Contentful context.")
                text = await handler(cma, arguments)
                if name in self.answer_override:
                    text = self.answer_override.pop(name)
                if name == "get_initial_context":
                    self._contexts.add(token)
                is_error = False
            except _ToolFailure as failure:
                text = failure.text
        self.calls.append(ToolCall(name, json.loads(json.dumps(arguments)), is_error, text))
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)], isError=is_error)

    # -- CMA plumbing ----------------------------------------------------------------------------

    @staticmethod
    def _path(args: Json, tail: str) -> str:
        space = args.get("spaceId") or ""
        env = args.get("environmentId") or "master"
        return f"/spaces/{space}/environments/{env}{tail}"

    @staticmethod
    async def _cma(
        cma: httpx.AsyncClient, method: str, path: str, *, body: Json | None = None, headers: Mapping[str, str] = {}
    ) -> Json:
        response = await cma.request(method, path, json=body, headers=dict(headers))
        payload = response.json() if response.content else {}
        if response.status_code >= 400:
            error_id = str((payload.get("sys") or {}).get("id") or response.status_code)
            message = str(payload.get("message") or response.reason_phrase)
            details = payload.get("details")
            extra = f" Details: {json.dumps(details, sort_keys=True)}" if details else ""
            raise _ToolFailure(f"Error: {error_id}: {message}{extra}")
        return payload if isinstance(payload, dict) else {}

    def _entry_xml(self, entry: Json) -> str:
        sys = entry.get("sys") or {}
        space = ((sys.get("space") or {}).get("sys") or {}).get("id", "")
        env = ((sys.get("environment") or {}).get("sys") or {}).get("id", "master")
        content_type = ((sys.get("contentType") or {}).get("sys") or {}).get("id", "")
        published = (
            f"<publishedVersion>{sys['publishedVersion']}</publishedVersion>" if "publishedVersion" in sys else ""
        )
        urn = f"<urn>crn:contentful:::content:spaces/{space}/environments/{env}/entries/{sys['id']}</urn>"
        return (
            f"<entry><sys><space><id>{space}</id></space><id>{sys['id']}</id><type>Entry</type>{published}"
            f"<version>{sys.get('version')}</version><contentType><id>{content_type}</id></contentType>"
            f"<createdAt>{sys.get('createdAt')}</createdAt><updatedAt>{sys.get('updatedAt')}</updatedAt></sys>"
            f"{urn if self.urn else ''}<fields>{json.dumps(entry.get('fields') or {}, sort_keys=True)}</fields>"
            f"<*>tags: none</*></entry>"
        )

    # -- tools -----------------------------------------------------------------------------------

    async def _initial_context(self, cma: httpx.AsyncClient, args: Json) -> str:
        spaces = ", ".join(sorted(self.contentful.spaces)) or "none"
        return (
            "You are connected to Contentful. Always pass spaceId and environmentId.\n"
            f"<context><spaces>{spaces}</spaces><*>instructions</*></context>"
        )

    async def _get_content_type(self, cma: httpx.AsyncClient, args: Json) -> str:
        content_type = await self._cma(cma, "GET", self._path(args, f"/content_types/{args.get('contentTypeId')}"))
        return "Content type retrieved successfully:\n" + json.dumps(content_type, sort_keys=True)

    async def _create_entry(self, cma: httpx.AsyncClient, args: Json) -> str:
        entry_id = uuid.uuid4().hex[:22]
        entry = await self._cma(
            cma,
            "PUT",
            self._path(args, f"/entries/{entry_id}"),
            body={"fields": args.get("fields") or {}},
            headers={"X-Contentful-Content-Type": str(args.get("contentTypeId") or "")},
        )
        return "Entry created successfully:\n" + self._entry_xml(entry)

    async def _get_entry(self, cma: httpx.AsyncClient, args: Json) -> str:
        entry = await self._cma(cma, "GET", self._path(args, f"/entries/{args.get('entryId')}"))
        return "Entry retrieved successfully:\n" + self._entry_xml(entry)

    async def _update_entry(self, cma: httpx.AsyncClient, args: Json) -> str:
        path = self._path(args, f"/entries/{args.get('entryId')}")
        current = await self._cma(cma, "GET", path)
        if args.get("version") != (current.get("sys") or {}).get("version"):
            raise _ToolFailure(
                "Error: VersionMismatch: Version mismatch error. The version you specified was incorrect. "
                "This may be due to someone else editing the content."
            )
        merged = {**(current.get("fields") or {}), **(args.get("fields") or {})}
        merged = {k: v for k, v in merged.items() if v != {}}
        entry = await self._cma(
            cma,
            "PUT",
            path,
            body={"fields": merged},
            headers={"X-Contentful-Version": str(args.get("version"))},
        )
        return "Entry updated successfully:\n" + self._entry_xml(entry)

    async def _publish_entry(self, cma: httpx.AsyncClient, args: Json) -> str:
        ids = args.get("entryId")
        if not isinstance(ids, list):
            raise _ToolFailure("Input validation error: entryId must be an array of entry ids")
        if self.refuse_publish:
            raise _ToolFailure(
                "Error: the app installation does not have permission to use the tool publish_entry. "
                "Ask a space admin to grant the permission."
            )
        out = []
        for entry_id in ids:
            path = self._path(args, f"/entries/{entry_id}")
            current = await self._cma(cma, "GET", path)
            version = str((current.get("sys") or {}).get("version"))
            entry = await self._cma(cma, "PUT", path + "/published", headers={"X-Contentful-Version": version})
            out.append(self._entry_xml(entry))
        return "Entries published successfully:\n" + "\n".join(out)

    # -- HTTP -------------------------------------------------------------------------------------

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers") or []}
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip() or not self.validate(token.strip()):
            self.http_401 += 1
            await respond(
                send,
                401,
                {"error": "invalid_token", "error_description": "Missing or invalid access token"},
                {"www-authenticate": 'Bearer error="invalid_token"'},
            )
            return
        lost = False
        if scope["method"] == "POST" and self._lose:
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            try:
                rpc = json.loads(body)
            except ValueError:
                rpc = None
            tool = ((rpc or {}).get("params") or {}).get("name") if isinstance(rpc, dict) else None
            if rpc and rpc.get("method") == "tools/call" and tool in self._lose:
                self._lose.remove(tool)
                lost = True
            receive = replay(body, receive)
        real_send = send
        if lost:

            async def swallow(message: Any) -> None:
                return None

            send = swallow
        transport = StreamableHTTPServerTransport(mcp_session_id=None, is_json_response_enabled=True)
        async with anyio.create_task_group() as tg:

            async def run(*, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
                async with transport.connect() as (read, write):
                    task_status.started()
                    await self.server.run(read, write, self.server.create_initialization_options(), stateless=True)

            await tg.start(run)
            try:
                await transport.handle_request(scope, receive, send)
            finally:
                with anyio.CancelScope(shield=True):
                    await transport.terminate()
        if lost:
            await respond(real_send, 502, {"error": "bad gateway"})


@contextlib.contextmanager
def serve(fake: FakeContentfulMcp, *, host: str = "127.0.0.1") -> Iterator[str]:
    """Run the fake on a free loopback port in a thread; yields the MCP endpoint URL."""
    with serve_app(fake.app, name="contentful-mcp", host=host) as url:
        yield url + MCP_PATH

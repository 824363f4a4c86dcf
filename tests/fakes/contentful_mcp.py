r"""A fake of Contentful's hosted MCP server (``https://mcp.contentful.com/mcp``), backed by a ``FakeContentful``.

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

Answers are shaped as the hosted server (``contentful/contentful-mcp-server``, ``utils/formatters.ts``)
shapes them: ``"<message>: \n"`` followed by the CMA's JSON rendered by fast-xml-parser's ``XMLBuilder``
(``format: true``, two-space indent, ``suppressEmptyNode``, ``processEntities: false``): every key a tag,
every array item a repeated tag, null / empty values self-closed, empty arrays left out, booleans and
numbers as JS prints them, and text NOT escaped — so a value holding ``<`` or ``&`` makes it invalid XML::

    Entry created successfully:
    <newEntry>
      <metadata/>
      <sys>
        <id>5KsDBWseXY6QegucYAoacS</id>
        <type>Entry</type>
        <space>
          <sys>
            <type>Link</type>
            <linkType>Space</linkType>
            <id>s1</id>
          </sys>
        </space>
        …
        <version>1</version>
      </sys>
      <fields>
        <title>
          <en-US>Hello</en-US>
        </title>
      </fields>
    </newEntry>

(``get_entry`` wraps it in ``<entry>``, ``update_entry`` in ``<updatedEntry>``, ``get_content_type`` in
``<contentType>``; a single ``publish_entry`` answers only ``<entryId>``.) Errors are ``isError`` results
``"Error <doing>: <message>"``, where a CMA error's message is the JSON contentful-management.js makes of
it (``{"status": 409, "statusText": "Conflict", "message": …, "details": …, "request": …,
"requestId": …}``) and ``update_entry``'s own version check says ``Version conflict: the entry has
changed since you read it (your version: N, current version: M). …``. Ids are server-assigned, 22
base62 characters. ``urn=True`` adds a ``<urn>`` to the entry's ``sys`` (older answers had one).

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
import secrets
import string
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx
from mcp import types
from mcp.server.lowlevel import Server
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tests.fakes import asgi
from tests.fakes.asgi import ToolCall
from tests.fakes.contentful import FakeContentful
from tests.fakes.loopback import serve_app

__all__ = ["IN_PROCESS_URL", "TOOLS", "FakeContentfulMcp", "ToolCall", "serve", "xml_build"]

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


_BASE62 = string.ascii_letters + string.digits


def _js_text(value: Any) -> str:
    """A primitive as JavaScript's ``'' + value`` prints it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _xml_nodes(obj: Mapping[str, Any], level: int) -> str:
    pad = "  " * level
    out = ""
    for key, value in obj.items():
        items = value if isinstance(value, list) else [value]  # an array is its items as repeated tags
        for item in items:
            if item is None:
                out += f"{pad}<{key}/>\n"
            elif isinstance(item, Mapping):
                inner = _xml_nodes(item, level + 1)
                out += f"{pad}<{key}>\n{inner}{pad}</{key}>\n" if inner else f"{pad}<{key}/>\n"
            else:
                text = _js_text(item)  # not escaped: processEntities is off
                out += f"{pad}<{key}>{text}</{key}>\n" if text != "" else f"{pad}<{key}/>\n"
    return out


def xml_build(obj: Mapping[str, Any]) -> str:
    """Render ``obj`` as XML the way the server's XML builder does.

    ``obj`` as fast-xml-parser's ``XMLBuilder({format: true, indentBy: "  ", suppressEmptyNode: true,
    ignoreAttributes: false, processEntities: false}).build(obj)`` renders it (written from its
    documented behaviour).
    """
    return _xml_nodes(obj, 0)


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
        urn: bool = False,
    ) -> None:
        """A hosted-MCP front over ``contentful``, with its own bearer token (``self.token``)."""
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
        self.app = Starlette(routes=[Route(MCP_PATH, asgi.Endpoint(self), methods=["GET", "POST", "DELETE"])])

    # -- test helpers ----------------------------------------------------------------------------

    def tool_calls(self, tool: str | None = None) -> list[ToolCall]:
        """The tool calls answered so far, of ``tool`` only if given."""
        return asgi.calls_of(self.calls, tool)

    def lose_next_answer(self, tool: str) -> None:
        """The next call of ``tool`` runs, then its HTTP answer is replaced by a 502."""
        self._lose.append(tool)

    # -- server ----------------------------------------------------------------------------------

    def _build_server(self) -> Server[Any, Any]:
        return asgi.tool_server("fake-contentful-mcp", TOOLS, self._call)

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
        cma: httpx.AsyncClient,
        method: str,
        path: str,
        *,
        doing: str,
        body: Json | None = None,
        headers: Mapping[str, str] = {},
    ) -> Json:
        response = await cma.request(method, path, json=body, headers=dict(headers))
        payload = response.json() if response.content else {}
        if response.status_code >= 400:
            # contentful-management.js turns a CMA error into an Error whose message is this JSON (its
            # name is the sys.id); the server's withErrorHandling prefixes "Error <doing>: ".
            error = {
                "status": response.status_code,
                "statusText": response.reason_phrase,
                "message": payload.get("message") or response.reason_phrase,
                "details": payload.get("details") or {},
                "request": {"url": path, "method": method.lower(), "payloadData": body},
                "requestId": payload.get("requestId"),
            }
            raise _ToolFailure(f"Error {doing}: {json.dumps(error, indent=2)}")
        return payload if isinstance(payload, dict) else {}

    def _answer(self, message: str, data: Json) -> str:
        r"""``"<message>: \n<xml>\n"`` as the server's ``formatResponse`` makes it (falsy values left out)."""
        if self.urn:
            for value in data.values():
                sys = value.get("sys") if isinstance(value, dict) else None
                if isinstance(sys, dict) and sys.get("type") == "Entry":
                    space = ((sys.get("space") or {}).get("sys") or {}).get("id", "")
                    env = ((sys.get("environment") or {}).get("sys") or {}).get("id", "master")
                    sys["urn"] = f"crn:contentful:::content:spaces/{space}/environments/{env}/entries/{sys['id']}"
        return f"{message}: \n{xml_build({k: v for k, v in data.items() if v})}\n"

    # -- tools -----------------------------------------------------------------------------------

    async def _initial_context(self, cma: httpx.AsyncClient, args: Json) -> str:
        spaces = ", ".join(sorted(self.contentful.spaces)) or "none"
        return (
            "You are connected to Contentful. Always pass spaceId and environmentId.\n"
            f"<context><spaces>{spaces}</spaces><*>instructions</*></context>"
        )

    async def _get_content_type(self, cma: httpx.AsyncClient, args: Json) -> str:
        path = self._path(args, f"/content_types/{args.get('contentTypeId')}")
        content_type = await self._cma(cma, "GET", path, doing="retrieving content type")
        return self._answer("Content type retrieved successfully", {"contentType": content_type})

    async def _create_entry(self, cma: httpx.AsyncClient, args: Json) -> str:
        entry_id = "".join(secrets.choice(_BASE62) for _ in range(22))
        entry = await self._cma(
            cma,
            "PUT",
            self._path(args, f"/entries/{entry_id}"),
            doing="creating entry",
            body={"fields": args.get("fields") or {}},
            headers={"X-Contentful-Content-Type": str(args.get("contentTypeId") or "")},
        )
        return self._answer("Entry created successfully", {"newEntry": entry})

    async def _get_entry(self, cma: httpx.AsyncClient, args: Json) -> str:
        entry = await self._cma(
            cma, "GET", self._path(args, f"/entries/{args.get('entryId')}"), doing="retrieving entry"
        )
        return self._answer("Entry retrieved successfully", {"entry": entry})

    async def _update_entry(self, cma: httpx.AsyncClient, args: Json) -> str:
        path = self._path(args, f"/entries/{args.get('entryId')}")
        current = await self._cma(cma, "GET", path, doing="updating entry")
        have = (current.get("sys") or {}).get("version")
        if args.get("version") != have:
            raise _ToolFailure(
                "Error updating entry: Version conflict: the entry has changed since you read it "
                f"(your version: {args.get('version')}, current version: {have}). Re-fetch the entry with "
                "get_entry and retry the update with the latest version."
            )
        merged = {**(current.get("fields") or {}), **(args.get("fields") or {})}
        merged = {k: v for k, v in merged.items() if v != {}}
        entry = await self._cma(
            cma,
            "PUT",
            path,
            doing="updating entry",
            body={"fields": merged},
            headers={"X-Contentful-Version": str(args.get("version"))},
        )
        return self._answer("Entry updated successfully", {"updatedEntry": entry})

    async def _publish_entry(self, cma: httpx.AsyncClient, args: Json) -> str:
        ids = args.get("entryId")
        if not isinstance(ids, list):
            raise _ToolFailure("Input validation error: entryId must be an array of entry ids")
        if self.refuse_publish:
            raise _ToolFailure(
                "Error publishing entry: the app installation does not have permission to use the tool publish_entry. "
                "Ask a space admin to grant the permission."
            )
        for entry_id in ids:
            path = self._path(args, f"/entries/{entry_id}")
            current = await self._cma(cma, "GET", path, doing="publishing entry")
            version = str((current.get("sys") or {}).get("version"))
            await self._cma(
                cma, "PUT", path + "/published", doing="publishing entry", headers={"X-Contentful-Version": version}
            )
        if len(ids) == 1:  # the server publishes one entry directly and answers only its id
            return self._answer("Entry published successfully", {"entryId": ids[0]})
        # several: a bulk action, answered with its status and the ids
        return self._answer("Entry(s) published successfully", {"status": "succeeded", "entryIds": ids})

    # -- HTTP -------------------------------------------------------------------------------------

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one HTTP request to the MCP endpoint (401, lost answers, then the MCP session)."""
        if await asgi.refuse_bad_bearer(scope, send, self.validate):
            self.http_401 += 1
            return
        lost = False
        if scope["method"] == "POST" and self._lose:
            body = await asgi.read_body(receive)
            rpc = asgi.json_rpc(body)
            tool = ((rpc or {}).get("params") or {}).get("name") if isinstance(rpc, dict) else None
            if rpc and rpc.get("method") == "tools/call" and tool in self._lose:
                self._lose.remove(tool)
                lost = True
            receive = asgi.replay(body, receive)
        real_send = send
        if lost:

            async def swallow(message: Any) -> None:
                return None

            send = swallow
        await asgi.run_stateless(self.server, scope, receive, send, json_response=True)
        if lost:
            await asgi.respond(real_send, 502, {"error": "bad gateway"})


@contextlib.contextmanager
def serve(fake: FakeContentfulMcp, *, host: str = "127.0.0.1") -> Iterator[str]:
    """Run the fake on a free loopback port in a thread; yields the MCP endpoint URL."""
    with serve_app(fake.app, name="contentful-mcp", host=host) as url:
        yield url + MCP_PATH

"""Small ASGI and MCP pieces the fake MCP servers share.

The fake MCP servers (``notion_mcp``, ``contentful_mcp``) differ in their tools and in what they inject
(an HTTP error before a call, a lost answer after one); the way they check the bearer token, read a
JSON-RPC body to decide, and run one stateless MCP session per request is the same, and lives here.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
from mcp import types
from mcp.server.lowlevel import Server
from mcp.server.streamable_http import StreamableHTTPServerTransport
from starlette.types import Receive, Scope, Send

Json = dict[str, Any]


@dataclass(frozen=True)
class ToolCall:
    """One tool call a fake MCP server answered.

    Attributes:
        tool: The tool's name.
        arguments: The arguments as sent (a JSON copy).
        is_error: Whether the answer was a tool error.
        text: The answer's text content.
    """

    tool: str
    arguments: Json
    is_error: bool
    text: str = ""


def calls_of(calls: Sequence[ToolCall], tool: str | None) -> list[ToolCall]:
    """The calls of ``tool`` (None: every call), in order."""
    return [c for c in calls if tool is None or c.tool == tool]


def tool_server(
    name: str, tools: Sequence[types.Tool], call: Callable[[str, Json], Awaitable[types.CallToolResult]]
) -> Server[Any, Any]:
    """A low-level MCP server named ``name`` listing ``tools`` and answering each call with ``call(name, args)``."""
    server: Server[Any, Any] = Server(name)

    @server.list_tools()
    async def list_tools() -> list[types.Tool]:
        return list(tools)

    @server.call_tool()
    async def call_tool(tool: str, arguments: dict[str, Any]) -> types.CallToolResult:
        return await call(tool, arguments or {})

    return server


async def refuse_bad_bearer(
    scope: Scope, send: Send, validate: Callable[[str], bool], *, resource_metadata: bool = False
) -> bool:
    """Answer 401 unless the request's bearer token validates, as the hosted MCP servers do.

    By default the 401 is ``invalid_token`` with an OAuth error body, token or not. With
    ``resource_metadata`` it is what Notion's hosted server sends from behind Cloudflare's
    workers-oauth-provider: the challenge names the RFC 9728 resource metadata of the path asked for
    (``Bearer realm="OAuth", resource_metadata="…/.well-known/oauth-protected-resource/mcp"``), adds
    ``error="invalid_token"`` and an error body only when a token was sent (OAuth 2.1 §5.3.2: no
    credentials, no error code), and forbids caching.

    Returns:
        True when the request was refused (the 401 is sent), False when it may go on.
    """
    headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers") or []}
    scheme, _, token = headers.get("authorization", "").partition(" ")
    presented = scheme.lower() == "bearer" and bool(token.strip())
    if presented and validate(token.strip()):
        return False
    if not resource_metadata:
        await respond(
            send,
            401,
            {"error": "invalid_token", "error_description": "Missing or invalid access token"},
            {"www-authenticate": 'Bearer error="invalid_token"'},
        )
        return True
    origin = f"{scope.get('scheme', 'http')}://{headers.get('host', 'localhost')}"
    metadata = f"{origin}/.well-known/oauth-protected-resource{scope.get('path') or ''}"
    challenge = f'Bearer realm="OAuth", resource_metadata="{metadata}"'
    no_cache = {"cache-control": "no-store", "pragma": "no-cache"}
    if presented:
        body = {"error": "invalid_token", "error_description": "Invalid access token"}
        await respond(send, 401, body, {**no_cache, "www-authenticate": f'{challenge}, error="invalid_token"'})
        return True
    pairs = [(k.encode(), v.encode()) for k, v in {**no_cache, "www-authenticate": challenge}.items()]
    await send({"type": "http.response.start", "status": 401, "headers": [*pairs, (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})
    return True


async def read_body(receive: Receive) -> bytes:
    """The whole request body (hand it back to the transport with ``replay``)."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


def json_rpc(body: bytes) -> Any:
    """The JSON-RPC message in ``body``, or None when it is not JSON."""
    try:
        return json.loads(body)
    except ValueError:
        return None


async def run_stateless(
    server: Server[Any, Any], scope: Scope, receive: Receive, send: Send, *, json_response: bool
) -> None:
    """Serve one request with a fresh stateless MCP session of ``server`` (works in-process, no lifespan)."""
    transport = StreamableHTTPServerTransport(mcp_session_id=None, is_json_response_enabled=json_response)
    async with anyio.create_task_group() as tg:

        async def run(*, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
            async with transport.connect() as (read, write):
                task_status.started()
                await server.run(read, write, server.create_initialization_options(), stateless=True)

        await tg.start(run)
        try:
            await transport.handle_request(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await transport.terminate()


class Endpoint:
    """A fake's ``handle`` as a plain ASGI app (so Starlette routes ``/mcp`` without a trailing-slash redirect)."""

    def __init__(self, fake: Any) -> None:
        """Route to ``fake.handle``."""
        self.fake = fake

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Hand the request to the fake."""
        await self.fake.handle(scope, receive, send)


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands out ``body`` once more (it was read to look at the JSON-RPC method)."""
    sent = False

    async def again() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


async def respond(send: Send, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
    """Send a JSON response."""
    raw = json.dumps(body).encode()
    pairs = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    pairs += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": pairs})
    await send({"type": "http.response.body", "body": raw})

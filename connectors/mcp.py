"""MCP client transport: tool calls over streamable HTTP, with the HTTP toolkit's retries and typed errors.

Built on the ``mcp`` package, **major version 1** (``mcp>=1.28,<2``): ``mcp.client.streamable_http.
streamable_http_client(url, http_client=...)`` over an ``httpx.AsyncClient`` we configure. ``mcp`` 2.x
moved its HTTP stack to a different package (``httpx2``), so neither our ``httpx.Auth`` (the OAuth
provider's refresh-and-retry) nor ``connectors.http``'s transport would plug into it; and 1.x's older
``streamablehttp_client`` is deprecated (a warning, an error under our pytest settings). Moving to 2.x
is a port of this module, not a version bump.

Usage::

    async with open_mcp_session("https://mcp.notion.com/mcp", auth=provider, service="Notion MCP",
                                credential="notion-mcp:acme") as mcp:
        result = await mcp.call("notion-fetch", {"id": "collection://…"})
        result.text, result.structured, result.data()

One HTTP request travels: ``mcp`` builds the JSON-RPC POST → our client → ``auth`` (a bearer token;
the OAuth provider refreshes and retries once on a 401) → ``connectors.http.RetryTransport`` (pace and
retry per credential: 429 with ``Retry-After``, 503/529/408, connection failures; ambiguous failures —
read timeouts, 500/502/504 — only for read-only tools and protocol requests, never for a create) →
the network.

Errors (the ``connectors.core`` tree)::

    where                                        raised as
    ───────────────────────────────────────────  ─────────────────────────────────────────────────
    HTTP 401/403 (after the Auth's own refresh)  AuthError (HTTPAuthError, status_code 401/403)
    HTTP 429 over the toolkit's max_wait         RateLimited(retry_after) (HTTPRateLimited)
    HTTP 5xx/408, timeouts, connection failures  TransientError (after the toolkit's retries)
    HTTP 413 (this request is too large)         RecordError (HTTPRecordError)
    HTTP 404 with no session, other HTTP 4xx     ConfigError (the URL is not an MCP endpoint)
    a plain http:// URL to a remote host         ConfigError (the token would travel in clear text)
    no answer within call_timeout                TransientError
    JSON-RPC "method not found"/"invalid params" ConfigError
    tool result isError, and:
      structuredContent.error.code rate_limited  RateLimited(retry_after=retry_after_seconds)
      "429" / "rate limit" in the text           RateLimited(retry_after from the text, else 60 s)
      code unauthorized/restricted_resource,
        status 401/403, "invalid_token" text     AuthError
      unknown tool, input validation error       ConfigError   (our call is wrong: retrying cannot help,
                                                                and every record would fail alike)
      status 5xx/408/409, code *_error of a
        server (bad_gateway, conflict_error…),
        "internal error"/"timed out" text        TransientError
      anything else                              McpToolError (a RecordError: this record only)

Tool-level rate limits (the server already waited out short ones) are waited out in-process when
``retry_after <= max_wait``, at most ``rate_limit_attempts`` times, blocking the whole session
meanwhile — the call was rejected, so resending it is safe; longer waits raise ``RateLimited`` for the
orchestrator to reschedule.

Why errors are "synthesized": ``mcp`` sends each request from a background task and, on a non-2xx
answer or a transport exception, lets that task crash the session's task group — every call in flight
is cancelled and the cause surfaces only at the context exit. Our client instead turns a failed POST of
a JSON-RPC request into a JSON-RPC error answer naming the typed exception, and :meth:`McpSession.call`
re-raises that exception in the caller's task: one failed write fails that write only, concurrent calls
go on, and the session stays usable.

Secrets: error messages go through ``connectors.http.redact_text`` (bearer tokens, token-shaped strings,
``key=value`` secrets), the ``Authorization`` header is never logged, and URLs are redacted.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import inspect
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Collection, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict, cast

import anyio
import httpx

from connectors.auth.tokens import TokenStore
from connectors.core import (
    AuthError,
    ConfigError,
    RateLimited,
    RecordError,
    SyncError,
    TransientError,
    auth_error_in_chain,
)
from connectors.http import (
    DEFAULT_MAX_WAIT,
    DEFAULT_USER_AGENT,
    Clock,
    HttpSettings,
    Rate,
    RetryPolicy,
    RetryTransport,
    Sleep,
    error_for_response,
    redact_text,
    redact_url,
    retry_options,
)

try:
    from mcp import ClientSession
    from mcp import types as mcp_types
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared.exceptions import McpError
except ImportError as _err:  # pragma: no cover - depends on the environment
    raise ImportError("connectors.mcp needs the MCP SDK, major version 1: pip install 'mcp>=1.28,<2'") from _err

__all__ = [
    "DEFAULT_CALL_TIMEOUT",
    "DEFAULT_RATE_LIMIT_WAIT",
    "DEFAULT_TIMEOUT",
    "AuthLike",
    "BearerAuth",
    "McpConnectionArgs",
    "McpConnector",
    "McpSession",
    "McpToolError",
    "TokenSource",
    "ToolInfo",
    "ToolResult",
    "classify_tool_error",
    "open_mcp_session",
    "pop_mcp_connection",
]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0, read=120.0)
"""Per HTTP request. Reads get longer: a tool call's answer (or its SSE stream) may take a while."""

DEFAULT_CALL_TIMEOUT = 120.0
"""Seconds a tool call may take, end to end, before it is a ``TransientError``."""

DEFAULT_RATE_LIMIT_WAIT = 60.0
"""Wait assumed for a rate-limit tool error that names none (Notion's budgets are per 60 s window)."""

DEFAULT_RATE_LIMIT_ATTEMPTS = 3

PROTOCOL_METHODS = frozenset({"initialize", "ping", "tools/list", "resources/list", "prompts/list"})
"""JSON-RPC requests that change nothing on the server: retried even after ambiguous failures."""

_TRANSPORT_FAILURE = -32099  # JSON-RPC error code of the answers we synthesize for failed requests
_FAILURE_KEY = "durable_sync_failure"

# JSON-RPC standard codes.
_METHOD_NOT_FOUND = -32601
_INVALID_PARAMS = -32602
_REQUEST_TIMEOUT = 408  # what mcp's ClientSession reports when no answer came in time
_SESSION_TERMINATED = 32600  # mcp's answer for a 404 on a session that the server forgot

_RETRY_AFTER_TEXT = re.compile(
    r"(?:retry[ _-]?after|try again in|wait)\D{0,20}?(\d+(?:\.\d+)?)\s*(ms|s|sec|second)?", re.I
)
_RATE_LIMIT_TEXT = re.compile(r"\b429\b|rate[ _-]?limit", re.I)
_AUTH_TEXT = re.compile(
    r"\b401\b|unauthori[sz]ed|invalid[_ ]token|invalid_grant|token (?:is )?(?:expired|revoked)", re.I
)
_CONFIG_TEXT = re.compile(
    r"unknown tool|tool \S+ not found|no such tool|input validation error|invalid arguments|"
    r"invalid_arguments|invalid params",
    re.I,
)
# Error codes a tool may name (Notion's REST codes, which the hosted server passes on).
_AUTH_CODES = frozenset({"unauthorized", "invalid_token", "invalid_grant", "restricted_resource"})
_TRANSIENT_CODES = frozenset(
    {
        "internal_server_error",
        "bad_gateway",
        "service_unavailable",
        "gateway_timeout",
        "service_overload",
        "conflict_error",
    }
)
_TRANSIENT_TEXT = re.compile(
    r"\b50[0234]\b|\b529\b|internal (?:server )?error|service[_ ]unavailable|overload|timed? ?out|"
    r"temporarily unavailable|bad gateway",
    re.I,
)


TokenSource = Callable[[], "str | Awaitable[str | None] | None"]
"""A zero-argument callable returning the current bearer token (or an awaitable of it)."""


# --------------------------------------------------------------------------------------------------
# Results and errors


@dataclass(frozen=True)
class ToolResult:
    """The outcome of one tool call.

    Attributes:
        tool: The tool's name.
        text: The text content blocks, joined with blank lines.
        structured: ``structuredContent``, when the server sent one.
        is_error: The server flagged the result as a tool error.
    """

    tool: str
    text: str
    structured: dict[str, Any] | None = None
    is_error: bool = False

    def data(self) -> Any:
        """``structured`` if sent, else the text parsed as JSON, else None."""
        if self.structured is not None:
            return self.structured
        text = self.text.strip()
        if text[:1] in ("{", "["):
            try:
                return json.loads(text)
            except ValueError:
                return None
        return None


@dataclass(frozen=True)
class ToolInfo:
    """A tool the server offers."""

    name: str
    description: str = ""
    input_schema: dict[str, Any] = field(default_factory=dict)


class McpToolError(RecordError):
    """A tool answered with an error that concerns this call only (a validation error, say).

    Attributes:
        tool: The tool's name.
        code: The error code the server gave, if any.
        text: The (redacted) error text.
        structured: The (unredacted) ``structuredContent``, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        tool: str,
        text: str = "",
        code: str | None = None,
        structured: dict[str, Any] | None = None,
        primary_key: str | None = None,
    ) -> None:
        """Keep the tool's name, its error text and its structured answer."""
        super().__init__(message, primary_key=primary_key)
        self.tool = tool
        self.text = text
        self.code = code
        self.structured = structured


def _structured_error(result: ToolResult) -> dict[str, Any]:
    data = result.data()
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            return error
        if isinstance(data.get("code"), str):
            return data
    return {}


def status_is_auth(error: Mapping[str, Any]) -> bool:
    """Whether a structured tool error names HTTP status 401 or 403."""
    return error.get("status") in (401, 403)


def _retry_after_from_text(text: str) -> float | None:
    match = _RETRY_AFTER_TEXT.search(text)
    if not match:
        return None
    value = float(match.group(1))
    return value / 1000.0 if (match.group(2) or "").lower() == "ms" else value


def classify_tool_error(
    result: ToolResult, *, service: str = "MCP", credential: str | None = None, secrets: Collection[str] = ()
) -> SyncError:
    """The ``connectors.core`` error for a tool result flagged ``isError`` (see the module table)."""
    error = _structured_error(result)
    code = str(error.get("code") or "") or None
    text = redact_text(result.text or json.dumps(error), secrets)
    message = f"{service} {result.tool}: {text}" if text else f"{service} {result.tool}: tool error"
    if code == "rate_limited" or (code is None and _RATE_LIMIT_TEXT.search(result.text)):
        wait = error.get("retry_after_seconds")
        if not isinstance(wait, (int, float)) or isinstance(wait, bool):
            wait = _retry_after_from_text(result.text)
        reason = error.get("rate_limit_reason")
        if reason:
            message += f" (limit: {redact_text(str(reason), secrets, limit=100)})"
        return RateLimited(message, retry_after=float(wait) if wait is not None else DEFAULT_RATE_LIMIT_WAIT)
    if code in _AUTH_CODES or status_is_auth(error) or (code is None and _AUTH_TEXT.search(result.text)):
        return AuthError(message, credential=credential)
    if code in ("invalid_arguments", "unknown_tool") or _CONFIG_TEXT.search(result.text):
        return ConfigError(message)
    status = error.get("status")
    if code in _TRANSIENT_CODES or (isinstance(status, int) and (status >= 500 or status in (408, 409))):
        return TransientError(message)
    if code is None and _TRANSIENT_TEXT.search(result.text):
        return TransientError(message)
    return McpToolError(message, tool=result.tool, text=text, code=code, structured=result.structured)


# --------------------------------------------------------------------------------------------------
# Auth


class BearerAuth(httpx.Auth):
    """``Authorization: Bearer <token>`` from a static token or a zero-argument callable.

    The callable is asked on every request (so a token renewed elsewhere is picked up); it may be
    async. For OAuth with refresh-and-retry on a 401, pass the OAuth provider's ``httpx.Auth`` instead.
    """

    def __init__(self, token: str | TokenSource) -> None:
        """Send ``token`` (or what the token source returns at each request)."""
        self._token = token

    def _sync_token(self) -> str | None:
        if isinstance(self._token, str):
            return self._token
        value = self._token()
        if inspect.isawaitable(value):
            raise ConfigError("BearerAuth: an async token callable needs an async client")
        return value

    async def _async_token(self) -> str | None:
        if isinstance(self._token, str):
            return self._token
        value = self._token()
        return await value if inspect.isawaitable(value) else value

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Refuse synchronous use: the token source may be async."""
        token = self._sync_token()
        if token:
            request.headers["Authorization"] = f"Bearer {token}"
        yield request

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Send the request with ``Authorization: Bearer <current token>``."""
        token = await self._async_token()
        if token:
            request.headers["Authorization"] = f"Bearer {token}"
        yield request


def _as_auth(auth: httpx.Auth | TokenSource | str | None) -> httpx.Auth | None:
    if auth is None or isinstance(auth, httpx.Auth):
        return auth
    if isinstance(auth, str) or callable(auth):
        return BearerAuth(auth)
    raise ConfigError(f"auth must be an httpx.Auth or a token callable, got {type(auth).__name__}")


# --------------------------------------------------------------------------------------------------
# The HTTP client under mcp


def _json_rpc(request: httpx.Request) -> dict[str, Any] | None:
    if request.method != "POST":
        return None
    try:
        message = json.loads(request.content or b"null")
    except (ValueError, httpx.RequestNotRead):
        return None
    return message if isinstance(message, dict) else None


def _path(request: httpx.Request) -> str:
    return request.url.path or "/"


class _McpHttpClient(httpx.AsyncClient):
    """The ``httpx.AsyncClient`` mcp sends through: failed JSON-RPC requests become JSON-RPC errors.

    See the module docstring ("Why errors are synthesized"). Requests other than JSON-RPC POSTs (the
    GET event stream, the DELETE that ends a session) pass through untouched: mcp handles their
    failures itself (logs them) without harming the session.
    """

    def __init__(
        self,
        *,
        service: str,
        credential: str | None,
        read_only_tools: Collection[str],
        inner: httpx.AsyncClient | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.service = service
        self.credential = credential
        self.read_only_tools = frozenset(read_only_tools)
        self.failures: dict[str, SyncError] = {}
        self._inner = inner

    def build_request(self, *args: Any, **kwargs: Any) -> httpx.Request:
        if self._inner is not None:
            return self._inner.build_request(*args, **kwargs)
        return super().build_request(*args, **kwargs)

    async def aclose(self) -> None:
        try:
            if self._inner is not None:
                await self._inner.aclose()
        finally:
            await super().aclose()

    def _mark_safety(self, request: httpx.Request, message: Mapping[str, Any]) -> None:
        method = message.get("method")
        if method == "tools/call":
            tool = (message.get("params") or {}).get("name")
            safe = tool in self.read_only_tools
        else:
            safe = method in PROTOCOL_METHODS
        request.extensions = {**request.extensions, **retry_options(retry_ambiguous=safe)}

    async def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:  # type: ignore[override]
        message = _json_rpc(request)
        if message is None:
            if self._inner is not None:
                return await self._inner.send(request, **kwargs)
            return await super().send(request, **kwargs)
        self._mark_safety(request, message)
        failure: SyncError
        try:
            if self._inner is not None:
                response = await self._inner.send(request, **kwargs)
            else:
                response = await super().send(request, **kwargs)
        except SyncError as err:  # the toolkit gave up: RateLimited, TransientError, ConfigError
            failure = err
        except httpx.TransportError as err:  # a custom factory's client has no toolkit under it
            failure = TransientError(f"{self.service} POST {_path(request)} -> {type(err).__name__}")
        else:
            status = response.status_code
            if status < 400 or (status == 404 and "mcp-session-id" in request.headers):
                return response  # mcp handles successes, redirects and expired sessions itself
            try:
                await response.aread()
            finally:
                await response.aclose()
            failure = error_for_response(response, service=self.service, credential=self.credential)
            if status != 413 and not isinstance(failure, (AuthError, RateLimited, TransientError)):
                # 404 without a session, 405, 406, 400: the endpoint or our protocol is wrong, for every
                # call alike. (413, a request too large, concerns this call only: a RecordError.)
                failure = ConfigError(f"{failure} (is {redact_url(request.url)} the MCP endpoint?)")
        return self._failed(request, message, failure)

    def _failed(self, request: httpx.Request, message: Mapping[str, Any], failure: SyncError) -> httpx.Response:
        rpc_id = message.get("id")
        if rpc_id is None or "method" not in message:
            # A notification: nothing waits for an answer. The next request meets the same failure.
            logger.warning("%s: notification %s failed: %s", self.service, message.get("method"), failure)
            return httpx.Response(202, request=request)
        key = uuid.uuid4().hex
        self.failures[key] = failure
        body = {
            "jsonrpc": "2.0",
            "id": rpc_id,
            "error": {"code": _TRANSPORT_FAILURE, "message": str(failure), "data": {_FAILURE_KEY: key}},
        }
        return httpx.Response(200, json=body, request=request)

    def take_failure(self, err: McpError) -> SyncError | None:
        """The typed exception behind one of our synthesized JSON-RPC errors, if ``err`` is one."""
        if err.error.code != _TRANSPORT_FAILURE or not isinstance(err.error.data, dict):
            return None
        return self.failures.pop(str(err.error.data.get(_FAILURE_KEY)), None)


# --------------------------------------------------------------------------------------------------
# The session


class McpSession:
    """One initialized MCP session; see :func:`open_mcp_session`. Safe for concurrent calls."""

    def __init__(
        self,
        session: ClientSession,
        client: _McpHttpClient,
        *,
        service: str,
        credential: str | None,
        call_timeout: float,
        max_wait: float,
        rate_limit_attempts: int,
        sleep: Sleep,
        clock: Clock,
    ) -> None:
        """Wrap an initialized ``ClientSession`` and its HTTP client."""
        self._session = session
        self._client = client
        self.service = service
        self.credential = credential
        self.call_timeout = call_timeout
        self.max_wait = max_wait
        self.rate_limit_attempts = max(1, rate_limit_attempts)
        self._sleep = sleep
        self._clock = clock
        self._not_before = 0.0
        self._tools: list[ToolInfo] | None = None

    def _translate(self, where: str, err: McpError, *, per_call: bool) -> SyncError:
        failure = self._client.take_failure(err)
        if failure is not None:
            return failure
        code = err.error.code
        text = redact_text(err.error.message or "")
        message = f"{self.service} {where}: {text or 'error'} (JSON-RPC {code})"
        if code in (_METHOD_NOT_FOUND, _INVALID_PARAMS):
            return ConfigError(message)
        if code in (_REQUEST_TIMEOUT, _SESSION_TERMINATED):
            return TransientError(message)
        if per_call:
            # A server fault on one call: this record only, so a poison record cannot stall the pass.
            return McpToolError(message, tool=where, text=text, code=str(code))
        return TransientError(message)

    async def _wait_unblocked(self) -> None:
        while (wait := self._not_before - self._clock()) > 0:
            await self._sleep(wait)

    async def call(self, tool: str, arguments: Mapping[str, Any] | None = None, *, check: bool = True) -> ToolResult:
        """Call a tool.

        Args:
            tool: The tool's name.
            arguments: Its arguments.
            check: Raise on a tool error (classified, see the module table); False returns it.

        Raises:
            SyncError: See the module table.
        """
        attempt = 0
        while True:
            await self._wait_unblocked()
            try:
                raw = await self._session.call_tool(
                    tool, dict(arguments or {}), read_timeout_seconds=dt.timedelta(seconds=self.call_timeout)
                )
            except McpError as err:
                raise self._translate(tool, err, per_call=True) from None
            except (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream):
                raise TransientError(f"{self.service} {tool}: the MCP session is closed") from None
            except RuntimeError as err:
                if "structured content" not in str(err) and "output schema" not in str(err):
                    raise
                # mcp checks structured content against the tool's output schema: this answer only.
                raise McpToolError(
                    f"{self.service} {tool}: {redact_text(str(err))}", tool=tool, text=str(err)
                ) from None
            result = _result(tool, raw)
            if not result.is_error or not check:
                return result
            error = classify_tool_error(result, service=self.service, credential=self.credential)
            attempt += 1
            if (
                isinstance(error, RateLimited)
                and error.retry_after <= self.max_wait
                and attempt < self.rate_limit_attempts
            ):
                self._not_before = max(self._not_before, self._clock() + error.retry_after)
                logger.info(
                    "%s %s -> rate limited; retry %d/%d in %.1f s",
                    self.service,
                    tool,
                    attempt,
                    self.rate_limit_attempts - 1,
                    error.retry_after,
                )
                continue
            raise error

    async def tools(self) -> list[ToolInfo]:
        """The tools the server offers (listed once per session)."""
        if self._tools is None:
            try:
                listed = await self._session.list_tools()
            except McpError as err:
                raise self._translate("tools/list", err, per_call=False) from None
            self._tools = [ToolInfo(t.name, t.description or "", dict(t.inputSchema or {})) for t in listed.tools]
        return list(self._tools)

    async def tool_names(self) -> set[str]:
        """The names of the tools the server lists."""
        return {t.name for t in await self.tools()}


def _result(tool: str, raw: mcp_types.CallToolResult) -> ToolResult:
    texts = [block.text for block in raw.content if isinstance(block, mcp_types.TextContent)]
    structured = raw.structuredContent if isinstance(raw.structuredContent, dict) else None
    return ToolResult(tool, "\n\n".join(texts), structured, bool(raw.isError))


def _leaves(err: BaseException) -> list[BaseException]:
    if isinstance(err, BaseExceptionGroup):
        return [leaf for sub in err.exceptions for leaf in _leaves(sub)]
    return [err]


def _unwrap(err: BaseExceptionGroup[Any], service: str) -> BaseException:
    """The one exception that matters in a task-group failure (ours first), or a TransientError."""
    leaves = [e for e in _leaves(err) if not isinstance(e, asyncio.CancelledError)]
    for kind in (AuthError, ConfigError, RateLimited, SyncError):
        found = next((e for e in leaves if isinstance(e, kind)), None)
        if found is not None:
            return found
    if leaves and not all(isinstance(e, Exception) for e in leaves):
        return next(e for e in leaves if not isinstance(e, Exception))  # KeyboardInterrupt and the like
    if len(leaves) == 1 and not isinstance(leaves[0], (httpx.HTTPError, McpError, OSError)):
        return leaves[0]  # a bug in the caller's code: keep it as it is
    detail = "; ".join(sorted({type(e).__name__ for e in leaves})) or "cancelled"
    return TransientError(f"{service}: the MCP connection failed ({detail})")


@contextlib.asynccontextmanager
async def open_mcp_session(
    url: str,
    *,
    auth: httpx.Auth | TokenSource | str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
    httpx_client_factory: Callable[..., httpx.AsyncClient] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    service: str = "MCP",
    credential: str | None = None,
    rate: Rate | None = None,
    retry: RetryPolicy | None = None,
    read_only_tools: Collection[str] = (),
    call_timeout: float = DEFAULT_CALL_TIMEOUT,
    max_wait: float = DEFAULT_MAX_WAIT,
    rate_limit_attempts: int = DEFAULT_RATE_LIMIT_ATTEMPTS,
    sleep: Sleep | None = None,
    clock: Clock | None = None,
    allow_insecure: bool = False,
) -> AsyncIterator[McpSession]:
    """Open and initialize an MCP session over streamable HTTP; yields a :class:`McpSession`.

    Args:
        url: The MCP endpoint (``https://mcp.notion.com/mcp``).
        auth: An ``httpx.Auth`` (the OAuth provider's: bearer + refresh-and-retry once on a 401), or a
            zero-argument callable returning the bearer token (sync or async), or a static token.
        headers: Extra request headers.
        timeout: Per HTTP request.
        httpx_client_factory: ``(headers=, timeout=, auth=) -> httpx.AsyncClient``, mcp's factory
            protocol, for full control of the HTTP client. It replaces the toolkit's transport (no
            retries, pacing or limits from ``connectors.http`` then); errors are still typed.
        transport: The transport under the toolkit (``httpx.ASGITransport(app)`` for an in-process fake).
        service: Brand name for messages and logs (``"Notion MCP"``).
        credential: Key naming the credential (never the secret): shared limits and ``AuthError.credential``.
        rate: The credential's request rate (HTTP requests, protocol ones included).
        retry: The HTTP retry policy (``retry_ambiguous`` is decided per request; see the module docstring).
        read_only_tools: Tools safe to resend after an ambiguous failure (fetches, queries).
        call_timeout: Seconds a tool call may take.
        max_wait: Longest tool-level rate-limit wait slept in-process.
        rate_limit_attempts: Calls in all when a tool answers rate_limited.
        sleep: Awaitable sleep, injectable for tests.
        clock: Epoch seconds, injectable for tests.
        allow_insecure: Allow plain ``http://`` to a host that is not local (a bearer token would travel
            in clear text; ``localhost``, loopback addresses and ``*.test`` are always allowed).

    Raises:
        AuthError, RateLimited, TransientError, ConfigError: See the module docstring; raised when the
            session cannot be opened, or by the calls made inside the block.
    """
    _check_url(url, allow_insecure=allow_insecure)
    merged = httpx.Headers({"User-Agent": DEFAULT_USER_AGENT})
    merged.update(headers or {})
    resolved_auth = _as_auth(auth)
    inner = None
    client_kwargs: dict[str, Any] = {}
    if httpx_client_factory is not None:
        inner = httpx_client_factory(headers=dict(merged), timeout=_timeout(timeout), auth=resolved_auth)
    else:
        client_kwargs = {
            "headers": merged,
            "auth": resolved_auth,
            "timeout": _timeout(timeout),
            "transport": RetryTransport(
                transport, service=service, policy=retry, credential=credential, rate=rate, sleep=sleep, clock=clock
            ),
        }
    client = _McpHttpClient(
        service=service, credential=credential, read_only_tools=read_only_tools, inner=inner, **client_kwargs
    )
    entered = False
    try:
        async with (
            client,
            streamable_http_client(url, http_client=client) as (read, write, _),
            ClientSession(read, write) as session,
        ):
            try:
                await session.initialize()
            except McpError as err:
                raise client.take_failure(err) or TransientError(
                    f"{service}: initialize failed: {redact_text(err.error.message or '')}"
                ) from None
            entered = True
            yield McpSession(
                session,
                client,
                service=service,
                credential=credential,
                call_timeout=call_timeout,
                max_wait=max_wait,
                rate_limit_attempts=rate_limit_attempts,
                sleep=sleep or asyncio.sleep,
                clock=clock or time.time,
            )
    except BaseExceptionGroup as group:
        raise _unwrap(group, service) from None
    except (httpx.HTTPError, OSError) as err:
        if not entered:
            raise TransientError(f"{service}: cannot open the MCP session ({type(err).__name__})") from None
        raise


_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def _check_url(url: str, *, allow_insecure: bool) -> None:
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigError(f"MCP endpoint {redact_url(parsed)} is not an http(s) URL")
    host = parsed.host.lower()
    local = host in _LOCAL_HOSTS or host.endswith((".localhost", ".test")) or host.startswith("127.")
    if parsed.scheme == "http" and not local and not allow_insecure:
        raise ConfigError(
            f"MCP endpoint {redact_url(parsed)} is plain http: the bearer token would travel in clear text "
            "(use https, or allow_insecure=True for a trusted network)"
        )


def _timeout(timeout: float | httpx.Timeout) -> httpx.Timeout:
    return timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)


AuthLike = httpx.Auth | TokenSource | str
_UNSET: Any = object()  # "not given" where None is a meaning of its own (rate=None: no limiter)
"""What an MCP connector accepts as ``auth``: the OAuth provider's ``httpx.Auth``, a token callable or a token."""


class McpConnectionArgs(TypedDict, total=False):
    """The connection keywords every MCP connector takes, declared once (``Unpack[McpConnectionArgs]``).

    Attributes:
        auth: The OAuth provider's ``httpx.Auth``, a token callable or a token (default: the login kept
            in ``token_store`` for ``account``).
        token_store: Where ``durable-sync auth login`` keeps tokens.
        account: The login's account name (default: the connector's ``mcp_default_account``).
        mcp_url: The MCP endpoint (default: the connector's ``mcp_default_url``).
        http: Transport, sleep, clock and retry policy (:class:`~connectors.http.HttpSettings`).
        httpx_client_factory: mcp's client factory protocol, for full control.
        rate: Requests per second of the account (default: the connector's ``mcp_default_rate``).
        max_wait: Longest tool-level rate-limit wait slept in-process (longer: ``RateLimited``).
        call_timeout: Seconds one tool call may take.
    """

    auth: AuthLike | None
    token_store: TokenStore | None
    account: str
    mcp_url: str
    http: HttpSettings | None
    httpx_client_factory: Callable[..., httpx.AsyncClient] | None
    rate: Rate | None
    max_wait: float
    call_timeout: float


def pop_mcp_connection(options: dict[str, Any]) -> McpConnectionArgs:
    """Take the ``McpConnectionArgs`` keywords out of a connector's ``**options`` (they are removed).

    For a connector whose own keywords also travel as ``**options``: the rest goes to its other
    initializer, which still refuses an unknown keyword.

    Args:
        options: The keywords given to the constructor (a copy the caller may change).
    """
    keys = McpConnectionArgs.__optional_keys__
    return cast(McpConnectionArgs, {key: options.pop(key) for key in list(options) if key in keys})


class McpConnector:
    """Credential, endpoint and session plumbing shared by the connectors that speak MCP.

    Credential, endpoint and session plumbing shared by the connectors that speak MCP (Notion,
    Contentful): pauses and limits keyed on ``<credential_prefix>:<account>``, a fingerprint that
    changes on a new login, and one way to open a session.

    Subclasses set ``credential_prefix``, ``mcp_service`` and ``mcp_read_only_tools`` and call
    ``_init_mcp`` from their constructor.
    """

    name: str
    credential_prefix: str = "mcp"
    mcp_service: str = "MCP"
    mcp_read_only_tools: Collection[str] = frozenset()
    mcp_default_account: str = "mcp"
    mcp_default_url: str = ""
    mcp_default_rate: Rate | None = None

    def _init_mcp(
        self,
        *,
        auth: AuthLike | None = None,
        token_store: TokenStore | None = None,
        account: str | None = None,
        mcp_url: str | None = None,
        http: HttpSettings | None = None,
        httpx_client_factory: Callable[..., httpx.AsyncClient] | None = None,
        rate: Rate | None = _UNSET,
        max_wait: float = DEFAULT_MAX_WAIT,
        call_timeout: float = DEFAULT_CALL_TIMEOUT,
    ) -> None:
        """Remember the credential, the endpoint and the HTTP settings (nothing is opened yet).

        The keywords are ``McpConnectionArgs``; what is not given takes the class's ``mcp_default_*``.
        """
        account = self.mcp_default_account if account is None else account
        if not account:
            raise ConfigError(f"{type(self).__name__}: account must be non-empty")
        self.auth = auth
        self.token_store = token_store
        self.account = account
        self.mcp_url = mcp_url if mcp_url is not None else self.mcp_default_url
        self.http = http if http is not None else HttpSettings()
        self.httpx_client_factory = httpx_client_factory
        self.rate = self.mcp_default_rate if rate is _UNSET else rate
        self.max_wait = max_wait
        self.call_timeout = call_timeout

    @property
    def credential_key(self) -> str:
        """The pause scope and limiter key: ``<prefix>:<account>`` (stable across token refreshes)."""
        return f"{self.credential_prefix}:{self.account}"

    @property
    def rate_limit_key(self) -> str:
        """The same as ``credential_key``: one limiter per account."""
        return self.credential_key

    def _has_credential(self) -> bool:
        if self.auth is not None:
            return True
        return self.token_store is not None and self.token_store.load(self.account) is not None

    def credential_fingerprint(self) -> str | None:
        """Changes when the OAuth grant changes, so a pause on it lifts after a new login.

        From the token store: a digest of the stored refresh token (else the access token) — a new
        login stores a new one (so does a refresh, but nothing refreshes a paused credential). Without a
        store: the ``auth`` object's own ``credential_fingerprint()`` if it has one, else None.
        """
        if self.token_store is not None:
            loaded = self.token_store.load(self.account)
            if loaded is None:
                return None
            token, _version = loaded
            secret = token.refresh_token or token.access_token
            return hashlib.sha256(secret.encode()).hexdigest() if secret else None
        fingerprint = getattr(self.auth, "credential_fingerprint", None)
        if callable(fingerprint):
            value = fingerprint()
            return str(value) if value is not None else None
        return None

    @staticmethod
    def is_auth_error(err: BaseException) -> bool:
        """Whether ``err`` (or an error it chains) says the credential is refused."""
        return auth_error_in_chain(err)

    def _auth(self) -> AuthLike:
        if self.auth is not None:
            return self.auth
        store, account = self.token_store, self.account
        if store is None:
            raise ConfigError(
                f"{type(self).__name__} {self.name!r}: no credential; pass auth= (the OAuth provider) or a "
                f"token_store holding account {account!r} (run: durable-sync auth login)"
            )

        def current() -> str | None:  # no refresh here: pass the OAuth provider as auth= for that
            loaded = store.load(account)
            return loaded[0].access_token if loaded else None

        return BearerAuth(current)

    def _open(self) -> contextlib.AbstractAsyncContextManager[McpSession]:
        return open_mcp_session(
            self.mcp_url,
            auth=self._auth(),
            transport=self.http.transport,
            httpx_client_factory=self.httpx_client_factory,
            service=self.mcp_service,
            credential=self.credential_key,
            rate=self.rate,
            retry=self.http.retry,
            read_only_tools=self.mcp_read_only_tools,
            call_timeout=self.call_timeout,
            max_wait=self.max_wait,
            sleep=self.http.sleep,
            clock=self.http.clock,
        )

"""The headless OAuth login: what ``durable-sync auth login <account> <resource-url>`` runs.

One login, step by step::

    discover(resource_url)             RFC 9728 -> RFC 8414, endpoints checked (https, same site)
    [loopback] listen on 127.0.0.1:<port>            (a free port unless redirect_port is given)
    register_client(...)               RFC 7591 public client for http://127.0.0.1:<port>/callback
    new_pkce(), new_state()
    print the authorization URL        (and open it in a browser when open_browser=True)
    loopback: wait for the browser's GET /callback?code=...&state=...; answer "you can close this tab"
    paste:    the user approves in any browser (another machine will do), is sent to
              http://127.0.0.1:8788/callback?code=...&state=..., which may not load since nothing
              listens, and pastes that address back
    check state (a mismatch is refused: nothing is stored), error=... (access_denied...), code
    exchange_code(...)                 authorization_code + PKCE verifier
    store.replace(account, token)      a new login always takes effect, even over a working grant (W11)

The result is a ``LoginResult``: account, client id, issuer, resource, expiry and scope. It never
carries a token, and nothing here logs or prints one. In paste mode the pasted URL holds the
authorization code; it is single-use, bound to our PKCE verifier, and never echoed.

``login`` is a coroutine; ``run_login`` wraps it in ``asyncio.run`` for a CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import html
import logging
import time
import urllib.parse
import uuid
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from connectors.auth import oauth
from connectors.auth.tokens import OAuthToken, TokenStore
from connectors.core import AuthError, ConfigError
from connectors.http import redact_url

__all__ = [
    "CALLBACK_PATH",
    "PASTE_REDIRECT_PORT",
    "LoginError",
    "LoginResult",
    "login",
    "parse_callback",
    "run_login",
    "token_summary",
]

logger = logging.getLogger(__name__)

CALLBACK_PATH = "/callback"
LOOPBACK_HOST = "127.0.0.1"  # RFC 8252 §7.3: the IP literal, not "localhost" (which may resolve elsewhere)
PASTE_REDIRECT_PORT = 8788  # what durable-sync 0.3 registered; nothing needs to listen there
DEFAULT_TIMEOUT = 300.0
REQUEST_READ_TIMEOUT = 10.0  # for one browser request on the callback server
MAX_REQUEST_LINE = 8192
MAX_HEADER_LINES = 100

Mode = Literal["paste", "loopback"]


class LoginError(AuthError):
    """The login did not complete: state mismatch, denied, malformed callback, timeout.

    Nothing was stored; run the login again.
    """


@dataclass(frozen=True)
class LoginResult:
    """What a completed login stored (no secrets).

    Attributes:
        account: The account name the token was stored under.
        client_id: The dynamically registered client.
        issuer: The authorization server.
        resource: The protected resource the grant is for.
        expires_at: When the access token expires, if the server said.
        scope: Granted scope, if the server said.
        has_refresh_token: Whether unattended refreshes are possible.
        version: The stored token's version.
    """

    account: str
    client_id: str
    issuer: str
    resource: str
    expires_at: dt.datetime | None
    scope: str | None
    has_refresh_token: bool
    version: int

    def describe(self) -> str:
        """One human line for the CLI."""
        expires = self.expires_at.isoformat(timespec="seconds") if self.expires_at else "unknown"
        refresh = "with" if self.has_refresh_token else "WITHOUT"
        scope = f", scope {self.scope!r}" if self.scope else ""
        return (
            f"logged in {self.account!r} to {self.resource} (client {self.client_id}, {refresh} a refresh token, "
            f"access token expires {expires}{scope})"
        )


def token_summary(account: str, token: OAuthToken, version: int) -> dict[str, Any]:
    """The non-secret facts about a stored token (for ``durable-sync auth status``)."""
    return {
        "account": account,
        "version": version,
        "client_id": token.client_id,
        "resource": token.resource,
        "issuer": token.extra.get("issuer"),
        "scope": token.scope,
        "expires_at": token.expires_at.isoformat() if token.expires_at else None,
        "obtained_at": token.obtained_at.isoformat() if token.obtained_at else None,
        "refreshed_at": token.refreshed_at.isoformat() if token.refreshed_at else None,
        "has_refresh_token": bool(token.refresh_token),
        "refresh_unconfirmed_at": token.extra.get("refresh_unconfirmed_at"),
    }


# --------------------------------------------------------------------------------------------------
# The callback


def parse_callback(text: str, *, state: str, redirect_uri: str | None = None) -> str:
    """The authorization code from a callback URL (pasted, or received by the loopback server).

    Checks, in order: it is a URL (or a query string) with parameters; ``state`` is ours (a
    mismatch is a possible CSRF and is refused); no ``error`` (``access_denied``...); a ``code``.

    Args:
        text: What the user pasted (surrounding whitespace and quotes are ignored) or the callback's
            query string.
        state: The state our authorization request sent.
        redirect_uri: For the messages: where the browser should have ended up.

    Raises:
        LoginError: any of the above fails; the message never quotes the code.
    """
    where = f" (it starts with {redirect_uri})" if redirect_uri else ""
    text = text.strip().strip("'\"<>").strip()
    if not text:
        raise LoginError(f"nothing was pasted; paste the full address your browser ended on{where}")
    split = urllib.parse.urlsplit(text)
    if split.scheme and split.netloc:
        query = split.query
    elif "=" in text and " " not in text:
        query = text.lstrip("?")  # a bare query string (the loopback server passes one)
    else:
        raise LoginError(f"that is not a URL; paste the full address your browser ended on{where}")
    params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
    if not params:
        raise LoginError(f"that URL has no parameters; paste the full address your browser ended on{where}")
    if params.get("state") != state:
        raise LoginError(
            "the state in that URL is not the one this login sent (a stale or foreign authorization "
            "response); nothing was stored. Start the login again and use the newest URL."
        )
    if "error" in params:
        error = params["error"][:100]
        description = params.get("error_description", "")[:300]
        if error == "access_denied":
            raise LoginError("access was denied on the consent screen; nothing was stored")
        raise LoginError(
            f"the authorization server answered {error}"
            + (f" ({description})" if description else "")
            + "; nothing was stored"
        )
    code = params.get("code", "")
    if not code:
        raise LoginError(
            f"that URL has no authorization code; after approving, paste the address your browser was sent to{where}"
        )
    return code


class _CallbackServer:
    """A one-shot HTTP server on 127.0.0.1 that receives the authorization response.

    asyncio serves each connection on its own, so a browser's idle pre-connections cannot stall it.
    The first request on the callback path settles the login (success or a refused state); others
    get a short page.
    """

    def __init__(self, *, port: int, state: str) -> None:
        self.port = port
        self.state = state
        self._server: asyncio.Server | None = None
        self._result: asyncio.Future[str] | None = None

    @property
    def redirect_uri(self) -> str:
        return f"http://{LOOPBACK_HOST}:{self.port}{CALLBACK_PATH}"

    async def start(self) -> None:
        self._result = asyncio.get_running_loop().create_future()
        try:
            self._server = await asyncio.start_server(self._serve, LOOPBACK_HOST, self.port)
        except OSError as err:
            raise ConfigError(
                f"cannot listen on {LOOPBACK_HOST}:{self.port} for the login callback ({err.strerror}); "
                "pick another port or use paste mode"
            ) from None
        self.port = self._server.sockets[0].getsockname()[1]

    async def wait(self, timeout: float) -> str:
        assert self._result is not None
        try:
            return await asyncio.wait_for(asyncio.shield(self._result), timeout)
        except TimeoutError:
            raise LoginError(
                f"no authorization response reached {self.redirect_uri} within {timeout:.0f} s; nothing was stored"
            ) from None

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        if self._result is not None and not self._result.done():
            self._result.cancel()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            target = await asyncio.wait_for(self._read_target(reader), REQUEST_READ_TIMEOUT)
            if target is None:
                await self._respond(writer, 400, "Bad request", "This address only receives the sign-in callback.")
                return
            split = urllib.parse.urlsplit(target)
            if split.path != CALLBACK_PATH:
                await self._respond(writer, 404, "Not found", "This address only receives the sign-in callback.")
                return
            assert self._result is not None
            if self._result.done():
                await self._respond(writer, 200, "Already done", "This sign-in has already been handled.")
                return
            try:
                code = parse_callback(split.query or "", state=self.state)
            except LoginError as err:
                await self._respond(writer, 400, "Sign-in failed", f"{err}. Return to the terminal.")
                if not self._result.done():
                    self._result.set_exception(err)
                return
            await self._respond(
                writer, 200, "Signed in", "durable-sync received the authorization. You can close this tab."
            )
            if not self._result.done():
                self._result.set_result(code)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except Exception:  # never let a browser's request crash the login
            logger.debug("login callback server: request failed", exc_info=False)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @staticmethod
    async def _read_target(reader: asyncio.StreamReader) -> str | None:
        line = await reader.readline()
        if len(line) > MAX_REQUEST_LINE:
            return None
        parts = line.decode("latin-1").split()
        if len(parts) != 3 or parts[0] != "GET" or not parts[2].startswith("HTTP/"):
            return None
        for _ in range(MAX_HEADER_LINES):  # drain the headers; nothing in them matters
            header = await reader.readline()
            if header in (b"\r\n", b"\n", b""):
                break
        return parts[1]

    @staticmethod
    async def _respond(writer: asyncio.StreamWriter, status: int, title: str, message: str) -> None:
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}[status]
        body = (
            "<!doctype html><html><head><meta charset='utf-8'><title>durable-sync: "
            f"{html.escape(title)}</title></head><body style='font-family:sans-serif;margin:3em'>"
            f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>"
        ).encode()
        head = (
            f"HTTP/1.1 {status} {reason}\r\n"
            "Content-Type: text/html; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Cache-Control: no-store\r\n"
            "Referrer-Policy: no-referrer\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        writer.write(head + body)
        await writer.drain()


# --------------------------------------------------------------------------------------------------
# The login


async def login(
    account: str,
    resource_url: str,
    store: TokenStore,
    *,
    mode: Mode = "paste",
    open_browser: bool = False,
    input_fn: Callable[[str], str] = input,
    print_fn: Callable[[str], object] = print,
    redirect_port: int = 0,
    timeout: float = DEFAULT_TIMEOUT,
    client: httpx.AsyncClient | None = None,
    client_name: str = oauth.DEFAULT_CLIENT_NAME,
    scope: str | None = None,
    allow_loopback_http: bool = True,
    extra_sites: tuple[str, ...] = (),
    browser_fn: Callable[[str], object] = webbrowser.open,
    clock: Callable[[], float] = time.time,
) -> LoginResult:
    """Log ``account`` in to the protected resource at ``resource_url`` and store the grant.

    Args:
        account: Name to store the token under (``notion-mcp``).
        resource_url: The protected resource (``https://mcp.notion.com/mcp``).
        store: Where the token goes (``store.replace``: a new login always takes effect).
        mode: ``"paste"``: the user pastes the address the browser ended on (works over SSH, with
            the browser on another machine); ``"loopback"``: a one-shot server on 127.0.0.1 receives
            the callback.
        open_browser: Also open the URL with ``browser_fn`` (the URL is always printed).
        input_fn: Reads the pasted URL (paste mode); called once, with a prompt.
        print_fn: Shows the instructions and the URL.
        redirect_port: Loopback: the port to listen on (0: a free one). Paste: the port in the
            registered redirect URI (0: 8788).
        timeout: Loopback: how long to wait for the browser, in seconds. (Paste mode waits for the
            user; the authorization code's own lifetime, minutes, applies to the pasted URL.)
        client: HTTP client for discovery, registration and the code exchange (default: short-lived
            ``make_client`` clients).
        client_name: Shown on the consent screen.
        scope: Scope to ask for (default: none; DCR servers grant at registration).
        allow_loopback_http: Accept plain http on loopback hosts (development, tests).
        extra_sites: Other sites to trust for the authorization server (see ``oauth.check_endpoint``).
        browser_fn: Opens a URL (default ``webbrowser.open``).
        clock: Epoch seconds, for ``expires_at``.

    Returns:
        What was stored, without secrets.

    Raises:
        LoginError: state mismatch, access denied, a malformed pasted URL, no callback in time.
        ConfigError: discovery or registration failed for good (not https, off-site endpoints, no
            PKCE S256, no dynamic registration).
        AuthError: the authorization server refused the code exchange (``invalid_grant``).
        TransientError: the server failed; try again.
    """
    if mode not in ("paste", "loopback"):
        raise ConfigError(f"login mode must be 'paste' or 'loopback', not {mode!r}")
    metadata = await oauth.discover(
        resource_url, client=client, allow_loopback_http=allow_loopback_http, extra_sites=extra_sites
    )
    state = oauth.new_state()
    pkce = oauth.new_pkce()
    server: _CallbackServer | None = None
    try:
        if mode == "loopback":
            server = _CallbackServer(port=redirect_port, state=state)
            await server.start()
            redirect_uri = server.redirect_uri
        else:
            redirect_uri = f"http://{LOOPBACK_HOST}:{redirect_port or PASTE_REDIRECT_PORT}{CALLBACK_PATH}"
        registered = await oauth.register_client(
            metadata, [redirect_uri], client_name=client_name, scope=scope, client=client
        )
        url = oauth.authorization_url(
            metadata, client_id=registered.client_id, redirect_uri=redirect_uri, pkce=pkce, state=state, scope=scope
        )
        print_fn(f"To authorize durable-sync for {account!r}, open this URL in a browser and approve:\n\n  {url}\n")
        if open_browser:
            try:
                browser_fn(url)
            except Exception as err:  # no browser here: the printed URL still works
                logger.debug("could not open a browser: %s", type(err).__name__)
        if server is not None:
            print_fn(f"Waiting up to {timeout:.0f} s for the browser to come back to {redirect_uri} ...")
            code = await server.wait(timeout)
        else:
            print_fn(
                f"After approving, your browser is sent to {redirect_uri}?code=... . That page may fail to "
                "load (nothing listens there): that is expected. Copy the full address from the address bar."
            )
            pasted = input_fn("Paste the address here: ")
            code = parse_callback(pasted, state=state, redirect_uri=redirect_uri)
    finally:
        if server is not None:
            await server.close()

    token = await oauth.exchange_code(
        metadata,
        client_id=registered.client_id,
        code=code,
        redirect_uri=redirect_uri,
        code_verifier=pkce.verifier,
        client_secret=registered.client_secret,
        token_endpoint_auth_method=registered.token_endpoint_auth_method,
        client=client,
        clock=clock,
    )
    # A fresh id per login: credential fingerprints change with it, so a pause on the old grant lifts.
    token = dataclasses.replace(token, extra={**token.extra, "grant_id": uuid.uuid4().hex})
    version = store.replace(account, token)
    result = LoginResult(
        account=account,
        client_id=registered.client_id,
        issuer=metadata.issuer,
        resource=metadata.resource,
        expires_at=token.expires_at,
        scope=token.scope,
        has_refresh_token=bool(token.refresh_token),
        version=version,
    )
    logger.info("OAuth %s: logged in (client %s, resource %s)", account, result.client_id, redact_url(result.resource))
    return result


def run_login(account: str, resource_url: str, store: TokenStore, **kwargs: Any) -> LoginResult:
    """``login`` for synchronous callers (the CLI): runs it in a new event loop."""
    return asyncio.run(login(account, resource_url, store, **kwargs))

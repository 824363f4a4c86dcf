"""A stateful fake OAuth 2.1 authorization server and protected resource, as a Starlette app.

It behaves like Notion's hosted MCP server's OAuth (api-facts-and-peers.md §B.2): discovery, dynamic
client registration, PKCE S256 only, and refresh tokens that rotate on every use.

Use it in-process::

    clock = ManualClock()
    fake = FakeOAuthServer(clock=clock)
    transport = httpx.ASGITransport(app=fake.app)     # any base URL, e.g. https://mcp.example.test
    ...discover("https://mcp.example.test/mcp", client=...)

or on a loopback port (``with serve(fake) as base_url:``; the metadata then names
``http://127.0.0.1:<port>/...``). Without ``base_url`` the fake describes itself from the URL each
request came to, so both work unchanged.

Endpoints:

- ``GET /.well-known/oauth-protected-resource[/<resource path>]`` (RFC 9728): ``resource``,
  ``authorization_servers``, ``scopes_supported``, ``bearer_methods_supported``.
- ``GET /.well-known/oauth-authorization-server`` (RFC 8414): issuer, endpoints,
  ``code_challenge_methods_supported: ["S256"]``, grant/response types, auth method ``none``.
- ``POST /register`` (RFC 7591): public clients only; ``redirect_uris`` must be absolute http(s)
  without a fragment, and plain http only on loopback; answers 201 with a ``client_id``.
- ``GET /authorize``: checks client, redirect URI (exact match), ``response_type=code``, an S256
  ``code_challenge`` and ``state``; no human here, so it approves at once and answers 302 to
  ``redirect_uri?code=...&state=...`` (``approve(url)`` does the same from a test, ``deny=True``
  sends ``error=access_denied``). Bad client or redirect URI: 400, never a redirect.
- ``POST /token``: ``authorization_code`` (PKCE verified; a wrong verifier, a used, expired or
  foreign code -> ``invalid_grant``; a second use of a code also revokes what the first issued)
  and ``refresh_token`` with rotation: every refresh issues a new refresh token and revokes every
  earlier access token of the grant; an already-rotated refresh token ->
  ``400 {"error": "invalid_grant", "error_description": "OAuth grant revoked"}`` and the whole
  family (every token of the grant) is revoked. An unknown client -> 401 ``invalid_client``.
  Token answers carry ``token_type: "bearer"``, ``expires_in``, ``scope``, the rotated
  ``refresh_token`` and the RFC 8707 ``resource``; errors ``{"error", "error_description"}`` with the
  descriptions of Cloudflare's workers-oauth-provider, which the hosted Notion server runs on
  ("Invalid refresh token", "Client not found", "Invalid PKCE code_verifier", …; the grant-revoked one
  is this fake's own). Token, registration and error answers say ``Cache-Control: no-store`` and
  ``Pragma: no-cache`` (the fake says it on every JSON answer); client ids are 16 characters of
  ``[A-Za-z0-9-_]``, as that provider makes them.
- ``GET /api/whoami``: a protected endpoint; 401 with a ``WWW-Authenticate`` challenge naming the
  resource metadata, or 200 ``{"client_id", "grant_id", "scope", "resource"}``.

For other fakes (the MCP fake authenticates its bearer tokens here): ``validate(token)``,
``token_info(token)``, ``bearer_challenge()``, ``issue_grant()``.

For tests: ``approve(url)``, ``revoke_family(token)``, ``expire_all_access_tokens()``,
``fail_token_requests(...)`` (including "processed, then the response was lost"), ``token_delay``,
``metadata_overrides`` / ``resource_metadata_overrides`` / ``serve_resource_metadata``, counters
(``refreshes``, ``registrations``, ``token_requests``, ``counts``) and ``requests`` (a log of
``Call(method, path, status, grant_type)``, with no secrets in it).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import ipaddress
import secrets
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.fakes.common import FakeTime, Fault, FaultQueue
from tests.fakes.loopback import serve_app

__all__ = ["Call", "FakeOAuthServer", "ManualClock", "TokenInfo", "serve"]

GRANT_REVOKED = "OAuth grant revoked"
NO_CACHE = {"Cache-Control": "no-store", "Pragma": "no-cache"}  # workers-oauth-provider: tokens, clients, errors


ManualClock = FakeTime
"""Epoch seconds that move only when a test says so (``advance``): the shared ``FakeTime``, callable."""


class Call(NamedTuple):
    """One request the fake answered (no secrets: paths and grant types only)."""

    method: str
    path: str
    status: int
    grant_type: str | None = None


class TokenInfo(NamedTuple):
    """What an active access token stands for."""

    client_id: str
    grant_id: str
    scope: str
    resource: str | None
    expires_at: float


@dataclass
class _Client:
    client_id: str
    name: str
    redirect_uris: tuple[str, ...]


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str
    scope: str
    resource: str | None
    expires_at: float
    used: bool = False
    grant_id: str | None = None


@dataclass
class _Grant:
    grant_id: str
    client_id: str
    scope: str
    resource: str | None
    revoked: bool = False
    access_tokens: list[str] = field(default_factory=list)
    refresh_tokens: list[str] = field(default_factory=list)


@dataclass
class _AccessToken:
    grant_id: str
    expires_at: float
    revoked: bool = False


@dataclass
class _RefreshToken:
    grant_id: str
    rotated: bool = False


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class FakeOAuthServer:
    """The fake authorization server + protected resource (see the module docstring).

    Args:
        base_url: The URL it is served at (default: taken from each request).
        resource_path: The protected resource's path (the MCP endpoint).
        access_token_lifetime: ``expires_in`` of access tokens, in seconds.
        code_lifetime: How long an authorization code stays valid.
        scopes: ``scopes_supported`` and the scope granted when none is asked for.
        clock: Epoch seconds (``ManualClock`` in tests).
    """

    def __init__(
        self,
        *,
        base_url: str | None = None,
        resource_path: str = "/mcp",
        access_token_lifetime: float = 3600.0,
        code_lifetime: float = 600.0,
        scopes: tuple[str, ...] = ("read", "write"),
        clock: Callable[[], float] = time.time,
    ) -> None:
        """An authorization server with no clients, grants or tokens yet."""
        self.base_url = base_url.rstrip("/") if base_url else None
        self.resource_path = resource_path
        self.access_token_lifetime = access_token_lifetime
        self.code_lifetime = code_lifetime
        self.scopes = scopes
        self.clock = clock
        # Knobs for tests.
        self.metadata_overrides: dict[str, Any] = {}
        self.resource_metadata_overrides: dict[str, Any] = {}
        self.serve_resource_metadata = True
        self.token_delay = 0.0  # seconds each /token request waits before it is handled
        self.issue_refresh_tokens = True
        # State.
        self._lock = threading.RLock()
        self._clients: dict[str, _Client] = {}
        self._codes: dict[str, _Code] = {}
        self._grants: dict[str, _Grant] = {}
        self._access: dict[str, _AccessToken] = {}
        self._refresh: dict[str, _RefreshToken] = {}
        self._faults = FaultQueue()  # token requests only, optionally of one grant type
        self.counts: Counter[str] = Counter()
        self.requests: list[Call] = []
        self.app = Starlette(
            routes=[
                Route("/.well-known/oauth-protected-resource", self._resource_metadata, methods=["GET"]),
                Route("/.well-known/oauth-protected-resource/{path:path}", self._resource_metadata, methods=["GET"]),
                Route("/.well-known/oauth-authorization-server", self._server_metadata, methods=["GET"]),
                Route("/register", self._register, methods=["POST"]),
                Route("/authorize", self._authorize, methods=["GET"]),
                Route("/token", self._token, methods=["POST"]),
                Route("/api/whoami", self._whoami, methods=["GET"]),
            ]
        )

    # ------------------------------------------------------------------------------ public: others

    def validate(self, access_token: str | None) -> bool:
        """Whether ``access_token`` is active.

        Whether ``access_token`` is an active access token: issued here, not expired, not revoked
        (by a rotation, a family revocation or ``expire_all_access_tokens``).
        """
        return self.token_info(access_token) is not None

    def token_info(self, access_token: str | None) -> TokenInfo | None:
        """What an active access token stands for, or None when it is not active."""
        if not access_token:
            return None
        with self._lock:
            record = self._access.get(access_token)
            if record is None or record.revoked or record.expires_at <= self.clock():
                return None
            grant = self._grants[record.grant_id]
            if grant.revoked:
                return None
            return TokenInfo(grant.client_id, grant.grant_id, grant.scope, grant.resource, record.expires_at)

    def bearer_challenge(self, base_url: str | None = None, *, error: str = "invalid_token") -> str:
        """A ``WWW-Authenticate`` value for a 401 of the protected resource (RFC 6750 + RFC 9728)."""
        base = (base_url or self.base_url or "").rstrip("/")
        metadata = f"{base}/.well-known/oauth-protected-resource{self.resource_path}"
        return f'Bearer error="{error}", resource_metadata="{metadata}"'

    def resource_url(self, base_url: str | None = None) -> str:
        """The protected resource's URL (``<base>/mcp``)."""
        return (base_url or self.base_url or "").rstrip("/") + self.resource_path

    def issue_grant(
        self, *, client_id: str | None = None, scope: str | None = None, resource: str | None = None
    ) -> dict[str, Any]:
        """A grant without the browser dance (registers a client when none is given).

        Returns:
            The token response (``access_token``, ``refresh_token``, ``expires_in``, ``scope``,
            ``token_type``) plus ``client_id`` and ``grant_id``.
        """
        with self._lock:
            if client_id is None:
                client_id = self._new_client("issued", ("http://127.0.0.1/callback",)).client_id
            elif client_id not in self._clients:
                raise KeyError(f"unknown client {client_id!r}")
            grant = self._new_grant(client_id, scope or " ".join(self.scopes), resource)
            body = self._issue(grant)
        return {**body, "client_id": client_id, "grant_id": grant.grant_id}

    # ------------------------------------------------------------------------------- public: tests

    def approve(self, authorize_url: str, *, deny: bool = False) -> str:
        """What a user approving (or denying) ``authorize_url`` leads to: the redirect URL.

        Raises:
            ValueError: the authorization request is invalid in a way that must not redirect
                (unknown client, unregistered redirect URI); the message says which.
        """
        params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(authorize_url).query))
        _status, location, error = self._authorization(params, deny=deny)
        if location is None:
            raise ValueError(error)
        return location

    def revoke_family(self, token: str | None = None) -> int:
        """Revoke the grant an access or refresh token belongs to (None: every grant); returns how many."""
        with self._lock:
            if token is None:
                grant_ids = list(self._grants)
            else:
                record = self._access.get(token) or self._refresh.get(token)
                grant_ids = [record.grant_id] if record else []
            for grant_id in grant_ids:
                self._revoke(grant_id)
            return len(grant_ids)

    def expire_all_access_tokens(self) -> None:
        """Every access token issued so far stops working now (refresh tokens keep working)."""
        with self._lock:
            for record in self._access.values():
                record.revoked = True

    def fail_token_requests(
        self, status: int = 503, *, count: int = 1, after_processing: bool = False, grant_type: str | None = None
    ) -> None:
        """Answer the next ``count`` token requests (of ``grant_type``, or any) with ``status``.

        ``after_processing=True`` handles the request first (a refresh rotates the token) and then
        answers ``status`` instead of the tokens: a response lost after the server acted.
        """
        with self._lock:
            scope = {"grant_type": grant_type} if grant_type is not None else {}
            self._faults.add(Fault(status, after=after_processing, scope=scope), count)

    def issued_secrets(self) -> set[str]:
        """Every access token, refresh token and authorization code issued so far (for leak checks)."""
        with self._lock:
            return set(self._access) | set(self._refresh) | set(self._codes)

    def client_ids(self) -> list[str]:
        """The ids of the registered clients."""
        with self._lock:
            return list(self._clients)

    def grant_revoked(self, grant_id: str) -> bool:
        """Whether a grant (a token family) is revoked."""
        with self._lock:
            return self._grants[grant_id].revoked

    def grant_of(self, token: str) -> str | None:
        """The grant id of an access or refresh token (active or not)."""
        with self._lock:
            record = self._access.get(token) or self._refresh.get(token)
            return record.grant_id if record else None

    @property
    def refreshes(self) -> int:
        """Successful refresh_token grants."""
        return self.counts["refresh_ok"]

    @property
    def registrations(self) -> int:
        """Client registrations received."""
        return self.counts["register"]

    @property
    def token_requests(self) -> int:
        """Token requests received."""
        return self.counts["token"]

    # ------------------------------------------------------------------------------------ internals

    def _base(self, request: Request) -> str:
        return self.base_url or str(request.base_url).rstrip("/")

    def _log(self, request: Request, status: int, grant_type: str | None = None) -> None:
        with self._lock:
            self.requests.append(Call(request.method, request.url.path, status, grant_type))

    def _json(self, request: Request, body: dict[str, Any], status: int = 200, **kw: Any) -> Response:
        self._log(request, status, kw.pop("grant_type", None))
        headers = {**NO_CACHE, **kw.pop("headers", {})}
        return JSONResponse(body, status_code=status, headers=headers)

    def _new_client(self, name: str, redirect_uris: tuple[str, ...]) -> _Client:
        # As workers-oauth-provider makes client ids: 16 characters of [A-Za-z0-9_-] (12 bytes, base64url).
        client = _Client(secrets.token_urlsafe(12), name, redirect_uris)
        self._clients[client.client_id] = client
        return client

    def _new_grant(self, client_id: str, scope: str, resource: str | None) -> _Grant:
        grant = _Grant(f"grant-{secrets.token_hex(6)}", client_id, scope, resource)
        self._grants[grant.grant_id] = grant
        return grant

    def _issue(self, grant: _Grant) -> dict[str, Any]:
        """New access (and refresh) token for ``grant``; earlier access tokens of it are revoked."""
        for old in grant.access_tokens:
            self._access[old].revoked = True
        access = f"fake-at-{secrets.token_urlsafe(24)}"
        self._access[access] = _AccessToken(grant.grant_id, self.clock() + self.access_token_lifetime)
        grant.access_tokens.append(access)
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": int(self.access_token_lifetime),
            "scope": grant.scope,
        }
        if grant.resource:  # RFC 8707 §2.2, as workers-oauth-provider echoes it
            body["resource"] = grant.resource
        if self.issue_refresh_tokens:
            refresh = f"fake-rt-{secrets.token_urlsafe(24)}"
            self._refresh[refresh] = _RefreshToken(grant.grant_id)
            grant.refresh_tokens.append(refresh)
            body["refresh_token"] = refresh
        return body

    def _revoke(self, grant_id: str) -> None:
        grant = self._grants[grant_id]
        grant.revoked = True
        for token in grant.access_tokens:
            self._access[token].revoked = True
        for token in grant.refresh_tokens:
            self._refresh[token].rotated = True

    # ----------------------------------------------------------------------------------- endpoints

    async def _resource_metadata(self, request: Request) -> Response:
        path = request.path_params.get("path")
        if not self.serve_resource_metadata or (path is not None and "/" + path.strip("/") != self.resource_path):
            return self._json(request, {"error": "not_found"}, 404)
        base = self._base(request)
        body = {
            "resource": base + self.resource_path,
            "authorization_servers": [base],
            "scopes_supported": list(self.scopes),
            "bearer_methods_supported": ["header"],
            "resource_name": "Fake MCP",
            **self.resource_metadata_overrides,
        }
        return self._json(request, body)

    async def _server_metadata(self, request: Request) -> Response:
        base = self._base(request)
        body = {
            "issuer": base,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "registration_endpoint": f"{base}/register",
            "scopes_supported": list(self.scopes),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
            **self.metadata_overrides,
        }
        return self._json(request, body)

    async def _register(self, request: Request) -> Response:
        with self._lock:
            self.counts["register_attempt"] += 1
        try:
            data = await request.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return self._json(request, {"error": "invalid_client_metadata", "error_description": "JSON object"}, 400)
        uris = data.get("redirect_uris")
        if not isinstance(uris, list) or not uris or not all(isinstance(u, str) for u in uris):
            return self._json(request, {"error": "invalid_redirect_uri", "error_description": "redirect_uris"}, 400)
        for uri in uris:
            parts = urllib.parse.urlsplit(uri)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
                return self._json(request, {"error": "invalid_redirect_uri", "error_description": uri}, 400)
            if parts.scheme == "http" and not _loopback(parts.hostname):
                return self._json(request, {"error": "invalid_redirect_uri", "error_description": "http"}, 400)
        method = data.get("token_endpoint_auth_method", "none")
        if method != "none":
            return self._json(
                request, {"error": "invalid_client_metadata", "error_description": "public clients only"}, 400
            )
        with self._lock:
            client = self._new_client(str(data.get("client_name") or ""), tuple(uris))
            self.counts["register"] += 1
        body = {
            "client_id": client.client_id,
            "client_id_issued_at": int(self.clock()),
            "client_name": client.name,
            "redirect_uris": list(client.redirect_uris),
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }
        return self._json(request, body, 201)

    def _authorization(self, params: dict[str, str], *, deny: bool = False) -> tuple[int, str | None, str]:
        """(status, redirect location or None, error) of an authorization request."""
        with self._lock:
            self.counts["authorize"] += 1
            client = self._clients.get(params.get("client_id", ""))
            if client is None:
                return 400, None, "unknown client_id"
            redirect_uri = params.get("redirect_uri", "")
            if redirect_uri not in client.redirect_uris:
                return 400, None, "redirect_uri is not registered for this client"

            def back(**query: str) -> str:
                sep = "&" if urllib.parse.urlsplit(redirect_uri).query else "?"
                if "state" in params:
                    query["state"] = params["state"]
                return redirect_uri + sep + urllib.parse.urlencode(query)

            if params.get("response_type") != "code":
                return 302, back(error="unsupported_response_type"), "unsupported_response_type"
            challenge = params.get("code_challenge", "")
            if params.get("code_challenge_method") != "S256" or not challenge:
                return 302, back(error="invalid_request", error_description="PKCE S256 required"), "invalid_request"
            if not params.get("state"):
                return 302, back(error="invalid_request", error_description="state required"), "invalid_request"
            if deny:
                return 302, back(error="access_denied"), "access_denied"
            code = f"fake-code-{secrets.token_urlsafe(16)}"
            self._codes[code] = _Code(
                client_id=client.client_id,
                redirect_uri=redirect_uri,
                challenge=challenge,
                scope=params.get("scope") or " ".join(self.scopes),
                resource=params.get("resource"),
                expires_at=self.clock() + self.code_lifetime,
            )
            self.counts["approved"] += 1
            return 302, back(code=code), ""

    async def _authorize(self, request: Request) -> Response:
        status, location, error = self._authorization(dict(request.query_params))
        self._log(request, status)
        if location is None:
            return JSONResponse({"error": "invalid_request", "error_description": error}, status_code=status)
        return RedirectResponse(location, status_code=302)

    async def _token(self, request: Request) -> Response:
        if self.token_delay:
            await asyncio.sleep(self.token_delay)
        form = dict(urllib.parse.parse_qsl((await request.body()).decode("utf-8", "replace")))
        grant_type = str(form.get("grant_type", ""))
        with self._lock:
            self.counts["token"] += 1
            self.counts[f"token:{grant_type}"] += 1
            fault = self._faults.take(request.method, request.url.path, grant_type=grant_type)
        if fault is not None and not fault.after:
            return self._json(request, {"error": "temporarily_unavailable"}, fault.status, grant_type=grant_type)
        with self._lock:
            status, body = self._handle_token(form, grant_type)
        if fault is not None:
            return self._json(request, {"error": "temporarily_unavailable"}, fault.status, grant_type=grant_type)
        # workers-oauth-provider challenges with Basic only a client that tried Basic authentication.
        basic = request.headers.get("authorization", "").lower().startswith("basic ")
        headers = {"WWW-Authenticate": 'Basic realm="OAuth"'} if status == 401 and basic else {}
        return self._json(request, body, status, grant_type=grant_type, headers=headers)

    def _handle_token(self, form: dict[str, Any], grant_type: str) -> tuple[int, dict[str, Any]]:
        def fail(error: str, description: str = "", status: int = 400) -> tuple[int, dict[str, Any]]:
            self.counts[f"error:{error}"] += 1
            body = {"error": error}
            if description:
                body["error_description"] = description
            return status, body

        client = self._clients.get(str(form.get("client_id", "")))
        if client is None:
            return fail("invalid_client", "Client not found", 401)
        if grant_type == "authorization_code":
            code = self._codes.get(str(form.get("code", "")))
            if code is None:
                return fail("invalid_grant", "Invalid authorization code")
            if code.client_id != client.client_id:
                return fail("invalid_grant", "Client ID mismatch")
            if code.used:
                if code.grant_id:  # RFC 6749 §4.1.2: a reused code revokes what it issued
                    self._revoke(code.grant_id)
                return fail("invalid_grant", "Authorization code already used")
            code.used = True
            if code.expires_at <= self.clock():
                return fail("invalid_grant", "Grant not found or authorization code expired")
            if form.get("redirect_uri") != code.redirect_uri:
                return fail("invalid_grant", "Invalid redirect URI")
            if _s256(str(form.get("code_verifier", ""))) != code.challenge:
                return fail("invalid_grant", "Invalid PKCE code_verifier")
            resource = form.get("resource") or code.resource
            if code.resource and resource != code.resource:
                return fail("invalid_target", "resource does not match")
            grant = self._new_grant(client.client_id, code.scope, resource)
            code.grant_id = grant.grant_id
            self.counts["code_ok"] += 1
            return 200, self._issue(grant)
        if grant_type == "refresh_token":
            presented = str(form.get("refresh_token", ""))
            record = self._refresh.get(presented)
            if record is None:
                return fail("invalid_grant", "Invalid refresh token")
            grant = self._grants[record.grant_id]
            if grant.client_id != client.client_id:
                return fail("invalid_grant", "Client ID mismatch")
            if grant.revoked:
                return fail("invalid_grant", GRANT_REVOKED)
            if record.rotated:  # reuse of a rotated refresh token: the whole family goes
                self._revoke(grant.grant_id)
                self.counts["family_revoked"] += 1
                return fail("invalid_grant", GRANT_REVOKED)
            record.rotated = True
            self.counts["refresh_ok"] += 1
            return 200, self._issue(grant)
        return fail("unsupported_grant_type", "Grant type not supported")

    async def _whoami(self, request: Request) -> Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        info = self.token_info(token.strip()) if scheme.lower() == "bearer" else None
        if info is None:
            challenge = self.bearer_challenge(self._base(request))
            refusal = {"error": "invalid_token", "error_description": "Invalid access token"}
            return self._json(request, refusal, 401, headers={"WWW-Authenticate": challenge})
        body = {"client_id": info.client_id, "grant_id": info.grant_id, "scope": info.scope, "resource": info.resource}
        return self._json(request, body)


# --------------------------------------------------------------------------------------------------
# Loopback server


@contextlib.contextmanager
def serve(fake: FakeOAuthServer, *, startup_timeout: float = 10.0) -> Iterator[str]:
    """Serve ``fake.app`` with uvicorn on 127.0.0.1 (a free port) in a thread; yields the base URL.

    Sets ``fake.base_url`` for the duration, so the metadata names ``http://127.0.0.1:<port>/...``.
    """
    with serve_app(fake.app, name="oauth", startup_timeout=startup_timeout) as url:
        previous = fake.base_url
        fake.base_url = url
        try:
            yield url
        finally:
            fake.base_url = previous

"""The OAuth 2.1 client toolkit: discovery, the endpoint guard, dynamic registration, PKCE, tokens.

What a headless login does with it (``connectors.auth.login`` drives the steps)::

    discover(resource_url)                  RFC 9728 protected-resource metadata -> authorization_servers[0]
                                            -> RFC 8414 authorization-server metadata (every endpoint
                                            checked by check_endpoint: https, same site)
    register_client(metadata, [redirect])   RFC 7591 dynamic registration of a public client
    new_pkce(), new_state()                 RFC 7636 S256 verifier/challenge, CSRF state
    authorization_url(...)                  what the user opens in a browser (RFC 8707 ``resource`` included)
    exchange_code(...)  -> OAuthToken       authorization_code grant with the PKCE verifier
    refresh(token)      -> OAuthToken       refresh_token grant; keeps client, endpoint and resource

Protocol details come from authlib's client core (``prepare_grant_uri``, ``prepare_token_request``,
``ClientAuth`` for the token-endpoint client authentication, ``create_s256_code_challenge``,
``generate_token``); the HTTP goes through ``connectors.http`` (retries, redaction, typed errors).
authlib's ``AsyncOAuth2Client`` is deliberately not used: it owns its own ``httpx`` client (so it
cannot ride on ``make_client``'s transport or an injected fake transport), its refresh lock is per
client object while ours must be per account across processes (``TokenStore.refresh_lock`` plus a
compare-and-swap save, in ``connectors.auth.provider``), and under authlib 1.9 importing its httpx
integration emits an ``AuthlibDeprecationWarning`` (the httpx -> httpx2 move), which this project's
``filterwarnings = error`` turns into a failure.

Errors::

    ConfigError          discovery failed for good: no metadata, an endpoint that is not https (and not
                         loopback) or not on the resource's site, no S256 PKCE, registration refused
    AuthError
     └── OAuthGrantError the token endpoint refused the grant: invalid_grant (expired, revoked or
                         already-rotated refresh token; used or wrong authorization code),
                         invalid_client, unauthorized_client, or any other 4xx. ``.error`` holds the
                         OAuth error code. Only a new login fixes it.
    RateLimited          the token endpoint said 429 and kept saying it
    TransientError
     └── TokenEndpointUnavailable
                         5xx, a timeout or a dropped connection. ``.ambiguous`` is True when the server
                         may have acted on the request (read timeout, dropped connection, 500/502/504).

Refresh tokens that rotate on every use, and lost responses
-----------------------------------------------------------
Notion's MCP server rotates the refresh token on every refresh, revokes the access tokens issued
before, and answers a second use of an already-rotated refresh token with ``invalid_grant`` *and*
revokes the whole grant. So a refresh whose response is lost (a read timeout, a dropped
connection, a 502 from a gateway after the server did the work) leaves us holding a refresh token
that may already be spent, and nothing we can send will recover the grant if it is: its successor
existed only in the lost response, and the rotation revoked our access token.

What this module does, as the least bad of the options:

- The token POSTs (code exchange and refresh) are retried only where the request provably did not
  take effect: connection failures before anything was sent, and 408/429/503/529 answers
  (``retry_options(retry_ambiguous=False)`` on ``connectors.http``'s transport). An ambiguous
  failure is never replayed in-process; it surfaces at once as ``TokenEndpointUnavailable`` with
  ``ambiguous=True``, and the stored token is left as it was.
- Why not replay at once: if the original request is merely slow (still queued at the server), an
  immediate replay can win the race, get a fresh pair that we store, and then the original arrives
  as a reuse of a rotated token and revokes the family, including the pair we just stored. Waiting
  for the next attempt (the provider's next use, Dagster's retry) lets the original finish first.
- What the next attempt finds: if the server never processed the lost request, the same refresh
  token simply works. If it did, the grant is already dead to us, and the replay's
  ``invalid_grant`` only makes that visible: ``AuthError``, the credential pauses, and
  ``durable-sync auth login <account>`` fixes it. The provider records an unconfirmed refresh in the
  stored token (``extra["refresh_unconfirmed_at"]``) so that this ``AuthError`` says a lost response
  was the likely cause instead of looking like a revocation.
- While a refresh-ahead fails transiently and the access token still has time left, the provider
  keeps using it. A 401 on it afterwards is the server telling us the rotation did happen.

Secrets (tokens, codes, verifiers, client secrets) never reach a message, a log line or a repr:
messages quote only redacted URLs and the server's error code and (redacted) description.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import ipaddress
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oauth2.rfc8414.well_known import get_well_known_url
from publicsuffixlist import PublicSuffixList

from connectors.auth.tokens import OAuthToken
from connectors.core import AuthError, ConfigError, RateLimited, TransientError
from connectors.http import (
    AMBIGUOUS_STATUSES,
    RetryPolicy,
    error_for_response,
    make_client,
    redact_text,
    redact_url,
    retry_options,
)

__all__ = [
    "AUTH_ERROR_CODES",
    "DEFAULT_CLIENT_NAME",
    "PKCE",
    "OAuthGrantError",
    "RegisteredClient",
    "ServerMetadata",
    "TokenEndpointUnavailable",
    "authorization_url",
    "check_endpoint",
    "discover",
    "exchange_code",
    "is_loopback_host",
    "new_pkce",
    "new_state",
    "refresh",
    "register_client",
    "site_of",
]

logger = logging.getLogger(__name__)

SERVICE = "OAuth"
DEFAULT_CLIENT_NAME = "durable-sync"
PROTECTED_RESOURCE_SUFFIX = "oauth-protected-resource"  # RFC 9728 §3
AUTHORIZATION_SERVER_SUFFIX = "oauth-authorization-server"  # RFC 8414 §3
OPENID_SUFFIX = "openid-configuration"  # OpenID Connect Discovery 1.0 (MCP clients try it too)
PKCE_METHOD = "S256"
VERIFIER_LENGTH = 64  # RFC 7636 §4.1: 43..128 characters of [A-Za-z0-9-._~]
STATE_LENGTH = 32

# The grant is dead; only a new login helps (RFC 6749 §5.2).
AUTH_ERROR_CODES = frozenset({"invalid_grant", "invalid_client", "unauthorized_client"})

# OAuth calls are few and small; three attempts with short backoff are plenty.
DEFAULT_RETRY = RetryPolicy(max_attempts=3, base_delay=1.0, max_delay=10.0)
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})
# The Public Suffix List bundled with the package (never downloaded), private section included:
# tenants of shared hosting (``alice.github.io``, ``bucket.s3.amazonaws.com``) are separate sites.
# A TLD the list does not know (``.test``, ``.internal``) counts as a one-label public suffix.
_PSL = PublicSuffixList(accept_unknown=True, only_icann=False)


# --------------------------------------------------------------------------------------------------
# Errors


class OAuthGrantError(AuthError):
    """The token endpoint refused the grant (``invalid_grant``, ``invalid_client``, ...).

    Attributes:
        error: The OAuth error code (``invalid_grant``), or ``http_<status>`` when the body had none.
        description: The server's ``error_description``, redacted (may be empty).
        status_code: The HTTP status.
    """

    def __init__(self, message: str, *, error: str, description: str = "", status_code: int = 400) -> None:
        """Keep the refusal's OAuth code, redacted description and HTTP status with ``message``."""
        super().__init__(message)
        self.error = error
        self.description = description
        self.status_code = status_code


class TokenEndpointUnavailable(TransientError):
    """The token endpoint failed in a way that may pass: 5xx, a timeout, a dropped connection.

    Attributes:
        ambiguous: The server may have processed the request (read timeout, dropped connection,
            500/502/504). For a refresh with rotating refresh tokens it may have rotated the token we
            still hold; see the module docstring.
        status_code: The HTTP status, 0 when no response arrived.
    """

    def __init__(self, message: str, *, ambiguous: bool, status_code: int = 0) -> None:
        """Keep whether the server may have acted, and the HTTP status, with ``message``."""
        super().__init__(message)
        self.ambiguous = ambiguous
        self.status_code = status_code


# --------------------------------------------------------------------------------------------------
# Values


@dataclass(frozen=True)
class ServerMetadata:
    """What discovery found: the authorization server's endpoints and the resource to ask for.

    Attributes:
        issuer: The authorization server's issuer identifier.
        authorization_endpoint: Where the user approves (checked by ``check_endpoint``).
        token_endpoint: Where codes and refresh tokens are exchanged (checked).
        registration_endpoint: RFC 7591 dynamic registration, if offered (checked).
        resource: The protected resource identifier sent as RFC 8707 ``resource`` (the RFC 9728
            ``resource`` when the server published one, else the URL discovery started from).
        resource_metadata_url: Where the protected-resource metadata came from (None: the server
            has none and the authorization server was found on the resource's origin).
        scopes_supported: The resource's (or else the server's) advertised scopes.
        code_challenge_methods_supported: PKCE methods; always includes ``S256``.
        token_endpoint_auth_methods_supported: As advertised (empty when not advertised).
        revocation_endpoint: RFC 7009 endpoint, if advertised (checked).
        raw: The authorization-server metadata document as served.
    """

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    registration_endpoint: str | None
    resource: str
    resource_metadata_url: str | None = None
    scopes_supported: tuple[str, ...] = ()
    code_challenge_methods_supported: tuple[str, ...] = (PKCE_METHOD,)
    token_endpoint_auth_methods_supported: tuple[str, ...] = ()
    revocation_endpoint: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class RegisteredClient:
    """A client registered with RFC 7591 dynamic client registration.

    Attributes:
        client_id: The issued client id.
        client_secret: Only when the server made it a confidential client (never printed).
        redirect_uris: The registered redirect URIs.
        token_endpoint_auth_method: How the client authenticates at the token endpoint (``none``
            for the public PKCE client we ask for).
        client_secret_expires_at: Epoch seconds, 0 or None when it does not expire.
        raw: The registration response minus secrets.
    """

    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    redirect_uris: tuple[str, ...] = ()
    token_endpoint_auth_method: str = "none"
    client_secret_expires_at: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class PKCE:
    """An RFC 7636 code verifier and its S256 challenge (the verifier never appears in a repr)."""

    verifier: str = field(repr=False)
    challenge: str
    method: str = PKCE_METHOD


def new_pkce() -> PKCE:
    """A fresh PKCE pair: a 64-character random verifier and ``BASE64URL(SHA256(verifier))``."""
    verifier = generate_token(VERIFIER_LENGTH)  # letters and digits: a subset of the allowed set
    return PKCE(verifier=verifier, challenge=create_s256_code_challenge(verifier))


def new_state() -> str:
    """A fresh, unguessable ``state`` for one authorization request (CSRF protection)."""
    return generate_token(STATE_LENGTH)


# --------------------------------------------------------------------------------------------------
# The endpoint guard


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` names this machine: ``localhost``, 127.0.0.0/8 or ``::1``."""
    host = host.strip("[]").rstrip(".").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def site_of(host: str) -> str:
    """The registrable domain ("site") of ``host``, by the Public Suffix List.

    - loopback hosts are all one site (``"loopback"``); an IP address is its own site;
    - otherwise the host's registrable domain, one label below its longest public suffix, private
      suffixes included: ``mcp.notion.com`` -> ``notion.com``, ``api.example.co.uk`` ->
      ``example.co.uk``, ``alice.s3.amazonaws.com`` -> ``alice.s3.amazonaws.com`` (``s3.amazonaws.com``
      is a public suffix, so Alice and Mallory there are two sites);
    - a TLD missing from the list counts as a one-label suffix: ``mcp.example.test`` -> ``example.test``;
    - a host that is itself a public suffix (``github.io``, ``co.uk``) or a single label is its own site.

    The list is the copy bundled with ``publicsuffixlist``; upgrading the package refreshes it.
    """
    host = host.strip("[]").rstrip(".").lower()
    if is_loopback_host(host):
        return "loopback"
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    return _PSL.privatesuffix(host) or host


def check_endpoint(
    url: str,
    base: str,
    *,
    what: str = "endpoint",
    allow_loopback_http: bool = True,
    extra_sites: Collection[str] = (),
) -> str:
    """Refuse a discovered endpoint that is not https, or not on the same site as ``base``.

    Metadata documents are fetched from the network, so every URL in them is checked before the
    user's browser, authorization code or tokens are sent there (SSRF and token-theft guard).

    Args:
        url: The endpoint.
        base: The URL the user gave (the protected resource); its site is the trusted one.
        what: The endpoint's name, for the message (``"token_endpoint"``).
        allow_loopback_http: Accept ``http`` for loopback hosts (local development, tests).
        extra_sites: More sites (``site_of`` values, e.g. ``"auth0.com"``) to trust, for resources
            whose authorization server lives elsewhere.

    Returns:
        The URL, unchanged.

    Raises:
        ConfigError: not a URL, not https (and not an allowed loopback http), credentials or a
            fragment in the URL, or another site.
    """
    try:
        parsed = httpx.URL(url)
        trusted = httpx.URL(base)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise ConfigError(f"refusing the {what}: {redact_url(str(url))} is not a valid URL") from None
    shown = redact_url(parsed)
    if not parsed.host or parsed.scheme not in ("https", "http"):
        raise ConfigError(f"refusing the {what} {shown}: not an absolute https URL")
    if parsed.scheme != "https" and not (allow_loopback_http and is_loopback_host(parsed.host)):
        raise ConfigError(f"refusing the {what} {shown}: it must use https (plain http only for loopback hosts)")
    if parsed.userinfo or parsed.fragment:
        raise ConfigError(f"refusing the {what} {shown}: it must not carry credentials or a fragment")
    site, trusted_site = site_of(parsed.host), site_of(trusted.host or "")
    if site != trusted_site and site not in set(extra_sites):
        raise ConfigError(
            f"refusing the {what} {shown}: it is on {site!r}, not on the site of {redact_url(trusted)} "
            f"({trusted_site!r}); an authorization server elsewhere must be trusted explicitly"
        )
    return url


# --------------------------------------------------------------------------------------------------
# Discovery


@contextlib.asynccontextmanager
async def _http(client: httpx.AsyncClient | None) -> AsyncIterator[httpx.AsyncClient]:
    """The caller's client, or a short-lived one from ``make_client`` (closed on exit)."""
    if client is not None:
        yield client
        return
    async with make_client(service=SERVICE, retry=DEFAULT_RETRY, timeout=DEFAULT_TIMEOUT) as own:
        yield own


def _well_known(url: str, suffix: str) -> str:
    """RFC 8414 §3.1 / RFC 9728 §3.1: the well-known string goes between the host and the path."""
    parsed = httpx.URL(url)
    path = parsed.path.rstrip("/")
    return get_well_known_url(
        str(parsed.copy_with(path=path or "/", query=None, fragment=None)), external=True, suffix=suffix
    )


def _origin(url: str) -> str:
    parsed = httpx.URL(url)
    return str(parsed.copy_with(path="/", query=None, fragment=None)).rstrip("/")


def _dedupe(urls: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for url in urls:
        if url not in seen:
            seen.append(url)
    return seen


async def _get_metadata(client: httpx.AsyncClient, url: str, what: str) -> dict[str, Any] | None:
    """A metadata document, or None when there is none at ``url`` (4xx, a redirect)."""
    try:
        response = await client.get(url, headers={"Accept": "application/json"}, follow_redirects=False)
    except httpx.TransportError as err:  # a plain client; connectors.http's raises typed errors itself
        raise TransientError(f"{SERVICE} GET {redact_url(url)} ({what}) -> {type(err).__name__}") from None
    if response.status_code >= 500 or response.status_code == 429:
        await response.aread()
        raise error_for_response(response, service=SERVICE)
    if response.status_code != 200:
        logger.debug("%s: no %s at %s (%s)", SERVICE, what, redact_url(url), response.status_code)
        return None
    try:
        data = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        raise ConfigError(f"{what} at {redact_url(url)} is not a JSON object")
    return data


async def _first_metadata(
    client: httpx.AsyncClient, urls: list[str], what: str, guard: Callable[[str, str], str]
) -> tuple[dict[str, Any] | None, str | None]:
    """The first ``what`` document found at ``urls`` (each passed through ``guard`` first) and its URL."""
    for url in urls:
        guard(url, f"{what} URL")
        data = await _get_metadata(client, url, what)
        if data is not None:
            return data, url
    return None, None


def _resource_matches(published: str, requested: str) -> bool:
    """RFC 9728 §3.3, as relaxed by draft-mcguinness-oauth-rfc9728bis: same origin, path a prefix."""
    try:
        pub, req = httpx.URL(published), httpx.URL(requested)
    except (httpx.InvalidURL, TypeError, ValueError):
        return False
    if (pub.scheme, pub.host, pub.port) != (req.scheme, req.host, req.port):
        return False
    pub_parts = [p for p in pub.path.split("/") if p]
    req_parts = [p for p in req.path.split("/") if p]
    return req_parts[: len(pub_parts)] == pub_parts


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(v for v in value if isinstance(v, str))
    return ()


async def discover(
    resource_url: str,
    *,
    client: httpx.AsyncClient | None = None,
    allow_loopback_http: bool = True,
    resource_metadata_url: str | None = None,
    extra_sites: Collection[str] = (),
) -> ServerMetadata:
    """Find the authorization server of a protected resource (an MCP server URL).

    1. RFC 9728 protected-resource metadata: ``resource_metadata_url`` when given (the
       ``resource_metadata`` of a 401's ``WWW-Authenticate``), else
       ``/.well-known/oauth-protected-resource/<path>``, then ``/.well-known/oauth-protected-resource``
       on the resource's origin. Its ``resource`` must match the URL (same origin, path prefix) and
       ``authorization_servers[0]`` is used.
    2. RFC 8414 metadata of that issuer (then the OpenID Connect locations); its ``issuer`` must be
       the one asked for. Without protected-resource metadata, as MCP clients do, the authorization
       server is looked for on the resource's origin.
    3. Every endpoint passes ``check_endpoint`` (https, same site), PKCE ``S256`` must be supported
       (an authorization server that does not say so is refused, as the MCP spec requires) and
       ``response_type=code`` must be allowed.

    Args:
        resource_url: The protected resource (``https://mcp.notion.com/mcp``).
        client: The HTTP client (default: a short-lived ``make_client`` one).
        allow_loopback_http: Accept plain http on loopback hosts (development, tests).
        resource_metadata_url: The metadata URL a 401 challenge named, tried first.
        extra_sites: Other sites to trust for the authorization server (see ``check_endpoint``).

    Raises:
        ConfigError: no usable metadata, or an endpoint the guard refuses.
        TransientError: the server failed (5xx, timeout); try again later.
    """

    def guard(url: str, what: str) -> str:
        return check_endpoint(
            url, resource_url, what=what, allow_loopback_http=allow_loopback_http, extra_sites=extra_sites
        )

    guard(resource_url, "resource URL")
    async with _http(client) as http:
        candidates = _dedupe(
            ([resource_metadata_url] if resource_metadata_url else [])
            + [
                _well_known(resource_url, PROTECTED_RESOURCE_SUFFIX),
                _well_known(_origin(resource_url), PROTECTED_RESOURCE_SUFFIX),
            ]
        )
        prm, prm_url = await _first_metadata(http, candidates, "protected-resource metadata", guard)

        resource = resource_url
        scopes: tuple[str, ...] = ()
        if prm is not None:
            published = prm.get("resource")
            if not isinstance(published, str) or not _resource_matches(published, resource_url):
                raise ConfigError(
                    f"the protected-resource metadata at {redact_url(prm_url or '')} is for "
                    f"{redact_url(str(published))}, not for {redact_url(resource_url)}"
                )
            servers = _strings(prm.get("authorization_servers"))
            if not servers:
                raise ConfigError(
                    f"the protected-resource metadata at {redact_url(prm_url or '')} names no authorization_servers"
                )
            resource = published
            scopes = _strings(prm.get("scopes_supported"))
            issuer = guard(servers[0], "authorization server")
            as_candidates = _dedupe(
                [
                    _well_known(issuer, AUTHORIZATION_SERVER_SUFFIX),
                    _well_known(issuer, OPENID_SUFFIX),
                    issuer.rstrip("/") + "/.well-known/" + OPENID_SUFFIX,
                ]
            )
        else:
            issuer = _origin(resource_url)
            as_candidates = [
                _well_known(issuer, AUTHORIZATION_SERVER_SUFFIX),
                _well_known(issuer, OPENID_SUFFIX),
            ]

        asm, asm_url = await _first_metadata(http, as_candidates, "authorization-server metadata", guard)
    if asm is None or asm_url is None:
        raise ConfigError(
            f"no OAuth authorization-server metadata found for {redact_url(resource_url)} "
            f"(tried {', '.join(redact_url(u) for u in candidates + as_candidates)})"
        )
    return _server_metadata(asm, asm_url, issuer, resource, prm_url, scopes, guard)


def _server_metadata(
    asm: dict[str, Any],
    asm_url: str,
    issuer: str,
    resource: str,
    prm_url: str | None,
    scopes: tuple[str, ...],
    guard: Callable[[str, str], str],
) -> ServerMetadata:
    published_issuer = asm.get("issuer")
    if not isinstance(published_issuer, str) or published_issuer.rstrip("/") != issuer.rstrip("/"):
        raise ConfigError(
            f"the authorization-server metadata at {redact_url(asm_url)} is for issuer "
            f"{redact_url(str(published_issuer))}, not {redact_url(issuer)} (RFC 8414 §3.3)"
        )

    def endpoint(name: str, *, required: bool) -> str | None:
        value = asm.get(name)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value:
            raise ConfigError(f"the authorization-server metadata at {redact_url(asm_url)} has no {name}")
        return guard(value, name)

    methods = _strings(asm.get("code_challenge_methods_supported"))
    if PKCE_METHOD not in methods:
        raise ConfigError(
            f"the authorization server {redact_url(issuer)} does not advertise PKCE S256 "
            f"(code_challenge_methods_supported: {list(methods)}); refusing to log in without it"
        )
    response_types = _strings(asm.get("response_types_supported"))
    if response_types and "code" not in response_types:
        raise ConfigError(f"the authorization server {redact_url(issuer)} does not support response_type=code")
    authorization_endpoint = endpoint("authorization_endpoint", required=True)
    token_endpoint = endpoint("token_endpoint", required=True)
    assert authorization_endpoint is not None and token_endpoint is not None
    return ServerMetadata(
        issuer=published_issuer,
        authorization_endpoint=authorization_endpoint,
        token_endpoint=token_endpoint,
        registration_endpoint=endpoint("registration_endpoint", required=False),
        resource=resource,
        resource_metadata_url=prm_url,
        scopes_supported=scopes or _strings(asm.get("scopes_supported")),
        code_challenge_methods_supported=methods,
        token_endpoint_auth_methods_supported=_strings(asm.get("token_endpoint_auth_methods_supported")),
        revocation_endpoint=endpoint("revocation_endpoint", required=False),
        raw=dict(asm),
    )


# --------------------------------------------------------------------------------------------------
# Dynamic client registration (RFC 7591)


async def register_client(
    metadata: ServerMetadata | str,
    redirect_uris: Sequence[str],
    *,
    client_name: str = DEFAULT_CLIENT_NAME,
    scope: str | None = None,
    client: httpx.AsyncClient | None = None,
) -> RegisteredClient:
    """Register a public client for ``redirect_uris`` (RFC 7591 dynamic client registration).

    The client is public (``token_endpoint_auth_method=none``), with the grants ``authorization_code``
    and ``refresh_token`` and ``response_type=code``.

    Args:
        metadata: The discovered metadata (or the registration endpoint itself, already checked).
        redirect_uris: Where the authorization server may send the browser back.
        client_name: Shown to the user on the consent screen.
        scope: Scope to register for, when the server grants scopes at registration.
        client: The HTTP client (default: a short-lived ``make_client`` one).

    Raises:
        ConfigError: the server offers no registration, or refused ours (``invalid_redirect_uri``,
            ``invalid_client_metadata``, a 401/403 asking for an initial access token).
        TransientError: the server failed (5xx, timeout).
    """
    endpoint = metadata if isinstance(metadata, str) else metadata.registration_endpoint
    if not endpoint:
        raise ConfigError(
            "the authorization server offers no dynamic client registration (registration_endpoint); "
            "a client registered by hand is needed"
        )
    body: dict[str, Any] = {
        "client_name": client_name,
        "redirect_uris": list(redirect_uris),
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    }
    if scope:
        body["scope"] = scope
    async with _http(client) as http:
        try:
            # A lost response at worst leaves an unused registration behind: retrying is harmless.
            response = await http.post(endpoint, json=body, follow_redirects=False)
        except httpx.TransportError as err:
            raise TransientError(f"{SERVICE} POST {redact_url(endpoint)} -> {type(err).__name__}") from None
        await response.aread()
    data = _json_object(response)
    if response.status_code >= 500 or response.status_code == 429:
        raise error_for_response(response, service=SERVICE)
    if response.status_code not in (200, 201) or not isinstance(data.get("client_id"), str):
        error = str(data.get("error") or f"HTTP {response.status_code}")
        description = redact_text(str(data.get("error_description") or ""))
        raise ConfigError(
            f"dynamic client registration at {redact_url(endpoint)} was refused: {error}"
            + (f" ({description})" if description else "")
        )
    secret = data.get("client_secret")
    expires = data.get("client_secret_expires_at")
    return RegisteredClient(
        client_id=data["client_id"],
        client_secret=secret if isinstance(secret, str) and secret else None,
        redirect_uris=_strings(data.get("redirect_uris")) or tuple(redirect_uris),
        token_endpoint_auth_method=str(data.get("token_endpoint_auth_method") or "none"),
        client_secret_expires_at=int(expires) if isinstance(expires, (int, float)) else None,
        raw={k: v for k, v in data.items() if k not in ("client_secret", "registration_access_token")},
    )


# --------------------------------------------------------------------------------------------------
# Authorization request


def authorization_url(
    metadata: ServerMetadata | str,
    *,
    client_id: str,
    redirect_uri: str,
    pkce: PKCE,
    state: str,
    scope: str | None = None,
    resource: str | None = None,
    extra_params: Mapping[str, str] | None = None,
) -> str:
    """The URL the user opens to approve access (authorization code flow with PKCE S256).

    Args:
        metadata: The discovered metadata (or the authorization endpoint, already checked).
        client_id: The registered client.
        redirect_uri: One of the client's registered redirect URIs.
        pkce: The PKCE pair; only the challenge goes into the URL.
        state: The CSRF state the callback must echo.
        scope: Space-separated scopes; omitted when None (DCR servers often grant at registration).
        resource: RFC 8707 resource indicator (default: the discovered resource).
        extra_params: Anything else the server wants (``prompt=consent``).
    """
    endpoint = metadata if isinstance(metadata, str) else metadata.authorization_endpoint
    if resource is None and isinstance(metadata, ServerMetadata):
        resource = metadata.resource
    url: str = prepare_grant_uri(
        endpoint,
        client_id=client_id,
        response_type="code",
        redirect_uri=redirect_uri,
        scope=scope or None,
        state=state,
        code_challenge=pkce.challenge,
        code_challenge_method=pkce.method,
        resource=resource,
        **dict(extra_params or {}),
    )
    return url


# --------------------------------------------------------------------------------------------------
# Token endpoint


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, httpx.ResponseNotRead):
        return {}
    return data if isinstance(data, dict) else {}


def _unavailable(message: str, *, ambiguous: bool, status_code: int = 0) -> TokenEndpointUnavailable:
    return TokenEndpointUnavailable(message, ambiguous=ambiguous, status_code=status_code)


_SAFE_EXCEPTIONS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


async def _token_request(
    client: httpx.AsyncClient,
    token_endpoint: str,
    grant_type: str,
    params: Mapping[str, str | None],
    *,
    client_id: str,
    client_secret: str | None,
    auth_method: str | None,
    secrets: Iterable[str],
) -> dict[str, Any]:
    """POST a grant to the token endpoint; the successful JSON body, or a typed error.

    Never replays after an ambiguous failure (see the module docstring).
    """
    secrets = [s for s in secrets if s]
    what = f"{SERVICE} POST {redact_url(token_endpoint)} ({grant_type})"
    body = prepare_token_request(grant_type, **{k: v for k, v in params.items() if v})
    method = auth_method or ("client_secret_basic" if client_secret else "none")
    headers = {"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"}
    url, headers, body = ClientAuth(client_id, client_secret, method).prepare("POST", token_endpoint, headers, body)
    try:
        response = await client.post(
            url,
            content=body.encode(),
            headers=headers,
            follow_redirects=False,
            extensions=retry_options(retry_ambiguous=False),
        )
        await response.aread()
    except RateLimited:
        raise
    except TransientError as err:
        # connectors.http gave up: a retried 503/408/529 (not ambiguous), or a transport failure.
        status = getattr(err, "status_code", 0) or 0
        cause = err.__cause__
        ambiguous = status in AMBIGUOUS_STATUSES or (status == 0 and not isinstance(cause, _SAFE_EXCEPTIONS))
        raise _unavailable(
            f"{what} failed: {redact_text(str(err), secrets)}", ambiguous=ambiguous, status_code=status
        ) from None
    except httpx.TransportError as err:  # a plain client without connectors.http's transport
        ambiguous = not isinstance(err, _SAFE_EXCEPTIONS)
        raise _unavailable(f"{what} -> {type(err).__name__}", ambiguous=ambiguous) from None

    status = response.status_code
    data = _json_object(response)
    if status == 200 and isinstance(data.get("access_token"), str) and data["access_token"]:
        return data
    if status == 429:
        raise error_for_response(response, service=SERVICE)
    if status >= 500 or status == 408:
        raise _unavailable(f"{what} -> {status}", ambiguous=status in AMBIGUOUS_STATUSES, status_code=status)
    if status == 200:
        # The server answered but we cannot use the answer; for a rotating refresh token it may
        # already have rotated, so this is as ambiguous as a lost response.
        raise _unavailable(f"{what} -> 200 without an access_token", ambiguous=True, status_code=status)
    error = str(data.get("error") or f"http_{status}")
    description = redact_text(str(data.get("error_description") or ""), secrets, limit=200)
    detail = f"{error}" + (f" ({description})" if description else "")
    raise OAuthGrantError(f"{what} was refused: {detail}", error=error, description=description, status_code=status)


def _now(clock: Callable[[], float]) -> dt.datetime:
    return dt.datetime.fromtimestamp(clock(), dt.UTC)


def _expires_at(data: Mapping[str, Any], now: dt.datetime) -> dt.datetime | None:
    """The expiry: ``now`` plus ``expires_in``; None without one (such a token is refreshed on a 401 only)."""
    raw = data.get("expires_in")
    try:
        seconds = float(raw) if raw is not None else None
    except (TypeError, ValueError):
        seconds = None
    return now + dt.timedelta(seconds=seconds) if seconds is not None and seconds >= 0 else None


async def exchange_code(
    metadata: ServerMetadata | str,
    *,
    client_id: str,
    code: str,
    redirect_uri: str,
    code_verifier: str,
    client_secret: str | None = None,
    token_endpoint_auth_method: str | None = None,
    resource: str | None = None,
    client: httpx.AsyncClient | None = None,
    clock: Callable[[], float] = time.time,
) -> OAuthToken:
    """Exchange an authorization code (with its PKCE verifier) for tokens.

    An authorization code is single-use, so an ambiguous failure is not retried (a replay would be
    refused, and RFC 6749 lets the server revoke what the first use issued); log in again.

    Args:
        metadata: The discovered metadata (or the token endpoint, already checked).
        client_id: The registered client.
        code: The code from the redirect.
        redirect_uri: The redirect URI the authorization request used.
        code_verifier: The PKCE verifier whose challenge the authorization request sent.
        client_secret: Only for a confidential client.
        token_endpoint_auth_method: From the registration (default: ``none`` without a secret).
        resource: RFC 8707 resource (default: the discovered resource).
        client: The HTTP client (default: a short-lived ``make_client`` one).
        clock: Epoch seconds, for ``expires_at``.

    Returns:
        The token, with ``token_endpoint``, ``client_id``, ``resource`` and ``obtained_at`` set.

    Raises:
        OAuthGrantError: the code or verifier was refused (``invalid_grant``) or the client was.
        TokenEndpointUnavailable: 5xx or a timeout.
    """
    token_endpoint = metadata if isinstance(metadata, str) else metadata.token_endpoint
    if resource is None and isinstance(metadata, ServerMetadata):
        resource = metadata.resource
    async with _http(client) as http:
        data = await _token_request(
            http,
            token_endpoint,
            "authorization_code",
            {"code": code, "redirect_uri": redirect_uri, "code_verifier": code_verifier, "resource": resource},
            client_id=client_id,
            client_secret=client_secret,
            auth_method=token_endpoint_auth_method,
            secrets=[code, code_verifier, client_secret or ""],
        )
    now = _now(clock)
    extra: dict[str, Any] = {}
    if token_endpoint_auth_method:
        extra["token_endpoint_auth_method"] = token_endpoint_auth_method
    if isinstance(metadata, ServerMetadata):
        extra["issuer"] = metadata.issuer
    refresh_token = data.get("refresh_token")
    return OAuthToken(
        access_token=data["access_token"],
        refresh_token=refresh_token if isinstance(refresh_token, str) and refresh_token else None,
        expires_at=_expires_at(data, now),
        token_type=str(data.get("token_type") or "Bearer"),
        token_endpoint=token_endpoint,
        client_id=client_id,
        client_secret=client_secret,
        resource=resource,
        scope=str(data["scope"]) if data.get("scope") else None,
        obtained_at=now,
        refreshed_at=None,
        extra=extra,
    )


async def refresh(
    token: OAuthToken,
    *,
    client: httpx.AsyncClient | None = None,
    clock: Callable[[], float] = time.time,
    allow_loopback_http: bool = True,
) -> OAuthToken:
    """Trade ``token``'s refresh token for a new access token (and, usually, a rotated refresh token).

    The caller must hold the account's refresh lock and persist the result at once with a
    compare-and-swap save: with rotating refresh tokens the old one is spent from the moment the
    server answers. ``connectors.auth.provider.TokenProvider`` does both.

    The new token keeps the client, endpoint, resource and ``extra`` of the old one (minus
    ``refresh_unconfirmed_at``), keeps the old refresh token when the response has none (RFC 6749
    §6: the server may keep it), keeps the old scope when the response names none, and sets
    ``expires_at`` from ``expires_in``, ``obtained_at`` and ``refreshed_at`` to now.

    Args:
        token: The stored token (with its refresh token and token endpoint).
        client: The HTTP client (default: a short-lived ``make_client`` one).
        clock: Epoch seconds (injectable for tests).
        allow_loopback_http: Accept a plain-http token endpoint on a loopback host.

    Returns:
        The new token, to be saved at once.

    Raises:
        OAuthGrantError: ``invalid_grant`` (expired, revoked or already rotated refresh token) or
            another refusal; only a new login fixes it.
        AuthError: the token has no refresh token or no token endpoint.
        TokenEndpointUnavailable: 5xx or a timeout; ``ambiguous`` says whether the server may have
            rotated the token anyway (see the module docstring).
    """
    if not token.refresh_token:
        raise AuthError("the stored OAuth token has no refresh token; log in again")
    if not token.token_endpoint or not token.client_id:
        raise AuthError("the stored OAuth token does not say where to refresh it (token_endpoint, client_id)")
    # The endpoint came from a checked discovery; re-check the scheme, as the store is outside our control.
    check_endpoint(
        token.token_endpoint, token.token_endpoint, what="token_endpoint", allow_loopback_http=allow_loopback_http
    )
    async with _http(client) as http:
        data = await _token_request(
            http,
            token.token_endpoint,
            "refresh_token",
            {"refresh_token": token.refresh_token, "resource": token.resource},
            client_id=token.client_id,
            client_secret=token.client_secret,
            auth_method=token.extra.get("token_endpoint_auth_method"),
            secrets=[token.refresh_token, token.access_token, token.client_secret or ""],
        )
    now = _now(clock)
    new_refresh = data.get("refresh_token")
    extra = {k: v for k, v in token.extra.items() if k != "refresh_unconfirmed_at"}
    return dataclasses.replace(
        token,
        access_token=data["access_token"],
        refresh_token=new_refresh if isinstance(new_refresh, str) and new_refresh else token.refresh_token,
        expires_at=_expires_at(data, now),
        token_type=str(data.get("token_type") or token.token_type or "Bearer"),
        scope=str(data["scope"]) if data.get("scope") else token.scope,
        obtained_at=now,
        refreshed_at=now,
        extra=extra,
    )

"""OAuth as Notion's hosted MCP server really speaks it, through ``connectors.auth.oauth`` and the provider.

The hosted server's OAuth is Cloudflare's workers-oauth-provider (``src/oauth-provider.ts``); the fixtures
below are written for these tests from that code and from what public client tests record of
``mcp.notion.com``, not copied:

- RFC 9728 protected-resource metadata at the path-aware location: ``resource``,
  ``authorization_servers`` (the origin), ``bearer_methods_supported: ["header"]``; no scopes
  advertised (a PHP client's discovery test of mcp.notion.com records the same document);
- RFC 8414 metadata: ``issuer`` (the origin), the three endpoints on it, ``response_types_supported:
  ["code"]``, ``response_modes_supported: ["query"]``, ``grant_types_supported``, three
  ``token_endpoint_auth_methods_supported``, ``revocation_endpoint`` = the token endpoint,
  ``code_challenge_methods_supported: ["plain", "S256"]`` (recorded for Notion),
  ``authorization_response_iss_parameter_supported``, ``client_id_metadata_document_supported``;
- RFC 7591 registration: 201 with ``client_id`` (16 characters of ``[A-Za-z0-9-_]``), the metadata echoed,
  ``client_id_issued_at``; no secret for a public client;
- RFC 6749 §5.1 token answers: ``access_token`` and ``refresh_token`` as ``<user id>:<grant id>:<secret>``,
  ``token_type: "bearer"`` (lower case), ``expires_in: 3600``, ``scope: ""`` (nothing is advertised, so
  nothing is granted), the RFC 8707 ``resource``; ``Cache-Control: no-store`` and ``Pragma: no-cache``;
- RFC 6749 §5.2 errors ``{"error", "error_description"}``: ``invalid_grant`` "Invalid refresh token",
  "Invalid PKCE code_verifier", "Authorization code already used"; ``invalid_client`` "Client not found"
  with 401; registration ``invalid_redirect_uri``;
- the resource's 401: ``WWW-Authenticate: Bearer realm="OAuth", resource_metadata="…/.well-known/
  oauth-protected-resource/mcp", error="invalid_token"`` with ``{"error": "invalid_token",
  "error_description": "Invalid access token"}``; the server reads the header with a case-sensitive
  ``startsWith('Bearer ')``.

They are served by a replay transport (``httpx.MockTransport``), so what reaches the toolkit is exactly the
recorded shape; the last tests check that the fake authorization server answers in the same shapes.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import secrets
import urllib.parse
import uuid
from typing import Any

import httpx
import pytest

from connectors.auth import oauth
from connectors.auth.provider import OAuthBearerAuth, TokenProvider
from connectors.auth.tokens import MemoryTokenStore, OAuthToken
from connectors.core import AuthError, ConfigError
from connectors.http import RetryPolicy, make_client
from tests.connectors.auth.helpers import RESOURCE, no_sleep, oauth_client
from tests.fakes.oauth import FakeOAuthServer, ManualClock
from tests.fakes.replay import Answer
from tests.fakes.replay import Replay as RecordedReplay

Json = dict[str, Any]

ORIGIN = "https://mcp.notion.com"
MCP = f"{ORIGIN}/mcp"
PRM_URL = f"{ORIGIN}/.well-known/oauth-protected-resource/mcp"
ASM_URL = f"{ORIGIN}/.well-known/oauth-authorization-server"
TOKEN_URL = f"{ORIGIN}/token"
CALLBACK = "http://127.0.0.1:8765/callback"
NO_CACHE = {"cache-control": "no-store", "pragma": "no-cache"}
ID_CHARS = re.compile(r"[A-Za-z0-9_-]{16}")

PROTECTED_RESOURCE: Json = {"resource": MCP, "authorization_servers": [ORIGIN], "bearer_methods_supported": ["header"]}

AUTHORIZATION_SERVER: Json = {
    "issuer": ORIGIN,
    "authorization_endpoint": f"{ORIGIN}/authorize",
    "token_endpoint": TOKEN_URL,
    "registration_endpoint": f"{ORIGIN}/register",
    "response_types_supported": ["code"],
    "response_modes_supported": ["query"],
    "grant_types_supported": ["authorization_code", "refresh_token"],
    "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
    "revocation_endpoint": TOKEN_URL,
    "code_challenge_methods_supported": ["plain", "S256"],
    "authorization_response_iss_parameter_supported": True,
    "client_id_metadata_document_supported": False,
}


def random_id(length: int = 16) -> str:
    return "".join(
        secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") for _ in range(length)
    )


def provider_token(user: str, grant: str) -> str:
    """``<user id>:<grant id>:<32 characters>``, the format of workers-oauth-provider's tokens (new per call)."""
    return f"{user}:{grant}:{random_id(32)}"


def registration(client_id: str, issued_at: int) -> Json:
    return {
        "client_id": client_id,
        "redirect_uris": [CALLBACK],
        "client_name": "durable-sync",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "client_id_issued_at": issued_at,
    }


def token_answer(user: str, grant: str) -> Json:
    return {
        "access_token": provider_token(user, grant),
        "token_type": "bearer",
        "expires_in": 3600,
        "scope": "",
        "refresh_token": provider_token(user, grant),
        "resource": MCP,
    }


def oauth_error(error: str, description: str) -> Json:
    return {"error": error, "error_description": description}


def challenge(error: str | None = "invalid_token") -> str:
    value = f'Bearer realm="OAuth", resource_metadata="{PRM_URL}"'
    return value + (f', error="{error}"' if error else "")


# --------------------------------------------------------------------------------------------------
# The replay transport


class Replay(RecordedReplay):
    """Answers per (method, URL without query): the provider's endpoints sit on more than one host."""

    def key(self, request: httpx.Request) -> tuple[str, str]:
        return (request.method, str(request.url.copy_with(query=None)))

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        kwargs.setdefault("retry", RetryPolicy(max_attempts=3, base_delay=0, jitter=0))
        return make_client(service="OAuth", transport=self.transport(), sleep=no_sleep, **kwargs)

    def form(self, index: int) -> dict[str, str]:
        return dict(urllib.parse.parse_qsl(self.seen[index].content.decode()))


def discoverable(replay: Replay) -> None:
    replay.add("GET", PRM_URL, Answer(200, PROTECTED_RESOURCE))
    replay.add("GET", ASM_URL, Answer(200, AUTHORIZATION_SERVER))


def stored_token(clock: ManualClock, *, user: str, grant: str, client_id: str) -> OAuthToken:
    now = dt.datetime.fromtimestamp(clock(), dt.UTC)
    answer = token_answer(user, grant)
    return OAuthToken(
        access_token=answer["access_token"],
        refresh_token=answer["refresh_token"],
        expires_at=now + dt.timedelta(seconds=3600),
        token_type="bearer",
        token_endpoint=TOKEN_URL,
        client_id=client_id,
        resource=MCP,
        obtained_at=now,
    )


# --------------------------------------------------------------------------------------------------
# Discovery and registration


async def test_discovery_reads_the_real_metadata_documents() -> None:
    replay = Replay()
    discoverable(replay)
    async with replay.client() as http:
        metadata = await oauth.discover(MCP, client=http)

    assert (metadata.issuer, metadata.token_endpoint, metadata.resource) == (ORIGIN, TOKEN_URL, MCP)
    assert metadata.authorization_endpoint == f"{ORIGIN}/authorize"
    assert metadata.registration_endpoint == f"{ORIGIN}/register"
    assert metadata.revocation_endpoint == TOKEN_URL  # the provider revokes at its token endpoint
    assert metadata.resource_metadata_url == PRM_URL
    assert metadata.scopes_supported == ()  # Notion advertises none
    assert "S256" in metadata.code_challenge_methods_supported
    assert [str(r.url) for r in replay.seen] == [PRM_URL, ASM_URL]


async def test_the_challenges_resource_metadata_url_is_the_one_discovery_asks_first() -> None:
    replay = Replay()
    discoverable(replay)
    found = re.search(r'resource_metadata="([^"]+)"', challenge())
    assert found is not None

    async with replay.client() as http:
        metadata = await oauth.discover(MCP, client=http, resource_metadata_url=found.group(1))

    assert metadata.resource_metadata_url == PRM_URL and str(replay.seen[0].url) == PRM_URL


async def test_an_authorization_url_asks_for_s256_although_plain_is_offered() -> None:
    replay = Replay()
    discoverable(replay)
    async with replay.client() as http:
        metadata = await oauth.discover(MCP, client=http)
    pkce = oauth.new_pkce()

    url = oauth.authorization_url(metadata, client_id=random_id(), redirect_uri=CALLBACK, pkce=pkce, state="s1")

    params = dict(httpx.URL(url).params.multi_items())
    assert params["code_challenge_method"] == "S256" and params["resource"] == MCP
    digest = hashlib.sha256(pkce.verifier.encode("ascii")).digest()
    assert params["code_challenge"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    assert re.fullmatch(r"[A-Za-z0-9._~-]{43,128}", pkce.verifier)  # RFC 7636 §4.1
    assert "scope" not in params  # nothing is advertised, nothing is asked for


async def test_a_real_registration_answer_is_a_public_client() -> None:
    client_id = random_id()
    replay = Replay()
    replay.add("POST", f"{ORIGIN}/register", Answer(201, registration(client_id, 1_765_000_000), NO_CACHE))

    async with replay.client() as http:
        registered = await oauth.register_client(f"{ORIGIN}/register", [CALLBACK], client=http)

    assert registered.client_id == client_id and registered.client_secret is None
    assert registered.token_endpoint_auth_method == "none" and registered.redirect_uris == (CALLBACK,)
    sent = json.loads(replay.seen[0].content)
    assert sent["token_endpoint_auth_method"] == "none" and sent["grant_types"] == [
        "authorization_code",
        "refresh_token",
    ]


async def test_a_refused_registration_is_a_config_error_with_the_servers_words() -> None:
    replay = Replay()
    refusal = oauth_error("invalid_redirect_uri", "Invalid redirect URI: javascript:alert(1)")
    replay.add("POST", f"{ORIGIN}/register", Answer(400, refusal, NO_CACHE))

    async with replay.client() as http:
        with pytest.raises(ConfigError, match="invalid_redirect_uri") as raised:
            await oauth.register_client(f"{ORIGIN}/register", [CALLBACK], client=http)

    assert "Invalid redirect URI" in str(raised.value)


# --------------------------------------------------------------------------------------------------
# Tokens


async def test_a_real_code_exchange_answer_becomes_the_stored_token() -> None:
    user, grant, client_id = str(uuid.uuid4()), random_id(), random_id()
    answer = token_answer(user, grant)
    replay = Replay()
    replay.add("POST", TOKEN_URL, Answer(200, answer, NO_CACHE))
    clock = ManualClock()

    async with replay.client() as http:
        token = await oauth.exchange_code(
            TOKEN_URL,
            client_id=client_id,
            code=provider_token(user, grant),
            redirect_uri=CALLBACK,
            code_verifier=oauth.new_pkce().verifier,
            resource=MCP,
            client=http,
            clock=clock,
        )

    assert (token.access_token, token.refresh_token) == (answer["access_token"], answer["refresh_token"])
    assert token.expires_at == dt.datetime.fromtimestamp(clock() + 3600, dt.UTC)
    assert token.scope is None  # "" grants nothing nameable
    assert token.resource == MCP and token.client_id == client_id
    form = replay.form(0)
    assert form["grant_type"] == "authorization_code" and form["resource"] == MCP and form["client_id"] == client_id
    assert "authorization" not in replay.seen[0].headers  # a public client: no client authentication


async def test_a_real_refresh_answer_rotates_both_tokens() -> None:
    user, grant, client_id = str(uuid.uuid4()), random_id(), random_id()
    clock = ManualClock()
    old = stored_token(clock, user=user, grant=grant, client_id=client_id)
    answer = token_answer(user, grant)
    replay = Replay()
    replay.add("POST", TOKEN_URL, Answer(200, answer, NO_CACHE))
    clock.advance(3000)

    async with replay.client() as http:
        new = await oauth.refresh(old, client=http, clock=clock)

    assert new.access_token == answer["access_token"] and new.refresh_token == answer["refresh_token"]
    assert new.refreshed_at == dt.datetime.fromtimestamp(clock(), dt.UTC)
    assert replay.form(0) == {
        "grant_type": "refresh_token",
        "refresh_token": old.refresh_token,
        "resource": MCP,
        "client_id": client_id,
    }


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (400, oauth_error("invalid_grant", "Invalid refresh token"), "invalid_grant"),
        (400, oauth_error("invalid_grant", "Grant not found"), "invalid_grant"),
        (401, oauth_error("invalid_client", "Client not found"), "invalid_client"),
    ],
    ids=["rotated-away", "grant-gone", "client-gone"],
)
async def test_a_real_refusal_is_a_grant_error_with_its_code_and_no_token(status, body, code):
    clock = ManualClock()
    old = stored_token(clock, user=str(uuid.uuid4()), grant=random_id(), client_id=random_id())
    replay = Replay()
    replay.add("POST", TOKEN_URL, Answer(status, body, NO_CACHE))

    async with replay.client() as http:
        with pytest.raises(oauth.OAuthGrantError) as raised:
            await oauth.refresh(old, client=http, clock=clock)

    error = raised.value
    assert isinstance(error, AuthError)
    assert (error.error, error.status_code, error.description) == (code, status, body["error_description"])
    assert body["error_description"] in str(error)
    for secret in (old.refresh_token or "", old.access_token, (old.refresh_token or "").rsplit(":", 1)[-1]):
        assert secret not in str(error)


async def test_a_gateways_503_before_the_provider_is_unavailable_and_not_ambiguous() -> None:
    clock = ManualClock()
    old = stored_token(clock, user=str(uuid.uuid4()), grant=random_id(), client_id=random_id())
    replay = Replay()
    replay.add("POST", TOKEN_URL, Answer(503, None, {"content-type": "text/plain", "retry-after": "1"}))

    async with replay.client() as http:
        with pytest.raises(oauth.TokenEndpointUnavailable) as raised:
            await oauth.refresh(old, client=http, clock=clock)

    assert raised.value.ambiguous is False and raised.value.status_code == 503
    assert len(replay.seen) == 3  # 503 proves nothing was done: retried, never replayed blindly
    assert old.refresh_token and old.refresh_token not in str(raised.value)


# --------------------------------------------------------------------------------------------------
# The resource's 401 and the provider


async def test_the_resources_real_401_refreshes_once_and_sends_bearer_in_the_servers_case() -> None:
    user, grant, client_id = str(uuid.uuid4()), random_id(), random_id()
    clock = ManualClock()
    store = MemoryTokenStore()
    old = stored_token(clock, user=user, grant=grant, client_id=client_id)
    store.save("notion-mcp", old, expected_version=None)
    fresh = token_answer(user, grant)

    def resource(request: httpx.Request) -> Answer:
        # workers-oauth-provider: authHeader.startsWith('Bearer ') — the scheme's case matters there.
        if request.headers.get("authorization") == f"Bearer {fresh['access_token']}":
            return Answer(200, {"jsonrpc": "2.0", "id": 1, "result": {}})
        body = oauth_error("invalid_token", "Invalid access token")
        return Answer(401, body, {**NO_CACHE, "www-authenticate": challenge()})

    replay = Replay()
    replay.add("POST", MCP, resource)
    replay.add("POST", TOKEN_URL, Answer(200, fresh, NO_CACHE))
    async with replay.client() as http:
        provider = TokenProvider(store, "notion-mcp", client=http, clock=clock)
        async with replay.client(auth=OAuthBearerAuth(provider)) as api:
            response = await api.post(MCP, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})

    assert response.status_code == 200
    assert [str(r.url) for r in replay.seen] == [MCP, TOKEN_URL, MCP]
    loaded = store.load("notion-mcp")
    assert loaded is not None and loaded[0].refresh_token == fresh["refresh_token"]


async def test_a_second_real_401_is_an_auth_error_naming_no_token() -> None:
    clock = ManualClock()
    store = MemoryTokenStore()
    old = stored_token(clock, user=str(uuid.uuid4()), grant=random_id(), client_id=random_id())
    store.save("notion-mcp", old, expected_version=None)
    body = oauth_error("invalid_token", "Invalid access token")
    replay = Replay()
    replay.add("POST", MCP, Answer(401, body, {**NO_CACHE, "www-authenticate": challenge()}))
    replay.add("POST", TOKEN_URL, Answer(400, oauth_error("invalid_grant", "Invalid refresh token"), NO_CACHE))

    async with replay.client() as http:
        provider = TokenProvider(store, "notion-mcp", client=http, clock=clock)
        async with replay.client(auth=OAuthBearerAuth(provider)) as api:
            with pytest.raises(AuthError) as raised:
                await api.post(MCP, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})

    assert "durable-sync auth login notion-mcp" in str(raised.value)
    assert old.access_token not in str(raised.value) and (old.refresh_token or "") not in str(raised.value)


# --------------------------------------------------------------------------------------------------
# The fake answers in these shapes


async def test_the_fakes_metadata_has_the_real_documents_keys() -> None:
    fake = FakeOAuthServer(clock=ManualClock())
    async with oauth_client(fake) as http:
        asm = (await http.get("https://mcp.example.test/.well-known/oauth-authorization-server")).json()
        prm = (await http.get("https://mcp.example.test/.well-known/oauth-protected-resource/mcp")).json()

    # The fake does not offer revocation, plain PKCE or client-id metadata documents; the rest is as served.
    missing = set(AUTHORIZATION_SERVER) - set(asm)
    assert missing == {
        "revocation_endpoint",
        "authorization_response_iss_parameter_supported",
        "client_id_metadata_document_supported",
    }
    assert {k: type(v) for k, v in asm.items() if k in AUTHORIZATION_SERVER} == {
        k: type(v) for k, v in AUTHORIZATION_SERVER.items() if k not in missing
    }
    assert asm["issuer"] == "https://mcp.example.test" and asm["response_modes_supported"] == ["query"]
    assert set(PROTECTED_RESOURCE) <= set(prm) and prm["resource"] == RESOURCE


async def test_the_fakes_registration_and_token_answers_have_the_real_shapes() -> None:
    clock = ManualClock()
    fake = FakeOAuthServer(clock=clock)
    async with oauth_client(fake) as http:
        registered = await http.post("https://mcp.example.test/register", json={"redirect_uris": [CALLBACK]})
        issued = fake.issue_grant(client_id=registered.json()["client_id"], resource=RESOURCE)
        refreshed = await http.post(
            "https://mcp.example.test/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": issued["refresh_token"],
                "client_id": issued["client_id"],
            },
        )

    assert registered.status_code == 201
    body = registered.json()
    assert set(body) == set(registration("x", 0)) and ID_CHARS.fullmatch(body["client_id"])
    assert isinstance(body["client_id_issued_at"], int)
    assert refreshed.status_code == 200
    token = refreshed.json()
    assert set(token) == set(token_answer("u", "g"))
    assert token["token_type"] == "bearer" and token["expires_in"] == 3600 and token["resource"] == RESOURCE
    for response in (registered, refreshed):
        assert {k: response.headers[k] for k in NO_CACHE} == NO_CACHE


async def test_the_fakes_error_bodies_have_the_real_codes_and_descriptions() -> None:
    fake = FakeOAuthServer(clock=ManualClock())
    issued = fake.issue_grant(resource=RESOURCE)
    async with oauth_client(fake) as http:
        unknown = await http.post(
            "https://mcp.example.test/token",
            data={"grant_type": "refresh_token", "refresh_token": random_id(40), "client_id": issued["client_id"]},
        )
        stranger = await http.post(
            "https://mcp.example.test/token",
            data={"grant_type": "refresh_token", "refresh_token": issued["refresh_token"], "client_id": random_id()},
        )
        anonymous = await http.get("https://mcp.example.test/api/whoami", headers={"Authorization": "Bearer x"})

    assert unknown.status_code == 400 and unknown.json() == oauth_error("invalid_grant", "Invalid refresh token")
    assert stranger.status_code == 401 and stranger.json() == oauth_error("invalid_client", "Client not found")
    assert "www-authenticate" not in stranger.headers  # a public client tried no Basic authentication
    assert anonymous.status_code == 401
    assert anonymous.json() == oauth_error("invalid_token", "Invalid access token")
    assert 'error="invalid_token"' in anonymous.headers["www-authenticate"]
    assert "resource_metadata=" in anonymous.headers["www-authenticate"]

"""The fake authorization server behaves as the real one is documented to (api-facts §B.2), so the
toolkit's tests mean something: PKCE, rotation, family revocation, validation for other fakes."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.connectors.auth.helpers import BASE, RESOURCE
from tests.fakes.oauth import FakeOAuthServer, ManualClock, serve

CALLBACK = "http://127.0.0.1:8788/callback"


@pytest.fixture
async def raw(fake: FakeOAuthServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app), base_url=BASE) as client:
        yield client


def challenge_of(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


async def register(raw: httpx.AsyncClient, redirect_uri: str = CALLBACK) -> str:
    response = await raw.post("/register", json={"client_name": "t", "redirect_uris": [redirect_uri]})
    assert response.status_code == 201
    return response.json()["client_id"]


def authorize_url(client_id: str, verifier: str, **overrides: str) -> str:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": CALLBACK,
        "state": "s1",
        "code_challenge": challenge_of(verifier),
        "code_challenge_method": "S256",
        "resource": RESOURCE,
        **overrides,
    }
    return str(httpx.URL(f"{BASE}/authorize", params=params))


async def test_authorization_code_needs_the_right_pkce_verifier(fake: FakeOAuthServer, raw: httpx.AsyncClient) -> None:
    client_id = await register(raw)
    verifier = secrets.token_urlsafe(48)
    code = httpx.URL(fake.approve(authorize_url(client_id, verifier))).params["code"]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, "client_id": client_id}

    wrong = await raw.post("/token", data={**form, "code_verifier": "x" * 43})

    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"
    code2 = httpx.URL(fake.approve(authorize_url(client_id, verifier))).params["code"]
    right = await raw.post("/token", data={**form, "code": code2, "code_verifier": verifier})
    assert right.status_code == 200
    body = right.json()
    assert body["token_type"].lower() == "bearer" and body["expires_in"] == 3600
    assert fake.validate(body["access_token"])
    assert right.headers["cache-control"] == "no-store"


async def test_a_reused_code_is_refused_and_revokes_what_it_issued(
    fake: FakeOAuthServer, raw: httpx.AsyncClient
) -> None:
    client_id = await register(raw)
    verifier = secrets.token_urlsafe(48)
    code = httpx.URL(fake.approve(authorize_url(client_id, verifier))).params["code"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "client_id": client_id,
        "code_verifier": verifier,
    }
    first = (await raw.post("/token", data=form)).json()

    second = await raw.post("/token", data=form)

    assert second.json()["error"] == "invalid_grant"
    assert not fake.validate(first["access_token"])


async def test_refresh_rotates_and_a_replay_revokes_the_whole_family(
    fake: FakeOAuthServer, raw: httpx.AsyncClient
) -> None:
    issued = fake.issue_grant()
    form = {"grant_type": "refresh_token", "client_id": issued["client_id"]}

    rotated = (await raw.post("/token", data={**form, "refresh_token": issued["refresh_token"]})).json()

    assert rotated["refresh_token"] != issued["refresh_token"]
    assert not fake.validate(issued["access_token"])  # a refresh revokes earlier access tokens
    assert fake.validate(rotated["access_token"])
    replay = await raw.post("/token", data={**form, "refresh_token": issued["refresh_token"]})
    assert replay.status_code == 400
    assert replay.json() == {"error": "invalid_grant", "error_description": "OAuth grant revoked"}
    assert not fake.validate(rotated["access_token"])
    newest = await raw.post("/token", data={**form, "refresh_token": rotated["refresh_token"]})
    assert newest.json()["error"] == "invalid_grant"
    assert fake.grant_revoked(issued["grant_id"])
    assert fake.refreshes == 1


async def test_unknown_client_is_invalid_client(raw: httpx.AsyncClient) -> None:
    response = await raw.post("/token", data={"grant_type": "refresh_token", "client_id": "nope", "refresh_token": "x"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_authorize_refuses_without_redirecting_for_a_bad_client_or_redirect_uri(
    fake: FakeOAuthServer, raw: httpx.AsyncClient
) -> None:
    client_id = await register(raw)

    unknown = await raw.get(httpx.URL(authorize_url("nope", "v" * 43)).raw_path.decode())
    elsewhere = await raw.get(
        httpx.URL(authorize_url(client_id, "v" * 43, redirect_uri="http://127.0.0.1:9/cb")).raw_path.decode()
    )

    assert unknown.status_code == elsewhere.status_code == 400
    with pytest.raises(ValueError, match="redirect_uri"):
        fake.approve(authorize_url(client_id, "v" * 43, redirect_uri="http://127.0.0.1:9/cb"))


async def test_authorize_requires_pkce_s256_and_state(fake: FakeOAuthServer, raw: httpx.AsyncClient) -> None:
    client_id = await register(raw)

    plain = fake.approve(authorize_url(client_id, "v" * 43, code_challenge_method="plain"))
    approved = await raw.get(httpx.URL(authorize_url(client_id, "v" * 43)).raw_path.decode())

    assert "error=invalid_request" in plain and "state=s1" in plain
    assert approved.status_code == 302
    assert approved.headers["location"].startswith(CALLBACK + "?code=")


async def test_registration_validates_redirect_uris(raw: httpx.AsyncClient) -> None:
    for uris in ([], ["not a url"], ["http://example.com/cb"], ["https://example.com/cb#frag"]):
        response = await raw.post("/register", json={"redirect_uris": uris})
        assert response.status_code == 400, uris
        assert response.json()["error"] == "invalid_redirect_uri"
    assert (await raw.post("/register", json={"redirect_uris": ["https://example.com/cb"]})).status_code == 201


async def test_access_tokens_expire_on_the_fake_clock(clock: ManualClock, fake: FakeOAuthServer) -> None:
    issued = fake.issue_grant()
    clock.advance(3599)
    assert fake.validate(issued["access_token"])
    clock.advance(1)
    assert not fake.validate(issued["access_token"])
    assert fake.token_info(issued["access_token"]) is None


async def test_whoami_challenges_with_the_resource_metadata(fake: FakeOAuthServer, raw: httpx.AsyncClient) -> None:
    issued = fake.issue_grant()

    anonymous = await raw.get("/api/whoami")
    known = await raw.get("/api/whoami", headers={"Authorization": f"Bearer {issued['access_token']}"})

    assert anonymous.status_code == 401
    assert (
        anonymous.headers["www-authenticate"]
        == f'Bearer error="invalid_token", resource_metadata="{BASE}/.well-known/oauth-protected-resource/mcp"'
    )
    assert known.json()["grant_id"] == issued["grant_id"]


async def test_revoke_family_and_expire_all(fake: FakeOAuthServer) -> None:
    a, b = fake.issue_grant(), fake.issue_grant()

    assert fake.revoke_family(a["refresh_token"]) == 1
    assert not fake.validate(a["access_token"]) and fake.validate(b["access_token"])
    fake.expire_all_access_tokens()
    assert not fake.validate(b["access_token"])


def test_served_metadata_names_the_loopback_base() -> None:
    fake = FakeOAuthServer()
    with serve(fake) as base:
        metadata = httpx.get(f"{base}/.well-known/oauth-authorization-server").json()
        resource = httpx.get(f"{base}/.well-known/oauth-protected-resource/mcp").json()
    assert base.startswith("http://127.0.0.1:")
    assert metadata["token_endpoint"] == f"{base}/token"
    assert resource == {
        "resource": f"{base}/mcp",
        "authorization_servers": [base],
        "scopes_supported": ["read", "write"],
        "bearer_methods_supported": ["header"],
        "resource_name": "Fake MCP",
    }

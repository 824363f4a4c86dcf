"""No token, code or verifier ever reaches a log line, an exception, a repr or the printed output."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest

from connectors.auth import oauth
from connectors.auth.login import LoginError, login, token_summary
from connectors.auth.provider import OAuthBearerAuth, TokenProvider
from connectors.auth.tokens import MemoryTokenStore, OAuthToken
from connectors.core import AuthError
from tests.connectors.auth.helpers import ACCOUNT, RESOURCE, api_client, authorize_url_in, with_query
from tests.fakes.oauth import FakeOAuthServer, ManualClock


async def test_tokens_never_appear_in_logs_errors_reprs_or_output(
    fake: FakeOAuthServer,
    http: httpx.AsyncClient,
    store: MemoryTokenStore,
    clock: ManualClock,
    make_provider: Callable[..., TokenProvider],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    printed: list[str] = []
    errors: list[BaseException] = []

    def paste(_prompt: str) -> str:
        return fake.approve(authorize_url_in(printed))

    result = await login(ACCOUNT, RESOURCE, store, input_fn=paste, print_fn=printed.append, client=http, clock=clock)
    loaded = store.load(ACCOUNT)
    assert loaded is not None
    first = loaded[0]
    provider = make_provider()
    await provider.refresh()  # rotation
    async with api_client(fake, provider) as api:
        fake.expire_all_access_tokens()
        (await api.get("/api/whoami")).raise_for_status()  # the 401 retry path
    clock.advance(3600 - 100)
    fake.fail_token_requests(502, after_processing=True)
    await provider.access_token()  # a lost refresh response: warnings logged
    async with api_client(fake, provider) as api:
        try:
            await api.get("/api/whoami")  # the replay finds the grant dead
        except AuthError as err:
            errors.append(err)
    try:
        await oauth.refresh(first, client=http)  # a stale token replayed directly
    except oauth.OAuthGrantError as err:
        errors.append(err)
    forged: list[str] = []
    try:
        await login(
            ACCOUNT,
            RESOURCE,
            MemoryTokenStore(),
            input_fn=lambda _: with_query(fake.approve(authorize_url_in(forged)), state="x"),
            print_fn=forged.append,
            client=http,
        )
    except LoginError as err:
        errors.append(err)
    assert len(errors) == 3
    final, version = store.load(ACCOUNT) or (first, 0)

    surfaces = [
        caplog.text,
        *(str(e) for e in errors),
        *(repr(e) for e in errors),
        repr(first),
        repr(final),
        repr(result),
        result.describe(),
        repr(provider),
        repr(OAuthBearerAuth(provider)),
        repr(oauth.new_pkce()),
        str(token_summary(ACCOUNT, final, version)),
        *printed,
        *forged,
    ]
    issued = fake.issued_secrets()
    assert len(issued) >= 8  # codes, access and refresh tokens
    assert "refresh got no answer" in caplog.text and "HTTP Request: POST" in caplog.text  # it did log
    leaks = [(secret, text[:80]) for secret in issued for text in surfaces if secret in text]
    assert leaks == []


async def test_a_server_echoing_the_refresh_token_in_its_error_is_redacted() -> None:
    secret_refresh = "rt-0123456789abcdefghij"
    secret_access = "at-0123456789abcdefghij"

    def token_endpoint(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            400,
            json={"error": "invalid_grant", "error_description": f"refresh token {secret_refresh} is revoked"},
        )

    token = OAuthToken(
        access_token=secret_access,
        refresh_token=secret_refresh,
        token_endpoint="https://mcp.example.test/token",
        client_id="c1",
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(token_endpoint)) as client:
        with pytest.raises(oauth.OAuthGrantError) as caught:
            await oauth.refresh(token, client=client)

    assert caught.value.error == "invalid_grant"
    assert secret_refresh not in str(caught.value)
    assert secret_refresh not in caught.value.description
    assert "is revoked" in str(caught.value)

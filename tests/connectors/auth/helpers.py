"""Helpers of the OAuth toolkit's tests: the fake's URLs, clients that talk to it in-process, and the
user's part of a login (finding the printed URL, tampering with a redirect)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import httpx

from connectors.auth.provider import OAuthBearerAuth, TokenProvider
from connectors.auth.tokens import OAuthToken
from connectors.http import RetryPolicy, make_client
from tests.fakes.oauth import FakeOAuthServer, ManualClock

BASE = "https://mcp.example.test"
RESOURCE = f"{BASE}/mcp"
ACCOUNT = "notion-mcp"
AUTHORIZE_URL = re.compile(r"https?://\S+/authorize\?\S+")


async def no_sleep(_seconds: float) -> None:
    return None


def oauth_client(fake: FakeOAuthServer, **kwargs: Any) -> httpx.AsyncClient:
    """A ``make_client`` client whose requests go to ``fake`` in-process, retrying without sleeping."""
    kwargs.setdefault("retry", RetryPolicy(max_attempts=3, base_delay=0, jitter=0))
    return make_client(service="OAuth", transport=httpx.ASGITransport(app=fake.app), sleep=no_sleep, **kwargs)


def api_client(fake: FakeOAuthServer, provider: TokenProvider) -> httpx.AsyncClient:
    """An API client of the fake's protected resource, authenticated by ``provider``."""
    return oauth_client(fake, base_url=BASE, auth=OAuthBearerAuth(provider))


def grant_token(fake: FakeOAuthServer, clock: ManualClock, **kwargs: Any) -> OAuthToken:
    """A token of a fresh grant at ``fake``, as a login would have stored it."""
    issued = fake.issue_grant(resource=RESOURCE, **kwargs)
    now = dt.datetime.fromtimestamp(clock(), dt.UTC)
    return OAuthToken(
        access_token=issued["access_token"],
        refresh_token=issued["refresh_token"],
        expires_at=now + dt.timedelta(seconds=issued["expires_in"]),
        token_endpoint=f"{BASE}/token",
        client_id=issued["client_id"],
        resource=RESOURCE,
        scope=issued["scope"],
        obtained_at=now,
        extra={"grant_id": issued["grant_id"]},
    )


def authorize_url_in(printed: list[str]) -> str:
    """The authorization URL among what the login printed."""
    for text in printed:
        if match := AUTHORIZE_URL.search(text):
            return match.group(0)
    raise AssertionError(f"no authorization URL was printed: {printed!r}")


def with_query(url: str, **changes: str) -> str:
    """``url`` with some query parameters replaced."""
    parsed = httpx.URL(url)
    params = dict(parsed.params.multi_items())
    params.update(changes)
    return str(parsed.copy_with(params=params))

"""Fixtures of the OAuth toolkit's tests: a manual clock, the fake authorization server, a client
talking to it in-process, a token store and a provider factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from connectors.auth.provider import TokenProvider
from connectors.auth.tokens import MemoryTokenStore
from tests.connectors.auth.helpers import ACCOUNT, oauth_client
from tests.fakes.oauth import FakeOAuthServer, ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def fake(clock: ManualClock) -> FakeOAuthServer:
    return FakeOAuthServer(clock=clock)


@pytest.fixture
def store() -> MemoryTokenStore:
    return MemoryTokenStore()


@pytest.fixture
async def http(fake: FakeOAuthServer) -> AsyncIterator[httpx.AsyncClient]:
    async with oauth_client(fake) as client:
        yield client


@pytest.fixture
def make_provider(store: MemoryTokenStore, http: httpx.AsyncClient, clock: ManualClock) -> Callable[..., TokenProvider]:
    def make(**kwargs: Any) -> TokenProvider:
        kwargs.setdefault("client", http)
        kwargs.setdefault("clock", clock)
        return TokenProvider(kwargs.pop("store", store), kwargs.pop("account", ACCOUNT), **kwargs)

    return make

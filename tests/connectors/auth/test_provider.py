"""The token provider and ``OAuthBearerAuth``: refresh ahead of expiry, rotation persisted with
compare-and-swap, one refresh per account however many consumers, refresh-and-retry on a 401, a
new login taking effect at once, and what a rotated-then-replayed refresh token costs."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import threading
from collections.abc import Callable

import httpx
import pytest

from connectors.auth import oauth
from connectors.auth.provider import OAuthBearerAuth, TokenProvider
from connectors.auth.tokens import MemoryTokenStore, OAuthToken
from connectors.core import AuthError, TransientError, auth_error_in_chain
from connectors.http import make_client, raise_for_status
from tests.connectors.auth.helpers import ACCOUNT, api_client, grant_token
from tests.fakes.oauth import FakeOAuthServer, ManualClock, serve

MakeProvider = Callable[..., TokenProvider]


def stored(store: MemoryTokenStore) -> tuple[OAuthToken, int]:
    loaded = store.load(ACCOUNT)
    assert loaded is not None
    return loaded


# --------------------------------------------------------------------------------------------------
# Refresh ahead of expiry, rotation, compare-and-swap


async def test_a_token_with_time_left_is_used_as_stored(
    fake: FakeOAuthServer, store: MemoryTokenStore, clock: ManualClock, make_provider: MakeProvider
) -> None:
    token = grant_token(fake, clock)
    store.replace(ACCOUNT, token)
    clock.advance(3600 - 301)

    assert await make_provider().access_token() == token.access_token
    assert fake.token_requests == 0


async def test_a_token_close_to_expiry_is_refreshed_and_the_rotation_persisted(
    fake: FakeOAuthServer, store: MemoryTokenStore, clock: ManualClock, make_provider: MakeProvider
) -> None:
    old = grant_token(fake, clock)
    version = store.replace(ACCOUNT, old)
    clock.advance(3600 - 299)

    access = await make_provider().access_token()

    new, new_version = stored(store)
    assert access == new.access_token != old.access_token
    assert new_version == version + 1
    assert new.refresh_token and new.refresh_token != old.refresh_token
    now = dt.datetime.fromtimestamp(clock(), dt.UTC)
    assert new.refreshed_at == new.obtained_at == now
    assert new.expires_at == now + dt.timedelta(seconds=3600)
    assert (new.client_id, new.token_endpoint, new.resource) == (old.client_id, old.token_endpoint, old.resource)
    assert new.extra["grant_id"] == old.extra["grant_id"]
    assert fake.refreshes == 1
    # Notion's rules: the refresh revoked the earlier access token and spent the old refresh token.
    assert fake.validate(new.access_token)
    assert not fake.validate(old.access_token)


async def test_a_refresh_response_without_a_refresh_token_keeps_the_old_one(
    fake: FakeOAuthServer, store: MemoryTokenStore, clock: ManualClock, make_provider: MakeProvider
) -> None:
    old = grant_token(fake, clock)
    store.replace(ACCOUNT, old)
    fake.issue_refresh_tokens = False

    new = await make_provider().refresh()

    assert new.refresh_token == old.refresh_token
    assert stored(store)[0].refresh_token == old.refresh_token


class LoginDuringRefreshStore(MemoryTokenStore):
    """A store in which a new login lands while a refresh is in flight (between load and save)."""

    def __init__(self, new_login: OAuthToken) -> None:
        super().__init__()
        self.new_login = new_login
        self.landed = False

    def save(self, account: str, token: OAuthToken, *, expected_version: int | None) -> int:
        if not self.landed:
            self.landed = True
            self.replace(account, self.new_login)
        return super().save(account, token, expected_version=expected_version)


async def test_a_new_login_stored_during_a_refresh_wins_the_compare_and_swap(
    fake: FakeOAuthServer, clock: ManualClock, make_provider: MakeProvider
) -> None:
    new_login = grant_token(fake, clock)
    store = LoginDuringRefreshStore(new_login)
    store.replace(ACCOUNT, grant_token(fake, clock))

    token = await make_provider(store=store).refresh()

    assert token == new_login
    assert stored(store)[0] == new_login
    assert fake.refreshes == 1  # the old grant was refreshed, and that result dropped


async def test_no_login_is_an_auth_error_naming_the_login_command(make_provider: MakeProvider) -> None:
    with pytest.raises(AuthError, match=f"durable-sync auth login {ACCOUNT}") as caught:
        await make_provider().access_token()
    assert caught.value.credential == f"oauth:{ACCOUNT}"


async def test_an_expired_token_without_a_refresh_token_is_an_auth_error(
    fake: FakeOAuthServer, store: MemoryTokenStore, clock: ManualClock, make_provider: MakeProvider
) -> None:
    store.replace(ACCOUNT, dataclasses.replace(grant_token(fake, clock), refresh_token=None))
    clock.advance(3600 - 100)
    provider = make_provider()
    assert await provider.access_token()  # cannot refresh ahead; used while it lasts

    clock.advance(200)
    with pytest.raises(AuthError, match="no refresh token"):
        await provider.access_token()


# --------------------------------------------------------------------------------------------------
# One refresh at a time


async def test_concurrent_consumers_in_one_loop_refresh_exactly_once(
    fake: FakeOAuthServer, store: MemoryTokenStore, clock: ManualClock, make_provider: MakeProvider
) -> None:
    store.replace(ACCOUNT, grant_token(fake, clock))
    clock.advance(3600 - 60)
    fake.token_delay = 0.05  # keep the first refresh in flight while the others arrive
    providers = [make_provider() for _ in range(2)] + [make_provider()] * 4

    tokens = await asyncio.gather(*(p.access_token() for p in providers))

    assert fake.token_requests == 1
    assert fake.counts["family_revoked"] == 0
    assert len(set(tokens)) == 1
    assert tokens[0] == stored(store)[0].access_token
    assert fake.validate(tokens[0])


def test_two_threads_with_their_own_loops_and_providers_refresh_exactly_once(store: MemoryTokenStore) -> None:
    """Two "processes": separate threads, event loops, providers and HTTP connections, one store."""
    clock = ManualClock()
    fake = FakeOAuthServer(clock=clock)
    fake.token_delay = 0.05
    with serve(fake) as base:
        token = grant_token(fake, clock)
        store.replace(ACCOUNT, dataclasses.replace(token, token_endpoint=f"{base}/token"))
        clock.advance(3600 - 60)
        start = threading.Barrier(2)
        results: list[str] = []
        errors: list[BaseException] = []

        def consumer() -> None:
            provider = TokenProvider(store, ACCOUNT, clock=clock)
            start.wait()
            try:
                results.append(asyncio.run(provider.access_token()))
            except BaseException as err:  # pragma: no cover - reported below
                errors.append(err)

        threads = [threading.Thread(target=consumer) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

    assert not errors
    assert fake.token_requests == 1
    assert fake.counts["family_revoked"] == 0
    assert len(results) == 2 and results[0] == results[1] == stored(store)[0].access_token
    assert fake.validate(results[0])


# --------------------------------------------------------------------------------------------------
# Rotated refresh tokens


async def test_a_replayed_rotated_refresh_token_revokes_the_family_and_pauses_with_the_fix(
    fake: FakeOAuthServer,
    store: MemoryTokenStore,
    clock: ManualClock,
    http: httpx.AsyncClient,
    make_provider: MakeProvider,
) -> None:
    original = grant_token(fake, clock)
    store.replace(ACCOUNT, original)
    provider = make_provider()
    current = await provider.refresh()

    # A stale copy of the original token (an old backup, a process that missed the rotation).
    with pytest.raises(oauth.OAuthGrantError) as replay:
        await oauth.refresh(original, client=http)
    assert replay.value.error == "invalid_grant"
    assert "OAuth grant revoked" in str(replay.value)
    assert fake.counts["family_revoked"] == 1
    assert not fake.validate(current.access_token)  # the whole family went, the current pair too

    with pytest.raises(AuthError) as caught:
        await provider.refresh()
    message = str(caught.value)
    assert f"durable-sync auth login {ACCOUNT}" in message
    assert "invalid_grant" in message
    assert caught.value.credential == f"oauth:{ACCOUNT}"
    assert auth_error_in_chain(caught.value)
    assert stored(store)[0] == current  # nothing was overwritten


async def test_a_lost_refresh_response_is_not_replayed_and_a_later_invalid_grant_says_why(
    fake: FakeOAuthServer,
    store: MemoryTokenStore,
    clock: ManualClock,
    make_provider: MakeProvider,
) -> None:
    """The documented least-bad behaviour: the server rotated, its answer was lost (a 502 after the
    work); no in-process replay; the old access token is used while it has time left; the server's
    401 on it (the rotation revoked it) triggers the one refresh that finds out: invalid_grant."""
    store.replace(ACCOUNT, grant_token(fake, clock))
    clock.advance(3600 - 200)
    fake.fail_token_requests(502, after_processing=True)
    provider = make_provider()

    assert await provider.access_token() == stored(store)[0].access_token  # still valid for 200 s
    assert fake.counts["token:refresh_token"] == 1  # not replayed
    assert stored(store)[0].extra.get("refresh_unconfirmed_at")

    async with api_client(fake, provider) as api:
        with pytest.raises(AuthError) as caught:
            await api.get("/api/whoami")
    assert "got no answer" in str(caught.value)
    assert f"durable-sync auth login {ACCOUNT}" in str(caught.value)


async def test_an_ambiguous_failure_of_an_expired_token_is_transient_and_not_replayed(
    fake: FakeOAuthServer, store: MemoryTokenStore, clock: ManualClock, make_provider: MakeProvider
) -> None:
    before = grant_token(fake, clock)
    store.replace(ACCOUNT, before)
    clock.advance(3600 + 1)
    fake.fail_token_requests(504)

    with pytest.raises(oauth.TokenEndpointUnavailable) as caught:
        await make_provider().access_token()

    assert caught.value.ambiguous
    assert fake.counts["token:refresh_token"] == 1
    assert stored(store)[0].refresh_token == before.refresh_token


async def test_a_503_from_the_token_endpoint_is_retried_because_nothing_happened(
    fake: FakeOAuthServer, store: MemoryTokenStore, clock: ManualClock, make_provider: MakeProvider
) -> None:
    store.replace(ACCOUNT, grant_token(fake, clock))
    clock.advance(3600 + 1)
    fake.fail_token_requests(503)

    token = await make_provider().access_token()

    assert fake.validate(token)
    assert fake.counts["token:refresh_token"] == 2
    assert fake.refreshes == 1


async def test_a_token_endpoint_that_stays_down_is_transient_not_auth(
    fake: FakeOAuthServer, store: MemoryTokenStore, clock: ManualClock, make_provider: MakeProvider
) -> None:
    store.replace(ACCOUNT, grant_token(fake, clock))
    clock.advance(3600 + 1)
    fake.fail_token_requests(503, count=10)

    with pytest.raises(TransientError) as caught:
        await make_provider().access_token()

    assert not auth_error_in_chain(caught.value)
    assert not stored(store)[0].extra.get("refresh_unconfirmed_at")


# --------------------------------------------------------------------------------------------------
# OAuthBearerAuth: the 401 retry


async def test_an_access_token_dying_mid_pass_is_refreshed_on_the_401_and_the_request_succeeds(
    fake: FakeOAuthServer, store: MemoryTokenStore, clock: ManualClock, make_provider: MakeProvider
) -> None:
    store.replace(ACCOUNT, grant_token(fake, clock))
    provider = make_provider()

    async with api_client(fake, provider) as api:
        first = await api.get("/api/whoami")
        fake.expire_all_access_tokens()  # e.g. revoked by a refresh elsewhere; our clock says it is fine
        second = await api.get("/api/whoami")

    raise_for_status(first)
    raise_for_status(second)
    assert fake.refreshes == 1
    assert [c.status for c in fake.requests if c.path == "/api/whoami"] == [200, 401, 200]
    assert fake.validate(stored(store)[0].access_token)


async def test_many_requests_hitting_401_together_cause_one_refresh(
    fake: FakeOAuthServer, store: MemoryTokenStore, clock: ManualClock, make_provider: MakeProvider
) -> None:
    store.replace(ACCOUNT, grant_token(fake, clock))
    provider = make_provider()
    fake.token_delay = 0.05

    async with api_client(fake, provider) as api:
        await api.get("/api/whoami")
        fake.expire_all_access_tokens()
        responses = await asyncio.gather(*(api.get("/api/whoami") for _ in range(5)))

    assert all(r.status_code == 200 for r in responses)
    assert fake.refreshes == 1


async def test_a_401_after_the_refresh_is_returned_for_raise_for_status(
    fake: FakeOAuthServer, store: MemoryTokenStore, clock: ManualClock, make_provider: MakeProvider
) -> None:
    store.replace(ACCOUNT, grant_token(fake, clock))
    seen: list[str] = []

    def always_401(request: httpx.Request) -> httpx.Response:  # an API that rejects every token
        seen.append(request.headers["authorization"])
        return httpx.Response(401, json={"error": "invalid_token"})

    api = make_client(service="API", transport=httpx.MockTransport(always_401), auth=OAuthBearerAuth(make_provider()))
    async with api:
        response = await api.get("https://api.example.test/thing")

    assert response.status_code == 401
    assert len(seen) == 2 and seen[0] != seen[1]  # retried once, with the refreshed token
    assert fake.refreshes == 1
    with pytest.raises(AuthError):
        raise_for_status(response)


async def test_a_dead_grant_on_a_401_raises_the_providers_auth_error(
    fake: FakeOAuthServer, store: MemoryTokenStore, clock: ManualClock, make_provider: MakeProvider
) -> None:
    token = grant_token(fake, clock)
    store.replace(ACCOUNT, token)
    fake.revoke_family(token.access_token)

    async with api_client(fake, make_provider()) as api:
        with pytest.raises(AuthError, match=f"durable-sync auth login {ACCOUNT}"):
            await api.get("/api/whoami")


async def test_a_transient_refresh_failure_on_a_401_is_transient_not_a_pause(
    fake: FakeOAuthServer, store: MemoryTokenStore, clock: ManualClock, make_provider: MakeProvider
) -> None:
    store.replace(ACCOUNT, grant_token(fake, clock))
    fake.expire_all_access_tokens()
    fake.fail_token_requests(503, count=10)

    async with api_client(fake, make_provider()) as api:
        with pytest.raises(TransientError) as caught:
            await api.get("/api/whoami")
    assert not auth_error_in_chain(caught.value)


# --------------------------------------------------------------------------------------------------
# A new login takes effect at once (W11)


async def test_a_new_login_takes_effect_on_the_next_request_while_the_old_grant_still_works(
    fake: FakeOAuthServer, store: MemoryTokenStore, clock: ManualClock, make_provider: MakeProvider
) -> None:
    old = grant_token(fake, clock)
    store.replace(ACCOUNT, old)
    provider = make_provider()
    fingerprint = provider.credential_fingerprint()

    async with api_client(fake, provider) as api:
        before = (await api.get("/api/whoami")).json()
        new = grant_token(fake, clock)
        store.replace(ACCOUNT, new)  # what `durable-sync auth login` does
        after = (await api.get("/api/whoami")).json()

    assert before["grant_id"] == old.extra["grant_id"]
    assert after["grant_id"] == new.extra["grant_id"]
    assert fake.validate(old.access_token)  # the old grant was healthy; the new one won anyway
    assert fake.refreshes == 0
    assert provider.credential_fingerprint() != fingerprint


async def test_the_fingerprint_does_not_change_on_a_refresh(
    fake: FakeOAuthServer, store: MemoryTokenStore, clock: ManualClock, make_provider: MakeProvider
) -> None:
    store.replace(ACCOUNT, grant_token(fake, clock))
    provider = make_provider()
    fingerprint = provider.credential_fingerprint()

    await provider.refresh()

    assert provider.credential_fingerprint() == fingerprint

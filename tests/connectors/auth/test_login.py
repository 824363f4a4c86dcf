"""The headless login: discovery -> registration -> PKCE -> approval -> exchange -> stored, in paste
mode and in loopback mode (the latter with a real browser-like HTTP round trip)."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import urllib.error
import urllib.request

import httpx
import pytest

from connectors.auth.login import LoginError, LoginResult, login, parse_callback
from connectors.auth.oauth import OAuthGrantError
from connectors.auth.provider import TokenProvider
from connectors.auth.tokens import MemoryTokenStore
from connectors.core import ConfigError
from tests.connectors.auth.helpers import ACCOUNT, BASE, RESOURCE, authorize_url_in, with_query
from tests.fakes.oauth import FakeOAuthServer, ManualClock, serve


def approving(fake: FakeOAuthServer, printed: list[str], *, deny: bool = False, **tamper: str):
    """An ``input_fn`` that plays the user: approves the printed URL and pastes where it led."""

    def paste(prompt: str) -> str:
        redirect = fake.approve(authorize_url_in(printed), deny=deny)
        return with_query(redirect, **tamper) if tamper else redirect

    return paste


# --------------------------------------------------------------------------------------------------
# Paste mode


async def test_paste_login_stores_a_working_grant(
    fake: FakeOAuthServer, http: httpx.AsyncClient, store: MemoryTokenStore, clock: ManualClock
) -> None:
    printed: list[str] = []

    result = await login(
        ACCOUNT, RESOURCE, store, input_fn=approving(fake, printed), print_fn=printed.append, client=http, clock=clock
    )

    loaded = store.load(ACCOUNT)
    assert loaded is not None
    token, version = loaded
    assert fake.validate(token.access_token)
    assert token.refresh_token
    assert token.client_id == result.client_id
    assert token.token_endpoint == f"{BASE}/token"
    assert token.resource == RESOURCE
    assert token.expires_at == dt.datetime.fromtimestamp(clock() + 3600, dt.UTC)
    assert token.extra["grant_id"]
    assert result == LoginResult(
        account=ACCOUNT,
        client_id=token.client_id,
        issuer=BASE,
        resource=RESOURCE,
        expires_at=token.expires_at,
        scope="read write",
        has_refresh_token=True,
        version=version,
    )
    # The registered redirect URI is the fixed loopback one, and the code was bound to the verifier.
    assert "redirect_uri=http%3A%2F%2F127.0.0.1%3A8788%2Fcallback" in authorize_url_in(printed)
    assert fake.registrations == 1
    assert fake.counts["code_ok"] == 1


async def test_a_login_replaces_a_working_grant(
    fake: FakeOAuthServer, http: httpx.AsyncClient, store: MemoryTokenStore, clock: ManualClock
) -> None:
    first: list[str] = []
    await login(ACCOUNT, RESOURCE, store, input_fn=approving(fake, first), print_fn=first.append, client=http)
    old = store.load(ACCOUNT)
    second: list[str] = []

    await login(ACCOUNT, RESOURCE, store, input_fn=approving(fake, second), print_fn=second.append, client=http)

    new = store.load(ACCOUNT)
    assert old is not None and new is not None
    assert new[1] == old[1] + 1
    assert new[0].access_token != old[0].access_token
    assert fake.validate(old[0].access_token)  # the old grant still worked; the new login won anyway


async def test_a_pasted_url_with_another_state_is_refused_and_nothing_is_stored(
    fake: FakeOAuthServer, http: httpx.AsyncClient, store: MemoryTokenStore
) -> None:
    printed: list[str] = []

    with pytest.raises(LoginError, match="state"):
        await login(
            ACCOUNT,
            RESOURCE,
            store,
            input_fn=approving(fake, printed, state="forged-state"),
            print_fn=printed.append,
            client=http,
        )

    assert store.load(ACCOUNT) is None
    assert fake.counts["token"] == 0  # the code was never exchanged


@pytest.mark.parametrize(
    ("pasted", "message"),
    [
        ("", "nothing was pasted"),
        ("I approved it", "not a URL"),
        ("http://127.0.0.1:8788/callback", "no parameters"),
    ],
)
async def test_a_malformed_pasted_url_is_refused(
    fake: FakeOAuthServer, http: httpx.AsyncClient, store: MemoryTokenStore, pasted: str, message: str
) -> None:
    with pytest.raises(LoginError, match=message):
        await login(ACCOUNT, RESOURCE, store, input_fn=lambda _: pasted, print_fn=lambda _: None, client=http)

    assert store.load(ACCOUNT) is None


async def test_pasting_the_authorization_url_itself_says_a_code_is_missing(
    fake: FakeOAuthServer, http: httpx.AsyncClient, store: MemoryTokenStore
) -> None:
    printed: list[str] = []

    with pytest.raises(LoginError, match="no authorization code") as caught:
        await login(
            ACCOUNT,
            RESOURCE,
            store,
            input_fn=lambda _: authorize_url_in(printed),
            print_fn=printed.append,
            client=http,
        )

    assert "http://127.0.0.1:8788/callback" in str(caught.value)
    assert store.load(ACCOUNT) is None


async def test_denied_access_is_a_clear_login_error(
    fake: FakeOAuthServer, http: httpx.AsyncClient, store: MemoryTokenStore
) -> None:
    printed: list[str] = []

    with pytest.raises(LoginError, match="access was denied"):
        await login(
            ACCOUNT, RESOURCE, store, input_fn=approving(fake, printed, deny=True), print_fn=printed.append, client=http
        )

    assert store.load(ACCOUNT) is None


def test_parse_callback_accepts_a_url_or_a_query_and_ignores_quotes() -> None:
    assert parse_callback(" 'http://127.0.0.1:8788/callback?code=c1&state=s1' \n", state="s1") == "c1"
    assert parse_callback("?state=s1&code=c2", state="s1") == "c2"


def test_parse_callback_checks_state_before_reporting_an_error() -> None:
    with pytest.raises(LoginError, match="state"):
        parse_callback("http://127.0.0.1/callback?error=access_denied&state=other", state="s1")
    with pytest.raises(LoginError, match="invalid_scope"):
        parse_callback("http://127.0.0.1/callback?error=invalid_scope&state=s1", state="s1")


async def test_an_unknown_mode_is_a_config_error(store: MemoryTokenStore) -> None:
    with pytest.raises(ConfigError, match="mode"):
        await login(ACCOUNT, RESOURCE, store, mode="device")  # type: ignore[arg-type]


async def test_a_refused_code_exchange_stores_nothing(
    fake: FakeOAuthServer, http: httpx.AsyncClient, store: MemoryTokenStore
) -> None:
    printed: list[str] = []
    fake.code_lifetime = -1  # every code has expired by the time it is exchanged

    with pytest.raises(OAuthGrantError, match="invalid_grant") as caught:
        await login(ACCOUNT, RESOURCE, store, input_fn=approving(fake, printed), print_fn=printed.append, client=http)

    assert "expired" in str(caught.value)
    assert store.load(ACCOUNT) is None


# --------------------------------------------------------------------------------------------------
# Loopback mode


async def test_loopback_login_receives_the_callback_like_a_browser(
    fake: FakeOAuthServer, http: httpx.AsyncClient, store: MemoryTokenStore
) -> None:
    opened: asyncio.Queue[str] = asyncio.Queue()
    printed: list[str] = []
    task = asyncio.create_task(
        login(
            ACCOUNT,
            RESOURCE,
            store,
            mode="loopback",
            open_browser=True,
            browser_fn=opened.put_nowait,
            print_fn=printed.append,
            client=http,
            timeout=30,
        )
    )
    url = await opened.get()
    assert url == authorize_url_in(printed)

    # The "browser": the authorization server approves and redirects to our loopback server.
    approval = await http.get(url, follow_redirects=False)
    assert approval.status_code == 302
    callback = approval.headers["location"]
    assert callback.startswith("http://127.0.0.1:")
    async with httpx.AsyncClient() as browser:  # a real connection to the one-shot server
        favicon = await browser.get(httpx.URL(callback).copy_with(path="/favicon.ico", query=None))
        page = await browser.get(callback)

    result = await task
    assert favicon.status_code == 404
    assert page.status_code == 200
    assert "close this tab" in page.text
    loaded = store.load(ACCOUNT)
    assert loaded is not None
    assert fake.validate(loaded[0].access_token)
    assert result.client_id == loaded[0].client_id
    # The one-shot server is gone.
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as browser:
            await browser.get(callback)


async def test_loopback_callback_with_another_state_is_refused(
    fake: FakeOAuthServer, http: httpx.AsyncClient, store: MemoryTokenStore
) -> None:
    opened: asyncio.Queue[str] = asyncio.Queue()
    task = asyncio.create_task(
        login(
            ACCOUNT,
            RESOURCE,
            store,
            mode="loopback",
            open_browser=True,
            browser_fn=opened.put_nowait,
            print_fn=lambda _: None,
            client=http,
            timeout=30,
        )
    )
    callback = fake.approve(await opened.get())
    async with httpx.AsyncClient() as browser:
        page = await browser.get(with_query(callback, state="forged"))

    with pytest.raises(LoginError, match="state"):
        await task
    assert page.status_code == 400
    assert store.load(ACCOUNT) is None
    assert fake.counts["token"] == 0


async def test_loopback_login_times_out_without_a_callback(
    fake: FakeOAuthServer, http: httpx.AsyncClient, store: MemoryTokenStore
) -> None:
    with pytest.raises(LoginError, match="no authorization response"):
        await login(ACCOUNT, RESOURCE, store, mode="loopback", print_fn=lambda _: None, client=http, timeout=0.01)
    assert store.load(ACCOUNT) is None


def test_loopback_login_end_to_end_against_a_served_fake(store: MemoryTokenStore) -> None:
    """Everything over real sockets: the fake on one loopback port, the callback on another, and a
    browser (urllib, following the 302) in its own thread."""
    fake = FakeOAuthServer()
    pages: list[str] = []

    def browser(url: str) -> None:
        def visit() -> None:
            try:
                with urllib.request.urlopen(url, timeout=10) as response:  # follows the 302 to the callback
                    pages.append(response.read().decode())
            except urllib.error.URLError as err:  # pragma: no cover - reported by the assertion below
                pages.append(f"failed: {err}")

        threading.Thread(target=visit, daemon=True).start()

    with serve(fake) as base:
        result = asyncio.run(
            login(
                ACCOUNT,
                f"{base}/mcp",
                store,
                mode="loopback",
                open_browser=True,
                browser_fn=browser,
                print_fn=lambda _: None,
                timeout=30,
            )
        )
        loaded = store.load(ACCOUNT)
        assert loaded is not None
        token = loaded[0]
        assert fake.validate(token.access_token)
        assert token.token_endpoint == f"{base}/token"
        assert result.resource == f"{base}/mcp"
        # ...and the stored grant refreshes over the network too.
        provider = TokenProvider(store, ACCOUNT)
        refreshed = asyncio.run(provider.refresh())
        assert fake.validate(refreshed.access_token)
        assert not fake.validate(token.access_token)
    assert pages and "close this tab" in pages[0]

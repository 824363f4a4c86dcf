"""Valid access tokens from a ``TokenStore``: refresh ahead of expiry, one refresh at a time, 401 retry.

Wire an OAuth API client like this::

    provider = TokenProvider(store, "notion-mcp")
    client = make_client(service="Notion", auth=OAuthBearerAuth(provider), credential=provider.credential_key)

How one request gets its token (``OAuthBearerAuth``, above ``connectors.http``'s retries)::

    provider.access_token()
        load the account's token from the store              (every time: a new login takes effect
                                                               at the next request, W11)
        more than refresh_margin (5 min) left -> use it
        else, under store.refresh_lock(account):              (one refresh per account, across processes)
            load again; someone else refreshed meanwhile -> use theirs
            oauth.refresh(token); store.save(new, expected_version=loaded)   (compare-and-swap)
    send with "Authorization: Bearer <token>"
    401 -> provider.refresh(rejected=<token>)                 (the token died early: revoked by another
                                                               refresh, expired server-side, W14)
            under the lock: the stored token is no longer the rejected one -> use the stored one
            else refresh it
        -> send once more; a second 401 is returned to the caller (raise_for_status: AuthError)

Outcomes of a refresh:

- ``invalid_grant`` / ``invalid_client`` / ``unauthorized_client`` (or another 4xx) -> ``AuthError``
  naming ``durable-sync auth login <account>`` as the fix, unless a new login was stored meanwhile,
  which is then used. ``AuthError.credential`` is ``oauth:<account>``.
- 5xx, timeouts -> ``TransientError`` (a 429 that outlasts the retries -> ``RateLimited``). A refresh-ahead that fails this way while the access token
  still has time left is not an error: the current token is used and the refresh is tried again on
  the next use. An *ambiguous* failure (the server may have rotated the refresh token, see
  ``connectors.auth.oauth``) is recorded in the stored token (``extra["refresh_unconfirmed_at"]``)
  and never replayed in-process.
- The compare-and-swap save loses (``StaleToken``): only a new login (``store.replace``) can have
  written while we held the lock; the new login wins, our refreshed token is dropped.

``store.refresh_lock`` is a blocking context manager (a PostgreSQL advisory lock, a file lock, a
``threading.Lock``). It is entered and left on one dedicated thread per refresh, so the event loop
never blocks on it and a lock that belongs to its thread (a connection, a file descriptor) is
released where it was taken.

No token ever reaches a message, a log line or a repr.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import hashlib
import logging
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator

import httpx

from connectors.auth import oauth
from connectors.auth.tokens import OAuthToken, StaleToken, TokenStore
from connectors.core import AuthError, RateLimited, SyncError, TransientError

__all__ = ["DEFAULT_REFRESH_MARGIN", "OAuthBearerAuth", "TokenProvider", "login_hint"]

logger = logging.getLogger(__name__)

DEFAULT_REFRESH_MARGIN = 300.0  # seconds before expiry a token is refreshed (Notion: 1 h or 8 h lifetimes)
UNCONFIRMED_KEY = "refresh_unconfirmed_at"


def login_hint(account: str) -> str:
    """The command that fixes a dead grant."""
    return f"durable-sync auth login {account}"


class TokenProvider:
    """Hands out a valid access token of one account, refreshing it safely.

    Args:
        store: Where the account's token lives (the platform's encrypted store, or a
            ``MemoryTokenStore``).
        account: The account name (``notion-mcp``).
        client: HTTP client for the token endpoint (default: a short-lived ``make_client`` client
            per refresh, so the provider can be used from any event loop).
        refresh_margin: Refresh when the access token expires within this many seconds.
        clock: Epoch seconds (injectable for tests).
        allow_loopback_http: Accept a plain-http token endpoint on a loopback host.
    """

    def __init__(
        self,
        store: TokenStore,
        account: str,
        *,
        client: httpx.AsyncClient | None = None,
        refresh_margin: float = DEFAULT_REFRESH_MARGIN,
        clock: Callable[[], float] = time.time,
        allow_loopback_http: bool = True,
    ) -> None:
        """Nothing is read until the first ``access_token()``: building a provider is free."""
        self.store = store
        self.account = account
        self.client = client
        self.refresh_margin = refresh_margin
        self.clock = clock
        self.allow_loopback_http = allow_loopback_http

    def __repr__(self) -> str:
        """Names the account only."""
        return f"TokenProvider(account={self.account!r})"

    @property
    def credential_key(self) -> str:
        """The stable name of the credential slot (pause scope): ``oauth:<account>``."""
        return f"oauth:{self.account}"

    def credential_fingerprint(self) -> str | None:
        """Changes when a new login is stored (not on refreshes), so a pause on it can lift itself."""
        loaded = self.store.load(self.account)
        if loaded is None:
            return None
        token = loaded[0]
        identity = f"{token.client_id}|{token.extra.get('grant_id', '')}|{token.resource}"
        return hashlib.sha256(identity.encode()).hexdigest()[:16]

    # ------------------------------------------------------------------------------------------ use

    def load(self) -> tuple[OAuthToken, int]:
        """The stored token and its version.

        Raises:
            AuthError: nothing is stored for the account.
        """
        loaded = self.store.load(self.account)
        if loaded is None:
            raise AuthError(
                f"no OAuth login stored for {self.account!r}; run `{login_hint(self.account)}`",
                credential=self.credential_key,
            )
        return loaded

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC)

    def _due(self, token: OAuthToken) -> bool:
        return token.expires_within(self.refresh_margin, now=self._now())

    def _expired(self, token: OAuthToken) -> bool:
        return token.expires_within(0, now=self._now())

    async def token(self) -> OAuthToken:
        """The account's token, refreshed first when it expires within ``refresh_margin``.

        Raises:
            AuthError: no login, or the grant is dead (the message names the login command).
            TransientError: the token is expired and the token endpoint failed transiently.
        """
        token, _ = self.load()
        if not self._due(token):
            return token
        return await self._refresh(rejected=None)

    async def access_token(self) -> str:
        """A valid access token (see ``token``)."""
        return (await self.token()).access_token

    async def refresh(self, *, rejected: str | None = None) -> OAuthToken:
        """Refresh now, unless someone else already did.

        Args:
            rejected: The access token a server just refused (a 401). If the stored token is a
                different one (another consumer refreshed, or a new login was stored), that one is
                returned without a refresh. None: refresh if the stored token is still due.

        Raises:
            AuthError: the grant is dead, or there is nothing to refresh with.
            TransientError: the token endpoint failed transiently.
        """
        return await self._refresh(rejected=rejected, force=rejected is None)

    # -------------------------------------------------------------------------------------- refresh

    async def _refresh(self, *, rejected: str | None, force: bool = False) -> OAuthToken:
        async with _held(self.store, self.account):
            token, version = self.load()  # again, inside the lock: the previous holder may have refreshed
            if rejected is not None:
                if token.access_token != rejected:
                    return token
            elif not force and not self._due(token):
                return token
            if not token.refresh_token:
                if rejected is None and not self._expired(token):
                    return token  # cannot refresh ahead; use it while it lasts
                raise AuthError(
                    f"the OAuth login of {self.account!r} has expired and has no refresh token; "
                    f"run `{login_hint(self.account)}`",
                    credential=self.credential_key,
                )
            try:
                new = await oauth.refresh(
                    token, client=self.client, clock=self.clock, allow_loopback_http=self.allow_loopback_http
                )
            except oauth.TokenEndpointUnavailable as err:
                if err.ambiguous:
                    self._mark_unconfirmed(token, version)
                return self._after_transient(token, rejected, err)
            except (TransientError, RateLimited) as err:
                return self._after_transient(token, rejected, err)
            except AuthError as err:
                current = self.store.load(self.account)
                if current is not None and current[1] != version and current[0].access_token != token.access_token:
                    logger.info("OAuth %s: a new login was stored during the refresh; using it", self.account)
                    return current[0]
                raise self._dead_grant(token, err) from None
            try:
                self.store.save(self.account, new, expected_version=version)
            except StaleToken:
                # Under the refresh lock only a new login (store.replace) writes; it wins (W11).
                current_token, _ = self.load()
                logger.info("OAuth %s: a new login was stored during the refresh; using it", self.account)
                return current_token
            expires = new.expires_at.isoformat(timespec="seconds") if new.expires_at else "unknown"
            logger.info("OAuth %s: refreshed the access token (expires %s)", self.account, expires)
            return new

    def _after_transient(self, token: OAuthToken, rejected: str | None, err: SyncError) -> OAuthToken:
        if rejected is None and not self._expired(token):
            logger.warning(
                "OAuth %s: refresh ahead of expiry failed (%s); using the current token while it lasts",
                self.account,
                err,
            )
            return token
        raise err

    def _mark_unconfirmed(self, token: OAuthToken, version: int) -> None:
        """Remember that a refresh got no answer, so a later invalid_grant can say why."""
        marked = dataclasses.replace(token, extra={**token.extra, UNCONFIRMED_KEY: self._now().isoformat()})
        with contextlib.suppress(StaleToken):  # a new login landed: nothing to remember about the old grant
            self.store.save(self.account, marked, expected_version=version)
        logger.warning(
            "OAuth %s: the refresh got no answer; the server may have rotated the refresh token. "
            "It is not replayed now; the next use tries once more (invalid_grant then means the grant is lost).",
            self.account,
        )

    def _dead_grant(self, token: OAuthToken, err: AuthError) -> AuthError:
        cause = str(err)
        unconfirmed = token.extra.get(UNCONFIRMED_KEY)
        if unconfirmed and isinstance(err, oauth.OAuthGrantError) and err.error == "invalid_grant":
            cause += (
                f"; the refresh at {unconfirmed} got no answer, and the server had rotated the refresh token "
                "then (a rotated refresh token cannot be used twice)"
            )
        return AuthError(
            f"the OAuth login of {self.account!r} is no longer valid ({cause}); run `{login_hint(self.account)}`",
            credential=self.credential_key,
        )


@contextlib.asynccontextmanager
async def _held(store: TokenStore, account: str) -> AsyncIterator[None]:
    """Hold ``store.refresh_lock(account)`` without blocking the event loop.

    The blocking lock is entered and left on one dedicated thread, which waits for the block to end.
    If the waiting task is cancelled first, the thread releases the lock as soon as it gets it.
    """
    loop = asyncio.get_running_loop()
    acquired: asyncio.Future[None] = loop.create_future()
    release = threading.Event()

    def settle(error: BaseException | None) -> None:
        if acquired.done():
            return
        if error is None:
            acquired.set_result(None)
        else:
            acquired.set_exception(error)

    def hold() -> None:
        try:
            with store.refresh_lock(account):
                with contextlib.suppress(RuntimeError):  # the loop is gone: just release
                    loop.call_soon_threadsafe(settle, None)
                release.wait()
        except Exception as err:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, err)
            if acquired.done():
                logger.warning("OAuth %s: releasing the refresh lock failed: %s", account, err)

    thread = threading.Thread(target=hold, name=f"oauth-refresh-lock-{account}", daemon=True)
    thread.start()
    try:
        await acquired
        yield
    finally:
        release.set()


class OAuthBearerAuth(httpx.Auth):
    """``httpx.Auth`` that sends the provider's access token and, on a 401, refreshes and retries once.

    A token that dies mid-pass (expired early, revoked by a refresh elsewhere) thus costs one extra
    request instead of pausing a healthy credential (W14). A 401 on the retry is returned as is, for
    the caller's ``raise_for_status`` to turn into an ``AuthError``. A dead grant raises the
    provider's ``AuthError`` (with the login command); a transient refresh failure raises
    ``TransientError`` rather than returning the 401, so it is retried, not paused.

    Async clients only.
    """

    requires_request_body = True  # the retry resends the same body

    def __init__(self, provider: TokenProvider) -> None:
        """Authenticate requests with ``provider``'s tokens."""
        self.provider = provider

    def __repr__(self) -> str:
        """Names the provider (its account) only."""
        return f"OAuthBearerAuth({self.provider!r})"

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Refuse: a refresh is asynchronous, so this auth works with ``httpx.AsyncClient`` only.

        Raises:
            RuntimeError: Always.
        """
        raise RuntimeError("OAuthBearerAuth refreshes asynchronously; use it with httpx.AsyncClient")
        yield request  # pragma: no cover - makes this a generator

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Send the access token; on a 401, refresh (unless another process did) and resend once."""
        token = await self.provider.access_token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401:
            return
        logger.info("OAuth %s: 401 on a request; retrying once with a fresh token", self.provider.account)
        fresh = await self.provider.refresh(rejected=token)
        if fresh.access_token == token:
            return
        request.headers["Authorization"] = f"Bearer {fresh.access_token}"
        yield request

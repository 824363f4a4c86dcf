"""One JSON API client base and one bundle of HTTP settings, shared by every system's REST client.

Before this module, the clients of Asana, Notion, Jira, Luma and Contentful each repeated the same
forty lines: build an ``httpx.AsyncClient`` with :func:`~connectors.http.make_client`, be an async
context manager, and send one request that reads the body, maps a 4xx/5xx to a typed error, never
resends a create after an ambiguous failure, and decodes the JSON. :class:`JsonApiClient` is those
lines once (anchors: dlt's ``RESTClient``, Singer SDK's ``RESTStream``); a system's client keeps only
what is its own: headers, envelope, error shapes and endpoints.

:class:`HttpSettings` is what tests and embedding code inject into the HTTP layer (the transport that
sends, the sleep and clock the retries use, the jitter source, the retry policy). Sources and
destinations take one ``http=HttpSettings(...)`` and hand it to their client unchanged, instead of
threading four keyword arguments through every constructor (the separate ``transport=``,
``retry=``, ``sleep=`` and ``clock=`` keywords are gone). :meth:`HttpSettings.of` folds single
values into a bundle, for code (test factories) that overrides one of them.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Generic, Self, TypeVar, cast

import httpx

from connectors.core import ConfigError, SyncError
from connectors.http.credentials import TokenCredentialMembers, TokenCredentials
from connectors.http.retry import (
    COST_EXTENSION,
    DEFAULT_TIMEOUT,
    Clock,
    Rate,
    RetryPolicy,
    Sleep,
    error_for_response,
    make_client,
    retry_options,
)

__all__ = ["HttpSettings", "Json", "JsonApiClient", "TokenApiClient", "TokenClientConnector", "TokenClientDestination"]

Json = dict[str, Any]
"""A JSON object as the connectors read and write it (request bodies, response bodies, records' raw data)."""


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """What the HTTP layer of a connector may be given instead of its defaults.

    Attributes:
        transport: The transport that sends (``httpx.ASGITransport(app)`` for an in-process fake,
            ``httpx.MockTransport`` for replayed traffic); None: the network.
        sleep: Awaitable sleep used between retries (a fake clock's in tests); None: ``asyncio.sleep``.
        clock: Epoch seconds (rate-limit resets, blocks); clients sharing a credential must share it.
        rng: Source of jitter; None: a fresh ``random.Random``.
        retry: Retry policy; None: the client's default (the toolkit's, or the system's own).
    """

    transport: httpx.AsyncBaseTransport | None = None
    sleep: Sleep | None = None
    clock: Clock | None = None
    rng: random.Random | None = None
    retry: RetryPolicy | None = None

    @classmethod
    def of(
        cls,
        settings: HttpSettings | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep | None = None,
        clock: Clock | None = None,
        retry: RetryPolicy | None = None,
    ) -> HttpSettings:
        """``settings`` (or the defaults) with the individually given values filled in.

        A value given by keyword wins over the bundle's (a test that needs one other transport or
        retry policy than its fixture's).

        Args:
            settings: The bundle, if one was given.
            transport: A transport given on its own.
            sleep: A sleep given on its own.
            clock: A clock given on its own.
            retry: A retry policy given on its own.
        """
        base = settings if settings is not None else cls()
        if transport is None and sleep is None and clock is None and retry is None:
            return base
        return replace(
            base,
            transport=transport if transport is not None else base.transport,
            sleep=sleep if sleep is not None else base.sleep,
            clock=clock if clock is not None else base.clock,
            retry=retry if retry is not None else base.retry,
        )


class JsonApiClient:
    """An async client of one JSON REST API for one credential: the base every system's client extends.

    Use it as an async context manager (or call :meth:`aclose`). Subclasses set :attr:`service` and,
    where the API differs from the default, :attr:`envelope`, :attr:`allow_empty`,
    :attr:`create_timeout` and :meth:`error_for`.

    Args:
        base_url: API base (a loopback fake in tests).
        headers: Default headers (authentication, API version, content type).
        credential: Key naming the credential the requests count against (never the secret).
        rate: The credential's request rate (None: no limiter).
        http: Transport, sleep, clock, jitter and retry policy (:class:`HttpSettings`).
        retry: The retry policy when ``http`` names none (the system's default).
        timeout: Default per-request timeout.
        max_concurrent: Requests in flight at once on the credential (reads only, if the next is set).
        max_concurrent_writes: Writes in flight at once on the credential.
        auth: An ``httpx.Auth`` (Basic auth, OAuth refresh-and-retry).

    Attributes:
        credential: The credential key.
        http: The settings the client was built with.
        requests: Requests sent through :meth:`request` (each counted once, however often retried).
    """

    service: ClassVar[str] = "HTTP"
    #: A non-object JSON answer is returned as ``{envelope: body}`` (None: returned as it is).
    envelope: ClassVar[str | None] = None
    #: An empty answer (204) decodes to ``{}`` (with an envelope) or None; False: decoding it fails.
    allow_empty: ClassVar[bool] = True
    #: The timeout of non-idempotent calls (None: the client's default).
    create_timeout: ClassVar[float | httpx.Timeout | None] = None

    def __init__(
        self,
        *,
        base_url: str,
        headers: Mapping[str, str],
        credential: str,
        rate: Rate | None = None,
        http: HttpSettings | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_concurrent: int | None = None,
        max_concurrent_writes: int | None = None,
        auth: httpx.Auth | None = None,
    ) -> None:
        """Build the underlying ``httpx.AsyncClient`` with :func:`~connectors.http.make_client`."""
        self.credential = credential
        self.http = http if http is not None else HttpSettings()
        self.requests = 0
        self._http = make_client(
            service=self.service,
            base_url=base_url,
            headers=headers,
            auth=auth,
            credential=credential,
            rate=rate,
            max_concurrent=max_concurrent,
            max_concurrent_writes=max_concurrent_writes,
            retry=self.http.retry or retry,
            timeout=timeout,
            transport=self.http.transport,
            sleep=self.http.sleep,
            clock=self.http.clock,
            rng=self.http.rng,
        )

    async def __aenter__(self) -> Self:
        """Enter the client's context: the client itself."""
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Leave the client's context: close its connections."""
        await self.aclose()

    async def aclose(self) -> None:
        """Close the client's connections."""
        await self._http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        create: bool = False,
        cost: int = 1,
    ) -> Any:
        """Send one request and return its decoded JSON body (see :meth:`decode`).

        Args:
            method: The HTTP verb.
            path: The path under the base URL.
            json: The JSON body, if any.
            params: Query parameters.
            headers: Headers for this request only.
            create: The call is not idempotent: never resend it after an ambiguous failure (a read
                timeout, a dropped connection, 500/502/504), and give it :attr:`create_timeout`.
            cost: The rate-limit slots it takes: the API counts it as this many requests (a batch).

        Raises:
            HTTPAuthError: 401, or a 403 that is not a rate limit.
            NotFound: 404 (and 410 Gone).
            HTTPRecordError: another 4xx (or what :meth:`error_for` makes of it).
            HTTPRateLimited / HTTPTransientError: retries exhausted.
        """
        timeout = self.create_timeout if create and self.create_timeout is not None else httpx.USE_CLIENT_DEFAULT
        response = await self._http.request(
            method,
            self.url_for(path),
            json=json,
            params=params,
            headers=headers,
            extensions={
                **(retry_options(retry_ambiguous=False) if create else {}),
                **({COST_EXTENSION: cost} if cost != 1 else {}),
            }
            or None,
            timeout=timeout,
        )
        self.requests += 1
        try:
            await response.aread()
            if response.status_code >= 400:
                raise self.error_for(response)
            return self.decode(response)
        finally:
            await response.aclose()

    def url_for(self, path: str) -> str:
        """The URL a request for ``path`` goes to, relative to the base URL; override to add a prefix.

        Args:
            path: The path given to :meth:`request`.
        """
        return path

    def error_for(self, response: httpx.Response) -> SyncError:
        """The typed error a failed (read) response raises; override to parse an API's error shape.

        Args:
            response: A 4xx/5xx response whose body has been read.
        """
        return error_for_response(response)

    def decode(self, response: httpx.Response) -> Any:
        """The JSON body of a successful response, shaped by :attr:`envelope` and :attr:`allow_empty`.

        Args:
            response: A 1xx/2xx/3xx response whose body has been read.
        """
        if self.allow_empty and not response.content.strip():
            return {} if self.envelope is not None else None
        body = response.json()
        if self.envelope is None or isinstance(body, dict):
            return body
        return {self.envelope: body}


_DEFAULT: Any = object()  # "not given" where None is a meaning of its own (rate=None: no limiter)


class TokenApiClient(JsonApiClient):
    """A :class:`JsonApiClient` of one secret sent in a header: the constructor the token clients share.

    A subclass names its defaults (:attr:`default_base_url`, :attr:`default_rate`, ...), its
    :attr:`credentials_type` (whose ``limit_key`` of the secret is the key requests count against)
    and, unless the secret goes as ``Authorization: Bearer`` with ``Accept: application/json``,
    :meth:`headers_for`.

    Args:
        token: The secret.
        base_url: API base (a fake in tests); default :attr:`default_base_url`.
        rate: The secret's request rate (None: no limiter); default :attr:`default_rate`.
        http: Transport, sleep, clock and retry policy (:class:`HttpSettings`); the retry policy
            defaults to :attr:`default_retry`.
        max_concurrent: Requests (reads, if the next is set) in flight at once on the secret.
        max_concurrent_writes: Writes in flight at once on the secret.

    Raises:
        ConfigError: No secret.
    """

    credentials_type: ClassVar[type[TokenCredentials]] = TokenCredentials
    default_base_url: ClassVar[str] = ""
    default_rate: ClassVar[Rate | None] = None
    default_retry: ClassVar[RetryPolicy | None] = None
    default_timeout: ClassVar[float | httpx.Timeout] = DEFAULT_TIMEOUT
    default_max_concurrent: ClassVar[int | None] = None
    default_max_concurrent_writes: ClassVar[int | None] = None
    #: What the secret is, in the error without one (``"an API key"``).
    secret: ClassVar[str] = "a token"

    def __init__(
        self,
        token: str,
        *,
        base_url: str | None = None,
        rate: Rate | None = _DEFAULT,
        http: HttpSettings | None = None,
        max_concurrent: int | None = _DEFAULT,
        max_concurrent_writes: int | None = _DEFAULT,
    ) -> None:
        """Check the secret and build the client."""
        if not token:
            raise ConfigError(f"{type(self).__name__} needs {self.secret}")
        super().__init__(
            base_url=(base_url or self.default_base_url).rstrip("/"),
            headers=self.headers_for(token),
            credential=self.credentials_type().limit_key(token),
            rate=_given(rate, self.default_rate),
            http=http,
            retry=self.default_retry,
            timeout=self.default_timeout,
            max_concurrent=_given(max_concurrent, self.default_max_concurrent),
            max_concurrent_writes=_given(max_concurrent_writes, self.default_max_concurrent_writes),
        )

    def headers_for(self, token: str) -> dict[str, str]:
        """The default headers, the secret's included (``Authorization: Bearer <token>``, JSON accepted)."""
        return {"Authorization": f"Bearer {token}", "Accept": "application/json"}


_T = TypeVar("_T")


def _given(value: Any, default: _T) -> _T:
    """``value``, or ``default`` when it was not given (the sentinel, not None: None may mean "none")."""
    return default if value is _DEFAULT else cast(_T, value)


ClientT = TypeVar("ClientT", bound=JsonApiClient)


class TokenClientConnector(TokenCredentialMembers, Generic[ClientT]):
    """What a system's source and destination share: one secret, the connection settings, counted clients.

    A subclass names :attr:`credentials_type` and builds its client in :meth:`_client`; the source and
    the destination call :meth:`_init_connection` from their constructors and open clients with
    :meth:`_open_client`, which adds each client's requests to ``requests_sent`` when it closes.

    Attributes:
        name: The connector's name (set by the subclass).
        base_url, http, rate: As for the system's client.
        requests_sent: Requests sent by this connector's clients so far.
    """

    name: str
    credentials_type: ClassVar[type[TokenCredentials]] = TokenCredentials

    def _init_connection(
        self,
        token: str | None,
        token_env: str | None,
        base_url: str,
        http: HttpSettings | None,
        rate: Rate | None,
        *,
        what: str | None = None,
    ) -> None:
        self.credentials = self.credentials_type(token, token_env, what=what)
        self.base_url = base_url.rstrip("/")
        self.http = http
        self.rate = rate
        self.requests_sent = 0

    def __repr__(self) -> str:
        """Name the connector, never its secret."""
        return f"{type(self).__name__}(name={self.name!r})"

    def _client(self, token: str) -> ClientT:
        """A new client of ``token`` with this connector's settings."""
        raise NotImplementedError

    @asynccontextmanager
    async def _open_client(self, missing: str) -> AsyncIterator[ClientT]:
        """An open client of the secret (``ConfigError(missing)`` without one); its requests are counted."""
        token = self.token()
        if not token:
            raise ConfigError(missing)
        client = self._client(token)
        async with self._counted(client):
            yield client

    @asynccontextmanager
    async def _counted(self, *clients: JsonApiClient) -> AsyncIterator[None]:
        """Open ``clients`` (closed in reverse order); their requests are added to ``requests_sent``."""
        try:
            async with AsyncExitStack() as stack:
                for client in clients:
                    await stack.enter_async_context(client)
                yield
        finally:
            self.requests_sent += sum(client.requests for client in clients)


SessionT = TypeVar("SessionT")


class TokenClientDestination(TokenClientConnector[ClientT], Generic[ClientT, SessionT]):
    """A :class:`TokenClientConnector` destination whose session writes through one open client.

    A subclass builds its session in :meth:`_session`; :meth:`connect` opens the client (a
    ``ConfigError`` naming what to set when the secret is missing) and closes it with the session.
    """

    def _session(self, client: ClientT) -> SessionT:
        """The session over ``client``."""
        raise NotImplementedError

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[SessionT]:
        """A session on one open client (the client closes with it)."""
        async with self._open_client(f"{type(self).__name__} {self.name!r}: {self.config_hint}") as client:
            yield self._session(client)

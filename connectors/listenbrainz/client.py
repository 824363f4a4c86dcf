"""``ListenBrainzClient`` (loved recordings) and ``MusicBrainzClient`` (ISRC ⇄ recording MBID).

Both go through ``connectors.http.JsonApiClient``: a limiter per credential, retries with backoff on
5xx and timeouts, ``Retry-After`` / ``X-RateLimit-Reset`` on a 429.

ListenBrainz announces its window on every answer (``X-RateLimit-Remaining``, ``X-RateLimit-Reset-In``):
when an answer says nothing is left, the client waits out ``Reset-In`` before its next request (on the
injected sleep) instead of spending a request on a 429. A 401 (a wrong or reset user token) is an
``AuthError``.

MusicBrainz needs no key; it refuses a generic ``User-Agent`` with 403 and answers 503 over one request
a second. Neither is about a credential of ours, so its 401/403 are ``TransientError`` s here, never an
auth pause of the ListenBrainz token; a 404 (an unknown ISRC or MBID) is an answer ("none"), not an error.

Pagination (:class:`TotalCountPagination`): send ``offset``; the next page starts after this one's
items while fewer than ``total_count`` were read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypedDict
from urllib.parse import quote

import httpx

from connectors.core import ConfigError, SyncError, TransientError
from connectors.http import (
    HTTPRecordError,
    HttpSettings,
    ItemOffsetPagination,
    Json,
    JsonApiClient,
    NotFound,
    Rate,
    TokenClientConnector,
    TokenCredentials,
    error_for_response,
)
from connectors.isrc import is_isrc, normalize_isrc
from connectors.listenbrainz.settings import (
    API_BASE,
    DEFAULT_TIMEOUT,
    FEEDBACK_PATH,
    LISTENBRAINZ_RATE,
    LOVED,
    MB_API_BASE,
    MB_RATE,
    MB_SERVICE,
    MB_USER_AGENT,
    PAGE_SIZE,
    SERVICE,
    USER_FEEDBACK_PATH,
)

__all__ = [
    "ListenBrainzClient",
    "ListenBrainzConnection",
    "ListenBrainzConnector",
    "ListenBrainzCredentials",
    "MusicBrainzClient",
    "RateWindow",
    "TotalCountPagination",
    "first_isrc",
    "first_recording_mbid",
]

logger = logging.getLogger(__name__)


class ListenBrainzCredentials(TokenCredentials):
    """The user token of a ListenBrainz source or destination (``LISTENBRAINZ_TOKEN`` by default)."""

    system = "listenbrainz"
    what = "a ListenBrainz user token, from listenbrainz.org/settings"


class TotalCountPagination(ItemOffsetPagination):
    """Send ``offset``; read on while ``offset + len(feedback) < total_count`` (ListenBrainz)."""

    name = "offset+total_count"

    def __init__(self, items: str = "feedback") -> None:
        """A strategy over the list named ``items`` in each page."""
        self.items = items

    def has_more(self, body: Mapping[str, Any], end: int) -> bool:
        """Whether fewer than ``total_count`` items were read."""
        total = body.get("total_count")
        return isinstance(total, int) and end < total


def first_recording_mbid(body: Mapping[str, Any]) -> str | None:
    """The first recording MBID of a MusicBrainz ``/isrc/<ISRC>`` answer, or None."""
    for recording in body.get("recordings") or []:
        if isinstance(recording, dict) and isinstance(recording.get("id"), str) and recording["id"]:
            return str(recording["id"])
    return None


def first_isrc(body: Mapping[str, Any]) -> str:
    """The first well-formed ISRC of a MusicBrainz ``/recording/<MBID>?inc=isrcs`` answer, or ""."""
    for value in body.get("isrcs") or []:
        isrc = normalize_isrc(value)
        if is_isrc(isrc):
            return isrc
    return ""


def _wait_of(headers: httpx.Headers) -> float | None:
    """Seconds to wait before the next request: ``Reset-In`` when ``Remaining`` is 0, else None."""
    if headers.get("x-ratelimit-remaining", "").strip() != "0":
        return None
    try:
        return max(0.0, float(headers.get("x-ratelimit-reset-in", "")))
    except ValueError:
        return None


class RateWindow:
    """When the next request to ListenBrainz may go, as its last answer announced (shared by a connector's clients).

    Attributes:
        resume_at: Epoch seconds before which no request should be sent, or None.
    """

    def __init__(self) -> None:
        """No window announced yet."""
        self.resume_at: float | None = None


class ListenBrainzClient(JsonApiClient):
    """A ListenBrainz API client for one user token (or none: reading feedback is public).

    Args:
        token: The user token, sent as ``Authorization: Token …``; None reads anonymously.
        public_key: The credential key of anonymous reads (default ``listenbrainz:public``).
        window: Where the announced rate-limit window is kept (default: this client's own).
        base_url: API base (a fake in tests).
        rate: The request rate (shared by every client of the same token).
        http: Transport, sleep, clock and retry policy (:class:`~connectors.http.HttpSettings`).
    """

    service = SERVICE
    pagination = TotalCountPagination()

    def __init__(
        self,
        token: str | None,
        *,
        public_key: str = "listenbrainz:public",
        window: RateWindow | None = None,
        base_url: str = API_BASE,
        rate: Rate | None = LISTENBRAINZ_RATE,
        http: HttpSettings | None = None,
    ) -> None:
        """Build the client."""
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Token {token}"
        super().__init__(
            base_url=base_url.rstrip("/"),
            headers=headers,
            credential=ListenBrainzCredentials(token).rate_limit_key if token else public_key,
            rate=rate,
            http=http,
            timeout=DEFAULT_TIMEOUT,
        )
        self.window = window if window is not None else RateWindow()

    def _clock(self) -> float:
        return (self.http.clock or time.time)()

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send one request (see :meth:`JsonApiClient.request`), after the window the last answer named."""
        if self.window.resume_at is not None:
            wait = self.window.resume_at - self._clock()
            self.window.resume_at = None
            if wait > 0:
                logger.info("ListenBrainz: rate-limit window used up; waiting %.0f s", wait)
                await (self.http.sleep or asyncio.sleep)(wait)
        return await super().request(method, path, **kwargs)

    def _note(self, response: httpx.Response) -> None:
        wait = _wait_of(response.headers)
        if wait is not None:
            self.window.resume_at = self._clock() + wait

    def decode(self, response: httpx.Response) -> Any:
        """The JSON body; notes the rate-limit window the answer announces."""
        self._note(response)
        return super().decode(response)

    def error_for(self, response: httpx.Response) -> SyncError:
        """The typed error of a failed answer; notes its rate-limit window too."""
        self._note(response)
        return super().error_for(response)

    async def loved(self, user: str, *, offset: int = 0, count: int = PAGE_SIZE) -> Json:
        """One page of the user's loved recordings (``feedback``, ``total_count``), newest first."""
        path = USER_FEEDBACK_PATH.format(user=quote(user, safe=""))
        params = {"score": LOVED, "count": count, "offset": offset, "metadata": "true"}
        body = await self.request("GET", path, params=params)
        return body if isinstance(body, dict) else {}

    async def all_loved(self, user: str) -> AsyncIterator[Json]:
        """Every loved-feedback item of the user, page by page."""

        async def fetch(token: str | None) -> Json:
            return await self.loved(user, offset=int(token or 0))

        async for body in self.pagination.pages(fetch):
            for item in body.get("feedback") or []:
                if isinstance(item, dict):
                    yield item

    async def love(self, recording_mbid: str) -> None:
        """Set the token's user's feedback on a recording to loved (setting it again changes nothing)."""
        await self.request("POST", FEEDBACK_PATH, json={"recording_mbid": recording_mbid, "score": LOVED})


class MusicBrainzClient(JsonApiClient):
    """A MusicBrainz web service client: ISRC → recording MBID and back.

    Args:
        user_agent: The ``User-Agent`` MusicBrainz requires (an application, a version, a contact).
        base_url: API base (a fake in tests).
        rate: The request rate: one a second, shared by every client in the process.
        http: Transport, sleep, clock and retry policy (:class:`~connectors.http.HttpSettings`).
    """

    service = MB_SERVICE

    def __init__(
        self,
        *,
        user_agent: str = MB_USER_AGENT,
        base_url: str = MB_API_BASE,
        rate: Rate | None = MB_RATE,
        http: HttpSettings | None = None,
    ) -> None:
        """Build the client."""
        if not user_agent.strip():
            raise ConfigError("MusicBrainz needs a descriptive User-Agent (an application, a version, a contact)")
        super().__init__(
            base_url=base_url.rstrip("/"),
            headers={"User-Agent": user_agent, "Accept": "application/json"},
            credential="musicbrainz",  # the limit is per IP address: one limiter for the process
            rate=rate,
            http=http,
            timeout=DEFAULT_TIMEOUT,
        )

    def error_for(self, response: httpx.Response) -> SyncError:
        """401/403 are not about a credential of ours (MusicBrainz has none): a ``TransientError``."""
        if response.status_code in (401, 403):
            return error_for_response(response, base=TransientError)
        return super().error_for(response)

    async def recording_for_isrc(self, isrc: str) -> str | None:
        """The first recording MBID MusicBrainz lists for an ISRC, or None (unknown, or refused as malformed)."""
        try:
            body = await self.request("GET", f"/isrc/{quote(isrc, safe='')}", params={"fmt": "json"})
        except NotFound:
            return None
        except HTTPRecordError as err:
            if err.status_code == 400:  # "Invalid isrc.": this key never resolves
                logger.warning("MusicBrainz refused ISRC %s as malformed", isrc)
                return None
            raise
        return first_recording_mbid(body or {})

    async def isrc_for_recording(self, mbid: str) -> str:
        """The first ISRC MusicBrainz lists for a recording, or "" (none, or an unknown MBID)."""
        try:
            body = await self.request(
                "GET", f"/recording/{quote(mbid, safe='')}", params={"inc": "isrcs", "fmt": "json"}
            )
        except NotFound:
            return ""
        except HTTPRecordError as err:
            if err.status_code == 400:
                return ""
            raise
        return first_isrc(body or {})


class ListenBrainzConnection(TypedDict, total=False):
    """The connection settings ``ListenBrainzSource`` and ``ListenBrainzDestination`` take (keywords).

    Attributes:
        user_agent: The ``User-Agent`` sent to MusicBrainz (default ``MB_USER_AGENT``).
        base_url, musicbrainz_url: The API bases (fakes in tests).
        http: Transport, sleep, clock and retry policy (:class:`~connectors.http.HttpSettings`).
        rate, musicbrainz_rate: The request rates (default ``LISTENBRAINZ_RATE``, ``MB_RATE``).
    """

    user_agent: str
    base_url: str
    musicbrainz_url: str
    http: HttpSettings | None
    rate: Rate | None
    musicbrainz_rate: Rate | None


class ListenBrainzConnector(TokenClientConnector[ListenBrainzClient]):
    """What ``ListenBrainzSource`` and ``ListenBrainzDestination`` share: the user, the token, two clients.

    Reading is anonymous, so clients are opened with :meth:`_open_clients` (a token or none), not
    ``_open_client``.

    Attributes:
        name: The connector's name (set by the subclass).
        user: The ListenBrainz user name.
        base_url, musicbrainz_url, user_agent, http, rate: As for the clients.
        requests_sent: Requests sent to ListenBrainz and MusicBrainz so far.
    """

    credentials_type = ListenBrainzCredentials

    def _init_user_connection(
        self,
        user: str | None,
        token: str | None,
        token_env: str | None,
        *,
        user_agent: str = MB_USER_AGENT,
        base_url: str = API_BASE,
        musicbrainz_url: str = MB_API_BASE,
        http: HttpSettings | None = None,
        rate: Rate | None = LISTENBRAINZ_RATE,
        musicbrainz_rate: Rate | None = MB_RATE,
    ) -> None:
        self._init_connection(token, token_env, base_url, http, rate)
        self.user = (user or "").strip() or None
        self.musicbrainz_url = musicbrainz_url.rstrip("/")
        self.user_agent = user_agent
        self.musicbrainz_rate = musicbrainz_rate
        self.window = RateWindow()  # outlives each pass's clients: the next page waits if it must

    def __repr__(self) -> str:
        """Name the connector and its user, never the token."""
        return f"{type(self).__name__}(name={self.name!r}, user={self.user!r})"

    @asynccontextmanager
    async def _open_clients(self, token: str | None) -> AsyncIterator[tuple[ListenBrainzClient, MusicBrainzClient]]:
        """Open clients of ListenBrainz (with ``token``) and MusicBrainz; their requests are counted."""
        # Anonymous reads count per user read (and per IP address, which no key can name).
        public_key = f"listenbrainz:public:{self.user}"
        lb = ListenBrainzClient(
            token, public_key=public_key, window=self.window, base_url=self.base_url, http=self.http, rate=self.rate
        )
        mb = MusicBrainzClient(
            user_agent=self.user_agent, base_url=self.musicbrainz_url, http=self.http, rate=self.musicbrainz_rate
        )
        async with self._counted(lb, mb):
            yield lb, mb

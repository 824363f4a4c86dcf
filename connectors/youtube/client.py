"""``YouTubeClient``: a typed client for the three YouTube Data API v3 list calls the source needs.

It sits on ``connectors.http.make_client`` (retries, backoff, the per-key limiter, redaction) and adds
what is specific to YouTube:

- **The API key in a header.** ``X-Goog-Api-Key`` instead of ``?key=`` (Google accepts both), so no
  URL this client builds carries the key (W12). There is deliberately no query-string option: the
  toolkit masks query values in its own messages, but httpx's INFO log line ("HTTP Request: GET
  <full URL>") would still print the key.
- **Quota accounting** (:class:`QuotaMeter`): every request that reaches Google costs units (1 for
  the calls used here, at least 1 even when rejected), counted per Pacific-time day, because the
  10,000-unit daily quota resets at midnight Pacific. Google offers no "remaining quota" call, so
  this is an estimate of what THIS key spent through this meter.
- **Error reasons.** Google answers with ``{"error": {"code", "message", "errors": [{"reason",
  "domain"}], "details": [...]}}``; the reason, not the status, says what happened:

  ======================================  =================================================
  ``quotaExceeded`` (403, youtube.quota)  :class:`YouTubeQuotaExceeded`, a ``RateLimited``
                                          whose ``retry_after`` runs to midnight Pacific: the
                                          partition is deferred, NEVER paused
  ``rateLimitExceeded`` (403)             ``RateLimited`` (a minute)
  ``keyInvalid`` / ``API_KEY_INVALID``    ``AuthError`` (400 on the wire, yet a human must act)
  ``accessNotConfigured``, other 401/403  ``AuthError``
  400 "API key not valid" (any reason)    ``AuthError`` (older bodies say only ``badRequest``)
  403 from a ``youtube.*`` domain         :class:`YouTubeNotAccessible`, a ``ConfigError``:
  (``playlistItemsNotAccessible``)        one resource (a private playlist), not the key
  404 (``playlistNotFound``, …)           ``NotFound``
  other 4xx / 5xx                         as ``connectors.http.raise_for_status``
  ======================================  =================================================
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import time
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from connectors.core import AuthError, ConfigError, RateLimited
from connectors.http import (
    RATE_LIMIT_FALLBACK_WAIT,
    Clock,
    HttpSettings,
    Json,
    JsonApiClient,
    Rate,
    TokenCredentials,
    error_for_response,
    raise_for_status,
)
from connectors.youtube.settings import (
    API_BASE,
    API_KEY_HEADER,
    AUTH_REASONS,
    DEFAULT_QUOTA_BUDGET,
    KEY_INVALID_TEXT,
    MAX_IDS_PER_CALL,
    PAGE_SIZE,
    QUOTA_COSTS,
    QUOTA_REASONS,
    QUOTA_RESET_MARGIN_SECONDS,
    QUOTA_TIMEZONE,
    RATE,
    RATE_LIMIT_REASONS,
    RESOURCE_DOMAIN_PREFIX,
    SERVICE,
    TIMEOUT,
)

__all__ = [
    "QuotaMeter",
    "YouTubeClient",
    "YouTubeCredentials",
    "YouTubeNotAccessible",
    "YouTubeQuotaExceeded",
    "error_reasons",
    "next_quota_reset",
    "quota_day",
    "rate_limit_key_for",
    "token_digest",
]

logger = logging.getLogger(__name__)

_PACIFIC = ZoneInfo(QUOTA_TIMEZONE)


# --------------------------------------------------------------------------------------------------
# Credentials


def token_digest(api_key: str) -> str:
    """The sha256 hex digest of an API key: safe to store and compare, impossible to use."""
    return hashlib.sha256(api_key.encode()).hexdigest()


class YouTubeCredentials(TokenCredentials):
    """The API key of a YouTube source (``YOUTUBE_API_KEY`` unless told otherwise)."""

    system = "youtube"
    what = "a YouTube Data API v3 key"


def rate_limit_key_for(api_key: str) -> str:
    """``youtube:<12 hex of sha256(key)>``: the quota and the limiter are per key (per project)."""
    return f"youtube:{token_digest(api_key)[:12]}"


# --------------------------------------------------------------------------------------------------
# The quota day


def quota_day(epoch: float) -> dt.date:
    """The Pacific-time date whose quota a request at ``epoch`` counts against."""
    return dt.datetime.fromtimestamp(epoch, _PACIFIC).date()


def next_quota_reset(epoch: float) -> dt.datetime:
    """The next midnight Pacific after ``epoch`` (aware; PST or PDT as the calendar says)."""
    tomorrow = quota_day(epoch) + dt.timedelta(days=1)
    return dt.datetime.combine(tomorrow, dt.time(0), tzinfo=_PACIFIC)


class YouTubeQuotaExceeded(RateLimited):
    """The daily quota is spent: wait until midnight Pacific (``retry_after``), do not pause.

    Attributes:
        reset_at: When the quota resets (aware, Pacific time).
    """

    def __init__(self, message: str, *, retry_after: float, reset_at: dt.datetime) -> None:
        """Keep the wait until the quota resets and when it does."""
        super().__init__(message, retry_after=retry_after)
        self.reset_at = reset_at


class YouTubeNotAccessible(ConfigError):
    """A 403 about one resource, not the key.

    A 403 about one resource, not the key: a private playlist (``playlistItemsNotAccessible``), a
    channel or video an API key may not read. Another channel on the same key is unaffected, so
    nothing is paused; the spec fails until its configuration changes.

    Attributes:
        http_status: The status on the wire (403).
        reasons: The ``errors[].reason`` values.
        status_code: 0. ``auth_error_in_chain`` reads a ``status_code`` of 403 as a revoked
            credential; this is not one (as ``connectors.http`` reports a rate-limited 403 as 429).
    """

    status_code = 0

    def __init__(self, message: str, *, http_status: int, reasons: frozenset[str]) -> None:
        """Keep the HTTP status and YouTube's error reasons."""
        super().__init__(message)
        self.http_status = http_status
        self.reasons = reasons


def _quota_error(detail: str, now: float) -> YouTubeQuotaExceeded:
    reset_at = next_quota_reset(now)
    wait = max(0.0, reset_at.timestamp() - now) + QUOTA_RESET_MARGIN_SECONDS
    hours, minutes = divmod(math.ceil(wait / 60), 60)
    return YouTubeQuotaExceeded(
        f"YouTube: {detail}; the daily quota resets at midnight Pacific ({reset_at.isoformat()}), "
        f"in {hours} h {minutes:02d} min — the partition waits for it",
        retry_after=wait,
        reset_at=reset_at,
    )


class QuotaMeter:
    """Units spent per Pacific day by one API key, as far as this meter saw them.

    ``state`` (a MutableMapping[str, str], e.g. the source's durable ``watermarks``) keeps the count
    across processes under ``key``; without one it lives in memory.

    Args:
        budget: Units a day this meter allows; a request that would go over it is not sent.
        clock: Epoch seconds.
        state: Where to persist ``{"day", "units", "exhausted"}`` as JSON.
        key: The entry of ``state``.
    """

    def __init__(
        self,
        budget: int = DEFAULT_QUOTA_BUDGET,
        *,
        clock: Clock,
        state: MutableMapping[str, str] | None = None,
        key: str = "youtube:quota",
    ) -> None:
        """Start a meter over ``state`` (in memory by default)."""
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
            raise ConfigError(f"YouTube quota_budget must be a whole number >= 1, got {budget!r}")
        self.budget = budget
        self.clock = clock
        self.state = state
        self.key = key
        self.day: dt.date | None = None
        self.units = 0
        self.exhausted = False
        self._dirty = False
        self._load()

    def _load(self) -> None:
        raw = self.state.get(self.key) if self.state is not None else None
        if not raw:
            return
        try:
            data = json.loads(raw)
            self.day = dt.date.fromisoformat(data["day"])
            self.units = int(data.get("units", 0))
            self.exhausted = bool(data.get("exhausted", False))
        except (ValueError, KeyError, TypeError):
            logger.warning("YouTube: unreadable quota state %r; counting from zero", raw[:200])

    def _save(self) -> None:
        if self.state is not None and self.day is not None:
            data = {"day": self.day.isoformat(), "units": self.units, "exhausted": self.exhausted}
            self.state[self.key] = json.dumps(data, sort_keys=True)

    def _roll(self) -> float:
        now = self.clock()
        today = quota_day(now)
        if self.day != today:
            self.day, self.units, self.exhausted = today, 0, False
        return now

    @property
    def used_today(self) -> int:
        """Units spent since the last midnight Pacific."""
        self._roll()
        return self.units

    @property
    def resets_at(self) -> dt.datetime:
        """When the quota day ends (midnight Pacific time), aware."""
        return next_quota_reset(self.clock())

    def check(self, cost: int) -> None:
        """Raise :class:`YouTubeQuotaExceeded` if a call of ``cost`` units must not be sent today."""
        now = self._roll()
        if self.exhausted:
            raise _quota_error("the daily quota was reported exhausted earlier today (quotaExceeded)", now)
        if self.units + cost > self.budget:
            raise _quota_error(
                f"{self.units} of the {self.budget}-unit daily budget (quota_budget) are spent; a call costs {cost}",
                now,
            )

    def charge(self, cost: int) -> None:
        """Count ``cost`` units (in memory; :meth:`flush` persists them)."""
        self._roll()
        self.units += cost
        self._dirty = True

    def flush(self) -> None:
        """Persist the count to ``state`` if it changed.

        Persist the count to ``state`` if it changed (once per page, not once per request: the
        state may be a database table).
        """
        if self._dirty:
            self._save()
            self._dirty = False

    def mark_exhausted(self) -> YouTubeQuotaExceeded:
        """Remember that Google said the quota is spent (until the reset); returns the error to raise."""
        now = self._roll()
        self.exhausted = True
        self._save()
        self._dirty = False
        return _quota_error(
            "quotaExceeded: the API key's project has used its daily quota (10,000 units by default)", now
        )


def _resource(request: httpx.Request) -> str:
    return request.url.path.rstrip("/").rsplit("/", 1)[-1]


class _MeteredTransport(httpx.AsyncBaseTransport):
    """Counts the units of every attempt that reached Google (retries included) on the meter."""

    def __init__(self, inner: httpx.AsyncBaseTransport | None, client: YouTubeClient) -> None:
        self._owns_inner = inner is None
        self._inner = inner if inner is not None else httpx.AsyncHTTPTransport(retries=0)
        self._client = client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        self._client._charge(QUOTA_COSTS.get(_resource(request), 1))
        return response

    async def aclose(self) -> None:
        if self._owns_inner:  # an injected transport belongs to the caller (it may serve many clients)
            await self._inner.aclose()


def _google_error(response: httpx.Response) -> Json:
    """The ``error`` object of a Google error body; empty when there is none."""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _resource_level(error: Json) -> frozenset[str] | None:
    """The reasons of a 403 that concerns one resource; None for anything else.

    The reasons of a 403 that concerns one resource (every ``errors[].domain`` a ``youtube.*`` domain
    other than the quota's, and no key-level reason in ``details[]``); None for anything else.
    """
    entries = [e for e in error.get("errors") or [] if isinstance(e, dict)]
    if not entries:
        return None
    for entry in entries:
        domain = str(entry.get("domain") or "")
        if not domain.startswith(RESOURCE_DOMAIN_PREFIX) or domain == "youtube.quota":
            return None
    details = {d.get("reason") for d in error.get("details") or [] if isinstance(d, dict)}
    if details & AUTH_REASONS:
        return None
    return frozenset(str(e.get("reason") or "forbidden") for e in entries)


def error_reasons(response: httpx.Response) -> set[str]:
    """Every ``reason`` of a Google error body: ``error.errors[].reason`` and ``error.details[].reason``."""
    error = _google_error(response)
    if not error:
        return set()
    reasons: set[str] = set()
    for group in ("errors", "details"):
        for item in error.get(group) or []:
            if isinstance(item, dict) and isinstance(item.get("reason"), str):
                reasons.add(item["reason"])
    return reasons


# --------------------------------------------------------------------------------------------------
# The client


class YouTubeClient(JsonApiClient):
    """A YouTube Data API v3 client for one API key. Use it as an async context manager.

    A :class:`~connectors.http.JsonApiClient` whose every attempt is metered (quota units) by the
    transport; reads go through :meth:`get`, which maps YouTube's error reasons.

    Args:
        api_key: The key (Google Cloud console → APIs & Services → Credentials).
        base_url: API root (a fake in tests: ``http://127.0.0.1:PORT/youtube/v3``).
        rate: Requests per second per key (shared by every client of the same key).
        http: Transport, sleep, clock and retry policy (:class:`~connectors.http.HttpSettings`); the
            clock also decides the quota day.
        meter: Quota accounting; default: a fresh in-memory meter with the default budget.
    """

    service = SERVICE

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = API_BASE,
        rate: Rate | None = RATE,
        http: HttpSettings | None = None,
        meter: QuotaMeter | None = None,
    ) -> None:
        """Check the key and build the client (its transport meters every attempt)."""
        if not api_key:
            raise ConfigError("YouTubeClient needs an API key")
        settings = http or HttpSettings()
        self._clock: Clock = settings.clock or time.time
        self.meter = meter if meter is not None else QuotaMeter(clock=self._clock)
        self.units = 0
        """Units spent by this client (retries included)."""
        super().__init__(
            base_url=base_url,
            headers={API_KEY_HEADER: api_key, "Accept": "application/json"},
            credential=rate_limit_key_for(api_key),
            rate=rate,
            http=replace(settings, transport=_MeteredTransport(settings.transport, self), clock=self._clock),
            timeout=TIMEOUT,
        )

    def _charge(self, cost: int) -> None:
        self.units += cost
        self.requests += 1
        self.meter.charge(cost)

    async def get(self, resource: str, params: Mapping[str, Any]) -> Json:
        """One ``GET {base}/{resource}``; the JSON body, or a typed error (see the module docstring).

        Raises:
            YouTubeQuotaExceeded: the daily quota is spent (or this meter's budget would be exceeded).
            HTTPAuthError: the key is invalid, restricted, or the API is not enabled.
            NotFound: 404.
            HTTPRateLimited / HTTPTransientError: retries exhausted.
        """
        self.meter.check(QUOTA_COSTS.get(resource, 1))
        response = await self._http.get(resource, params=dict(params))
        try:
            await response.aread()
            self._raise_for_error(response)
            body = response.json()
        finally:
            await response.aclose()
        if not isinstance(body, dict):
            raise ConfigError(f"YouTube GET /{resource}: expected a JSON object, got {type(body).__name__}")
        return body

    def _raise_for_error(self, response: httpx.Response) -> None:
        status = response.status_code
        if status < 400:
            return
        reasons = error_reasons(response)
        if reasons & QUOTA_REASONS:
            # Raised here, outside any except block, so no 403 rides along in __context__: the engine
            # must see a wait, never a revoked credential.
            raise self.meter.mark_exhausted()
        if reasons & RATE_LIMIT_REASONS:
            raise error_for_response(
                response, base=RateLimited, retry_after=RATE_LIMIT_FALLBACK_WAIT, clock=self._clock
            )
        error = _google_error(response)
        if status == 403 and (resource_reasons := _resource_level(error)) is not None:
            # One playlist, channel or video the key may not read: a configuration matter for this
            # spec, never a pause of the key every other spec shares.
            raise YouTubeNotAccessible(
                f"YouTube GET {response.request.url.path}: {', '.join(sorted(resource_reasons))}: "
                f"{str(error.get('message') or '')[:300]} This resource cannot be read with an API key "
                "(a private playlist?); change the source's channels.",
                http_status=status,
                reasons=resource_reasons,
            )
        key_invalid = status == 400 and KEY_INVALID_TEXT.search(str(error.get("message") or "")) is not None
        if reasons & AUTH_REASONS or status in (401, 403) or key_invalid:
            raise error_for_response(response, base=AuthError, credential=self.credential, clock=self._clock)
        raise_for_status(response, clock=self._clock)

    # -- calls --------------------------------------------------------------------------------------

    async def channel(self, ref: str) -> Json | None:
        """The channel of a ``UC…`` id or an ``@handle``; None when there is none.

        The channel (``id``, ``snippet``, ``contentDetails``) of a ``UC…`` id or an ``@handle``; None
        when there is none.
        """
        params: dict[str, Any] = {"part": "snippet,contentDetails", "maxResults": 1}
        if ref.startswith("@"):
            params["forHandle"] = ref
        else:
            params["id"] = ref
        body = await self.get("channels", params)
        items = body.get("items") or []
        return items[0] if items and isinstance(items[0], dict) else None

    async def playlist_items(self, playlist_id: str, page_token: str | None, *, max_results: int = PAGE_SIZE) -> Json:
        """One page of ``playlistItems.list`` (``snippet,contentDetails,status``)."""
        params: dict[str, Any] = {
            "part": "snippet,contentDetails,status",
            "playlistId": playlist_id,
            "maxResults": max_results,
        }
        if page_token:
            params["pageToken"] = page_token
        return await self.get("playlistItems", params)

    async def videos(self, ids: Sequence[str]) -> list[Json]:
        """``videos.list`` (``snippet,statistics,contentDetails``) for ALL ``ids``, 50 per call.

        Ids Google does not return (private, deleted, not found) are simply missing from the result.
        """
        out: list[Json] = []
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), MAX_IDS_PER_CALL):
            batch = unique[start : start + MAX_IDS_PER_CALL]
            body = await self.get(
                "videos",
                {"part": "snippet,statistics,contentDetails", "id": ",".join(batch), "maxResults": len(batch)},
            )
            out.extend(item for item in body.get("items") or [] if isinstance(item, dict))
        return out

"""``LumaClient``: a typed client of Luma's public API (events of one calendar) over ``connectors.http``.

Every request goes through the shared client base (``connectors.http.JsonApiClient``): the
per-key limiter (``LUMA_RATE``, shared by every client of the same key), retries with backoff on
5xx and timeouts, and on 429 the server's ``Retry-After`` (Luma blocks the key for a minute; the
toolkit blocks every request on the key until then, sleeps through waits up to
``RetryPolicy.max_wait`` and raises ``RateLimited`` beyond it).

Creates are sent with ``retry_options(retry_ambiguous=False)``: after a read timeout, a dropped
connection or a 500/502/504, Luma may have created the event, and since it cannot hold our key a
resent create would make a second one. The error surfaces instead (``TransientError``).

Pagination is a named strategy (:class:`HasMorePagination`, the toolkit's ``NextCursorPagination``):
send ``pagination_cursor``; read ``next_cursor`` while ``has_more``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from connectors.core import TransientError
from connectors.http import (
    Json,
    NextCursorPagination,
    NotFound,
    TokenApiClient,
    TokenClientConnector,
    TokenCredentials,
)
from connectors.luma.settings import (
    API_BASE,
    API_KEY_HEADER,
    CREATE_PATH,
    CREATE_TIMEOUT,
    DEFAULT_TIMEOUT,
    GET_PATH,
    LIST_PATH,
    LUMA_RATE,
    PAGE_SIZE,
    SERVICE,
    UPDATE_PATH,
)

__all__ = ["HasMorePagination", "LumaClient", "LumaConnector", "LumaCredentials"]

logger = logging.getLogger(__name__)


class LumaCredentials(TokenCredentials):
    """The API key of a Luma source or destination (``LUMA_API_KEY`` unless told otherwise)."""

    system = "luma"
    what = "a Luma API key, from Luma Plus: calendar → Settings → Developer"


HasMorePagination = NextCursorPagination
"""Luma's pagination: ``pagination_cursor`` in, ``next_cursor`` out while ``has_more`` (Notion's scheme)."""


class LumaClient(TokenApiClient):
    """A Luma API client for one API key (a :class:`~connectors.http.TokenApiClient`).

    Use it as an async context manager. :meth:`request` returns the JSON body, ``{}`` for an empty one
    and ``{"entries": body}`` for a non-object one; ``requests`` counts the requests sent.

    Args:
        token: A calendar (or organization) API key; sent as ``x-luma-api-key``.
        base_url: API base (a fake in tests).
        rate: The key's request rate (shared by every client of the same key).
        http: Transport, sleep, clock and retry policy (:class:`~connectors.http.HttpSettings`).
    """

    service = SERVICE
    envelope = "entries"
    create_timeout = CREATE_TIMEOUT
    pagination = HasMorePagination()

    credentials_type = LumaCredentials
    default_base_url = API_BASE
    default_rate = LUMA_RATE
    default_timeout = DEFAULT_TIMEOUT
    secret = "an API key"

    def headers_for(self, token: str) -> dict[str, str]:
        """The key goes in Luma's own header (``x-luma-api-key``)."""
        return {API_KEY_HEADER: token, "Accept": "application/json"}

    async def list_events(
        self,
        *,
        cursor: str | None = None,
        limit: int = PAGE_SIZE,
        after: str | None = None,
        before: str | None = None,
    ) -> Json:
        """One page of the calendar's events (``entries``, ``has_more``, ``next_cursor``)."""
        params: dict[str, Any] = {"pagination_limit": limit}
        if cursor:
            params["pagination_cursor"] = cursor
        if after:
            params["after"] = after
        if before:
            params["before"] = before
        return await self.request("GET", LIST_PATH, params=params)

    async def get_event(self, api_id: str) -> Json | None:
        """``{event, hosts}`` of one event, or None when Luma does not know it (404)."""
        try:
            return await self.request("GET", GET_PATH, params={"api_id": api_id})
        except NotFound:
            return None

    async def create_event(self, payload: Mapping[str, Any]) -> str:
        """Create an event; its ``api_id``.

        Raises:
            TransientError: Luma answered 2xx without an id: the event probably exists but cannot be
                linked, so the pass must stop rather than create more of them.
        """
        body = await self.request("POST", CREATE_PATH, json=dict(payload), create=True)
        inner = body.get("event")
        event: Json = inner if isinstance(inner, dict) else {}
        api_id = body.get("api_id") or event.get("api_id") or body.get("id") or event.get("id")
        if not isinstance(api_id, str) or not api_id:
            raise TransientError(
                f"Luma POST {CREATE_PATH} -> 2xx without an api_id (keys: {sorted(body)[:10]}); the event was "
                "probably created but cannot be linked — look for it by name in Luma before the next pass"
            )
        return api_id

    async def update_event(self, event_id: str, payload: Mapping[str, Any]) -> None:
        # Setting fields is idempotent: a retry after an ambiguous failure writes the same values.
        """Update an event (setting fields is idempotent, so it is retried)."""
        await self.request("POST", UPDATE_PATH, json={"event_id": event_id, **payload})


class LumaConnector(TokenClientConnector[LumaClient]):
    """What ``LumaSource`` and ``LumaDestination`` share: the key, the connection settings and a client.

    A :class:`~connectors.http.TokenClientConnector`: a subclass calls ``_init_connection`` from its
    constructor and opens clients with ``_open_client``, which counts their requests in ``requests_sent``.
    """

    credentials_type = LumaCredentials

    def _client(self, token: str) -> LumaClient:
        return LumaClient(token, base_url=self.base_url, http=self.http, rate=self.rate)

"""``SpotifyClient``: a typed client of the Spotify Web API (the user's saved tracks and search).

Every request goes through ``connectors.http.JsonApiClient``: the per-token limiter (``SPOTIFY_RATE``),
retries with backoff on 5xx and timeouts, and on 429 the server's ``Retry-After`` (slept through up
to ``RetryPolicy.max_wait``, else ``RateLimited`` for the orchestrator). A 401 (the access token
expired or was revoked) and a 403 (a scope is missing) are ``AuthError`` s: only a new token helps.

Pagination is a named strategy (:class:`OffsetNextPagination`): send ``offset``; the next page starts
after this one's items while the body names a ``next`` URL. The offset (not the URL) is what a cursor
stores, so a resumed pass asks the same question of a fresh client.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from connectors.core import ConfigError
from connectors.http import (
    ItemOffsetPagination,
    Json,
    TokenApiClient,
    TokenClientConnector,
    TokenCredentials,
)
from connectors.isrc import normalize_isrc
from connectors.spotify.settings import (
    API_BASE,
    DEFAULT_TIMEOUT,
    PAGE_SIZE,
    SAVE_LIMIT,
    SAVED_TRACKS_PATH,
    SEARCH_PATH,
    SERVICE,
    SPOTIFY_RATE,
)

__all__ = [
    "OffsetNextPagination",
    "SpotifyClient",
    "SpotifyConnector",
    "SpotifyCredentials",
    "first_track_id",
    "track_isrc",
]

logger = logging.getLogger(__name__)


class SpotifyCredentials(TokenCredentials):
    """The OAuth access token of a Spotify source or destination (``SPOTIFY_ACCESS_TOKEN`` by default)."""

    system = "spotify"
    what = "a Spotify OAuth access token with the user-library-read and user-library-modify scopes"


class OffsetNextPagination(ItemOffsetPagination):
    """Send ``offset``; the next page starts after this one's items while ``next`` names a URL (Spotify)."""

    name = "offset+next"

    def has_more(self, body: Mapping[str, Any], end: int) -> bool:
        """Whether the page names a ``next`` URL."""
        return bool(body.get("next"))


def track_isrc(track: Mapping[str, Any]) -> str:
    """The track's ISRC in canonical form, or "" (local files and some releases have none)."""
    ids = track.get("external_ids")
    return normalize_isrc(ids.get("isrc")) if isinstance(ids, dict) else ""


def first_track_id(body: Mapping[str, Any]) -> str | None:
    """The id of the first track of a ``/search`` answer, or None when nothing matched."""
    tracks = body.get("tracks")
    items = tracks.get("items") if isinstance(tracks, dict) else None
    for item in items or []:
        if isinstance(item, dict) and isinstance(item.get("id"), str) and item["id"]:
            return str(item["id"])
    return None


def _quoted(text: str) -> str:
    # Search's field filters take a quoted phrase; a quote inside it would end the phrase early.
    return '"' + text.replace('"', " ").strip() + '"'


class SpotifyClient(TokenApiClient):
    """A Spotify Web API client for one access token (a :class:`~connectors.http.TokenApiClient`).

    Args:
        token: The OAuth access token, sent as ``Authorization: Bearer …``.
        base_url: API base (a fake in tests).
        rate: The token's request rate (shared by every client of the same token).
        http: Transport, sleep, clock and retry policy (:class:`~connectors.http.HttpSettings`).
    """

    service = SERVICE
    pagination = OffsetNextPagination()

    credentials_type = SpotifyCredentials
    default_base_url = API_BASE
    default_rate = SPOTIFY_RATE
    default_timeout = DEFAULT_TIMEOUT
    secret = "an access token"

    async def saved_tracks(self, *, offset: int = 0, limit: int = PAGE_SIZE) -> Json:
        """One page of the user's saved tracks (``items`` of ``{added_at, track}``, ``next``, ``total``)."""
        body = await self.request("GET", SAVED_TRACKS_PATH, params={"limit": limit, "offset": offset})
        return body if isinstance(body, dict) else {}

    async def all_saved_tracks(self) -> AsyncIterator[Json]:
        """Every saved-track item of the library, page by page."""

        async def fetch(token: str | None) -> Json:
            return await self.saved_tracks(offset=int(token or 0))

        async for body in self.pagination.pages(fetch):
            for item in body.get("items") or []:
                if isinstance(item, dict):
                    yield item

    async def search_isrc(self, isrc: str) -> str | None:
        """The id of the catalogue track with this ISRC, or None."""
        body = await self.request("GET", SEARCH_PATH, params={"q": f"isrc:{isrc}", "type": "track", "limit": 1})
        return first_track_id(body or {})

    async def search_name(self, title: str, artist: str = "") -> str | None:
        """The id of the first track matching a title (and an artist), or None."""
        query = f"track:{_quoted(title)}" + (f" artist:{_quoted(artist)}" if artist.strip() else "")
        body = await self.request("GET", SEARCH_PATH, params={"q": query, "type": "track", "limit": 1})
        return first_track_id(body or {})

    async def save(self, ids: list[str]) -> None:
        """Save tracks to the user's library (at most ``SAVE_LIMIT``); saving one twice changes nothing."""
        if len(ids) > SAVE_LIMIT:
            raise ConfigError(f"Spotify saves at most {SAVE_LIMIT} tracks per call, got {len(ids)}")
        # Idempotent on Spotify's side, so an ambiguous failure may be retried (no ``create=True``).
        await self.request("PUT", SAVED_TRACKS_PATH, json={"ids": ids})


class SpotifyConnector(TokenClientConnector[SpotifyClient]):
    """What ``SpotifySource`` and ``SpotifyDestination`` share: the token, the connection settings, a client.

    A :class:`~connectors.http.TokenClientConnector` (``requests_sent`` counts its clients' requests).
    """

    credentials_type = SpotifyCredentials

    def _client(self, token: str) -> SpotifyClient:
        return SpotifyClient(token, base_url=self.base_url, http=self.http, rate=self.rate)

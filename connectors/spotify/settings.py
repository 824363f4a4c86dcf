"""Constants of the Spotify connectors: API base and paths, page sizes, rate, timeouts.

Facts from the Spotify Web API reference (developer.spotify.com/documentation/web-api): base
``https://api.spotify.com/v1``; an OAuth 2.0 access token as ``Authorization: Bearer …`` (it lasts an
hour); the saved-tracks listing pages with ``limit`` (at most 50) and ``offset`` and names the next
page in ``next`` (null on the last one); ``PUT /me/tracks`` takes at most 50 ids; the rate limit is a
rolling 30-second window whose size Spotify does not publish, and a 429 carries ``Retry-After`` in
seconds.
"""

from __future__ import annotations

import httpx

from connectors.http import Rate

__all__ = [
    "API_BASE",
    "DEFAULT_INTERVAL_MINUTES",
    "DEFAULT_TIMEOUT",
    "MAX_CONCURRENCY",
    "PAGE_SIZE",
    "SAVED_TRACKS_PATH",
    "SAVE_LIMIT",
    "SCOPES",
    "SEARCH_PATH",
    "SERVICE",
    "SPOTIFY_RATE",
    "TOKEN_ENV",
    "TRACK_URL_BASE",
    "UNTITLED",
]

SERVICE = "Spotify"

API_BASE = "https://api.spotify.com/v1"
TOKEN_ENV = "SPOTIFY_ACCESS_TOKEN"
SCOPES = ("user-library-read", "user-library-modify")
"""The source needs ``user-library-read``; the destination ``user-library-modify`` too."""

SAVED_TRACKS_PATH = "/me/tracks"
"""GET: ``limit`` / ``offset`` → ``{items: [{added_at, track}], next, offset, limit, total}``, newest first.
PUT: ``{"ids": [...]}`` saves tracks (saving a saved track again changes nothing)."""
SEARCH_PATH = "/search"
"""``q=isrc:<ISRC>&type=track`` → ``{tracks: {items: [...]}}``; the field filter also takes ``track:`` and
``artist:``."""

TRACK_URL_BASE = "https://open.spotify.com/track/"

PAGE_SIZE = 50
"""``limit`` of the saved-tracks listing (Spotify's maximum)."""
SAVE_LIMIT = 50
"""Ids per ``PUT /me/tracks`` (Spotify's maximum)."""

SPOTIFY_RATE = Rate(3, 1, burst=10)
"""Our pace per token: ~180 requests a minute. Spotify publishes no number (a rolling 30-second
window per app); staying well under it costs little next to a 429's Retry-After."""

MAX_CONCURRENCY = 2
"""Writes in flight per destination: each is a search and a save."""

DEFAULT_INTERVAL_MINUTES = 120
"""Saved tracks change slowly; a pass lists the whole library (no "changed since" filter)."""

UNTITLED = "(untitled track)"

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)

"""Constants of the ListenBrainz connectors (and of MusicBrainz, which maps ISRCs to recordings).

ListenBrainz (listenbrainz.readthedocs.io, "API"): base ``https://api.listenbrainz.org``; a user
token as ``Authorization: Token <token>`` (listenbrainz.org/settings); feedback is per recording
MBID with a score (1 loved, -1 hated, 0 cleared); ``get-feedback`` pages with ``count`` (at most 100)
and ``offset`` and says ``total_count``. Every answer carries ``X-RateLimit-Limit``,
``X-RateLimit-Remaining``, ``X-RateLimit-Reset-In`` (seconds) and ``X-RateLimit-Reset`` (epoch
seconds); over the limit, 429.

MusicBrainz (musicbrainz.org/doc/MusicBrainz_API): base ``https://musicbrainz.org/ws/2``, no key but a
descriptive ``User-Agent`` is required (a generic one gets 403), one request a second per IP address
(over it, 503).
"""

from __future__ import annotations

import httpx

from connectors.http import Rate

__all__ = [
    "API_BASE",
    "DEFAULT_INTERVAL_MINUTES",
    "DEFAULT_TIMEOUT",
    "FEEDBACK_PATH",
    "LISTENBRAINZ_RATE",
    "LOVED",
    "MAX_CONCURRENCY",
    "MB_API_BASE",
    "MB_RATE",
    "MB_SERVICE",
    "MB_USER_AGENT",
    "PAGE_SIZE",
    "RECORDING_URL_BASE",
    "SERVICE",
    "TOKEN_ENV",
    "UNTITLED",
    "USER_ENV",
    "USER_FEEDBACK_PATH",
]

SERVICE = "ListenBrainz"
API_BASE = "https://api.listenbrainz.org"
TOKEN_ENV = "LISTENBRAINZ_TOKEN"
USER_ENV = "LISTENBRAINZ_USER"

USER_FEEDBACK_PATH = "/1/feedback/user/{user}/get-feedback"
"""``score=1&count=…&offset=…&metadata=true`` → ``{feedback: [{recording_mbid, created, score,
track_metadata, …}], count, offset, total_count}``, newest first. Public: no token needed."""
FEEDBACK_PATH = "/1/feedback/recording-feedback"
"""POST ``{"recording_mbid", "score"}`` → ``{"status": "ok"}``; setting the same score again changes nothing."""
LOVED = 1

PAGE_SIZE = 100
"""``count`` of get-feedback (its maximum)."""

LISTENBRAINZ_RATE = Rate(2, 1, burst=5)
"""Our pace per token; the server's window is read from its headers (see ``ListenBrainzClient``)."""

MAX_CONCURRENCY = 1
"""Writes in flight: each create first asks MusicBrainz, which allows one request a second anyway."""

DEFAULT_INTERVAL_MINUTES = 120

RECORDING_URL_BASE = "https://musicbrainz.org/recording/"
UNTITLED = "(untitled recording)"

MB_SERVICE = "MusicBrainz"
MB_API_BASE = "https://musicbrainz.org/ws/2"
MB_RATE = Rate(1, 1, burst=1)
"""MusicBrainz's documented limit: one request a second per IP address, so one limiter per process."""
MB_USER_AGENT = "durable-sync-dagster/0.4 ( ListenBrainz connector )"
"""MusicBrainz asks for an application name, version and contact; set ``user_agent`` to add yours."""

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)

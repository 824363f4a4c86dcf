"""Constants of the YouTube connector: endpoints, page sizes, quota costs, the daily reset, rates.

Facts from the YouTube Data API v3 documentation (developers.google.com/youtube/v3): a project has
10,000 quota units a day, reset at midnight Pacific time; ``channels.list``, ``playlistItems.list``
and ``videos.list`` cost 1 unit per call (invalid requests cost at least 1 too); ``search.list``
costs 100 and is never used here. ``maxResults`` of ``playlistItems.list`` is at most 50, and
``videos.list`` takes at most 50 ids.
"""

from __future__ import annotations

import datetime as dt
import re

import httpx

from connectors.http import Rate

__all__ = [
    "API_BASE",
    "API_KEY_HEADER",
    "AUTH_REASONS",
    "DEFAULT_FULL_REFRESH_EVERY",
    "DEFAULT_INTERVAL_MINUTES",
    "DEFAULT_LOOKBACK",
    "DEFAULT_QUOTA_BUDGET",
    "DESCRIPTION_MAX_CHARS",
    "KEY_INVALID_TEXT",
    "LIVE_STATES",
    "MAX_IDS_PER_CALL",
    "PAGE_SIZE",
    "QUOTA_COSTS",
    "QUOTA_REASONS",
    "QUOTA_RESET_MARGIN_SECONDS",
    "QUOTA_TIMEZONE",
    "RATE",
    "RATE_LIMIT_REASONS",
    "RESOURCE_DOMAIN_PREFIX",
    "SERVICE",
    "TIMEOUT",
    "TOKEN_ENV",
    "WATCH_URL",
]

SERVICE = "YouTube"

API_BASE = "https://www.googleapis.com/youtube/v3"

API_KEY_HEADER = "X-Goog-Api-Key"
"""Google APIs take an API key as the ``key`` query parameter OR this header (Google Cloud "system
parameters"). The header keeps the key out of every URL, so out of proxy logs, tracebacks and the
error text that leaked it in durable-sync (W12)."""

TOKEN_ENV = "YOUTUBE_API_KEY"

WATCH_URL = "https://www.youtube.com/watch?v={id}"

TIMEOUT = httpx.Timeout(30.0, connect=10.0)

# --- Paging -------------------------------------------------------------------------------------

PAGE_SIZE = 50
"""``playlistItems.list`` ``maxResults`` (0-50; the default is 5) and ``videos.list`` ids per call."""

MAX_IDS_PER_CALL = 50
"""``videos.list`` answers 400 for more ids than this; targeted syncs are batched (durable-sync
silently kept only the first 50, W28)."""

DESCRIPTION_MAX_CHARS = 2000
"""The ``Description`` property is cut to this many characters (durable-sync's ``Summary``)."""

# --- Quota -------------------------------------------------------------------------------------

DEFAULT_QUOTA_BUDGET = 10_000
"""Units a day this source lets itself spend per API key (the default project quota)."""

QUOTA_COSTS = {"channels": 1, "playlistItems": 1, "videos": 1, "search": 100}
"""Units per call by resource (list methods). Every request that reaches Google costs at least 1."""

QUOTA_TIMEZONE = "America/Los_Angeles"
"""Daily quotas reset at midnight Pacific time (PST or PDT)."""

QUOTA_RESET_MARGIN_SECONDS = 60.0
"""Added to the wait until the reset, so a retry does not arrive a second early and burn a day."""

QUOTA_REASONS = frozenset({"quotaExceeded", "dailyLimitExceeded", "dailyLimitExceededUnreg"})
"""``errors[].reason`` values that mean the DAILY quota is spent: wait for the reset, never pause."""

RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
"""Short-term (per-minute) limits: wait a minute."""

AUTH_REASONS = frozenset(
    {
        "keyInvalid",
        "keyExpired",
        "API_KEY_INVALID",
        "API_KEY_EXPIRED",
        "API_KEY_SERVICE_BLOCKED",
        "API_KEY_HTTP_REFERRER_BLOCKED",
        "API_KEY_IP_ADDRESS_BLOCKED",
        "accessNotConfigured",
        "SERVICE_DISABLED",
        "ipRefererBlocked",
        "forbidden",
    }
)
"""Reasons (``errors[].reason`` or ``details[].reason``) only a human can fix: a wrong or deleted key,
a key restricted away from this API or host, the API not enabled for the project."""

KEY_INVALID_TEXT = re.compile(r"\bAPI key (?:not valid|expired)", re.I)
"""Google's message for a wrong or expired key. Today's 400 says ``errors[].reason: "badRequest"`` and
puts ``API_KEY_INVALID`` in ``details[]``; answers quoted in 2020 issue threads carried the message
and ``badRequest`` only. The message is the one signal both share."""

RESOURCE_DOMAIN_PREFIX = "youtube."
"""A 403 whose every ``errors[].domain`` is ``youtube.<something>`` (``youtube.parameter``:
``playlistItemsNotAccessible``; ``youtube.channel``, ``youtube.video``), other than ``youtube.quota``,
is about one resource (a private playlist), not the key: ``YouTubeNotAccessible``, never a pause of
the key that every other channel shares. Key problems come from the ``global`` and ``usageLimits``
domains."""

LIVE_STATES = frozenset({"live", "upcoming"})
"""``snippet.liveBroadcastContent`` of a stream in progress or scheduled (a premiere, a live stream):
its ``contentDetails.duration`` is ``P0D``, a length not known yet rather than zero seconds."""

# --- Rates and schedule ---------------------------------------------------------------------------

RATE = Rate(10, 1, burst=10)
"""Requests per second per key. The daily quota, not this, is the real limit; this only keeps a
full refresh of a large channel from bursting."""

DEFAULT_INTERVAL_MINUTES = 360

DEFAULT_FULL_REFRESH_EVERY = dt.timedelta(days=1)
"""How often a pass walks every upload to refresh statistics (views, likes, comments)."""

DEFAULT_LOOKBACK = dt.timedelta(days=2)
"""An incremental pass re-reads videos published this long before the newest one seen: their
statistics move fastest, a scheduled premiere may be listed late, and it usually costs nothing
(they share the first page of 50)."""

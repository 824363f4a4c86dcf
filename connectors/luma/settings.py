"""Constants of the Luma connectors: API base and paths, page size, rate, limits, timeouts.

Facts from Luma's API reference (docs.luma.com/reference): base ``https://public-api.luma.com``, the key
in the ``x-luma-api-key`` header (a calendar key needs Luma Plus), 200 requests a minute per calendar
key for GET and POST together (500 for an organization key); over it, 429 and the key is BLOCKED for
a minute (``Retry-After``).
"""

from __future__ import annotations

import datetime as dt

import httpx

from connectors.http import Rate

__all__ = [
    "API_BASE",
    "API_KEY_HEADER",
    "CREATE_PATH",
    "CREATE_TIMEOUT",
    "DEFAULT_DURATION",
    "DEFAULT_INTERVAL_MINUTES",
    "DEFAULT_TIMEOUT",
    "EVENT_URL_BASE",
    "GET_PATH",
    "HOSTS_CONCURRENCY",
    "LIST_PATH",
    "LUMA_RATE",
    "MAX_CONCURRENCY",
    "MAX_NAME_CHARS",
    "MAX_PAGE_SIZE",
    "PAGE_SIZE",
    "SERVICE",
    "TOKEN_ENV",
    "UNTITLED",
    "UPDATE_PATH",
]

SERVICE = "Luma"

API_BASE = "https://public-api.luma.com"
API_KEY_HEADER = "x-luma-api-key"
TOKEN_ENV = "LUMA_API_KEY"

LIST_PATH = "/v1/calendar/list-events"
"""``pagination_cursor`` / ``pagination_limit`` / ``after`` / ``before`` → ``entries[{api_id, event}]``,
``has_more``, ``next_cursor``. Only events the calendar MANAGES are listed (not external ones)."""
GET_PATH = "/v1/event/get"
"""``?api_id=evt-…`` → ``{event, hosts}``."""
CREATE_PATH = "/v1/event/create"
"""Returns the new event's ``api_id``."""
UPDATE_PATH = "/v1/event/update"
"""Takes ``event_id`` (the ``api_id`` create returned) and the fields to change."""

EVENT_URL_BASE = "https://lu.ma/"
"""An event's ``url`` is its slug; the page is ``https://lu.ma/<slug>``."""

PAGE_SIZE = 50
"""``pagination_limit`` of list-events."""
MAX_PAGE_SIZE = 100
"""Largest ``page_size`` a source accepts."""

LUMA_RATE = Rate(180, 60, burst=10)
"""Our pace per key: 3 requests/s with bursts of 10, so at most ~190 in any minute: below Luma's 200,
whose penalty (a minute's block of the whole key) is far worse than the headroom costs. One limiter
per key, shared by the source and the destination when they use the same key."""

MAX_CONCURRENCY = 1
"""Writes in flight per destination: creates go one at a time, so at most ONE event can be created
without its link being known (see the README's crash window)."""

HOSTS_CONCURRENCY = 4
"""``event/get`` calls in flight when a page's hosts are read."""

MAX_NAME_CHARS = 255
"""Longest event name we send. Luma does not document one; longer names are record errors rather
than a 400 from Luma or a silently cut title."""

UNTITLED = "(untitled event)"

DEFAULT_INTERVAL_MINUTES = 360

DEFAULT_DURATION = dt.timedelta(hours=1)
"""Length of an event whose record has a start time but no end (a date-only start lasts the day)."""

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
CREATE_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
"""A create is never resent after a read timeout (it may have happened), so it gets more room."""

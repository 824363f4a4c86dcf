"""Constants of the Contentful connectors: hosts, page sizes, limits, rates, timeouts, env var names.

Facts from Contentful's documentation (developers/docs/references/…): the Content Delivery API (CDA,
published content, CDN-cached) and its Sync API; the Content Management API (CMA, drafts and writes);
the data model's field limits; the technical limits page for rates.
"""

from __future__ import annotations

import re

import httpx

from connectors.http import Rate

__all__ = [
    "CDA_BASE",
    "CDA_RATE",
    "CMA_BASE",
    "CMA_CONTENT_TYPE",
    "CMA_RATE",
    "CMA_TOKEN_ENV",
    "CURSOR_VERSION",
    "DEFAULT_CMA_LOOKBACK_SECONDS",
    "DEFAULT_ENVIRONMENT",
    "DEFAULT_ID_PREFIX",
    "DEFAULT_INTERVAL_MINUTES",
    "DEFAULT_LOCALE",
    "DEFAULT_TIMEOUT",
    "DELIVERY_TOKEN_ENV",
    "ENTRY_ID_RE",
    "HASHED_ID_HEX",
    "ID_MARKER",
    "ITEMS_PAGE_SIZE",
    "LIST_PAGE_SIZE",
    "MAX_CONCURRENCY",
    "MAX_ENTRY_ID",
    "MAX_ID_PREFIX",
    "MAX_INTEGER",
    "MAX_LIMIT",
    "MAX_SYMBOL_CHARS",
    "MAX_TEXT_CHARS",
    "MAX_TIE_IDS",
    "MAX_VERSION_RETRIES",
    "SERVICE",
    "SYNC_PAGE_SIZE",
]

SERVICE = "Contentful"

CDA_BASE = "https://cdn.contentful.com"
"""Content Delivery API: published entries only; the only API with the Sync API. (The Preview API,
``preview.contentful.com``, does not implement the Sync API; the CMA has none either.)"""
CMA_BASE = "https://api.contentful.com"
"""Content Management API: drafts, every locale, and all writes."""

CMA_CONTENT_TYPE = "application/vnd.contentful.management.v1+json"

DELIVERY_TOKEN_ENV = "CONTENTFUL_DELIVERY_TOKEN"
CMA_TOKEN_ENV = "CONTENTFUL_CMA_TOKEN"

DEFAULT_ENVIRONMENT = "master"
DEFAULT_LOCALE = "en-US"
DEFAULT_INTERVAL_MINUTES = 360

# --- Paging ---------------------------------------------------------------------------------------

MAX_LIMIT = 1000
"""Largest ``limit`` of a collection request and of a sync page (both APIs)."""

SYNC_PAGE_SIZE = 100
"""Items per Sync API page (Contentful's default). The limit is baked into the sync token: changing
it takes effect at the next initial sync."""

LIST_PAGE_SIZE = 100
"""Entries per CMA listing page. CMA entries carry every locale and draft; 100 keeps a page well under
Contentful's response size limit even with long Text fields."""

ITEMS_PAGE_SIZE = 100
"""Ids per ``sys.id[in]`` request of a targeted fetch (keeps the URL short)."""

MAX_TIE_IDS = 100
"""CMA incremental paging excludes the ids already read at the current ``sys.updatedAt`` with
``sys.id[nin]``; beyond this many (a bulk import inside one millisecond) it falls back to ``skip``."""

DEFAULT_CMA_LOOKBACK_SECONDS = 300
"""A CMA-mode pass asks for entries updated since the last pass's newest ``sys.updatedAt`` minus this:
the CMA's search index lags writes slightly. Re-reading an unchanged entry costs no write."""

CURSOR_VERSION = 1

# --- Field and id limits (data model page; CMA "Resource IDs") ----------------------------------------

MAX_SYMBOL_CHARS = 256
"""Symbol (short text) values and each item of an Array of Symbols."""
MAX_TEXT_CHARS = 50_000
"""Text (long text) values."""
MAX_INTEGER = 2**53
"""Integer fields hold -2**53..2**53."""

ENTRY_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
"""Ids chosen by the client: 1-64 characters of letters, digits, ``.``, ``-``, ``_``."""
MAX_ENTRY_ID = 64
DEFAULT_ID_PREFIX = "ds-"
MAX_ID_PREFIX = 20
ID_MARKER = "."
"""Follows the prefix in a HASHED id (``ds-.<hex>``); a key used as is never starts with it."""
HASHED_ID_HEX = 40
"""Hex digits of sha256(key) in a hashed id (160 bits)."""

# --- Rates, retries, timeouts ------------------------------------------------------------------------

CDA_RATE = Rate(55, 1, burst=55)
"""CDA: 55 uncached requests/s (CDN hits are not counted). Verify for your plan."""
CMA_RATE = Rate(7, 1, burst=7)
"""CMA: 7 requests/s on free and community plans, 10 on paid ones (pass ``rate=Rate(10, 1)``). Over it
Contentful answers 429 with ``X-Contentful-RateLimit-Reset`` (seconds), which the toolkit honours."""

MAX_CONCURRENCY = 3
"""Writes in flight at once per destination: each write is 2-3 CMA requests; the rate is the real limit."""

MAX_VERSION_RETRIES = 4
"""Attempts of read-version-then-write when the CMA answers 409 VersionMismatch (someone saved the
entry between our read and our write)."""

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)

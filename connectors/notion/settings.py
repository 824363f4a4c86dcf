"""Constants of the Notion connectors: API base and version, page size, size limits, rate, timeouts.

Limits are Notion's documented request limits (developers.notion.com/reference/request-limits); a
request over any of them answers ``400 validation_error``.
"""

from __future__ import annotations

import httpx

from connectors.http import DEFAULT_RETRY_STATUSES, Rate

__all__ = [
    "BODY_BLOCK_MAX_ELEMENTS",
    "CREATE_TIMEOUT",
    "CURSOR_VERSION",
    "DATABASE_ID_ENV",
    "DEFAULT_FULL_SCAN_EVERY_HOURS",
    "DEFAULT_INTERVAL_MINUTES",
    "DEFAULT_LOOKBACK_SECONDS",
    "DEFAULT_TIMEOUT",
    "MAX_ARRAY_ELEMENTS",
    "MAX_BLOCKS_PER_REQUEST",
    "MAX_BODY_CHARS",
    "MAX_CONCURRENCY",
    "MAX_EMAIL_CHARS",
    "MAX_OPTION_NAME_CHARS",
    "MAX_PAYLOAD_BYTES",
    "MAX_PHONE_CHARS",
    "MAX_RICH_TEXT_CHARS",
    "MAX_URL_CHARS",
    "NOTION_API_BASE",
    "NOTION_APP_BASE",
    "NOTION_RATE",
    "NOTION_RETRY_STATUSES",
    "NOTION_VERSION",
    "PAGE_SIZE",
    "PAYLOAD_BUDGET_BYTES",
    "SERVICE",
    "TOKEN_ENV",
]

SERVICE = "Notion"

NOTION_API_BASE = "https://api.notion.com"
NOTION_APP_BASE = "https://www.notion.so"
"""Where ``describe()`` points: ``https://www.notion.so/<database id without dashes>``."""

NOTION_VERSION = "2025-09-03"
"""The API version every request sends. 2025-09-03 split databases into data sources: pages are created
in, queried from and typed by a *data source*; a database is a container of one or more of them."""

TOKEN_ENV = "NOTION_TOKEN"
DATABASE_ID_ENV = "NOTION_DATABASE_ID"

PAGE_SIZE = 100
"""Results per query page; 100 is Notion's maximum (``start_cursor`` -> ``next_cursor`` / ``has_more``)."""

# --- Size limits (each is a 400 validation_error when exceeded) ----------------------------------

MAX_RICH_TEXT_CHARS = 2000
"""``text.content`` of one rich-text element. Counted in UTF-16 code units (JavaScript's ``length``):
an emoji counts 2, so splitting by Python characters could still exceed it."""

MAX_ARRAY_ELEMENTS = 100
"""Elements of any rich-text array, options of a multi-select, items of people/relation lists."""

MAX_BLOCKS_PER_REQUEST = 100
"""Children of one create-page or append-children request."""

MAX_PAYLOAD_BYTES = 500_000
"""A whole request body."""

PAYLOAD_BUDGET_BYTES = 450_000
"""What we allow ourselves per request (the JSON as sent), leaving room below ``MAX_PAYLOAD_BYTES``."""

MAX_URL_CHARS = 2000
MAX_EMAIL_CHARS = 200
MAX_PHONE_CHARS = 200
MAX_OPTION_NAME_CHARS = 100
"""Select / multi-select option names (which must not contain commas either)."""

BODY_BLOCK_MAX_ELEMENTS = 25
"""Rich-text elements per body paragraph block (<= 50,000 UTF-16 units). Notion allows 100, but a block
of 100 full elements of CJK text is ~600 KB of JSON, over the payload limit on its own."""

MAX_BODY_CHARS = 1_000_000
"""A record body longer than this (UTF-16 units) is truncated, and the truncation reported."""

# --- Rate, retries, timeouts ------------------------------------------------------------------

NOTION_RATE = Rate(3, 1, burst=3)
"""Notion allows an average of 3 requests/s per integration with short bursts (429 ``rate_limited``
with ``Retry-After`` beyond). One limiter per token, shared by every client using it."""

NOTION_RETRY_STATUSES = DEFAULT_RETRY_STATUSES | {409}
"""409 ``conflict_error`` means the transaction did not happen (concurrent edits); Notion says to retry.
It is not an ambiguous status, so it is retried even for creates."""

MAX_CONCURRENCY = 3
"""Writes in flight at once per destination (the rate is the real limit; more only queue)."""

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
CREATE_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
"""Creating a page with 100 blocks of text can take Notion a while; a create is never retried after a
read timeout (it may have happened), so give it room."""

# --- Source -------------------------------------------------------------------------------------

DEFAULT_INTERVAL_MINUTES = 30

DEFAULT_LOOKBACK_SECONDS = 300
"""An incremental pass asks for pages edited since the last pass's newest ``last_edited_time`` minus
this: Notion rounds edit times down to the minute and its query index lags writes slightly."""

DEFAULT_FULL_SCAN_EVERY_HOURS = 24
"""A pass re-reads every page at least this often, so records whose write failed (and were not edited
since) are retried and the platform sees the whole data source."""

CURSOR_VERSION = 1

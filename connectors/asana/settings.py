"""Constants of the Asana connector: API base, page size, size limits, rates, concurrency, timeouts.

Sources: developers.asana.com/docs/rate-limits (per-token budgets, concurrent request limits, 429 with
``Retry-After``), /docs/pagination (``limit`` 1-100, ``next_page.offset`` tokens that expire),
/docs/custom-external-data (``external`` needs OAuth, see ``README.md``), /docs/rich-text.
"""

from __future__ import annotations

import httpx

from connectors.http import Rate

__all__ = [
    "ASANA_API_BASE",
    "ASANA_APP_BASE",
    "ASANA_FREE_RATE",
    "ASANA_PAID_RATE",
    "BATCH_MAX_CONCURRENCY",
    "BATCH_PATH",
    "CREATE_TIMEOUT",
    "DEFAULT_KEY_FIELD",
    "DEFAULT_TIMEOUT",
    "FREE_REQUESTS_PER_MINUTE",
    "MAX_BATCH_ACTIONS",
    "MAX_CONCURRENCY",
    "MAX_CONCURRENT_READS",
    "MAX_CONCURRENT_WRITES",
    "MAX_NOTES_CHARS",
    "NATIVE_FIELDS",
    "PAGE_SIZE",
    "PAID_REQUESTS_PER_MINUTE",
    "PROJECT_ENV",
    "SERVICE",
    "TOKEN_ENV",
]

SERVICE = "Asana"

ASANA_API_BASE = "https://app.asana.com/api/1.0"
ASANA_APP_BASE = "https://app.asana.com"
"""Where ``describe()`` points: ``https://app.asana.com/0/<project gid>/list``."""

TOKEN_ENV = "ASANA_PAT"
PROJECT_ENV = "ASANA_PROJECT_GID"

DEFAULT_KEY_FIELD = "Source ID"
"""The Text custom field holding ``Record.primary_key`` (``external.gid`` needs OAuth; see README)."""

PAGE_SIZE = 100
"""``limit`` of every listing; Asana accepts 1-100 and answers ``next_page: {offset, path, uri}``."""

# --- Rate limits ----------------------------------------------------------------------------------

FREE_REQUESTS_PER_MINUTE = 150
PAID_REQUESTS_PER_MINUTE = 1500

# Asana counts requests in minute-long windows, evaluated more often than once a minute. A token
# bucket of ``burst`` admits at most burst + rate * 60 s requests in ANY 60-second window, so both
# buckets below stay within the published budget wherever the window falls (burst 15 + 135 = 150).
ASANA_FREE_RATE = Rate(135, 60, burst=15)
"""Free workspaces: 150 requests per minute per token."""
ASANA_PAID_RATE = Rate(1350, 60, burst=150)
"""Paid workspaces (Starter and up): 1,500 requests per minute per token."""

MAX_CONCURRENT_READS = 50
"""Asana's concurrent request limit for GET, per token (a 51st in flight answers 429)."""
MAX_CONCURRENT_WRITES = 15
"""Asana's concurrent request limit for POST/PUT/PATCH/DELETE combined, per token."""

MAX_CONCURRENCY = 8
"""Writes one destination keeps in flight (the engine's workers); the per-token cap above is shared by
every route using the token."""

# --- Batch API (developers.asana.com/docs/batch-requests) -------------------------------------------

BATCH_PATH = "/batch"
MAX_BATCH_ACTIONS = 10
"""Actions per ``POST /batch`` ("The maximum number of actions allowed in a single batch request is 10")."""

BATCH_MAX_CONCURRENCY = 20
"""The engine's writes in flight when batching: two batches' worth, so the next batch fills while one
is sent. Asana counts every action of a batch against the rate limit and the 15 concurrent writes, so
one batch of 10 is sent at a time (``MAX_CONCURRENT_WRITES // MAX_BATCH_ACTIONS``)."""

# --- Size limits ----------------------------------------------------------------------------------

MAX_NOTES_CHARS = 65_535
"""Longest task description we send (``notes``, or ``html_notes`` as encoded), in characters. Asana's
docs state no limit (checked: tasks, rich text, errors pages); durable-sync truncated at 65,000. We
reject a longer body as a ``RecordError`` naming its length, rather than truncate a description
silently or learn the real limit from a 400 mid-pass. Raise it here if Asana accepts more."""

NATIVE_FIELDS = frozenset({"name", "notes", "html_notes", "due_on", "due_at", "start_on", "completed", "assignee"})
"""Task fields a record property can be mapped to; every other target is a custom field NAME."""

# --- Timeouts -------------------------------------------------------------------------------------

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
CREATE_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
"""A create is never resent after a read timeout (it may have happened), so give it room."""

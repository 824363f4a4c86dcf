"""Constants of the GitHub connector: endpoints, API version, page sizes, limits, cache sizes."""

from __future__ import annotations

import httpx

from connectors.http import Rate

__all__ = [
    "ACCEPT_JSON",
    "ACCEPT_RAW",
    "ANONYMOUS_RATE",
    "API_BASE",
    "API_VERSION",
    "BOT_SUFFIX",
    "CONTRIBUTORS_PER_PAGE",
    "DEFAULT_CONTRIBUTOR_LIMIT",
    "DEFAULT_INTERVAL_MINUTES",
    "ENRICH_CONCURRENCY",
    "ETAG_CACHE_MAX_BYTES",
    "ETAG_CACHE_MAX_ENTRIES",
    "MAX_CONCURRENT",
    "MAX_PAGES",
    "NAMED_PAGE_SIZE",
    "NO_LICENSE_SPDX",
    "ORG_REPO_SORT",
    "ORG_REPO_TYPE",
    "ORG_REPO_TYPES",
    "PER_PAGE",
    "RATE",
    "SERVICE",
    "SKIPPED_REPO_STATUSES",
    "TIMEOUT",
    "TOKEN_ENV",
    "TOO_LARGE_TO_LIST",
]

SERVICE = "GitHub"

API_BASE = "https://api.github.com"
"""REST root. GitHub Enterprise Server: ``https://HOST/api/v3``."""

API_VERSION = "2022-11-28"
"""Sent as ``X-GitHub-Api-Version``; pinned so a new default version cannot change the payloads."""

ACCEPT_JSON = "application/vnd.github+json"
ACCEPT_RAW = "application/vnd.github.raw"
"""The README endpoint answers with the file itself (not base64 JSON) for this media type."""

TOKEN_ENV = "GITHUB_TOKEN"

TIMEOUT = httpx.Timeout(30.0, connect=10.0)

# --- Paging -----------------------------------------------------------------------------------------

PER_PAGE = 100
"""Repos per org listing page (GitHub's maximum); one engine checkpoint per page."""

ORG_REPO_TYPE = "public"
"""durable-sync's choice, kept: private repos (and their READMEs) reach a destination only when asked
for with ``repo_type="all"`` or ``"private"``, or when named in ``repos``."""
ORG_REPO_TYPES = frozenset({"all", "public", "private", "forks", "sources", "member"})
ORG_REPO_SORT = "full_name"
"""Sorting by name keeps page N the same set of repos between a crash and its resume (GitHub's
default, ``created`` descending, shifts every page by one whenever a repo is created mid-pass)."""

NAMED_PAGE_SIZE = 20
"""Named repos fetched per page (one ``GET /repos/{owner}/{repo}`` each, plus enrichment)."""

MAX_PAGES = 10_000
"""Guard against a Link header that never ends (1,000,000 repos at 100 a page)."""

CONTRIBUTORS_PER_PAGE = 25
"""Contributors asked for (one page only); more than the limit kept, because bots are dropped after."""

DEFAULT_CONTRIBUTOR_LIMIT = 5
BOT_SUFFIX = "[bot]"

# --- Limits -----------------------------------------------------------------------------------------

DEFAULT_INTERVAL_MINUTES = 30

RATE = Rate(5000, 3600)
"""The primary limit of a personal access token, OAuth or app user token."""

ANONYMOUS_RATE = Rate(60, 3600)
"""Unauthenticated requests: 60 an hour per IP address."""

MAX_CONCURRENT = 10
"""Requests in flight per token. GitHub's secondary limit allows 100 concurrent requests per user
(REST and GraphQL together) and asks integrations to stay far below it."""

ENRICH_CONCURRENCY = 8
"""Repos enriched at once within a page (each runs its README, languages and contributors calls)."""

# --- Conditional requests ---------------------------------------------------------------------------

ETAG_CACHE_MAX_ENTRIES = 8192
"""About four entries per repo (listing page share, README, languages, contributors)."""

ETAG_CACHE_MAX_BYTES = 64 * 1024 * 1024
"""Bodies are kept to answer a 304; READMEs dominate. The least recently used entries go first."""

# --- Quirks -----------------------------------------------------------------------------------------

NO_LICENSE_SPDX = frozenset({"NOASSERTION", ""})
"""GitHub's ``spdx_id`` for a license file it could not identify; mapped to None."""

SKIPPED_REPO_STATUSES = frozenset({404, 410, 451})
"""A named or targeted repo answering these is skipped with a warning (gone, or blocked for legal reasons)."""

TOO_LARGE_TO_LIST = "too large to list contributors"
"""The 403 body GitHub sends for the contributors of huge repos (torvalds/linux); not an auth failure."""

"""Constants of the Jira connectors: endpoints, env vars, page sizes, size limits, rate, timeouts.

Jira Cloud REST API v3. Facts and their sources are in ``README.md`` (this folder).
"""

from __future__ import annotations

import re

import httpx

from connectors.http import Rate

__all__ = [
    "BASE_URL_ENV",
    "BATCH_MAX_CONCURRENCY",
    "BULK_CREATE_PATH",
    "CREATE_TIMEOUT",
    "CURSOR_VERSION",
    "DEFAULT_DESTINATION_FIELD_MAP",
    "DEFAULT_INTERVAL_MINUTES",
    "DEFAULT_ISSUE_TYPE",
    "DEFAULT_SOURCE_FIELDS",
    "DEFAULT_TIMEOUT",
    "EMAIL_ENV",
    "FIELD_PATH",
    "ISSUE_PATH",
    "JIRA_RATE",
    "LISTING_PAGE_SIZE",
    "MAX_BULK_CREATE",
    "MAX_CONCURRENCY",
    "MAX_CONCURRENT",
    "MAX_DESCRIPTION_CHARS",
    "MAX_LABEL_CHARS",
    "MAX_PROBES",
    "MAX_RECONCILE_IDS",
    "MAX_SEARCH_PROPERTIES",
    "MAX_SUMMARY_CHARS",
    "NO_SUMMARY",
    "ONLY_ITEMS_BATCH",
    "PAGE_SIZE",
    "PROBE_MISSES",
    "PROJECT_ENV",
    "PROJECT_KEY_RE",
    "PROJECT_PATH",
    "PROPERTY_KEY",
    "SEARCH_PATH",
    "SERVICE",
    "TOKEN_ENV",
]

# A project key as Jira allows it (an upper-case letter, then upper-case letters, digits or "_"; at most 255).
PROJECT_KEY_RE = re.compile(r"^[A-Z][A-Z0-9_]{0,254}$")

SERVICE = "Jira"

# --- Endpoints (Jira Cloud REST API v3) -----------------------------------------------------------

SEARCH_PATH = "/rest/api/3/search/jql"
"""Enhanced JQL search: ``nextPageToken`` paging, eventually consistent. The old ``/rest/api/3/search``
(``startAt`` paging) answers 410 Gone since CHANGE-2046 and is never called."""

ISSUE_PATH = "/rest/api/3/issue"
BULK_CREATE_PATH = "/rest/api/3/issue/bulk"
"""Bulk create: up to 50 issues a request, each with its fields and properties (``IssueUpdateDetails``)."""
FIELD_PATH = "/rest/api/3/field"
PROJECT_PATH = "/rest/api/3/project"

# --- Environment ------------------------------------------------------------------------------

BASE_URL_ENV = "JIRA_BASE_URL"
"""``https://<site>.atlassian.net``."""
EMAIL_ENV = "JIRA_EMAIL"
"""The Atlassian account email the API token belongs to (Basic auth user)."""
TOKEN_ENV = "JIRA_API_TOKEN"
"""An API token from id.atlassian.com (Basic auth password); ``JIRA_API_TOKEN_FILE`` works too."""
PROJECT_ENV = "JIRA_PROJECT_KEY"
"""The destination's project key when ``project_key`` is not passed."""

# --- Paging -----------------------------------------------------------------------------------

PAGE_SIZE = 100
"""Issues per source page. Jira may return fewer when many fields are asked for; paging follows
``nextPageToken`` whatever the page holds."""

LISTING_PAGE_SIZE = 1000
"""Issues per page of the destination's listing (only the project field and one property are asked
for, so Jira serves large pages; it caps ``maxResults`` itself, at most 5,000)."""

ONLY_ITEMS_BATCH = 100
"""Issue ids (or keys) per ``id in (...)`` query of a targeted refresh; every batch is paged to its end."""

MAX_RECONCILE_IDS = 50
"""``reconcileIssues`` takes at most 50 issue ids (read-after-write for those issues only)."""

MAX_SEARCH_PROPERTIES = 5
"""``properties`` of a search request: at most 5 issue property keys."""

CURSOR_VERSION = 1

# --- Size limits ------------------------------------------------------------------------------

MAX_SUMMARY_CHARS = 255
"""Jira rejects a summary of more than 255 characters (and any newline in it)."""

MAX_DESCRIPTION_CHARS = 32_767
"""Jira's limit on a text field such as the description (``jira.text.field.character.limit``)."""

MAX_LABEL_CHARS = 255
NO_SUMMARY = "(no summary)"

# --- Destination ------------------------------------------------------------------------------

PROPERTY_KEY = "durable-sync"
"""The issue entity property holding ``{"pk": <primary key>}``; durable-sync 0.3 used the same shape,
so issues it created are adopted."""

DEFAULT_ISSUE_TYPE = "Task"

DEFAULT_DESTINATION_FIELD_MAP: dict[str, str] = {
    "Labels": "labels",
    "Priority": "priority",
    "Due": "duedate",
    "Components": "components",
    "Fix versions": "fixVersions",
}
"""Record property -> Jira field, used when ``field_map`` is None. The title property always goes to
``summary`` and the body to ``description``. Assignees need an accountId, which a source rarely
has, so they are mapped only on request (``field_map={"Owner ID": "assignee"}``)."""

PROBE_MISSES = 5
"""The listing reads issues past the newest one search returned, by key (``KEY-<n+1>``, ...), until
this many keys in a row do not exist: an issue created moments ago may not be searchable yet."""

MAX_PROBES = 500
"""At most this many such reads per listing."""

# --- Source -----------------------------------------------------------------------------------

DEFAULT_INTERVAL_MINUTES = 30

DEFAULT_SOURCE_FIELDS: tuple[str, ...] = (
    "summary",
    "status",
    "issuetype",
    "priority",
    "assignee",
    "reporter",
    "labels",
    "components",
    "fixVersions",
    "duedate",
    "created",
    "updated",
    "description",
    "project",
)
"""Fields a search returns (``/search/jql`` returns only ids unless fields are named)."""

# --- Rate, concurrency, timeouts --------------------------------------------------------------

JIRA_RATE = Rate(10, 1, burst=5)
"""API-token traffic is governed by Jira's per-second burst limits (per tenant, endpoint and method;
429 with ``RateLimit-Reason: jira-burst-based`` and ``Retry-After`` beyond). Atlassian does not
publish the numbers; its own worked example budgets 10 calls per second, so we pace all calls of a
token together at 10/s with bursts of 5 and honour every ``Retry-After``."""

MAX_CONCURRENT = 5
"""Requests in flight per token."""

MAX_CONCURRENCY = 4
"""Writes in flight at once per destination (without bulk create)."""

MAX_BULK_CREATE = 50
"""Issues per ``POST /rest/api/3/issue/bulk`` ("Creates upto 50 issues")."""

BATCH_MAX_CONCURRENCY = 100
"""Writes in flight at once with bulk create: two bulk requests' worth, so the next one fills while one
is sent (the engine's writers are coroutines; the HTTP requests stay within ``MAX_CONCURRENT``)."""

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
CREATE_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
"""A create is never resent after a read timeout (it may have happened), so give it room."""

"""The one HTTP toolkit every connector uses: retries, limits, typed errors, one client base, paginators.

Three layers, each usable alone:

- :mod:`connectors.http.retry`: :func:`make_client`, an ``httpx.AsyncClient`` whose every request is
  retried, paced and limited per credential, and the typed errors and redaction (read its docstring
  for how one request travels);
- :mod:`connectors.http.client`: :class:`JsonApiClient`, the base of every system's REST client, and
  :class:`HttpSettings`, the one bundle of what tests inject (transport, sleep, clock, jitter, retry);
- :mod:`connectors.http.paginate`: the named pagination strategies (``next_cursor``/``has_more``,
  ``nextPageToken``, offset, Contentful's sync token, the ``Link`` header).

Everything is re-exported here, so connectors import from ``connectors.http`` only.
"""

from __future__ import annotations

from connectors.http.client import HttpSettings, JsonApiClient
from connectors.http.paginate import (
    LinkHeaderPagination,
    NextCursorPagination,
    NextPageTokenPagination,
    OffsetPagination,
    SyncTokenPagination,
    TokenPagination,
    parse_link_header,
)
from connectors.http.retry import (
    AMBIGUOUS_STATUSES,
    BODY_LIMIT,
    DEFAULT_MAX_WAIT,
    DEFAULT_RETRY_STATUSES,
    DEFAULT_TIMEOUT,
    DEFAULT_USER_AGENT,
    RATE_LIMIT_FALLBACK_WAIT,
    REDACTED,
    RETRY_EXTENSION,
    Clock,
    HTTPAuthError,
    HTTPErrorInfo,
    HTTPRateLimited,
    HTTPRecordError,
    HTTPTransientError,
    NotFound,
    Rate,
    RetryPolicy,
    RetryTransport,
    Sleep,
    classify_response,
    error_for_response,
    make_client,
    raise_for_status,
    redact_headers,
    redact_text,
    redact_url,
    retry_options,
    server_wait,
)

__all__ = [
    "AMBIGUOUS_STATUSES",
    "BODY_LIMIT",
    "DEFAULT_MAX_WAIT",
    "DEFAULT_RETRY_STATUSES",
    "DEFAULT_TIMEOUT",
    "DEFAULT_USER_AGENT",
    "RATE_LIMIT_FALLBACK_WAIT",
    "REDACTED",
    "RETRY_EXTENSION",
    "Clock",
    "HTTPAuthError",
    "HTTPErrorInfo",
    "HTTPRateLimited",
    "HTTPRecordError",
    "HTTPTransientError",
    "HttpSettings",
    "JsonApiClient",
    "LinkHeaderPagination",
    "NextCursorPagination",
    "NextPageTokenPagination",
    "NotFound",
    "OffsetPagination",
    "Rate",
    "RetryPolicy",
    "RetryTransport",
    "Sleep",
    "SyncTokenPagination",
    "TokenPagination",
    "classify_response",
    "error_for_response",
    "make_client",
    "parse_link_header",
    "raise_for_status",
    "redact_headers",
    "redact_text",
    "redact_url",
    "retry_options",
    "server_wait",
]

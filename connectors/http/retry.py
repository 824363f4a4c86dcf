"""The one HTTP toolkit every connector uses: client factory, retries, per-credential limits, typed errors.

A connector builds its client with :func:`make_client` and never writes a retry loop::

    client = make_client(service="GitHub", base_url=GITHUB_API, credential="github:acme-bot",
                         headers={"Authorization": f"Bearer {token}"}, rate=Rate(5000, 3600),
                         max_concurrent=50)
    response = await client.get("/orgs/acme/repos", params={"per_page": 100})
    raise_for_status(response)          # 401/403 -> AuthError, 404 -> NotFound, ...
    repos = response.json()

How one request travels through :class:`RetryTransport` (the client's transport, wrapping the real one)::

    read the request body once (so every attempt resends the same bytes)
    for each attempt (at most RetryPolicy.max_attempts):
        take a concurrency slot of the credential        (max_concurrent / max_concurrent_writes)
        wait while the credential is blocked             (an earlier 429 with Retry-After, on any client)
        take a token from the credential's rate limiter  (aiolimiter, one per credential and event loop;
                                                          in a run: a slot of the schedule every
                                                          process shares, connectors.http.limits)
        send
        2xx/3xx, or a 4xx that is not a rate limit       -> return the response (raise_for_status maps it)
        429, GitHub's rate-limited 403, 408/5xx/529,
        timeout or connection reset                      -> wait, then try again

The wait is the server's when it names one (``Retry-After`` in seconds or as an HTTP date; else, on a
rate limit, ``X-RateLimit-Reset`` / ``X-Contentful-RateLimit-Reset`` / ``RateLimit-Reset`` as epoch
seconds, delta seconds or an ISO timestamp), otherwise backoff with jitter, at most ``max_delay``:
exponential by default (``base_delay * 2**n``), or linear (``base_delay * (n + 1)``) or constant
(``base_delay``) as ``RetryPolicy.backoff_kind`` says, or as the route running the request says
(:func:`backoff_scope`: a route's ``backoff=`` reaches every client its pass uses). A server-named
wait also blocks the whole credential until then, so concurrent requests do not hammer a limited
API. A server-named wait longer than ``max_wait`` (GitHub's hourly budget resets up to an hour
later) is never slept: ``RateLimited`` is raised at once with ``retry_after`` so the orchestrator
reschedules the partition, and every other request on the credential fails fast the same way until
the block ends. When the attempts run out,
a rate limit raises ``RateLimited`` and anything else ``TransientError``.

Failures after which the server may have acted on the request (a read timeout, a dropped connection,
500/502/504) are "ambiguous": retrying a create could create twice. They are retried by default;
a non-idempotent call opts out per request with ``extensions=retry_options(retry_ambiguous=False)``.

The per-credential registry is module level, so every client in the process that names the same
``credential`` key shares one limiter, one block and one set of concurrency slots. aiolimiter's
``AsyncLimiter`` (and ``asyncio.Semaphore``) bind to the first event loop that uses them and warn when
reused on another, so limiters and semaphores are kept per (credential, event loop) in a weak mapping,
while the "blocked until" time is shared by all loops. A new ``asyncio.run`` (a new Dagster run in the
same process) therefore starts with a fresh token bucket but still honours a block. Where a run
installs shared limits (:func:`~connectors.http.limits.use_shared_limits`, over the state store),
a credential with a ``rate`` is paced by the schedule all processes share instead, and a block is
written there too, so that every process using the credential waits.

Errors raised here (``HTTPAuthError``, ``HTTPRateLimited``, ``HTTPTransientError``, ``HTTPRecordError``,
``NotFound``) are subclasses of the ``connectors.core`` tree carrying ``status_code`` (0 when no
response arrived), ``body`` (redacted, at most 600 chars), ``service``, ``method`` and ``url``
(redacted). Messages read ``"<Service> <VERB> <path> -> <code>: <body>"`` with no query string. Secrets
never reach a message or a log line: query values, userinfo, sensitive header values and
token-looking strings are masked, including wherever the server echoes them back in a body.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import contextvars
import dataclasses
import datetime as dt
import email.utils
import logging
import math
import random
import re
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiolimiter import AsyncLimiter

from connectors.core import (
    AuthError,
    ConfigError,
    RateLimited,
    RecordError,
    SyncError,
    TransientError,
    classify_status,
)
from connectors.http.limits import Rate, SharedLimits, current_shared_limits

__all__ = [
    "AMBIGUOUS_STATUSES",
    "BACKOFF_KINDS",
    "BODY_LIMIT",
    "COST_EXTENSION",
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
    "NotFound",
    "Rate",
    "RetryPolicy",
    "RetryTransport",
    "Sleep",
    "backoff_scope",
    "classify_response",
    "error_for_response",
    "make_client",
    "raise_for_status",
    "redact_headers",
    "redact_text",
    "redact_url",
    "retry_options",
    "server_wait",
]

logger = logging.getLogger("connectors.http")  # one name for the whole toolkit (tests and operators filter on it)

# --------------------------------------------------------------------------------------------------
# Constants

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
DEFAULT_USER_AGENT = "durable-sync-dagster/0.4"  # GitHub rejects requests without a User-Agent

DEFAULT_MAX_ATTEMPTS = 6
DEFAULT_BASE_DELAY = 1.0  # seconds; first backoff
DEFAULT_MAX_DELAY = 60.0  # seconds; longest single backoff sleep of our own choosing
# Longest server-named wait we sleep through in-process. Luma blocks for 60 s and Notion's per-connection
# Retry-After is <= 60 s; GitHub's primary budget resets up to an hour later, which is for the
# orchestrator to reschedule, not for a worker to sleep through.
DEFAULT_MAX_WAIT = 120.0
DEFAULT_JITTER = 0.25  # backoff is multiplied by a random factor in [1 - jitter, 1 + jitter]
# How our own waits grow with each failure: base_delay * 2**(n-1), base_delay * n, or base_delay.
BACKOFF_KINDS = ("exponential", "linear", "constant")

# Statuses retried besides rate limits (429 and GitHub's rate-limited 403 always are). 529 is Notion's
# service_overload; 408 means the server gave up waiting for our request.
DEFAULT_RETRY_STATUSES = frozenset({408, 500, 502, 503, 504, 529})
# The server may have acted before failing; retrying a non-idempotent call could repeat it.
AMBIGUOUS_STATUSES = frozenset({500, 502, 504})

# GitHub: "if there is no retry-after or x-ratelimit-reset, wait at least one minute".
RATE_LIMIT_FALLBACK_WAIT = 60.0
# A numeric reset header above this is an epoch timestamp (GitHub, Luma); below, seconds from now.
EPOCH_THRESHOLD = 1_000_000_000

RESET_HEADERS = ("x-ratelimit-reset", "x-contentful-ratelimit-reset", "ratelimit-reset")
RETRY_EXTENSION = "durable_sync.retry"  # request extension: RetryPolicy field overrides
# Request extension: how many of the credential's rate-limit slots one request costs (an API that counts
# each action of a batch request as a request: Asana's /batch). Default 1.
COST_EXTENSION = "durable_sync.cost"
SERVICE_EXTENSION = "durable_sync.service"  # response extension set by RetryTransport
CREDENTIAL_EXTENSION = "durable_sync.credential"

BODY_LIMIT = 600
REDACTED = "[REDACTED]"
MIN_SECRET_LENGTH = 4  # shorter known values are not masked in bodies (they would mangle the text)

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Transport failures retried. The request never reached the server for these:
_SAFE_TRANSPORT_ERRORS: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)
# ...and it may have for these (read/write timeouts and errors, a connection dropped mid-response).
_RETRYABLE_TRANSPORT_ERRORS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)

_SENSITIVE_NAME = re.compile(r"auth|token|secret|key|cookie|session|passw|signature|credential", re.I)
_RATE_LIMIT_TEXT = re.compile(r"rate[ _-]?limit", re.I)
_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization schemes: "Bearer abc…", "token abc…", "Basic dXNl…". A credential may hold colons
    # (workers-oauth-provider's tokens, e.g. Notion's hosted MCP server: "<user>:<grant>:<secret>").
    (re.compile(r"\b(bearer|basic|token)(\s+)[A-Za-z0-9._~+/=:\-]{8,}", re.I), rf"\1\2{REDACTED}"),
    # workers-oauth-provider's token shape on its own: "<uuid>:<grant id>:<secret>".
    (
        re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}:[\w-]+:[\w-]{8,}"),
        REDACTED,
    ),
    # Well-known token shapes: GitHub, Notion, Slack, Google API keys, JWTs.
    (
        re.compile(
            r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|secret_[A-Za-z0-9]{20,}"
            r"|ntn_[A-Za-z0-9]{20,}|xox[abposr]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_\-]{30,}"
            r"|eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*)"
        ),
        REDACTED,
    ),
    # key=value / "key": "value" pairs whose name says secret.
    (
        re.compile(
            r"""(?<![A-Za-z0-9])((?:api[_-]?key|access[_-]?token|refresh[_-]?token|client[_-]?secret"""
            r"""|password|secret|token|key)["']?\s*[:=]\s*["']?)[^"'\s&,;}]{4,}""",
            re.I,
        ),
        rf"\1{REDACTED}",
    ),
)

Sleep = Callable[[float], Awaitable[Any]]
Clock = Callable[[], float]


# --------------------------------------------------------------------------------------------------
# Specs


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a client retries.

    Attributes:
        max_attempts: Attempts in all, the first included.
        base_delay: First backoff, in seconds; doubled after each failure.
        max_delay: Longest backoff sleep of our own choosing.
        max_wait: Longest server-named wait (Retry-After, rate-limit reset) slept in-process; above it
            ``RateLimited`` is raised at once with ``retry_after`` for the orchestrator to reschedule.
        jitter: Backoff is multiplied by a random factor in ``[1 - jitter, 1 + jitter]``; server-named
            waits are never shortened.
        retry_statuses: Statuses retried besides rate limits (429 and GitHub's rate-limited 403 always are).
        retry_ambiguous: Whether to retry failures after which the server may have acted (read
            timeouts, dropped connections, 500/502/504). Turn off per request for non-idempotent
            creates: ``extensions=retry_options(retry_ambiguous=False)``.
        backoff_kind: How our own waits grow (one of ``BACKOFF_KINDS``): ``exponential``
            (``base_delay * 2**(n-1)``), ``linear`` (``base_delay * n``) or ``constant``
            (``base_delay``), n being the failures so far. A :func:`backoff_scope` overrides it.
    """

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    base_delay: float = DEFAULT_BASE_DELAY
    max_delay: float = DEFAULT_MAX_DELAY
    max_wait: float = DEFAULT_MAX_WAIT
    jitter: float = DEFAULT_JITTER
    retry_statuses: frozenset[int] = DEFAULT_RETRY_STATUSES
    retry_ambiguous: bool = True
    backoff_kind: str = "exponential"

    def __post_init__(self) -> None:
        """Refuse impossible values (no attempt, negative delays, jitter outside [0, 1], unknown backoff)."""
        if self.backoff_kind not in BACKOFF_KINDS:
            kinds = ", ".join(BACKOFF_KINDS)
            raise ConfigError(f"RetryPolicy.backoff_kind must be one of {kinds}, got {self.backoff_kind!r}")
        if self.max_attempts < 1:
            raise ConfigError(f"RetryPolicy.max_attempts must be >= 1, got {self.max_attempts!r}")
        if min(self.base_delay, self.max_delay, self.max_wait) < 0:
            raise ConfigError(f"RetryPolicy delays must be >= 0, got {self!r}")
        if not 0 <= self.jitter <= 1:
            raise ConfigError(f"RetryPolicy.jitter must be within [0, 1], got {self.jitter!r}")
        object.__setattr__(self, "retry_statuses", frozenset(self.retry_statuses))

    def backoff(self, failures: int, rng: random.Random | None = None) -> float:
        """The backoff before the attempt after ``failures`` failures (1-based), jittered."""
        n = max(1, failures)
        if self.backoff_kind == "linear":
            delay = self.base_delay * n
        elif self.backoff_kind == "constant":
            delay = self.base_delay
        else:
            delay = self.base_delay * 2 ** min(n - 1, 64)  # capped exponent: no float overflow
        delay = min(self.max_delay, delay)
        if self.jitter:
            delay *= 1 + self.jitter * (2 * (rng or random).random() - 1)
        return max(0.0, min(delay, self.max_delay))


_SCOPED_BACKOFF: contextvars.ContextVar[str | None] = contextvars.ContextVar("durable_sync_backoff", default=None)


@contextlib.contextmanager
def backoff_scope(kind: str | None) -> Iterator[None]:
    """Every request sent inside the block (by any client) backs off as ``kind``; None changes nothing.

    This is how a route's ``backoff=`` reaches the HTTP retries of the connectors its pass uses,
    whichever client they build and whatever their own ``RetryPolicy``: the sync asset runs the pass
    inside ``backoff_scope(route.http_backoff)``. It is a context variable, so it follows the pass
    into ``asyncio.run`` and its tasks, and concurrent passes in one process each keep their own.

    Args:
        kind: One of ``BACKOFF_KINDS``, or None.

    Raises:
        ConfigError: ``kind`` is not a backoff kind.
    """
    if kind is not None and kind not in BACKOFF_KINDS:
        raise ConfigError(f"backoff must be one of {', '.join(BACKOFF_KINDS)}, got {kind!r}")
    token = _SCOPED_BACKOFF.set(kind)
    try:
        yield
    finally:
        _SCOPED_BACKOFF.reset(token)


def retry_options(**overrides: Any) -> dict[str, Any]:
    """Request ``extensions`` that override the client's ``RetryPolicy`` fields for one request.

    Example: ``await client.post("/pages", json=body, extensions=retry_options(retry_ambiguous=False))``.
    """
    names = {f.name for f in dataclasses.fields(RetryPolicy)}
    unknown = set(overrides) - names
    if unknown:
        raise ConfigError(f"retry_options: unknown RetryPolicy fields {sorted(unknown)}")
    return {RETRY_EXTENSION: dict(overrides)}


# --------------------------------------------------------------------------------------------------
# Redaction


def redact_url(url: httpx.URL | str) -> str:
    """The URL with userinfo removed and every query value masked (``?key=[REDACTED]&part=[REDACTED]``)."""
    try:
        u = url if isinstance(url, httpx.URL) else httpx.URL(str(url))
    except (httpx.InvalidURL, TypeError, ValueError):
        return "<unparseable URL>"
    out = ""
    if u.scheme:
        host = f"[{u.host}]" if ":" in u.host else u.host
        port = f":{u.port}" if u.port is not None else ""
        userinfo = f"{REDACTED}@" if u.userinfo else ""
        out = f"{u.scheme}://{userinfo}{host}{port}"
    out += u.raw_path.split(b"?", 1)[0].decode("ascii", "replace")
    if u.query:
        out += "?" + "&".join(f"{name}={REDACTED}" for name, _ in u.params.multi_items())
    return out


class _RedactHttpxRequestLog(logging.Filter):
    """Mask query values and userinfo in httpx's request log line, so a key in a URL never reaches a log.

    httpx logs every request at INFO with its full URL (``HTTP Request: GET https://…?key=…``).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(redact_url(a) if isinstance(a, httpx.URL) else a for a in record.args)
        return True


logging.getLogger("httpx").addFilter(_RedactHttpxRequestLog())


def _is_sensitive_name(name: str) -> bool:
    return bool(_SENSITIVE_NAME.search(name))


def redact_headers(headers: Mapping[str, str] | httpx.Headers) -> dict[str, str]:
    """The headers with the values of Authorization, Cookie, API-key and token-like names masked."""
    items = headers.multi_items() if isinstance(headers, httpx.Headers) else headers.items()
    return {name: (REDACTED if _is_sensitive_name(name) else value) for name, value in items}


def redact_text(text: str, secrets: Iterable[str] = (), *, limit: int | None = BODY_LIMIT) -> str:
    """``text`` with known ``secrets`` and token-looking strings masked, whitespace collapsed, truncated.

    Masking happens before truncation, so a secret cut at the limit cannot escape it.
    """
    for secret in sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    text = " ".join(text.split())
    return text[:limit] if limit is not None else text


def _request_secrets(request: httpx.Request | None) -> set[str]:
    """Values this request carries that must never be echoed: sensitive headers, query values, userinfo."""
    if request is None:
        return set()
    secrets: set[str] = set()
    for name, value in request.headers.multi_items():
        if not _is_sensitive_name(name):
            continue
        secrets.add(value)
        scheme, _, credential = value.partition(" ")
        if credential:
            secrets.add(credential.strip())
            if scheme.lower() == "basic":
                with contextlib.suppress(binascii.Error, UnicodeDecodeError, ValueError):
                    user, _, password = base64.b64decode(credential).decode().partition(":")
                    secrets.update({user, password})
    for name, value in request.url.params.multi_items():
        if _is_sensitive_name(name):
            secrets.add(value)
    if request.url.userinfo:
        secrets.update({request.url.username, request.url.password or ""})
    return secrets


def _body_text(response: httpx.Response) -> str:
    try:
        return response.text
    except httpx.ResponseNotRead:
        return ""


def _path(request: httpx.Request) -> str:
    return request.url.path or "/"


# --------------------------------------------------------------------------------------------------
# Errors


class HTTPErrorInfo:
    """What every error built from an HTTP exchange carries (mixed into the ``connectors.core`` classes).

    Attributes:
        status_code: The HTTP status, or 0 when no response arrived (timeout, reset, blocked credential),
            so ``auth_error_in_chain`` never reads a path such as ``/issues/403`` as an auth failure.
            A rate-limited 403 reports 429, for the same reason.
        service: Brand name of the system (``GitHub``).
        method: The HTTP verb.
        url: The request URL, redacted.
        body: The response body, redacted and at most ``BODY_LIMIT`` characters.
    """

    status_code: int = 0
    service: str = ""
    method: str = ""
    url: str = ""
    body: str = ""

    @property
    def message(self) -> str:
        """The error message (``DestinationHTTPError`` compatibility)."""
        return str(self)


class HTTPAuthError(HTTPErrorInfo, AuthError):
    """401, or a 403 that is not a rate limit: only a human can fix it."""


class HTTPRateLimited(HTTPErrorInfo, RateLimited):
    """429, GitHub's rate-limited 403, or a server-named wait above ``RetryPolicy.max_wait``."""


class HTTPTransientError(HTTPErrorInfo, TransientError):
    """5xx, 408/409, a timeout or a reset. ``retry_after`` is the server's hint when it gave one."""

    retry_after: float | None = None


class HTTPRecordError(HTTPErrorInfo, RecordError):
    """Another 4xx: this request (record) is wrong; the pass goes on."""


class NotFound(HTTPRecordError):
    """404 (and 410 Gone); callers decide whether a missing object is an error."""


_HTTP_CLASSES: dict[type[SyncError], type[SyncError]] = {
    AuthError: HTTPAuthError,
    RateLimited: HTTPRateLimited,
    TransientError: HTTPTransientError,
    RecordError: HTTPRecordError,
}


def _make_error(
    base: type[SyncError],
    message: str,
    *,
    status_code: int,
    service: str,
    request: httpx.Request,
    body: str = "",
    retry_after: float | None = None,
    credential: str | None = None,
) -> SyncError:
    cls = NotFound if base is RecordError and status_code in (404, 410) else _HTTP_CLASSES.get(base, base)
    err: SyncError
    if issubclass(cls, RateLimited):
        err = cls(message, retry_after=retry_after if retry_after is not None else RATE_LIMIT_FALLBACK_WAIT)
    elif issubclass(cls, AuthError):
        err = cls(message, credential=credential)
    else:
        err = cls(message)
        if isinstance(err, HTTPTransientError):
            err.retry_after = retry_after
    if isinstance(err, HTTPErrorInfo):
        # core.auth_error_in_chain reads any status_code of 401/403 as an auth failure, which would
        # pause the credential for GitHub's rate-limited 403; a rate limit reports 429 (the message
        # keeps the status that came over the wire).
        err.status_code = 429 if isinstance(err, RateLimited) and status_code in (401, 403) else status_code
        err.service = service
        err.method = request.method
        err.url = redact_url(request.url)
        err.body = body
    return err


def _is_rate_limited_403(response: httpx.Response) -> bool:
    """GitHub answers a rate limit with 403 (or 429): x-ratelimit-remaining 0, a retry-after, or the text."""
    if response.status_code != 403:
        return False
    headers = response.headers
    if headers.get("x-ratelimit-remaining") == "0" or "retry-after" in headers:
        return True
    return bool(_RATE_LIMIT_TEXT.search(_body_text(response)[:2000]))


def classify_response(response: httpx.Response) -> type[SyncError]:
    """The error class a response maps to: ``core.classify_status``, except a rate-limited 403."""
    if _is_rate_limited_403(response):
        return RateLimited
    return classify_status(response.status_code)


def _parse_retry_after(value: str, now: float) -> float | None:
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, when.timestamp() - now)


def _parse_reset(value: str, now: float) -> float | None:
    value = value.strip()
    try:
        number = float(value)
    except ValueError:
        try:  # Jira sends an ISO 8601 timestamp
            when = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return max(0.0, when.timestamp() - now)
    if not math.isfinite(number):
        return None
    return max(0.0, number - now) if number >= EPOCH_THRESHOLD else max(0.0, number)


def server_wait(response: httpx.Response, now: float, *, rate_limited: bool) -> float | None:
    """The wait the server asked for: ``Retry-After``, else on a rate limit a reset header; None if none."""
    if (value := response.headers.get("retry-after")) is not None:
        parsed = _parse_retry_after(value, now)
        if parsed is not None:
            return parsed
    if rate_limited:
        remaining = response.headers.get("x-ratelimit-remaining")
        if remaining is not None and remaining.strip() not in ("0", "0.0"):
            # Budget left: the reset names the primary window, not the end of this (secondary)
            # limit — GitHub's secondary limits keep the primary headers. Back off instead of
            # waiting up to an hour.
            return None
        for name in RESET_HEADERS:
            if (value := response.headers.get(name)) is not None:
                parsed = _parse_reset(value, now)
                if parsed is not None:
                    return parsed
    return None


def error_for_response(
    response: httpx.Response,
    *,
    service: str | None = None,
    credential: str | None = None,
    base: type[SyncError] | None = None,
    retry_after: float | None = None,
    clock: Clock = time.time,
) -> SyncError:
    """The typed error for a failed response (the body must have been read for it to be quoted).

    Args:
        response: The response; its request gives the verb, path and the secrets to mask.
        service: Brand name; defaults to the one the client was made with.
        credential: Credential key for ``AuthError.credential``; defaults to the client's.
        base: Force the class (the transport uses it on exhausted retries); default: ``classify_response``.
        retry_after: Force ``retry_after``; default: the server's hint.
        clock: Epoch seconds, for HTTP-date and reset hints.
    """
    request = response.request
    service = service or response.extensions.get(SERVICE_EXTENSION) or request.url.host or "HTTP"
    credential = credential or response.extensions.get(CREDENTIAL_EXTENSION)
    base = base or classify_response(response)
    if retry_after is None and base in (RateLimited, TransientError):
        retry_after = server_wait(response, clock(), rate_limited=base is RateLimited)
    body = redact_text(_body_text(response), _request_secrets(request))
    status = response.status_code
    message = f"{service} {request.method} {_path(request)} -> {status}" + (f": {body}" if body else "")
    return _make_error(
        base,
        message,
        status_code=status,
        service=service,
        request=request,
        body=body,
        retry_after=retry_after,
        credential=credential,
    )


def raise_for_status(
    response: httpx.Response,
    *,
    service: str | None = None,
    credential: str | None = None,
    clock: Clock = time.time,
) -> None:
    """Raise the typed error for a 4xx/5xx response; return for 1xx/2xx/3xx (a 304 is a success).

    401/403 → ``HTTPAuthError`` (a rate-limited 403 → ``HTTPRateLimited``), 404/410 → ``NotFound``,
    408/409/5xx → ``HTTPTransientError``, 429 → ``HTTPRateLimited``, other 4xx → ``HTTPRecordError``.
    """
    if response.status_code >= 400:
        raise error_for_response(response, service=service, credential=credential, clock=clock)


# --------------------------------------------------------------------------------------------------
# Per-credential limits


@dataclass(slots=True)
class _LoopLimits:
    """The loop-bound parts of a credential's limits (aiolimiter and asyncio.Semaphore bind to a loop)."""

    limiter: AsyncLimiter | None
    reads: asyncio.Semaphore | None
    writes: asyncio.Semaphore | None

    def slot(self, method: str) -> contextlib.AbstractAsyncContextManager[Any]:
        semaphore = self.reads if method in READ_METHODS else self.writes
        return semaphore if semaphore is not None else contextlib.nullcontext()


@dataclass(eq=False)
class _CredentialState:
    """Everything shared by the clients that name one credential."""

    key: str | None
    rate: Rate | None = None
    max_concurrent: int | None = None
    max_concurrent_writes: int | None = None
    blocked_until: float = 0.0  # in the clients' clock (epoch seconds by default); shared by all loops
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopLimits] = field(
        default_factory=weakref.WeakKeyDictionary
    )

    def configure(self, rate: Rate | None, max_concurrent: int | None, max_concurrent_writes: int | None) -> None:
        """Adopt limits; the first client that sets one wins (a conflicting later value is logged)."""
        with self._lock:
            changed = False
            for name, value in (
                ("rate", rate),
                ("max_concurrent", max_concurrent),
                ("max_concurrent_writes", max_concurrent_writes),
            ):
                if value is None:
                    continue
                current = getattr(self, name)
                if current is None:
                    setattr(self, name, value)
                    changed = True
                elif current != value:
                    logger.warning("credential %s already has %s=%s; ignoring %s", self.key, name, current, value)
            if changed:
                self._per_loop.clear()

    def limits(self) -> _LoopLimits:
        loop = asyncio.get_running_loop()
        with self._lock:
            limits = self._per_loop.get(loop)
            if limits is None:
                reads = asyncio.Semaphore(self.max_concurrent) if self.max_concurrent else None
                writes = asyncio.Semaphore(self.max_concurrent_writes) if self.max_concurrent_writes else reads
                limits = _LoopLimits(self.rate.limiter() if self.rate else None, reads, writes)
                self._per_loop[loop] = limits
            return limits

    def block_until(self, when: float) -> None:
        with self._lock:
            self.blocked_until = max(self.blocked_until, when)


_CREDENTIALS: dict[str, _CredentialState] = {}
_CREDENTIALS_LOCK = threading.Lock()


def _credential_state(key: str | None) -> _CredentialState:
    if key is None:
        return _CredentialState(key=None)  # private to one client
    with _CREDENTIALS_LOCK:
        state = _CREDENTIALS.get(key)
        if state is None:
            state = _CREDENTIALS[key] = _CredentialState(key=key)
        return state


# --------------------------------------------------------------------------------------------------
# The transport


class RetryTransport(httpx.AsyncBaseTransport):
    """Wraps a transport with retries, backoff, the credential's limits and its shared block.

    Returns every response it does not retry (2xx, 3xx, 401, a plain 403, other 4xx, and ambiguous
    5xx when ``retry_ambiguous`` is off); raises ``HTTPRateLimited`` / ``HTTPTransientError`` once it
    gives up on one it did retry.

    Args:
        inner: The transport that sends (default ``httpx.AsyncHTTPTransport()``; ``httpx.ASGITransport``
            or ``httpx.MockTransport`` for fakes).
        service: Brand name used in messages and logs.
        policy: The retry policy.
        credential: Key naming the credential (``"github:acme-bot"``, never the secret itself); clients
            with the same key share limits and blocks. None: limits private to this transport.
        rate: The credential's request rate.
        max_concurrent: Requests in flight at once on the credential (all methods, or reads only when
            ``max_concurrent_writes`` is set).
        max_concurrent_writes: Writes (not GET/HEAD/OPTIONS) in flight at once (Asana: 15).
        sleep: Awaitable sleep, injectable for tests.
        clock: Epoch seconds, injectable for tests; clients sharing a credential must share it.
        rng: Source of jitter.
    """

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport | None = None,
        *,
        service: str,
        policy: RetryPolicy | None = None,
        credential: str | None = None,
        rate: Rate | None = None,
        max_concurrent: int | None = None,
        max_concurrent_writes: int | None = None,
        sleep: Sleep | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """Wrap ``inner``; the credential's limits are adopted unless another client set them first."""
        for name, value in (
            ("max_concurrent", max_concurrent),
            ("max_concurrent_writes", max_concurrent_writes),
        ):
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be >= 1, got {value!r}")
        # Connection-level retries are ours, so the pool's own (connect-only) retries stay off.
        self._inner = inner if inner is not None else httpx.AsyncHTTPTransport(retries=0)
        self.service = service
        self.policy = policy or RetryPolicy()
        self.credential = credential
        self._state = _credential_state(credential)
        self._state.configure(rate, max_concurrent, max_concurrent_writes)
        self._sleep: Sleep = sleep or asyncio.sleep
        self._clock: Clock = clock or time.time
        self._rng = rng or random.Random()

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self._inner.aclose()

    def _policy_for(self, request: httpx.Request) -> RetryPolicy:
        overrides = request.extensions.get(RETRY_EXTENSION)
        if isinstance(overrides, RetryPolicy):
            policy = overrides
        else:
            policy = dataclasses.replace(self.policy, **overrides) if overrides else self.policy
        scoped = _SCOPED_BACKOFF.get()
        if scoped is not None and scoped != policy.backoff_kind:
            policy = dataclasses.replace(policy, backoff_kind=scoped)  # the route's word wins
        return policy

    def _fail(
        self,
        base: type[SyncError],
        request: httpx.Request,
        detail: str,
        *,
        retry_after: float | None = None,
    ) -> SyncError:
        message = f"{self.service} {request.method} {_path(request)}{detail}"
        return _make_error(
            base,
            message,
            status_code=0,
            service=self.service,
            request=request,
            retry_after=retry_after,
            credential=self.credential,
        )

    def _shared(self) -> tuple[SharedLimits, str, Rate] | None:
        """The run's shared limits with this credential's key and rate (None: this process's own limiter)."""
        shared = current_shared_limits()
        # The shared schedules are in epoch seconds: a client on an injected clock (a test's fake
        # time) keeps its own limiter.
        if shared is None or self.credential is None or self._state.rate is None or self._clock is not time.time:
            return None
        return shared, self.credential, self._state.rate

    async def _blocked_until(self, shared: tuple[SharedLimits, str, Rate] | None) -> float:
        if shared is None:
            return self._state.blocked_until
        limits, key, _ = shared
        return max(self._state.blocked_until, await limits.blocked_until(key))

    async def _block_until(self, when: float) -> None:
        self._state.block_until(when)
        if (shared := self._shared()) is not None:
            limits, key, _ = shared
            await limits.block_until(key, when)  # every process on the credential waits with us

    async def _wait_unblocked(self, request: httpx.Request, policy: RetryPolicy) -> None:
        shared = self._shared()
        while (remaining := await self._blocked_until(shared) - self._clock()) > 0:
            if remaining > policy.max_wait:
                raise self._fail(
                    RateLimited,
                    request,
                    f": rate limited, the credential is blocked for another {remaining:.0f} s",
                    retry_after=remaining,
                )
            # Spread the requests that were all waiting for the same moment.
            spread = policy.jitter * policy.base_delay * self._rng.random()
            logger.debug("%s: credential blocked, waiting %.2f s", self.service, remaining + spread)
            await self._sleep(remaining + spread)

    async def _send_once(self, request: httpx.Request, policy: RetryPolicy) -> httpx.Response:
        limits = self._state.limits()
        async with limits.slot(request.method):
            shared = self._shared()
            await self._wait_unblocked(request, policy)
            # A request that the API counts as several (a batch) takes that many slots, one after
            # another, and goes out when the last one's time has come.
            cost = max(1, int(request.extensions.get(COST_EXTENSION, 1)))
            for _ in range(cost):
                if shared is None:
                    if limits.limiter is not None:
                        await limits.limiter.acquire()
                else:
                    # The schedule shared by every process replaces this process's limiter; no slot
                    # means another process has just blocked the credential: wait (or give up) as it says.
                    limits_, key, rate = shared
                    while not await limits_.acquire(key, rate):
                        await self._wait_unblocked(request, policy)
            return await self._inner.handle_async_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``, retrying as the module docstring describes; the response it did not retry."""
        policy = self._policy_for(request)
        await request.aread()  # buffer a streamed body once, so every attempt resends the same bytes
        failures = 0
        while True:
            try:
                response = await self._send_once(request, policy)
            except _RETRYABLE_TRANSPORT_ERRORS as exc:
                failures += 1
                kind = type(exc).__name__
                ambiguous = not isinstance(exc, _SAFE_TRANSPORT_ERRORS)
                detail = f" -> {kind}: {redact_text(str(exc), _request_secrets(request))}".rstrip(": ")
                if failures >= policy.max_attempts or (ambiguous and not policy.retry_ambiguous):
                    raise self._fail(TransientError, request, detail) from exc
                delay = policy.backoff(failures, self._rng)
                self._log_retry(request, kind, failures, policy, delay)
                await self._sleep(delay)
                continue
            except httpx.TransportError as exc:
                # UnsupportedProtocol, LocalProtocolError, ProxyError: retrying cannot help.
                detail = f" -> {type(exc).__name__}: {redact_text(str(exc), _request_secrets(request))}"
                raise self._fail(ConfigError, request, detail.rstrip(": ")) from exc

            response.request = request  # the client sets it later; our error messages need it now
            response.extensions[SERVICE_EXTENSION] = self.service
            if self.credential is not None:
                response.extensions[CREDENTIAL_EXTENSION] = self.credential
            status = response.status_code
            if status < 400:
                return response
            if status == 403:
                await response.aread()  # the body may be all that says "secondary rate limit"
            rate_limited = status == 429 or _is_rate_limited_403(response)
            if not rate_limited and (
                status not in policy.retry_statuses or (status in AMBIGUOUS_STATUSES and not policy.retry_ambiguous)
            ):
                return response

            failures += 1
            now = self._clock()
            hint = server_wait(response, now, rate_limited=rate_limited)
            if hint is not None and hint > policy.max_wait:
                await self._block_until(now + hint)
                raise await self._give_up(response, RateLimited, hint, failures)
            if hint is not None and hint > 0:
                wait = hint
                await self._block_until(now + hint)  # every request on the credential waits with us
            elif status == 403:
                wait = max(RATE_LIMIT_FALLBACK_WAIT, policy.backoff(failures, self._rng))
            else:
                wait = policy.backoff(failures, self._rng)
            if failures >= policy.max_attempts:
                if rate_limited:
                    raise await self._give_up(response, RateLimited, wait, failures)
                raise await self._give_up(response, TransientError, hint, failures)
            await response.aclose()
            self._log_retry(request, str(status), failures, policy, wait)
            await self._sleep(wait)

    async def _give_up(
        self, response: httpx.Response, base: type[SyncError], retry_after: float | None, attempts: int
    ) -> SyncError:
        try:
            await response.aread()
        finally:
            await response.aclose()
        err = error_for_response(
            response,
            service=self.service,
            credential=self.credential,
            base=base,
            retry_after=retry_after,
            clock=self._clock,
        )
        logger.debug("%s (giving up after %d attempts)", err, attempts)
        return err

    def _log_retry(self, request: httpx.Request, outcome: str, failures: int, policy: RetryPolicy, wait: float) -> None:
        logger.info(
            "%s %s %s -> %s; retry %d/%d in %.2f s",
            self.service,
            request.method,
            _path(request),
            outcome,
            failures,
            policy.max_attempts - 1,
            wait,
        )


# --------------------------------------------------------------------------------------------------
# The client factory


def make_client(
    *,
    service: str,
    base_url: str | httpx.URL = "",
    headers: Mapping[str, str] | None = None,
    auth: httpx.Auth | None = None,
    credential: str | None = None,
    rate: Rate | None = None,
    max_concurrent: int | None = None,
    max_concurrent_writes: int | None = None,
    retry: RetryPolicy | None = None,
    timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
    transport: httpx.AsyncBaseTransport | None = None,
    event_hooks: Mapping[str, list[Callable[..., Any]]] | None = None,
    follow_redirects: bool = True,
    sleep: Sleep | None = None,
    clock: Clock | None = None,
    rng: random.Random | None = None,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` whose every request is retried, paced and limited per credential.

    Args:
        service: Brand name for messages and logs (``"GitHub"``, ``"Notion"``).
        base_url: Prefix of relative request URLs.
        headers: Default headers (a ``User-Agent`` is added unless given).
        auth: An ``httpx.Auth`` (OAuth refresh-and-retry lives there, above the retries).
        credential: Key naming the credential the requests count against (``"notion:workspace-a"``,
            never the secret); clients with the same key share one limiter, block and slots.
        rate: The credential's request rate (``Rate(3, 1)`` for Notion).
        max_concurrent: Requests in flight at once on the credential (reads only, if the next is set).
        max_concurrent_writes: Writes in flight at once on the credential.
        retry: The retry policy (default ``RetryPolicy()``).
        timeout: Per-request timeout.
        transport: The transport that sends (``httpx.ASGITransport(app)`` for an in-process fake).
        event_hooks: httpx event hooks.
        follow_redirects: Follow redirects (GitHub answers a renamed repository with 301).
        sleep: Awaitable sleep, injectable for tests.
        clock: Epoch seconds, injectable for tests.
        rng: Source of jitter.
    """
    merged = httpx.Headers({"User-Agent": DEFAULT_USER_AGENT})
    merged.update(headers or {})
    return httpx.AsyncClient(
        base_url=base_url,
        headers=merged,
        auth=auth,
        timeout=timeout,
        follow_redirects=follow_redirects,
        event_hooks=dict(event_hooks) if event_hooks else None,
        transport=RetryTransport(
            transport,
            service=service,
            policy=retry,
            credential=credential,
            rate=rate,
            max_concurrent=max_concurrent,
            max_concurrent_writes=max_concurrent_writes,
            sleep=sleep,
            clock=clock,
            rng=rng,
        ),
    )

"""``durable_sync.http.request_with_retry`` for ported connectors, on ``connectors.http``'s retries.

Same signature and the same contract as durable-sync 0.3: the request is built on the caller's
``httpx.AsyncClient`` (its base URL, default headers, auth and timeout apply) and the final response
is returned whatever its status, so the caller decides what a 404 means. The sending goes through
``connectors.http``'s ``RetryTransport`` instead of a loop of its own, which changes three things:

- rate limits (429, GitHub's rate-limited 403) wait as the server says (``Retry-After``, the reset
  headers) and block every request to that host meanwhile; a wait longer than the policy's
  ``max_wait`` raises ``RateLimited`` at once, for the engine to reschedule the partition;
- when the attempts run out the typed error is raised (``RateLimited``, ``TransientError``) instead of
  the last response being returned;
- connection errors and timeouts are retried too, but only for reads: a create that may have reached
  the server is not sent twice (durable-sync left that to Temporal's activity retry).

``retry_statuses`` beyond 429 (which is always retried) are retried like 5xx. The requests of ported
connectors have no settings of their own, so ``configure`` / ``using`` set, process-wide, the
transport, sleep and clock they go through (a fake's ``httpx.ASGITransport`` in tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import weakref
from collections.abc import Iterator
from typing import Any

import httpx

from connectors.http import DEFAULT_RETRY_STATUSES, RETRY_EXTENSION, HttpSettings, RetryPolicy, make_client

__all__ = ["configure", "request_with_retry", "settings", "using"]

_MAX_ATTEMPTS = 6
_BASE_DELAY_SECONDS = 1.0
_MAX_DELAY_SECONDS = 60.0  # durable-sync's cap on a sleep of its own choosing
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_settings = HttpSettings()
# One sending client per (event loop, host, settings): the limits and blocks of a host are shared by
# every ported connector of the process, and a new asyncio.run gets clients bound to its own loop.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, HttpSettings], httpx.AsyncClient]] = (
    weakref.WeakKeyDictionary()
)


def settings() -> HttpSettings:
    """The settings the requests of ported connectors go through."""
    return _settings


def configure(new: HttpSettings | None) -> HttpSettings:
    """Send the requests of ported connectors through ``new`` (None: the network); returns the old ones."""
    global _settings
    old, _settings = _settings, new or HttpSettings()
    return old


@contextlib.contextmanager
def using(new: HttpSettings) -> Iterator[HttpSettings]:
    """``configure(new)`` for the block, then the previous settings again."""
    old = configure(new)
    try:
        yield new
    finally:
        configure(old)


def _client_for(host: str) -> httpx.AsyncClient:
    loop = asyncio.get_running_loop()
    per_loop = _clients.setdefault(loop, {})
    key = (host, _settings)  # the settings themselves, not their id: a freed one's id may be reused
    client = per_loop.get(key)
    if client is None or client.is_closed:
        client = per_loop[key] = make_client(
            service=host or "durable-sync connector",
            credential=f"compat:{host}",
            transport=_settings.transport,
            sleep=_settings.sleep,
            clock=_settings.clock,
            rng=_settings.rng,
        )
    return client


async def request_with_retry(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
    json: object | None = None,
    max_attempts: int = _MAX_ATTEMPTS,
    base_delay: float = _BASE_DELAY_SECONDS,
    retry_statuses: tuple[int, ...] = (429,),
) -> httpx.Response:
    """Send a request built on ``client``, retried by ``connectors.http`` (see the module docstring).

    Args:
        client: The connector's client (base URL, headers, auth, timeout, redirects are taken from it).
        method: The HTTP method.
        url: Absolute, or relative to the client's base URL.
        headers: Extra headers.
        params: Query parameters.
        json: A JSON body.
        max_attempts: Attempts in all.
        base_delay: First backoff in seconds (doubled after each failure, at most 60).
        retry_statuses: Statuses to retry (429 always is).

    Returns:
        The response it did not retry, whatever its status.

    Raises:
        RateLimited: Still rate limited after ``max_attempts``, or told to wait longer than the policy allows.
        TransientError: A retried status or connection failure persisted.
    """
    request = client.build_request(method, url, headers=headers, params=params, json=json)
    base = _settings.retry or RetryPolicy()
    policy = dataclasses.replace(
        base,
        max_attempts=max_attempts,
        base_delay=base_delay,
        max_delay=min(base.max_delay, _MAX_DELAY_SECONDS),
        retry_statuses=frozenset(s for s in retry_statuses if s != 429) | DEFAULT_RETRY_STATUSES,
        retry_ambiguous=method.upper() in _SAFE_METHODS,
    )
    request.extensions[RETRY_EXTENSION] = policy
    sender = _client_for(request.url.host)
    return await sender.send(request, auth=client.auth, follow_redirects=client.follow_redirects)

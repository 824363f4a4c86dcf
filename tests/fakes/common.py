"""The bookkeeping every fake API keeps, written once: tokens, rate limits, injected faults, the request log, time.

Each fake (``tests/fakes/<system>.py``) models one vendor's documented behaviour: its error bodies, its
headers, its status codes. What is NOT vendor-specific is the machinery under that behaviour, and it was
written seven times, each copy drifting a little (one forgot to un-revoke a re-added token, one matched a
fault's path as a glob, another as a regex). It lives here instead, as small plain classes a fake holds
as private members while keeping its own public, test-facing API (``fake.add_token``,
``fake.fail_next(...)``, ``fake.requests(...)``, ``fake.counters``):

- ``FakeTime``: an epoch clock that moves only when someone sleeps or the test advances it, so a
  ``Retry-After`` the fake announces is exactly the moment the client's sleep reaches.
- ``TokenRegistry``: credentials and who they belong to; revoked ones are remembered (a fake answers
  them the vendor's "revoked" way, and a test can assert a secret never reached a log).
- ``TokenBuckets`` and ``FixedWindows``: the two rate-limit shapes vendors document (a refilling
  bucket: Notion, Jira; a counter per clock-aligned window: Asana's minute, Contentful's second), both
  on the fake's injectable clock. They only count and say how long to wait: the 429 body and headers
  stay each vendor's own.
- ``Fault`` and ``FaultQueue``: "answer the next n matching requests with this error", optionally after
  the request took effect (the server acted, the answer is lost: the case idempotency must survive).
- ``RequestLog``: the list of answered requests, filterable the way tests ask ("the PATCHes to
  ``/pages/…``").

Nothing here knows an HTTP framework or a vendor, so a fake stays readable top to bottom as the vendor's
model, and a new fake starts from these instead of a copy of the last one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import fnmatch
import math
import re
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict, TypeVar

__all__ = [
    "DEFAULT_START",
    "FakeTime",
    "Fault",
    "FaultOptions",
    "FaultQueue",
    "FixedWindows",
    "Logged",
    "RequestCounters",
    "RequestLog",
    "TokenBuckets",
    "TokenRegistry",
    "bearer_token",
    "compile_path",
]

DEFAULT_START = 1_700_000_000.0
"""The fake clocks' default start: 2023-11-14T22:13:20Z."""


class Logged(Protocol):
    """What ``RequestLog.matching`` needs of an entry: its verb and path."""

    @property
    def method(self) -> str:
        """The request's verb, upper case."""
        ...

    @property
    def path(self) -> str:
        """The request's path."""
        ...


T = TypeVar("T", bound=Logged)


# --------------------------------------------------------------------------------------------------
# Time


class FakeTime:
    """An epoch clock that moves only when someone sleeps (or the test advances it); every sleep is recorded.

    Give ``clock`` to the fake and ``clock``/``sleep`` to the client, so a rate-limit reset the fake
    announces is the moment the client's sleep reaches. ``sleep`` advances the clock after yielding once,
    so a concurrent task sees the time as it was when the sleeper started waiting (as with real time).
    The instance itself is callable (the same as ``clock``) for code that takes a bare ``() -> float``.

    Args:
        start: The epoch seconds the clock starts at.
    """

    def __init__(self, start: float = DEFAULT_START) -> None:
        """Start the clock at ``start``, with no sleeps recorded."""
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        """The current epoch seconds (the same as ``clock()``)."""
        return self.now

    def clock(self) -> float:
        """The current epoch seconds."""
        return self.now

    def utcnow(self) -> dt.datetime:
        """The current time as an aware UTC datetime."""
        return dt.datetime.fromtimestamp(self.now, dt.UTC)

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` without anyone sleeping."""
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        """Record the sleep, yield once to the event loop, then move the clock to its end."""
        self.sleeps.append(seconds)
        target = self.now + seconds
        await asyncio.sleep(0)
        self.now = max(self.now, target)


# --------------------------------------------------------------------------------------------------
# Tokens


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (any case of ``Bearer``), else None."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


class TokenRegistry:
    """Valid credentials, each with its owner (a workspace, a user, an API), and the revoked ones.

    ``owners`` and ``revoked`` are plain containers a fake may expose as its own ``tokens`` / ``revoked``
    attributes; the methods keep the two consistent (a re-added token is no longer revoked).
    """

    def __init__(self) -> None:
        """An empty registry."""
        self.owners: dict[str, str] = {}
        self.revoked: set[str] = set()

    def __contains__(self, token: object) -> bool:
        """Whether ``token`` is valid (registered and not revoked)."""
        return token in self.owners

    def add(self, token: str, owner: str = "") -> str:
        """Register ``token`` for ``owner`` (un-revoking it) and return it."""
        self.owners[token] = owner
        self.revoked.discard(token)
        return token

    def revoke(self, token: str) -> None:
        """Forget ``token`` and remember it as revoked."""
        self.owners.pop(token, None)
        self.revoked.add(token)

    def owner(self, token: str | None) -> str | None:
        """Whom ``token`` belongs to, or None when it is unknown or revoked."""
        return None if token is None else self.owners.get(token)

    def rotate(self, token: str, new_token: str, *, default_owner: str = "") -> str:
        """Revoke ``token`` and register ``new_token`` for the same owner (``default_owner`` if unknown)."""
        owner = self.owners.get(token, default_owner)
        self.revoke(token)
        return self.add(new_token, owner)


# --------------------------------------------------------------------------------------------------
# Rate limits


@dataclass
class _Bucket:
    tokens: float
    at: float


class TokenBuckets:
    """Token buckets per key (a token, an endpoint): ``burst`` requests at once, refilled at ``rate``/s.

    The rate and burst are passed on each ``take`` so that the fake's own attributes (which tests and
    ``set_rate`` change) stay the single source of truth; ``reset`` fills every bucket again.
    """

    def __init__(self) -> None:
        """No buckets yet: each is made full on its key's first request."""
        self._buckets: dict[Hashable, _Bucket] = {}

    def take(self, key: Hashable, *, rate: float, burst: float, now: float) -> int | None:
        """Take one token from ``key``'s bucket at ``now``.

        Args:
            key: Whose bucket (made full on first use).
            rate: Tokens refilled per second.
            burst: The bucket's size.
            now: Epoch seconds (the fake's clock).

        Returns:
            None when the request may go on, else the whole seconds (at least 1) until a token is back.
        """
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(burst), now)
        bucket.tokens = min(float(burst), bucket.tokens + max(0.0, now - bucket.at) * rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return max(1, math.ceil((1.0 - bucket.tokens) / rate))

    def reset(self) -> None:
        """Fill every bucket again (after a rate change)."""
        self._buckets.clear()


class FixedWindows:
    """A request counter per key and clock-aligned window (Asana's minute, Contentful's second).

    Args:
        seconds: The window's length; window ``i`` covers ``[i * seconds, (i + 1) * seconds)``.
        count_rejected: Whether a rejected request counts against the window too (Asana says so).
    """

    def __init__(self, seconds: float, *, count_rejected: bool = False) -> None:
        """Windows of ``seconds``, none counted yet."""
        self.seconds = seconds
        self.count_rejected = count_rejected
        self._latest: dict[Hashable, list[int]] = {}  # key -> [window index, count]

    def take(self, key: Hashable, *, limit: int, now: float) -> int | None:
        """Count one request of ``key`` at ``now``.

        Returns:
            None when the request is within ``limit``, else the whole seconds (at least 1) to the next window.
        """
        index = int(now // self.seconds)
        window = self._latest.get(key)
        if window is None or window[0] != index:
            window = self._latest[key] = [index, 0]
        if self.count_rejected:
            window[1] += 1
            over = window[1] > limit
        else:
            over = window[1] >= limit
            if not over:
                window[1] += 1
        if not over:
            return None
        return max(1, math.ceil((index + 1) * self.seconds - now))

    def used(self, key: Hashable) -> int:
        """Requests counted in ``key``'s latest window (0 if none)."""
        window = self._latest.get(key)
        return window[1] if window is not None else 0

    def reset(self) -> None:
        """Forget every window (after a rate change)."""
        self._latest.clear()


# --------------------------------------------------------------------------------------------------
# Faults


def compile_path(path: str | None) -> re.Pattern[str] | None:
    """A path filter given as a regular expression (None: any path)."""
    return re.compile(path) if path else None


@dataclass(frozen=True)
class Fault:
    """One injected failure: which requests it hits, and what the fake should answer.

    The fake turns a fault into its vendor's error (body, headers); the fields that only some vendors
    use (``code``, ``drop``, ``secondary``) are simply left at their defaults by the others.

    Attributes:
        status: The HTTP status to answer.
        after: Carry the request out first, then fail (the server acted; the client cannot tell).
        method: Only requests with this verb (upper case); None: any.
        path: Only requests whose path matches this regular expression; None: any.
        glob: Only requests whose path matches this shell-style pattern; None: any.
        retry_after: Seconds for a ``Retry-After`` (or the vendor's equivalent) header.
        message: The error message; None: the vendor's default for the status.
        code: The vendor's error code (Notion's ``code``, Contentful's ``sys.id``, YouTube's ``reason``).
        drop: Lose the connection instead of answering.
        secondary: A secondary rate limit rather than a plain error (GitHub).
        scope: Further attributes a request must have (e.g. ``{"api": "cma"}``).
    """

    status: int
    after: bool = False
    method: str | None = None
    path: re.Pattern[str] | None = None
    glob: str | None = None
    retry_after: float | None = None
    message: str | None = None
    code: str | None = None
    drop: bool = False
    secondary: bool = False
    scope: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def on(cls, status: int, *, method: str | None = None, path: str | None = None, **fields: Any) -> Fault:
        """A fault for the requests with this verb (any case) and a path matching the regex ``path``.

        Args:
            status: The HTTP status to answer.
            method: Only requests with this verb; None: any.
            path: Only requests whose path matches this regular expression; None: any.
            **fields: The other fields (``after``, ``retry_after``, ``message``, ``code``, ``drop``, ...).
        """
        return cls(status, method=method.upper() if method else None, path=compile_path(path), **fields)

    def matches(self, method: str, path: str, scope: Mapping[str, str]) -> bool:
        """Whether a request with this verb, path and scope is one this fault hits."""
        if self.method is not None and self.method != method.upper():
            return False
        if self.path is not None and not self.path.search(path):
            return False
        if self.glob is not None and not fnmatch.fnmatchcase(path, self.glob):
            return False
        return all(scope.get(k) == v for k, v in self.scope.items())


class FaultOptions(TypedDict, total=False):
    """The keyword options every fake's ``fail_next`` takes, besides its vendor's own.

    Attributes:
        message: The error message; None: the vendor's default for the status (or code).
        retry_after: Seconds for a ``Retry-After`` header (or the vendor's equivalent).
        after: Carry the request out first, then fail (the server acted; the client cannot tell).
        method: Only requests with this verb.
        path: Only requests whose path (after the API prefix) matches this regular expression.
    """

    message: str | None
    retry_after: int | None
    after: bool
    method: str | None
    path: str | None


class FaultQueue:
    """Pending injected faults, oldest first; each hits one request."""

    def __init__(self) -> None:
        """No fault pending."""
        self._pending: list[Fault] = []

    def __len__(self) -> int:
        """How many requests are still to fail."""
        return len(self._pending)

    def add(self, fault: Fault, n: int = 1) -> None:
        """Queue ``fault`` for the next ``n`` requests it matches."""
        self._pending.extend([fault] * n)

    def take(self, method: str, path: str, **scope: str) -> Fault | None:
        """Remove and return the oldest fault matching this request, if any."""
        for i, fault in enumerate(self._pending):
            if fault.matches(method, path, scope):
                del self._pending[i]
                return fault
        return None

    def clear(self) -> None:
        """Drop every pending fault."""
        self._pending.clear()


# --------------------------------------------------------------------------------------------------
# The request log and counters


@dataclass
class RequestCounters:
    """What every REST fake counts; a fake's own ``Counters`` subclasses it to add its vendor's.

    Attributes:
        requests: Requests received (answered or not).
        rate_limited: Requests answered 429.
        writes: Writes carried out.
        errors: Requests answered with an error.
    """

    requests: int = 0
    rate_limited: int = 0
    writes: int = 0
    errors: int = 0


class RequestLog(list[T]):
    """The requests a fake answered, in order: a plain list (``len``, ``[-1]``, slices) plus ``matching``.

    Entries are the fake's own records (a dataclass or a named tuple); ``matching`` needs them to have
    ``method`` and ``path`` attributes, and any attribute passed as a keyword.
    """

    def matching(self, method: str | None = None, path: str | None = None, **equal: Any) -> list[T]:
        """The entries with this verb, a path matching the regular expression ``path``, and these attributes.

        Args:
            method: Only entries with this verb (any case); None: any.
            path: Only entries whose path matches this regular expression; None: any.
            **equal: Only entries whose attribute equals the value, skipped when the value is None.
        """
        pattern = compile_path(path)
        verb = method.upper() if method else None
        wanted = {k: v for k, v in equal.items() if v is not None}
        return [
            entry
            for entry in self
            if (verb is None or entry.method == verb)
            and (pattern is None or pattern.search(entry.path))
            and all(getattr(entry, k) == v for k, v in wanted.items())
        ]

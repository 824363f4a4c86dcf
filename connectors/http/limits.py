"""One rate limit per credential shared by every process that uses it: the interface and its GCRA.

Without it, each run (a process) paces a credential with its own in-process limiter
(:mod:`connectors.http.retry`: aiolimiter, and a "blocked until" after a 429), so N runs on one
credential send N times its limit. With it, every process draws its requests from one schedule kept
in a store all of them reach (the state store: ``sync_assets.state``; PostgreSQL or SQLite), and a
server-named wait (``Retry-After``) seen by one process blocks them all.

The schedule is GCRA, the generic cell rate algorithm (a token bucket written as one number): a
credential's row holds ``tat``, the theoretical arrival time of its next request. With ``interval =
per_seconds / requests`` and ``tolerance = (capacity - 1) * interval``, a request may go at
``max(now, tat - tolerance)`` and moves ``tat`` to ``max(tat, that time) + interval``. So an idle
credential lets ``capacity`` requests go at once, then one per ``interval``; over any window of W
seconds at most ``capacity + W / interval`` slots are handed out, whoever asks. A claim never fails:
it returns the times at which the requests may go (the caller sleeps until then), so processes
queue on the schedule instead of polling it. :func:`gcra_claim` is that arithmetic, pure.

How a request takes a slot (:class:`SharedLimiter`, one per run)::

    a slot of this process is queued for the key, not stale   -> take it, sleep until its time
    else claim n slots in one short transaction of the store  (n = the requests waiting here,
                                                               at least a quarter second's worth
                                                               for fast rates, at most the burst)
        the credential is blocked (an earlier 429)             -> no slot: the transport waits, or
                                                                  raises RateLimited past max_wait
    a 429's Retry-After                                        -> block_until in the store

Claiming a few slots at a time keeps the store's cost at one transaction per few requests at high
rates. A slot unused for more than one interval after its time is dropped, never sent late: sent
late, queued slots of several processes could bunch above the rate. The store's clock is each
process's wall clock (``time.time``): hosts sharing a PostgreSQL store need NTP-synchronised clocks
(a skew of d seconds lets at most d / interval extra requests through).

If the store cannot be reached, the process falls back to a limiter of its own for that claim and
logs a warning (at most once a minute per credential): the run does not stop for it, and the log
says that the credential is, for that moment, paced per process only (a store that is down also
fails the run's own commits, so this lasts seconds, not a pass).

Why not pyrate-limiter (4.x, the maintained library with SQLite and PostgreSQL buckets)? Its SQL
buckets log one row per request and count them per window (a write per request, and a table it
creates itself outside the state store's migrations); its PostgreSQL bucket needs psycopg 3 and
psycopg_pool (this project runs on psycopg2) and its SQLite bucket needs a file lock to be safe
across processes; and it has no notion of a shared "blocked until" for a server's ``Retry-After``,
which is half of what is needed here. One row per credential with GCRA is a few lines, batches
naturally, and lives in the store every run already holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import math
import threading
import time
import weakref
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from aiolimiter import AsyncLimiter

from connectors.core import ConfigError

__all__ = [
    "Claim",
    "MemorySlotStore",
    "Rate",
    "SharedLimiter",
    "SharedLimits",
    "SlotStore",
    "current_shared_limits",
    "gcra_claim",
    "keep_local_limits",
    "use_shared_limits",
]

logger = logging.getLogger("connectors.http")

PREFETCH_SECONDS = 0.25  # a claim takes at least this much of the rate's slots (fast rates: fewer claims)
FALLBACK_WARNING_EVERY = 60.0  # seconds between two "store unreachable" warnings for one credential


@dataclass(frozen=True, slots=True)
class Rate:
    """A request rate: ``requests`` per ``per_seconds``, with bursts of up to ``burst`` requests.

    Attributes:
        requests: How many requests the window allows (may be fractional: ``Rate(1, 2)``).
        per_seconds: The window, in seconds.
        burst: How many requests may go at once after an idle spell (default: ``requests``, at least 1).
    """

    requests: float
    per_seconds: float = 1.0
    burst: int | None = None

    def __post_init__(self) -> None:
        """Refuse a rate that is not positive and finite, or a burst below 1."""
        if not (self.requests > 0 and self.per_seconds > 0 and math.isfinite(self.requests / self.per_seconds)):
            raise ConfigError(f"Rate needs requests > 0 and per_seconds > 0, got {self!r}")
        if self.burst is not None and self.burst < 1:
            raise ConfigError(f"Rate.burst must be >= 1, got {self.burst!r}")

    @property
    def capacity(self) -> int:
        """The bucket size: ``burst``, or ``requests`` rounded down (at least 1)."""
        return self.burst if self.burst is not None else max(1, int(self.requests))

    def limiter(self) -> AsyncLimiter:
        """A fresh ``AsyncLimiter`` with this rate and burst (aiolimiter's bucket size is ``max_rate``)."""
        capacity = self.capacity
        return AsyncLimiter(capacity, capacity * self.per_seconds / self.requests)


@dataclass(frozen=True, slots=True)
class Claim:
    """What one claim on a credential's schedule returned.

    Attributes:
        slots: The epoch seconds at which each claimed request may go (ascending; empty when blocked).
        blocked_until: Epoch seconds until which the credential is blocked (0.0: not blocked).
    """

    slots: tuple[float, ...]
    blocked_until: float = 0.0


def gcra_claim(tat: float, blocked_until: float, rate: Rate, n: int, now: float) -> tuple[float, tuple[float, ...]]:
    """Claim ``n`` request slots on a GCRA schedule (the module docstring has the arithmetic).

    Args:
        tat: The schedule's theoretical arrival time (epoch seconds; 0 for a new credential).
        blocked_until: Epoch seconds until which the credential is blocked; no slot is given then.
        rate: The credential's rate (``capacity`` is the burst).
        n: Slots wanted.
        now: The current time, epoch seconds.

    Returns:
        The new ``tat`` and the slots' times; ``(tat, ())`` unchanged while blocked.
    """
    if blocked_until > now or n < 1:
        return tat, ()
    interval = rate.per_seconds / rate.requests
    tolerance = (rate.capacity - 1) * interval
    slots = []
    for _ in range(n):
        at = max(now, tat - tolerance)
        slots.append(at)
        tat = max(tat, at) + interval
    return tat, tuple(slots)


@runtime_checkable
class SlotStore(Protocol):
    """Where the credentials' schedules live (``sync_assets.state.StateStore``; :class:`MemorySlotStore`).

    Both methods are synchronous and short (one transaction); :class:`SharedLimiter` calls them on the
    event loop's thread, as a pass makes every other store call (a call in a worker thread outlived a
    database cut: the thread blocked in the driver and the run's process could not exit).
    """

    def claim_rate_slots(self, key: str, rate: Rate, n: int) -> Claim:
        """Claim ``n`` slots of ``key``'s schedule at the store's current time (``gcra_claim``)."""
        ...

    def block_rate_limit(self, key: str, until: float) -> None:
        """Block ``key`` until ``until`` (epoch seconds), unless it already is for longer."""
        ...


class MemorySlotStore:
    """A :class:`SlotStore` in this process's memory: the fallback, and the reference for tests.

    Args:
        clock: Epoch seconds (injectable for tests).
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        """No schedules yet."""
        self.clock = clock
        self._rows: dict[str, list[float]] = {}  # key -> [tat, blocked_until]
        self._lock = threading.Lock()

    def claim_rate_slots(self, key: str, rate: Rate, n: int) -> Claim:
        """Claim ``n`` slots of ``key``'s schedule (see :func:`gcra_claim`)."""
        with self._lock:
            row = self._rows.setdefault(key, [0.0, 0.0])
            row[0], slots = gcra_claim(row[0], row[1], rate, n, self.clock())
            return Claim(slots, row[1])

    def block_rate_limit(self, key: str, until: float) -> None:
        """Block ``key`` until ``until``, unless it already is for longer."""
        with self._lock:
            row = self._rows.setdefault(key, [0.0, 0.0])
            row[1] = max(row[1], until)


class SharedLimits(Protocol):
    """What :class:`~connectors.http.RetryTransport` asks of a limit shared beyond one process."""

    async def acquire(self, key: str, rate: Rate) -> bool:
        """Wait for a slot of ``key`` at ``rate``; False (no slot taken) when the credential is blocked."""
        ...

    async def blocked_until(self, key: str) -> float:
        """Epoch seconds until which ``key`` is blocked, as last seen (0.0: not blocked)."""
        ...

    async def block_until(self, key: str, until: float) -> None:
        """Block ``key`` for every process until ``until`` (epoch seconds)."""
        ...


@dataclass(eq=False)
class _Key:
    """One credential's slots claimed by this process and not yet used."""

    slots: deque[float] = field(default_factory=deque)
    blocked_until: float = 0.0
    waiting: int = 0


class SharedLimiter:
    """:class:`SharedLimits` over a :class:`SlotStore`: claims slots a few at a time, hands them out in order.

    Args:
        store: Where the schedules live (the state store).
        clock: Epoch seconds; must be the clock the store's claims use.
        sleep: Awaitable sleep, injectable for tests.

    Attributes:
        claims: Store transactions made (claims), for benchmarks and tests.
        dropped: Claimed slots that went stale unused.
        fallbacks: Claims served by the local fallback because the store failed.
    """

    def __init__(
        self,
        store: SlotStore,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        """Draw on ``store``; nothing is claimed until the first request."""
        self.store = store
        self._clock = clock
        self._sleep = sleep
        self._keys: dict[str, _Key] = {}
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
            weakref.WeakKeyDictionary()
        )
        self._fallback = MemorySlotStore(clock)
        self._warned: dict[str, float] = {}
        self.claims = 0
        self.dropped = 0
        self.fallbacks: Counter[str] = Counter()

    def _lock(self, key: str) -> asyncio.Lock:
        per_loop = self._locks.setdefault(asyncio.get_running_loop(), {})
        lock = per_loop.get(key)
        if lock is None:
            lock = per_loop[key] = asyncio.Lock()
        return lock

    async def acquire(self, key: str, rate: Rate) -> bool:
        """Wait until this process may send one request on ``key``.

        Args:
            key: The credential's ``rate_limit_key``.
            rate: Its rate (the caller's; processes may disagree, each claim uses its own).

        Returns:
            True once the slot's time has come; False at once, without a slot, when the credential
            is blocked (read :meth:`blocked_until` and wait, or give up).
        """
        state = self._keys.setdefault(key, _Key())
        state.waiting += 1
        try:
            async with self._lock(key):
                slot = await self._next_slot(key, state, rate)
        finally:
            state.waiting -= 1
        if slot is None:
            return False
        delay = slot - self._clock()
        if delay > 0:
            await self._sleep(delay)
        return True

    async def _next_slot(self, key: str, state: _Key, rate: Rate) -> float | None:
        interval = rate.per_seconds / rate.requests
        now = self._clock()
        if state.blocked_until > now:
            return None
        while state.slots and state.slots[0] < now - interval:
            state.slots.popleft()  # stale: sent now, it could bunch with others' fresh slots
            self.dropped += 1
        if not state.slots:
            await asyncio.sleep(0)  # let the requests ready at the same moment queue, to claim for them too
            prefetch = int(PREFETCH_SECONDS * rate.requests / rate.per_seconds)
            n = max(1, min(rate.capacity, max(state.waiting, prefetch)))
            claim = await self._claim(key, rate, n)
            state.blocked_until = max(state.blocked_until, claim.blocked_until)
            state.slots.extend(claim.slots)
            if not state.slots:
                return None
        return state.slots.popleft()

    async def _claim(self, key: str, rate: Rate, n: int) -> Claim:
        self.claims += 1
        try:
            return self.store.claim_rate_slots(key, rate, n)
        except Exception as err:
            self._warn(key, "claim", err)
            self.fallbacks[key] += 1
            return self._fallback.claim_rate_slots(key, rate, n)

    async def blocked_until(self, key: str) -> float:
        """Epoch seconds until which ``key`` is blocked, as this process last saw it (0.0: not blocked)."""
        state = self._keys.get(key)
        return state.blocked_until if state is not None else 0.0

    async def block_until(self, key: str, until: float) -> None:
        """Block ``key`` until ``until`` here at once, and for every process through the store.

        The slots this process still holds are dropped: they were claimed before the block.
        """
        state = self._keys.setdefault(key, _Key())
        state.blocked_until = max(state.blocked_until, until)
        self.dropped += len(state.slots)
        state.slots.clear()
        self._fallback.block_rate_limit(key, until)
        try:
            self.store.block_rate_limit(key, until)
        except Exception as err:
            self._warn(key, "block", err)

    def _warn(self, key: str, what: str, err: Exception) -> None:
        now = time.monotonic()
        if now - self._warned.get(key, -FALLBACK_WARNING_EVERY) >= FALLBACK_WARNING_EVERY:
            self._warned[key] = now
            logger.warning(
                "shared rate limit of %s: the %s failed (%s); pacing this process alone until the store answers",
                key,
                what,
                type(err).__name__,
            )


_SHARED: contextvars.ContextVar[SharedLimits | None] = contextvars.ContextVar(
    "durable_sync_shared_limits", default=None
)
_LOCAL_ONLY: contextvars.ContextVar[bool] = contextvars.ContextVar("durable_sync_local_limits_only", default=False)


def current_shared_limits() -> SharedLimits | None:
    """The shared limits installed for this context (a run's pass), or None: each process paces itself."""
    return None if _LOCAL_ONLY.get() else _SHARED.get()


@contextlib.contextmanager
def use_shared_limits(limits: SharedLimits | None) -> Iterator[SharedLimits | None]:
    """Pace every client in this context (and ``asyncio.run`` started in it) with ``limits``.

    A no-op inside :func:`keep_local_limits`. Clients without a ``credential`` or a ``rate`` keep
    their own limits.

    Args:
        limits: The shared limits (None: the in-process ones).

    Yields:
        The limits in force.
    """
    token = _SHARED.set(limits)
    try:
        yield current_shared_limits()
    finally:
        _SHARED.reset(token)


@contextlib.contextmanager
def keep_local_limits() -> Iterator[None]:
    """Keep the in-process limits in this context even where a run installs shared ones (tests)."""
    token = _LOCAL_ONLY.set(True)
    try:
        yield
    finally:
        _LOCAL_ONLY.reset(token)

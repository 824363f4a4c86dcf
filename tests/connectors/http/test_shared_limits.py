"""The shared rate limit's arithmetic (GCRA) and its client side, in one process on a fake clock.

The cross-process behaviour (4 processes on PostgreSQL and SQLite) is in
tests/sync_assets/test_shared_limits.py.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.http import (
    Claim,
    MemorySlotStore,
    Rate,
    RetryPolicy,
    SharedLimiter,
    current_shared_limits,
    gcra_claim,
    keep_local_limits,
    make_client,
    use_shared_limits,
)
from tests.fakes.common import FakeTime


def _max_in_window(times: list[float], window: float) -> int:
    """The most of ``times`` inside any half-open window ``[t, t + window)`` starting at one of them."""
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        j = max(j, i)
        while j < len(times) and times[j] < t + window - 1e-9:
            j += 1
        best = max(best, j - i)
    return best


# --------------------------------------------------------------------------------------------------
# gcra_claim


def test_an_idle_credential_lets_its_burst_go_at_once_then_one_per_interval():
    tat, slots = gcra_claim(0.0, 0.0, Rate(3, 1, burst=3), 6, now=100.0)
    assert slots[:3] == (100.0, 100.0, 100.0)
    assert slots[3:] == pytest.approx((100 + 1 / 3, 100 + 2 / 3, 101.0))
    assert tat == pytest.approx(102.0)


def test_a_claim_continues_the_schedule_another_claim_left():
    rate = Rate(2, 1, burst=1)
    tat, first = gcra_claim(0.0, 0.0, rate, 2, now=10.0)
    tat, second = gcra_claim(tat, 0.0, rate, 2, now=10.1)  # another process, a moment later
    assert first == (10.0, 10.5)
    assert second == (11.0, 11.5)


def test_an_idle_spell_earns_no_more_than_the_burst():
    rate = Rate(10, 1, burst=4)
    tat, _ = gcra_claim(0.0, 0.0, rate, 1, now=0.0)
    _, slots = gcra_claim(tat, 0.0, rate, 6, now=1000.0)
    assert sum(1 for s in slots if s == pytest.approx(1000.0)) == 4
    assert slots[4] == pytest.approx(1000.1)


def test_no_slot_while_blocked_and_none_before_the_block_ends():
    rate = Rate(5, 1, burst=5)
    tat, slots = gcra_claim(0.0, 50.0, rate, 3, now=40.0)
    assert (tat, slots) == (0.0, ())
    _, slots = gcra_claim(0.0, 50.0, rate, 3, now=50.0)
    assert min(slots) >= 50.0


def test_a_fractional_rate_spaces_slots_by_its_interval():
    _, slots = gcra_claim(0.0, 0.0, Rate(1, 2), 3, now=0.0)
    assert slots == (0.0, 2.0, 4.0)


@settings(max_examples=60, deadline=None)
@given(
    requests=st.integers(1, 30),
    burst=st.integers(1, 10),
    claims=st.lists(st.tuples(st.floats(0, 3), st.integers(1, 8)), min_size=1, max_size=60),
)
def test_any_sequence_of_claims_stays_within_rate_and_burst_in_every_window(requests, burst, claims):
    """Whoever claims, whenever, however many: a window of W seconds holds at most burst + W * rate slots."""
    rate = Rate(requests, 1, burst=burst)
    tat, now, handed = 0.0, 0.0, []
    for step, n in claims:
        now += step
        tat, slots = gcra_claim(tat, 0.0, rate, n, now)
        assert all(s >= now for s in slots)
        handed.extend(slots)
    for window in (0.5, 1.0, 3.0):
        assert _max_in_window(handed, window) <= burst + window * requests + 1e-6


# --------------------------------------------------------------------------------------------------
# SharedLimiter over a store, on a fake clock


def _limiter(store, fake: FakeTime) -> SharedLimiter:
    return SharedLimiter(store, clock=fake.clock, sleep=fake.sleep)


async def _send_times(limiter: SharedLimiter, fake: FakeTime, key: str, rate: Rate, n: int) -> list[float]:
    times = []
    for _ in range(n):
        assert await limiter.acquire(key, rate)
        times.append(fake.now)
    return times


async def test_slots_are_claimed_a_quarter_second_at_a_time_at_fast_rates():
    fake = FakeTime()
    store = MemorySlotStore(fake.clock)
    limiter = _limiter(store, fake)
    rate = Rate(40, 1, burst=10)  # a quarter second: 10 slots a claim
    times = await _send_times(limiter, fake, "k", rate, 30)
    assert limiter.claims == 3
    assert limiter.dropped == 0
    assert _max_in_window(times, 1.0) <= 10 + 40


async def test_a_slow_rate_claims_one_slot_per_request():
    fake = FakeTime()
    limiter = _limiter(MemorySlotStore(fake.clock), fake)
    times = await _send_times(limiter, fake, "k", Rate(3, 1, burst=3), 9)
    assert limiter.claims == 9
    assert times[3] - times[0] == pytest.approx(1 / 3)


async def test_concurrent_waiters_in_one_process_share_one_claim():
    fake = FakeTime()
    limiter = _limiter(MemorySlotStore(fake.clock), fake)
    rate = Rate(3, 1, burst=5)
    # Five requests at once: the first claim takes a slot for each of them (capped at the burst).
    assert all(await asyncio.gather(*(limiter.acquire("k", rate) for _ in range(5))))
    assert limiter.claims == 1


async def test_two_processes_on_one_store_share_the_rate():
    """Two limiters (two processes) on one store: together at the rate, not twice it."""
    fake = FakeTime()
    store = MemorySlotStore(fake.clock)
    a, b = _limiter(store, fake), _limiter(store, fake)
    rate = Rate(10, 1, burst=2)
    times: list[float] = []

    async def worker(limiter: SharedLimiter, n: int) -> None:
        for _ in range(n):
            assert await limiter.acquire("shared", rate)
            times.append(fake.now)

    await asyncio.gather(worker(a, 50), worker(b, 50))
    assert len(times) == 100
    for window in (1.0, 2.0, 5.0):
        assert _max_in_window(times, window) <= 2 + 10 * window + 1e-6
    # ...and a separate limit per key: the same two on two keys are not slowed by each other.
    solo = _limiter(store, fake)
    start = fake.now
    await _send_times(solo, fake, "other", rate, 2)
    assert fake.now == start


async def test_a_slot_unused_long_after_its_time_is_dropped_not_sent_late():
    fake = FakeTime()
    limiter = _limiter(MemorySlotStore(fake.clock), fake)
    rate = Rate(40, 1, burst=10)
    assert await limiter.acquire("k", rate)  # claims 10, uses 1
    fake.advance(5.0)
    assert await limiter.acquire("k", rate)
    assert limiter.dropped == 9
    assert limiter.claims == 2


async def test_a_block_written_by_one_process_stops_the_others_at_their_next_claim():
    fake = FakeTime()
    store = MemorySlotStore(fake.clock)
    a, b = _limiter(store, fake), _limiter(store, fake)
    rate = Rate(2, 1, burst=1)
    assert await b.acquire("k", rate)
    until = fake.now + 30
    await a.block_until("k", until)
    assert await a.blocked_until("k") == until
    assert not await b.acquire("k", rate)  # no slot: B learnt the block from the store
    assert await b.blocked_until("k") == until
    fake.advance(30)
    assert await b.acquire("k", rate)


async def test_a_store_that_fails_is_replaced_by_a_local_limiter_with_a_warning(caplog):
    class Down:
        def claim_rate_slots(self, key, rate, n) -> Claim:
            raise OSError("connection refused")

        def block_rate_limit(self, key, until) -> None:
            raise OSError("connection refused")

    fake = FakeTime()
    limiter = _limiter(Down(), fake)
    caplog.set_level(logging.WARNING, logger="connectors.http")
    times = await _send_times(limiter, fake, "k", Rate(4, 1, burst=1), 8)
    assert times[-1] - times[0] == pytest.approx(7 / 4)  # still paced, by this process alone
    assert limiter.fallbacks["k"] == 8
    warnings = [r for r in caplog.records if "shared rate limit of k" in r.getMessage()]
    assert len(warnings) == 1  # once a minute, not once a request


# --------------------------------------------------------------------------------------------------
# Through make_client (the transport every connector uses)


def _recording_app(seen: list[float], answer_429_at: int | None = None, retry_after: int = 1):
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(time.time())
        if answer_429_at is not None and len(seen) == answer_429_at:
            return httpx.Response(429, headers={"Retry-After": str(retry_after)}, json={"code": "rate_limited"})
        return httpx.Response(200, json={"ok": True})

    return httpx.MockTransport(handler)


async def test_a_client_in_a_shared_context_takes_its_slots_from_the_store():
    store = MemorySlotStore()
    seen: list[float] = []
    key = f"test:{random.randrange(1 << 30)}"  # the per-process registry keeps a credential's rate
    with use_shared_limits(SharedLimiter(store)) as limits:
        assert current_shared_limits() is limits
        async with make_client(
            service="Test",
            base_url="https://api.test",
            credential=key,
            rate=Rate(50, 1, burst=1),
            transport=_recording_app(seen),
        ) as client:
            for _ in range(6):
                (await client.get("/x")).raise_for_status()
    row = store._rows[key]
    assert len(seen) == 6
    assert row[0] - seen[0] >= 5 / 50  # six slots came off the shared schedule
    assert seen[-1] - seen[0] >= 5 / 50 - 0.005


async def test_a_429_in_a_shared_context_blocks_the_credential_in_the_store():
    store = MemorySlotStore()
    seen: list[float] = []
    key = f"test:{random.randrange(1 << 30)}"
    with use_shared_limits(SharedLimiter(store)):
        async with make_client(
            service="Test",
            base_url="https://api.test",
            credential=key,
            rate=Rate(50, 1),
            transport=_recording_app(seen, answer_429_at=1, retry_after=1),
            retry=RetryPolicy(jitter=0),
        ) as client:
            (await client.get("/x")).raise_for_status()
    assert len(seen) == 2
    blocked_until = store._rows[key][1]
    assert blocked_until == pytest.approx(seen[0] + 1, abs=0.05)
    assert seen[1] >= blocked_until - 0.01  # the retry waited for the block, as any process would


def test_keep_local_limits_hides_the_shared_ones():
    with use_shared_limits(SharedLimiter(MemorySlotStore())) as limits:
        assert current_shared_limits() is limits
        with keep_local_limits():
            assert current_shared_limits() is None
        assert current_shared_limits() is limits
    assert current_shared_limits() is None


async def test_a_client_on_an_injected_clock_keeps_its_own_limiter():
    """Tests run clients on fake time; the shared schedules are in epoch seconds."""
    store = MemorySlotStore()
    fake = FakeTime()
    seen: list[float] = []
    key = f"test:{random.randrange(1 << 30)}"
    with use_shared_limits(SharedLimiter(store)):
        async with make_client(
            service="Test",
            base_url="https://api.test",
            credential=key,
            rate=Rate(50, 1),
            transport=_recording_app(seen),
            clock=fake.clock,
            sleep=fake.sleep,
        ) as client:
            (await client.get("/x")).raise_for_status()
    assert len(seen) == 1
    assert key not in store._rows

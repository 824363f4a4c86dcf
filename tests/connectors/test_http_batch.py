"""``connectors.http.batch.Batcher``: concurrent submits become batches; each caller gets its own answer."""

from __future__ import annotations

import asyncio

import pytest

from connectors.core import ConfigError, RecordError, TransientError
from connectors.http.batch import Batcher


class Recorder:
    """A ``send`` that records each batch and answers item * 10, or an item's own error for negatives."""

    def __init__(self, *, hold: asyncio.Event | None = None) -> None:
        self.batches: list[list[int]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.hold = hold

    async def __call__(self, items: list[int]) -> list[int | BaseException]:
        self.batches.append(list(items))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.hold is not None:
                await self.hold.wait()
            await asyncio.sleep(0)
            return [RecordError(f"item {i} refused", primary_key=str(i)) if i < 0 else i * 10 for i in items]
        finally:
            self.in_flight -= 1


async def test_concurrent_submits_go_out_in_full_batches_and_each_caller_gets_its_own_result() -> None:
    send = Recorder()
    batcher: Batcher[int, int] = Batcher(send, max_size=10, linger=0.001)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(25)))
    assert results == [i * 10 for i in range(25)]
    assert [len(b) for b in send.batches] == [10, 10, 5]
    assert sorted(i for b in send.batches for i in b) == list(range(25))  # each item sent once
    assert batcher.batches == 3


async def test_an_items_own_error_reaches_only_its_caller() -> None:
    batcher: Batcher[int, int] = Batcher(Recorder(), max_size=5)
    results = await asyncio.gather(*(batcher.submit(i) for i in (1, 2, -3, 4, 5)), return_exceptions=True)
    assert results[:2] == [10, 20] and results[3:] == [40, 50]
    assert isinstance(results[2], RecordError) and "item -3 refused" in str(results[2])


async def test_an_error_of_the_whole_batch_reaches_every_caller_of_that_batch_only() -> None:
    calls = 0

    async def send(items: list[int]) -> list[int | BaseException]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise TransientError("the batch request failed")
        return list(items)

    batcher: Batcher[int, int] = Batcher(send, max_size=3)
    first = await asyncio.gather(*(batcher.submit(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, TransientError) for r in first)
    assert await asyncio.gather(*(batcher.submit(i) for i in range(3))) == [0, 1, 2]


async def test_a_partial_batch_is_sent_after_the_linger() -> None:
    send = Recorder()
    batcher: Batcher[int, int] = Batcher(send, max_size=50, linger=0.001)
    assert await batcher.submit(7) == 70
    assert send.batches == [[7]]


async def test_batches_in_flight_are_bounded() -> None:
    hold = asyncio.Event()
    send = Recorder(hold=hold)
    batcher: Batcher[int, int] = Batcher(send, max_size=2, max_in_flight=1)
    tasks = [asyncio.ensure_future(batcher.submit(i)) for i in range(6)]
    for _ in range(5):
        await asyncio.sleep(0)
    assert send.in_flight == 1 and len(send.batches) == 1  # the other two batches wait their turn
    hold.set()
    assert await asyncio.gather(*tasks) == [i * 10 for i in range(6)]
    assert send.max_in_flight == 1 and len(send.batches) == 3


async def test_a_wrong_number_of_results_fails_every_caller_of_the_batch() -> None:
    async def send(items: list[int]) -> list[int | BaseException]:
        return list(items)[:-1]

    batcher: Batcher[int, int] = Batcher(send, max_size=2)
    results = await asyncio.gather(batcher.submit(1), batcher.submit(2), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) and "1 results for a batch of 2" in str(r) for r in results)


async def test_aclose_sends_what_is_pending() -> None:
    send = Recorder()
    batcher: Batcher[int, int] = Batcher(send, max_size=10, linger=60)  # the timer would never fire in time
    task = asyncio.ensure_future(batcher.submit(3))
    await asyncio.sleep(0)
    assert send.batches == []
    await batcher.aclose()
    assert await task == 30 and send.batches == [[3]]


async def test_a_cancelled_caller_is_not_sent() -> None:
    send = Recorder()
    batcher: Batcher[int, int] = Batcher(send, max_size=10, linger=0.001)
    gone = asyncio.ensure_future(batcher.submit(1))
    await asyncio.sleep(0)
    gone.cancel()
    assert await batcher.submit(2) == 20
    assert send.batches == [[2]]


def test_limits_are_checked() -> None:
    async def send(items: list[int]) -> list[int | BaseException]:
        return list(items)

    with pytest.raises(ConfigError):
        Batcher(send, max_size=0)
    with pytest.raises(ConfigError):
        Batcher(send, max_size=1, max_in_flight=0)
    with pytest.raises(ConfigError):
        Batcher(send, max_size=1, linger=-1)

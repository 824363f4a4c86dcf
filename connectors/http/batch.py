"""``Batcher``: coalesce concurrent single-item calls into batch requests, each caller keeping its own result.

The engine writes one record per call and keeps several calls in flight (``max_concurrency``). An API
with a batch endpoint (Asana's ``POST /batch``, Jira's ``POST /rest/api/3/issue/bulk``) can take many
of those writes in one request. A destination puts a :class:`Batcher` between the two: each write
``await batcher.submit(item)``; the batcher sends a batch when it holds ``max_size`` items, or
``linger`` seconds after the first item of a partial batch arrived, and hands every caller its own
answer — its result, or its own exception (one bad record in a batch is that record's error). An
error of the whole batch (the request failed: auth, a service in trouble, a lost answer) is raised to
every caller of that batch. So the engine, its intents per record and its per-record failures stay
as they are, and the rate limiter is charged per HTTP request (the batch), by the client that sends it.

Caller (one per record)           Batcher                                 ``send(items)``
    submit(a) ──────────────────▶ pending [a]  (timer: linger)
    submit(b) ──────────────────▶ pending [a, b]
    ...               max_size reached, or the timer fired ──────────────▶ one request
    ◀── a's result / a's error ── results[i] (or the batch's error) ◀───── list, in item order

``max_in_flight`` bounds the batches sent at once: Asana counts each action of a batch as one request
in flight against its 15 concurrent writes, so one batch of 10 at a time is all that fits.

A batcher belongs to one event loop (one destination session); :meth:`aclose` sends what is pending
and waits for the batches in flight.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from connectors.core import ConfigError

__all__ = ["DEFAULT_LINGER", "Batcher"]

logger = logging.getLogger("connectors.http")

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_LINGER = 0.005
"""Seconds a partial batch waits for more items (a full batch goes at once)."""


class Batcher(Generic[T, R]):
    """Collects items from concurrent callers and sends them ``max_size`` at a time.

    Args:
        send: Sends one batch; returns one entry per item, in order: the item's result or an exception
            instance (that item's error). An exception raised by ``send`` is every item's error.
        max_size: Items per batch (Asana: 10 actions; Jira: 50 issues).
        linger: Seconds a partial batch waits for more items before it is sent.
        max_in_flight: Batches sent at once.
        name: Names the batcher in log lines.
    """

    def __init__(
        self,
        send: Callable[[list[T]], Awaitable[Sequence[R | BaseException]]],
        *,
        max_size: int,
        linger: float = DEFAULT_LINGER,
        max_in_flight: int = 1,
        name: str = "batch",
    ) -> None:
        """Check the limits; nothing is sent until an item is submitted."""
        if max_size < 1:
            raise ConfigError(f"Batcher {name}: max_size must be >= 1, got {max_size!r}")
        if max_in_flight < 1:
            raise ConfigError(f"Batcher {name}: max_in_flight must be >= 1, got {max_in_flight!r}")
        if linger < 0:
            raise ConfigError(f"Batcher {name}: linger must be >= 0, got {linger!r}")
        self._send = send
        self.max_size = max_size
        self.linger = linger
        self.max_in_flight = max_in_flight
        self.name = name
        self.batches = 0
        """Batches sent so far."""
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._slots: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        """Add ``item`` to the next batch and wait for its own answer.

        Returns:
            The item's result.

        Raises:
            BaseException: The item's own error, or the error of the whole batch it was sent in.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if len(self._pending) >= self.max_size:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.linger, self._flush)
        return await future

    def _flush(self) -> None:
        """Start sending what is pending, ``max_size`` items a batch."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._pending:
            batch, self._pending = self._pending[: self.max_size], self._pending[self.max_size :]
            # A caller cancelled while waiting (its pass stopped) is not sent.
            batch = [(item, future) for item, future in batch if not future.done()]
            if not batch:
                continue
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_in_flight)
        async with self._slots:
            batch = [(item, future) for item, future in batch if not future.done()]
            if not batch:
                return
            self.batches += 1
            try:
                results = list(await self._send([item for item, _ in batch]))
                if len(results) != len(batch):
                    raise RuntimeError(f"Batcher {self.name}: {len(results)} results for a batch of {len(batch)} items")
            except BaseException as err:  # every caller of the batch gets the batch's error
                for _, future in batch:
                    if future.done():
                        continue
                    if isinstance(err, asyncio.CancelledError):
                        future.cancel()  # the batch was cancelled (its loop is closing): so are its callers
                    else:
                        future.set_exception(err)
                if not isinstance(err, Exception):
                    raise  # cancellation and exits go on after the callers are told
                return
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def aclose(self) -> None:
        """Send what is pending and wait for every batch in flight."""
        self._flush()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

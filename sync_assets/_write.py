"""The writing step of a page: send a plan's creates and updates with bounded concurrency.

Every write is isolated: a record's own failure (a ``RecordError``, a 4xx) is noted and the others go
on; an error that says the service or the credential is in trouble (``fatal``) stops the remaining
writes of the page at once and is handed back, so that the engine commits what was written before
it raises. The writer only writes and counts; committing the page is the engine's.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from connectors.core import DestinationHTTPError, DestinationSession, Record, RecordError, describe_error

__all__ = ["PageWriter", "WriteCounts", "WriteResult"]


class WriteCounts(Protocol):
    """The counters a writer adds to (``sync_assets.engine.PassStats``)."""

    created: int
    updated: int
    skipped: int
    destination_calls: int


class CommitLink(Protocol):
    """Commits one link at once (for a destination that cannot hold our key)."""

    def __call__(self, key: str, destination_id: str, content_hash: str) -> None:
        """Store ``key -> destination_id`` with the hash that was sent, in its own transaction."""
        ...


@dataclass
class WriteResult:
    """What a page's writes did.

    Attributes:
        linked: ``(key, destination_id, hash)`` of rows created or updated, to link with the page.
        unlinked: ``(key, hash)`` of rows created whose id the destination did not return.
        dropped: Keys whose create was refused or skipped: their intent is dropped.
        failures: ``(key, why)`` of records that failed on their own.
        fatal: The error that stopped the page's writes, if any.
    """

    linked: list[tuple[str, str, str | None]] = field(default_factory=list)
    unlinked: list[tuple[str, str]] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    fatal: BaseException | None = None


class PageWriter:
    """Sends one page's creates and updates through a destination session.

    Args:
        session: The destination session.
        synced_at: The pass's sync time, handed to every write.
        stats: Counters to add created/updated/skipped rows and destination calls to.
        failures: Where per-record failures go (the page's failure list, so their order is kept).
        create_only: Properties left out of updates.
        concurrency: Writes in flight at once.
        is_fatal: Whether an error stops the page's writes (auth, a service in trouble, cancellation).
        commit_link: Set for a destination that cannot hold our key: a create's link is committed at
            once instead of with the page.
    """

    def __init__(
        self,
        session: DestinationSession,
        synced_at: dt.datetime,
        stats: WriteCounts,
        failures: list[tuple[str, str]],
        *,
        create_only: frozenset[str],
        concurrency: int,
        is_fatal: Callable[[BaseException], bool],
        commit_link: CommitLink | None = None,
    ) -> None:
        """Bind the writer to a session and the page's failure list."""
        self.session = session
        self.synced_at = synced_at
        self.stats = stats
        self.create_only = create_only
        self.concurrency = concurrency
        self.is_fatal = is_fatal
        self.commit_link = commit_link
        self.result = WriteResult(failures=failures)
        self.stop = asyncio.Event()

    async def write(self, creates: list[tuple[Record, str]], updates: list[tuple[Record, str, str]]) -> WriteResult:
        """Send ``creates``, then ``updates``; returns what was written and the error that stopped it, if any."""
        jobs = self._jobs(creates, updates)
        workers = min(self.concurrency, len(creates) + len(updates))
        if workers == 1:
            for job in jobs:
                await job
        elif workers > 1:
            # A few workers draining one queue, not a task per record: at 100 records a page the
            # task bookkeeping would cost more than an in-memory or local write.
            async def worker() -> None:
                for job in jobs:
                    await job

            await asyncio.gather(*(worker() for _ in range(workers)))
        return self.result

    def _jobs(
        self, creates: list[tuple[Record, str]], updates: list[tuple[Record, str, str]]
    ) -> Iterator[Coroutine[Any, Any, None]]:
        # Each write's coroutine is made when a worker takes it, not before.
        for record, h in creates:
            yield self._create(record, h)
        for record, existing_id, h in updates:
            yield self._update(record, existing_id, h)

    async def _create(self, record: Record, h: str) -> None:
        if self.stop.is_set():
            return
        stats, result = self.stats, self.result
        try:
            stats.destination_calls += 1
            created = await self.session.create(record, self.synced_at)
        except BaseException as err:
            self._failed(record, err, dropped=isinstance(err, (RecordError, DestinationHTTPError)))
            return
        if created is False:
            stats.skipped += 1
            result.dropped.append(record.primary_key)
        elif created is True or created is None:
            stats.created += 1
            result.unlinked.append((record.primary_key, h))
        elif self.commit_link is not None:
            # The destination cannot hold our key (Luma): the link map is the only record of
            # this row, so commit it now rather than with the page — the window in which a
            # crash forgets a created row shrinks from a page of writes to one local commit.
            stats.created += 1
            self.commit_link(record.primary_key, str(created), h)
        else:
            stats.created += 1
            result.linked.append((record.primary_key, str(created), h))

    async def _update(self, record: Record, existing_id: str, h: str) -> None:
        if self.create_only:
            record = Record(
                record.primary_key,
                {k: v for k, v in record.properties.items() if k not in self.create_only},
                record.body,
            )
        if self.stop.is_set():
            return
        try:
            self.stats.destination_calls += 1
            ok = await self.session.update(existing_id, record, self.synced_at)
        except BaseException as err:
            self._failed(record, err, dropped=False)
            return
        if ok is False:
            self.stats.skipped += 1
        else:
            self.stats.updated += 1
            self.result.linked.append((record.primary_key, existing_id, h))

    def _failed(self, record: Record, err: BaseException, *, dropped: bool) -> None:
        result = self.result
        if self.is_fatal(err):
            result.fatal = result.fatal or err
            self.stop.set()
            return
        result.failures.append((record.primary_key, describe_error(err)))
        if dropped:
            result.dropped.append(record.primary_key)  # rejected: the row was not created

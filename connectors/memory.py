"""In-memory source and destination: for tests, benchmarks and users' own unit tests of routes.

``MemoryDestination`` behaves like a real key-storing API: every create makes a new row with a new
id (it never deduplicates on the key by itself, so a platform bug would show up as a duplicate row),
listing pages through the rows, and calls can be given latency and injected failures.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from connectors.core import (
    AuthError,
    Record,
    RecordError,
    SourceSpec,
    auth_error_in_chain,
)
from connectors.http import drain_pages

__all__ = ["MemoryDestination", "MemoryRow", "MemorySource"]


class MemorySource:
    """A source over records held in memory, paged ``page_size`` at a time.

    Args:
        records: Records per spec key (``{"tasks": [Record, ...]}``), or one list for a single spec
            named ``default``.
        page_size: Records per page.
        name: Source name (the source system shown in the asset graph).
        interval_minutes: Interval of every spec.
        fail_at_page: Optional ``{page_index: exception}``; fetching that page raises it once.
    """

    def __init__(
        self,
        records: dict[str, Sequence[Record]] | Sequence[Record],
        *,
        page_size: int = 100,
        name: str = "memory",
        interval_minutes: int = 30,
        fail_at_page: dict[int, BaseException] | None = None,
    ) -> None:
        """Hold the records; they are read page by page when a pass fetches a spec."""
        self.name = name
        self.records: dict[str, list[Record]] = (
            {k: list(v) for k, v in records.items()} if isinstance(records, dict) else {"default": list(records)}
        )
        self.page_size = page_size
        self.interval_minutes = interval_minutes
        self.fail_at_page = dict(fail_at_page or {})
        self.pages_fetched = 0

    def specs(self) -> list[SourceSpec]:
        """One spec per key of ``records``, each with the source's ``interval_minutes``."""
        return [SourceSpec(key, self.interval_minutes) for key in self.records]

    async def fetch_page(
        self, spec: SourceSpec, only_items: list[str] | None, cursor: str | None
    ) -> tuple[list[Record], str | None]:
        """One page of a spec, or the records named in ``only_items`` (all on one page).

        Args:
            spec: The spec to read.
            only_items: Primary keys to return (a targeted pass), or None for every record.
            cursor: The cursor the previous page returned (None for the first page).

        Returns:
            The page's records and the next page's cursor (None after the last page).

        Raises:
            BaseException: The exception ``fail_at_page`` holds for this page, once.
        """
        rows = self.records[spec.key]
        if only_items is not None:
            wanted = set(only_items)
            return [r for r in rows if r.primary_key in wanted], None
        start = int(cursor or 0)
        page = start // self.page_size
        if page in self.fail_at_page:
            raise self.fail_at_page.pop(page)
        self.pages_fetched += 1
        end = start + self.page_size
        return list(rows[start:end]), (str(end) if end < len(rows) else None)

    async def fetch(self, spec: SourceSpec, only_items: list[str] | None = None) -> list[Record]:
        """Every record of a spec (or those in ``only_items``), page by page."""
        return await drain_pages(self.fetch_page, spec, only_items)


@dataclass(slots=True)
class MemoryRow:
    """One row of a ``MemoryDestination``: its id, our key, what was written and when."""

    id: str
    key: str
    properties: dict[str, Any]
    body: str | None
    synced_at: dt.datetime
    created_at: dt.datetime


@dataclass
class _Counters:
    creates: int = 0
    updates: int = 0
    list_calls: int = 0

    @property
    def writes(self) -> int:
        return self.creates + self.updates

    @property
    def calls(self) -> int:
        return self.writes + self.list_calls


class MemoryDestination:
    """A destination in memory that stores our key on each row, as Notion or Asana do.

    Args:
        name: Destination name.
        create_only_properties: Properties written on create only.
        latency: Seconds each call sleeps (simulates a remote API).
        list_page_size: Rows per listing call (each counts as one call).
        max_concurrency: Writes in flight at once.
        fail: Optional ``fail(op, record) -> BaseException | None`` to inject a failure per call
            (``op`` is ``"create"`` or ``"update"``).
        max_value_length: Longest string accepted.
        rate_limit_key: What the destination's rate limit is shared by (default: ``name``).
    """

    def __init__(
        self,
        *,
        name: str = "memory",
        create_only_properties: Iterable[str] = (),
        latency: float = 0.0,
        list_page_size: int = 100,
        max_concurrency: int = 8,
        fail: Callable[[str, Record], BaseException | None] | None = None,
        max_value_length: int | None = None,
        rate_limit_key: str | None = None,
    ) -> None:
        """Start empty; ``credential`` is ``"token-1"`` (set it to None and every write is rejected)."""
        self.name = name
        self.configured = True
        self.create_only_properties = set(create_only_properties)
        self.latency = latency
        self.list_page_size = list_page_size
        self.max_concurrency = max_concurrency
        self.fail = fail
        self.stores_keys = True
        self.max_value_length = max_value_length
        self.rate_limit_key = rate_limit_key or name
        self.rows: dict[str, MemoryRow] = {}
        self.counters = _Counters()
        self.credential = "token-1"
        self._ids = itertools.count(1)

    @property
    def config_hint(self) -> str:
        """What to configure: nothing, a memory destination is always configured."""
        return "always configured"

    def describe(self) -> str:
        """Where the rows are, for the asset's metadata."""
        return f"memory://{self.name} ({len(self.rows)} rows)"

    def credential_fingerprint(self) -> str | None:
        """The current credential (it changes when a test "renews" it)."""
        return self.credential

    @staticmethod
    def is_auth_error(err: BaseException) -> bool:
        """Whether ``err`` or an error in its chain is an ``AuthError``."""
        return auth_error_in_chain(err)

    # Inspection helpers for tests.
    def rows_by_key(self) -> dict[str, list[MemoryRow]]:
        """Every row per primary key (more than one under a key is a duplicate)."""
        out: dict[str, list[MemoryRow]] = {}
        for row in self.rows.values():
            out.setdefault(row.key, []).append(row)
        return out

    def duplicates(self) -> dict[str, int]:
        """The keys with more than one row, and how many rows each has."""
        return {k: len(v) for k, v in self.rows_by_key().items() if len(v) > 1}

    def row(self, key: str) -> MemoryRow:
        """The one row of ``key`` (fails unless there is exactly one)."""
        (found,) = self.rows_by_key()[key]
        return found

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[_MemorySession]:
        """A session over this destination (one pass)."""
        yield _MemorySession(self)


class _MemorySession:
    def __init__(self, dest: MemoryDestination) -> None:
        self.dest = dest

    async def _call(self, op: str, record: Record | None = None) -> None:
        if self.dest.latency:
            await asyncio.sleep(self.dest.latency)
        if self.dest.fail is not None and record is not None:
            err = self.dest.fail(op, record)
            if err is not None:
                raise err

    async def query_existing_rows(self) -> AsyncIterator[tuple[str, str]]:
        rows = list(self.dest.rows.values())
        for i in range(0, max(len(rows), 1), self.dest.list_page_size):
            self.dest.counters.list_calls += 1
            await self._call("list")
            for row in rows[i : i + self.dest.list_page_size]:
                yield row.key, row.id

    async def query_existing_ids(self) -> dict[str, str]:
        return {key: rid async for key, rid in self.query_existing_rows()}

    async def create(self, record: Record, synced_at: dt.datetime) -> str:
        await self._call("create", record)
        if self.dest.credential is None:
            raise AuthError("memory destination: credential revoked (401 unauthorized)")
        rid = f"row-{next(self.dest._ids)}"
        self.dest.rows[rid] = MemoryRow(
            id=rid,
            key=record.primary_key,
            properties=dict(record.properties),
            body=record.body,
            synced_at=synced_at,
            created_at=synced_at,
        )
        self.dest.counters.creates += 1
        return rid

    async def update(self, existing_id: str, record: Record, synced_at: dt.datetime) -> bool:
        await self._call("update", record)
        if self.dest.credential is None:
            raise AuthError("memory destination: credential revoked (401 unauthorized)")
        row = self.dest.rows.get(existing_id)
        if row is None:
            raise RecordError(f"memory destination: row {existing_id} not found (404)")
        # Create-only properties are stripped by the engine; honour them here too, as a real
        # destination must when called directly.
        for k, v in record.properties.items():
            if k not in self.dest.create_only_properties:
                row.properties[k] = v
        row.body = record.body
        row.synced_at = synced_at
        self.dest.counters.updates += 1
        return True

"""Shared pieces of the benchmarks: a synthetic source and light destinations. Not a test."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import resource
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from connectors.core import Record, SourceSpec

BASE_DATE = dt.date(2024, 1, 1)
BASE_TIME = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


class SyntheticSource:
    """N records with 6 neutral properties, generated page by page (nothing held in memory)."""

    name = "synthetic"

    def __init__(self, n: int, *, page_size: int = 100, version: int = 0) -> None:
        self.n, self.page_size, self.version = n, page_size, version

    def specs(self) -> list[SourceSpec]:
        return [SourceSpec("all", 30)]

    def record(self, i: int) -> Record:
        return Record(
            f"rec-{i:08d}",
            {
                "Name": f"Record {i} v{self.version}",
                "Count": i,
                "Score": i / 7,
                "Active": i % 3 == 0,
                "Tags": ["alpha", "beta"] if i % 2 else ["gamma"],
                "Due": BASE_DATE + dt.timedelta(days=i % 365),
            },
        )

    async def fetch_page(self, spec, only_items, cursor):
        start = int(cursor or 0)
        end = min(start + self.page_size, self.n)
        page = [self.record(i) for i in range(start, end)]
        return page, (str(end) if end < self.n else None)

    async def fetch(self, spec, only_items=None):
        raise NotImplementedError


class NullDestination:
    """Accepts every write, keeps nothing (so a 1,000,000-record run measures the platform only)."""

    name = "null"
    configured = True
    create_only_properties: set[str] = set()
    config_hint = ""
    # Neither "holds our keys" (it lists nothing) nor "cannot" (which makes the engine commit each
    # create on its own): unknown, as for a ported durable-sync destination.
    stores_keys = None
    max_concurrency = 1

    def __init__(self) -> None:
        self.ids = itertools.count(1)
        self.writes = 0

    @staticmethod
    def is_auth_error(err: BaseException) -> bool:
        return False

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[NullDestination]:
        yield self

    async def query_existing_ids(self) -> dict[str, str]:
        return {}

    async def create(self, record, synced_at) -> str:
        self.writes += 1
        return f"n{next(self.ids)}"

    async def update(self, existing_id, record, synced_at) -> bool:
        self.writes += 1
        return True


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(coro):
    return asyncio.run(coro)

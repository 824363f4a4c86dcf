"""Routes over in-memory connectors for the Dagster-level tests."""

from __future__ import annotations

import dagster as dg

from connectors.core import Record
from connectors.memory import MemoryDestination, MemorySource
from sync_assets.routes import Route

FAST_RETRY = dg.RetryPolicy(max_retries=3, delay=0.01, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


def records(n: int, version: int = 0, prefix: str = "k") -> list[Record]:
    return [Record(f"{prefix}{i:04d}", {"Name": f"{prefix} {i} v{version}", "Rank": i}) for i in range(n)]


def memory_route(specs: dict[str, list[Record]] | None = None, *, page_size: int = 100, **dest_kw) -> Route:
    source = MemorySource(specs or {"all": records(250)}, page_size=page_size)
    return Route(source, MemoryDestination(**dest_kw))

"""The code location of the Dagster concurrency tests (loaded by the real webserver, daemon and run workers).

One route, ``conc``: a generated source with one spec per partition the test names, written by the
real ``NotionDestination`` (REST) into one database of the fake Notion served on a loopback port. The
fake never deduplicates, so two passes writing one partition at once would show as duplicate pages.

Configuration comes from environment variables the test sets:

- ``RELIAB_SPECS``: ``name=count,...``, the specs (partitions) and how many records each has; keys
  are ``<name>-<i:04d>``, so every partition's rows are told apart in the shared database.
- ``RELIAB_DIR``: where each page fetch writes the worker's PID (``pid-<spec>``), so the test knows
  which process to SIGKILL.
- ``RELIAB_PAGE_SIZE``: records per source page (every page is a checkpoint).
- ``NOTION_API_URL``, ``NOTION_TOKEN``, ``NOTION_DATABASE_ID``, ``NOTION_REQUESTS_PER_SECOND``: the
  destination; its rate is the write latency that makes passes overlap.
"""

from __future__ import annotations

import os
from pathlib import Path

from connectors.core import Record, SourceSpec
from connectors.http import Rate
from connectors.memory import MemorySource
from connectors.notion import NotionDestination
from sync_assets import Route, build_definitions

ROUTE = "conc"
DIR = Path(os.environ.get("RELIAB_DIR", "/nonexistent"))


def parse_specs(raw: str) -> dict[str, int]:
    """``"a=3,b=5"`` -> ``{"a": 3, "b": 5}``."""
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        name, _, count = part.partition("=")
        out[name.strip()] = int(count)
    return out


def record_keys(spec: str, count: int) -> list[str]:
    """The primary keys of one spec, as the source makes them."""
    return [f"{spec}-{i:04d}" for i in range(count)]


class PidMemorySource(MemorySource):
    """Generated records; every page fetch notes the worker's PID for the test."""

    def __init__(self, sizes: dict[str, int], *, page_size: int) -> None:
        records = {
            spec: [Record(key, {"Name": f"record {key}", "Count": i}) for i, key in enumerate(record_keys(spec, n))]
            for spec, n in sizes.items()
        }
        # A long interval: the dispatcher adds the partitions; the test launches the runs.
        super().__init__(records, page_size=page_size, name="generated", interval_minutes=24 * 60)

    def specs(self) -> list[SourceSpec]:
        return [SourceSpec(key, self.interval_minutes) for key in self.records]

    async def fetch_page(self, spec, only_items, cursor):  # the Source protocol
        if DIR.is_dir():
            (DIR / f"pid-{spec.key}").write_text(str(os.getpid()))
        return await super().fetch_page(spec, only_items, cursor)


def notion_destination() -> NotionDestination:
    """The destination exactly as a deployment builds it, pointed at the fake by env vars."""
    return NotionDestination(
        base_url=os.environ.get("NOTION_API_URL", "").strip() or "https://api.notion.com",
        rate=Rate(float(os.environ.get("NOTION_REQUESTS_PER_SECOND", "3")), 1, burst=3),
        key_property="Key",
        title_property="Name",
    )


def build_route() -> Route:
    sizes = parse_specs(os.environ.get("RELIAB_SPECS", "none=1"))
    source = PidMemorySource(sizes, page_size=int(os.environ.get("RELIAB_PAGE_SIZE", "25")))
    return Route(source, notion_destination(), name=ROUTE)


defs = build_definitions([build_route()])

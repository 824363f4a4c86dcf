"""Notion rate-limit benchmark: how close an initial sync gets to Notion's limit, in real time.

The fake Notion (``tests/fakes/notion.py``) is served on a real loopback port with its token bucket
at Notion's documented average of 3 requests/s (burst: the fake's default, 10). A route from a
``MemorySource`` of N records into a ``NotionDestination`` pointed at it, through the normal HTTP
client (``connectors.http``: the per-credential limiter, Retry-After blocks, retries), runs as ONE
engine pass on a temporary SQLite ``StateStore``. Nothing is faked in time: this measures the real
limiter against a real server.

Target (from the issue): an initial sync of 500 records achieves >= 90% of the limit with <= 1% of
the requests answered 429, and leaves exactly 500 pages with no duplicate keys.

Prints one JSON object. Figures:

- ``requests``: requests the fake received (every answer, 429s included); ``answered_429``, ``pct_429``.
- ``wall_seconds``: the whole ``run_pass`` (connect, resolve, reconcile listing, creates, commits).
- ``requests_per_second`` = requests / wall; ``accepted_per_second`` counts only the requests the
  fake let through (the ones the limit is about). ``fraction_of_limit`` = accepted_per_second / rate
  (the stricter of the two; ``fraction_of_limit_all_requests`` uses every request).
- ``request_window_seconds``: first to last request as the server saw them (excludes local start-up).
- ``pages``, ``distinct_keys``, ``duplicate_keys``: what the fake holds afterwards.

``--rate R`` runs the fake at R requests/s and scales the client's limiter by R / 3 (same burst
counts), i.e. the same experiment with time compressed: ``--rate 30 --records 300`` takes seconds.
The default (3/s, 500 records) is the real target and takes about 3 minutes.

Usage: python bench/notion_rate_bench.py [--records N] [--rate R] [--burst B]
                                         [--client-rate R] [--client-burst B]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connectors.core import Record
from connectors.http import Rate
from connectors.memory import MemorySource
from connectors.notion import NotionDestination
from connectors.notion.settings import NOTION_RATE
from sync_assets.engine import PassOptions, run_pass
from sync_assets.routes import Route
from sync_assets.state import StateStore
from tests.fakes.notion import FakeNotion, serve

NOTION_AVERAGE = 3.0  # requests/s: Notion's documented average per integration
TARGET_FRACTION = 0.90
TARGET_MAX_429_PCT = 1.0
BASE_DATE = dt.date(2024, 1, 1)

SCHEMA = {
    "Name": "title",
    "Key": "rich_text",
    "Count": "number",
    "Active": "checkbox",
    "Tags": {"type": "multi_select", "options": ["alpha", "beta", "gamma"]},
    "Due": "date",
    "Last synced": "date",
}


def records(n: int) -> list[Record]:
    return [
        Record(
            f"rec-{i:05d}",
            {
                "Name": f"Record {i}",
                "Count": i,
                "Active": i % 3 == 0,
                "Tags": ["alpha", "beta"] if i % 2 else ["gamma"],
                "Due": BASE_DATE + dt.timedelta(days=i % 365),
            },
        )
        for i in range(n)
    ]


class RequestTimes:
    """ASGI wrapper recording when each HTTP request reached the server (monotonic seconds)."""

    def __init__(self, app) -> None:
        self.app = app
        self.times: list[float] = []

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            self.times.append(time.monotonic())
        await self.app(scope, receive, send)


def client_rate(args: argparse.Namespace) -> Rate:
    """The client's limiter: NOTION_RATE, scaled by rate / 3 when the fake runs at another rate."""
    scale = args.rate / NOTION_AVERAGE
    requests = args.client_rate if args.client_rate is not None else NOTION_RATE.requests * scale
    per = 1.0 if args.client_rate is not None else NOTION_RATE.per_seconds
    burst = args.client_burst if args.client_burst is not None else NOTION_RATE.burst
    return Rate(requests, per, burst=burst)


async def one_pass(route: Route, store: StateStore):
    return await run_pass(route, "default", store, PassOptions())


def bench(args: argparse.Namespace) -> dict:
    fake = FakeNotion(rate=args.rate, burst=args.burst)  # real clock
    database = fake.add_database(SCHEMA, title="Rate bench")
    ds_id = database.data_source_ids[0]
    timing = RequestTimes(fake.app)
    fake.app = timing  # serve() runs fake.app
    rate = client_rate(args)
    threads_before = {t.ident for t in threading.enumerate()}

    with tempfile.TemporaryDirectory() as tmp, serve(fake) as base_url:
        store = StateStore(f"sqlite:///{tmp}/state.sqlite3")
        try:
            dest = NotionDestination(
                database.id, token=fake.token, token_env=None, database_id_env=None, base_url=base_url, rate=rate
            )
            route = Route(MemorySource(records(args.records)), dest, name="bench_notion_rate")
            t0 = time.perf_counter()
            result = asyncio.run(one_pass(route, store))
            wall = time.perf_counter() - t0
        finally:
            store.dispose()
    leftover = [t.name for t in threading.enumerate() if t.ident not in threads_before and t.is_alive()]

    counters = fake.counters
    statuses = Counter(r.status for r in fake.log)
    pages = fake.pages(ds_id)
    keys = Counter(fake.values(p.id)["Key"] for p in pages)
    expected = {r.primary_key for r in records(args.records)}
    accepted = counters.requests - counters.rate_limited
    window = (timing.times[-1] - timing.times[0]) if len(timing.times) > 1 else 0.0
    fraction = accepted / wall / args.rate
    pct_429 = 100.0 * counters.rate_limited / counters.requests if counters.requests else 0.0
    integrity = len(pages) == args.records and len(keys) == args.records and set(keys) == expected
    return {
        "bench": "notion_rate",
        "records": args.records,
        "fake_limit": {"rate_per_second": args.rate, "burst": args.burst},
        "client_limiter": {
            "requests": rate.requests,
            "per_seconds": rate.per_seconds,
            "burst": rate.capacity,
            "rate_per_second": round(rate.requests / rate.per_seconds, 4),
        },
        "engine_concurrency": dest.max_concurrency,
        "requests": counters.requests,
        "answered_429": counters.rate_limited,
        "pct_429": round(pct_429, 3),
        "status_counts": {str(k): v for k, v in sorted(statuses.items())},
        "wall_seconds": round(wall, 2),
        "request_window_seconds": round(window, 2),
        "requests_per_second": round(counters.requests / wall, 3),
        "accepted_per_second": round(accepted / wall, 3),
        "accepted_per_second_in_window": round((accepted - 1) / window, 3) if window else None,
        "fraction_of_limit": round(fraction, 4),
        "fraction_of_limit_all_requests": round(counters.requests / wall / args.rate, 4),
        "created": result.stats.created,
        "failed": result.stats.failed,
        "failures": result.failures[:5],
        "pages": len(pages),
        "distinct_keys": len(keys),
        "duplicate_keys": sum(1 for c in keys.values() if c > 1),
        "integrity_ok": integrity,
        "target": {"min_fraction": TARGET_FRACTION, "max_pct_429": TARGET_MAX_429_PCT},
        "target_met": fraction >= TARGET_FRACTION and pct_429 <= TARGET_MAX_429_PCT and integrity,
        "leftover_threads": leftover,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--records", type=int, default=500, help="records in the source (default 500)")
    p.add_argument("--rate", type=float, default=NOTION_AVERAGE, help="the fake's requests/s (default 3)")
    p.add_argument("--burst", type=int, default=10, help="the fake's burst (default 10, FakeNotion's default)")
    p.add_argument("--client-rate", type=float, help="override the client's requests/s (default: NOTION_RATE scaled)")
    p.add_argument("--client-burst", type=int, help="override the client's burst (default: NOTION_RATE's)")
    p.add_argument("--log", default="WARNING", help="log level (INFO shows every retry)")
    args = p.parse_args()
    logging.basicConfig(level=args.log.upper(), stream=sys.stderr)
    out = bench(args)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

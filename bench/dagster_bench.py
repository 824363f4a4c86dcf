"""Dagster-level benchmark: one partition of N records materialized through ``materialize_route``.

Measures the wall time of the whole Dagster run (asset body, checks, metadata, IO manager) and the
peak RSS of the process, for a first pass and a second pass over unchanged data.

Usage: python bench/dagster_bench.py [--n 100000] [--destination memory|null]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import NullDestination, SyntheticSource, peak_rss_mb
from connectors.memory import MemoryDestination
from sync_assets.routes import Route
from sync_assets.state import StateStore
from sync_assets.testing import materialize_route


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--destination", choices=["memory", "null"], default="memory")
    args = p.parse_args()
    logging.getLogger("dagster").setLevel(logging.WARNING)
    dest = MemoryDestination(max_concurrency=8) if args.destination == "memory" else NullDestination()
    route = Route(SyntheticSource(args.n), dest, name="bench_dagster")
    with tempfile.TemporaryDirectory() as tmp:
        store = StateStore(f"sqlite:///{tmp}/state.sqlite3")
        out: dict = {"scenario": "dagster_materialize", "n": args.n, "destination": args.destination}
        for label in ("pass1", "pass2"):
            t0 = time.perf_counter()
            run = materialize_route(route, store=store)
            wall = time.perf_counter() - t0
            if not run.success:
                raise SystemExit(f"{label} failed: {run.failure}")
            stats = run.stats
            out[f"{label}_wall_seconds"] = round(wall, 2)
            out[f"{label}_records_per_second"] = round(args.n / wall)
            out[f"{label}_created"] = stats.created
            out[f"{label}_unchanged"] = stats.unchanged
        out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

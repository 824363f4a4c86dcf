"""Engine benchmark: throughput, destination calls and memory of one partition's passes.

Prints one JSON object per scenario and a summary. Each scenario runs in its own process so that
its peak RSS is its own. Scenarios (targets from the spine issue, on a 2-core machine):

- ``throughput``: N=100,000, in-memory destination, SQLite state. Pass 1 >= 20,000 records/s;
  pass 2 over unchanged data: 0 writes; a forced reconcile lists in at most ceil(N/100) calls.
- ``latency``: N=10,000 with 5 ms per destination call: >= 1,500 records/s.
- ``million``: N=1,000,000 through the engine: peak RSS <= 400 MB.
- ``lease_cost``: pass 1, N=100,000, with the partition lease and with it switched off: within 5 %.

Usage: python bench/engine_bench.py [--scenario NAME] [--n N] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import NullDestination, SyntheticSource, peak_rss_mb, run
from connectors.memory import MemoryDestination
from sync_assets.engine import PassOptions, run_pass
from sync_assets.routes import Route
from sync_assets.state import StateStore


def _store(tmp: str) -> StateStore:
    return StateStore(f"sqlite:///{tmp}/state.sqlite3")


def scenario_throughput(n: int, tmp: str) -> dict:
    dest = MemoryDestination(max_concurrency=8)
    route = Route(SyntheticSource(n), dest, name="bench_throughput")
    store = _store(tmp)
    t0 = time.perf_counter()
    r1 = run(run_pass(route, "all", store))
    pass1 = time.perf_counter() - t0
    calls1 = dest.counters.calls
    t0 = time.perf_counter()
    r2 = run(run_pass(route, "all", store))
    pass2 = time.perf_counter() - t0
    calls2 = dest.counters.calls - calls1
    writes2 = r2.stats.created + r2.stats.updated
    # A pass 3 with a destination listing (as the daily reconcile does): the listing must cost
    # one call per 100 rows, never one per page or per record. The first pass listed an empty
    # destination a moment ago, so age that listing first.
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE ds_route_state SET last_reconciled_at = '2000-01-01 00:00:00.000000'")
    lists_before = dest.counters.list_calls
    t0 = time.perf_counter()
    r3 = run(run_pass(route, "all", store, PassOptions(reconcile=True)))
    pass3 = time.perf_counter() - t0
    return {
        "scenario": "throughput",
        "n": n,
        "pass1_seconds": round(pass1, 3),
        "pass1_records_per_second": round(n / pass1),
        "pass1_destination_calls": calls1,
        "pass2_seconds": round(pass2, 3),
        "pass2_records_per_second": round(n / pass2),
        "pass2_writes": writes2,
        "pass2_destination_calls": calls2,
        "reconcile_pass_seconds": round(pass3, 3),
        "reconcile_list_calls": dest.counters.list_calls - lists_before,
        "reconcile_list_call_limit": math.ceil(n / 100),
        "reconciled": r3.stats.reconciled,
        "created": r1.stats.created,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def scenario_latency(n: int, tmp: str) -> dict:
    dest = MemoryDestination(latency=0.005, max_concurrency=16)
    route = Route(SyntheticSource(n), dest, name="bench_latency")
    t0 = time.perf_counter()
    r = run(run_pass(route, "all", _store(tmp)))
    secs = time.perf_counter() - t0
    return {
        "scenario": "latency",
        "n": n,
        "latency_ms_per_call": 5,
        "max_concurrency": dest.max_concurrency,
        "seconds": round(secs, 3),
        "records_per_second": round(n / secs),
        "destination_calls": dest.counters.calls,
        "created": r.stats.created,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def scenario_million(n: int, tmp: str) -> dict:
    dest = NullDestination()
    route = Route(SyntheticSource(n, page_size=100), dest, name="bench_million")
    t0 = time.perf_counter()
    r = run(run_pass(route, "all", _store(tmp)))
    secs = time.perf_counter() - t0
    return {
        "scenario": "million",
        "n": n,
        "seconds": round(secs, 2),
        "records_per_second": round(n / secs),
        "created": r.stats.created,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


class _NoLeaseStore(StateStore):
    """The state store with the partition lease switched off (always granted, never renewed or
    checked): the baseline the lease's cost is measured against. Claims stay (they replaced the
    intents the engine wrote before the lease existed, at the same place in the same transaction)."""

    def acquire_lease(self, route, name, holder, **_kw):  # type: ignore[no-untyped-def,override]
        return True, None

    def renew_lease(self, route, fence, **_kw):  # type: ignore[no-untyped-def,override]
        return True

    def release_lease(self, route, fence, **_kw):  # type: ignore[no-untyped-def,override]
        return None

    def _fence(self, conn, route, fence):  # type: ignore[no-untyped-def,override]
        return None


def scenario_lease_cost(n: int, tmp: str) -> dict:
    """Pass 1 over N records with the partition lease (fenced commits, renewal) and without,
    alternating, three times each; medians."""
    timings: dict[str, list[float]] = {"with_lease": [], "without_lease": []}
    for i in range(6):
        kind = "with_lease" if i % 2 == 0 else "without_lease"
        cls = StateStore if kind == "with_lease" else _NoLeaseStore
        store = cls(f"sqlite:///{tmp}/lease{i}.sqlite3")
        route = Route(SyntheticSource(n), MemoryDestination(max_concurrency=8), name="bench_lease")
        t0 = time.perf_counter()
        run(run_pass(route, "all", store))
        timings[kind].append(time.perf_counter() - t0)
        store.dispose()
    with_s, without_s = (sorted(timings[k])[1] for k in ("with_lease", "without_lease"))
    return {
        "scenario": "lease_cost",
        "n": n,
        "with_lease_records_per_second": round(n / with_s),
        "without_lease_records_per_second": round(n / without_s),
        "lease_cost_pct": round((with_s / without_s - 1) * 100, 1),
        "runs": {k: [round(t, 3) for t in v] for k, v in timings.items()},
    }


SCENARIOS = {
    "lease_cost": (scenario_lease_cost, 100_000),
    "throughput": (scenario_throughput, 100_000),
    "latency": (scenario_latency, 10_000),
    "million": (scenario_million, 1_000_000),
}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--scenario", choices=sorted(SCENARIOS))
    p.add_argument("--n", type=int)
    p.add_argument("--json-out")
    args = p.parse_args()
    if args.scenario:
        fn, default_n = SCENARIOS[args.scenario]
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(fn(args.n or default_n, tmp)))
        return 0
    results = []
    for name in ("throughput", "latency", "million"):
        cmd = [sys.executable, __file__, "--scenario", name]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=os.environ.copy())
        result = json.loads(out.stdout.strip().splitlines()[-1])
        print(json.dumps(result))
        results.append(result)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

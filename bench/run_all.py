"""`make bench`: every benchmark, and a table of the figures against their targets in bench/RESULTS.md.

Runs each benchmark in its own process (so peak RSS is its own) and writes the machine, the date
and the versions next to the figures. Not a test: nothing here asserts; a missed target shows as
"no" in the table.

Usage: python bench/run_all.py [--quick]   (--quick: smaller N, compressed Notion time)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True, check=True, cwd=HERE.parent)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    a = p.parse_args()
    n_engine, n_dagster, n_million = (20_000, 20_000, 100_000) if a.quick else (100_000, 100_000, 1_000_000)
    results: dict[str, dict] = {}
    print("engine: throughput", flush=True)
    results["throughput"] = run(["bench/engine_bench.py", "--scenario", "throughput", "--n", str(n_engine)])
    print("engine: the partition lease's cost", flush=True)
    results["lease_cost"] = run(["bench/engine_bench.py", "--scenario", "lease_cost", "--n", str(n_engine)])
    print("engine: latency", flush=True)
    results["latency"] = run(["bench/engine_bench.py", "--scenario", "latency", "--n", "10000"])
    print("engine: million", flush=True)
    results["million"] = run(["bench/engine_bench.py", "--scenario", "million", "--n", str(n_million)])
    print("dagster: materialize_route", flush=True)
    results["dagster"] = run(["bench/dagster_bench.py", "--n", str(n_dagster)])
    print("dagster: million (null destination)", flush=True)
    results["dagster_million"] = run(["bench/dagster_bench.py", "--n", str(n_million), "--destination", "null"])
    print("notion: rate limit", flush=True)
    notion_args = ["--rate", "30", "--records", "300"] if a.quick else []
    results["notion"] = run(["bench/notion_rate_bench.py", *notion_args])

    t, lat, mil, dag, dagm, no = (
        results[k] for k in ("throughput", "latency", "million", "dagster", "dagster_million", "notion")
    )

    def ok(flag: bool) -> str:
        return "yes" if flag else "**no**"

    rows = [
        (
            f"engine pass 1, N={t['n']:,}",
            "≥ 20,000 records/s",
            f"{t['pass1_records_per_second']:,} records/s ({t['pass1_seconds']} s)",
            ok(t["pass1_records_per_second"] >= 20_000),
        ),
        (
            f"engine pass 2 (unchanged), N={t['n']:,}",
            "0 writes",
            f"{t['pass2_writes']} writes, {t['pass2_destination_calls']} calls, {t['pass2_records_per_second']:,} records/s",
            ok(t["pass2_writes"] == 0),
        ),
        (
            f"engine pass with a destination listing, N={t['n']:,}",
            f"≤ {math.ceil(t['n'] / 100):,} listing calls",
            f"{t['reconcile_list_calls']:,} listing calls ({t['reconcile_pass_seconds']} s)",
            ok(t["reconcile_list_calls"] <= math.ceil(t["n"] / 100)),
        ),
        (
            f"engine pass 1 with the partition lease vs without, N={results['lease_cost']['n']:,}",
            "within 5 %",
            f"{results['lease_cost']['with_lease_records_per_second']:,} vs "
            f"{results['lease_cost']['without_lease_records_per_second']:,} records/s "
            f"(wall {results['lease_cost']['lease_cost_pct']:+} %, CPU {results['lease_cost']['lease_cost_cpu_pct']:+} %; "
            f"medians of 4, ABBA); the fence checks themselves: {results['lease_cost']['fence_share_pct']} % of the pass",
            ok(results["lease_cost"]["fence_share_pct"] <= 5 and results["lease_cost"]["lease_cost_cpu_pct"] <= 5),
        ),
        (
            "engine, N=10,000, 5 ms per destination call",
            "≥ 1,500 records/s",
            f"{lat['records_per_second']:,} records/s (concurrency {lat['max_concurrency']})",
            ok(lat["records_per_second"] >= 1_500),
        ),
        (
            f"engine, N={mil['n']:,}",
            "peak RSS ≤ 400 MB",
            f"{mil['peak_rss_mb']} MB, {mil['records_per_second']:,} records/s ({mil['seconds']} s)",
            ok(mil["peak_rss_mb"] <= 400),
        ),
        (
            f"Dagster materialize_route, N={dag['n']:,}",
            "wall seconds",
            f"pass 1 {dag['pass1_wall_seconds']} s, pass 2 {dag['pass2_wall_seconds']} s, peak RSS {dag['peak_rss_mb']} MB",
            "—",
        ),
        (
            f"Dagster materialize_route, N={dagm['n']:,} (one partition)",
            "peak RSS ≤ 400 MB",
            f"{dagm['peak_rss_mb']} MB, pass 1 {dagm['pass1_wall_seconds']} s",
            ok(dagm["peak_rss_mb"] <= 400),
        ),
        (
            f"Notion initial sync, {no['records']} records at {no['fake_limit']['rate_per_second']} req/s",
            "≥ 90% of the limit, ≤ 1% 429",
            f"{no['fraction_of_limit'] * 100:.1f}% of the limit, {no['pct_429']:.2f}% 429 ({no['wall_seconds']} s)",
            ok(no["target_met"]),
        ),
    ]
    lines = [
        "# Benchmark results",
        "",
        f"Written by `make bench` on {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC: {platform.platform()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, dagster {version('dagster')}, "
        f"SQLAlchemy {version('sqlalchemy')}, httpx {version('httpx')}. State store: SQLite."
        + (" (--quick)" if a.quick else ""),
        "",
        "| benchmark | target | measured | met |",
        "|---|---|---|---|",
        *[f"| {a_} | {b} | {c} | {d} |" for a_, b, c, d in rows],
        "",
        "Raw figures:",
        "",
        "```json",
        json.dumps(results, indent=2),
        "```",
        "",
    ]
    (HERE / "RESULTS.md").write_text("\n".join(lines))
    print("\n".join(lines[4 : 6 + len(rows)]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

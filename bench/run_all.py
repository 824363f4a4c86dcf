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
    text = out.stdout.strip()
    try:
        return json.loads(text.splitlines()[-1])
    except json.JSONDecodeError:  # a bench that prints its JSON indented
        return json.loads(text[text.index("{") :])


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

    print("batch writes: Asana and Jira", flush=True)
    results["batch"] = run(["bench/batch_bench.py"])
    print("two-way: Notion <-> Jira, 10 rounds of edits on both sides", flush=True)
    results["two_way"] = run(["bench/two_way_bench.py"])
    print("shared rate limit: 4 processes per credential", flush=True)
    shared_args = ["--scale", "5", "--records", "1000"] if a.quick else []
    results["shared_limit"] = run(["bench/shared_limit_bench.py", *shared_args])
    if not a.quick:
        print("freshness: webhook to destination write under the daemon", flush=True)
        results["freshness"] = run(["bench/freshness_bench.py"])

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
            f"medians of 4, ABBA, after a warm-up); the fence checks themselves: {results['lease_cost']['fence_share_pct']} % of the pass",
            ok(results["lease_cost"]["lease_cost_pct"] <= 5),  # the figure: pass-1 throughput
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
        (
            f"batch writes, {results['batch']['records']:,} creates",
            "requests per 1,000 creates: Asana ≤ 110, Jira ≤ 30",
            f"Asana {results['batch']['asana']['requests_per_1000_creates']:g} "
            f"(one per create: {results['batch']['asana']['single']['requests']:,}), "
            f"Jira {results['batch']['jira']['requests_per_1000_creates']:g} "
            f"(one per create: {results['batch']['jira']['single']['requests']:,})",
            ok(results["batch"]["asana"]["ok"] and results["batch"]["jira"]["ok"]),
        ),
        (
            f"two-way Notion ⇄ Jira, {results['two_way']['rounds']} rounds, {results['two_way']['edits']} edits",
            "0 echo creates, 0 echo updates, 0 lost edits; conflicts reported",
            f"echo creates {results['two_way']['echo_creates']}, echo updates {results['two_way']['echo_updates']}, "
            f"lost {results['two_way']['lost_edits']}, conflicts {results['two_way']['conflicts']} "
            f"(reported {results['two_way']['conflicts_reported']})",
            ok(
                results["two_way"]["echo_creates"] == 0
                and results["two_way"]["echo_updates"] == 0
                and results["two_way"]["lost_edits"] == 0
                and results["two_way"]["conflicts"] == results["two_way"]["conflicts_reported"]
            ),
        ),
        (
            "shared rate limit, 4 processes per credential",
            "utilization ≥ 0.9, 429s ≤ 1 %",
            ", ".join(
                f"{name}: {c['utilization']:.3f} of the limit, {c['share_429'] * 100:.2f}% 429"
                for name, c in results["shared_limit"]["credentials"].items()
            ),
            ok(results["shared_limit"]["target_met"]),
        ),
    ]
    if "freshness" in results:
        f = results["freshness"]
        rows.append(
            (
                f"webhook → destination write, {f['changes']} changes, real daemon",
                "p50 ≤ 10 s, p95 ≤ 30 s",
                f"p50 {f['p50_seconds']} s, p95 {f['p95_seconds']} s (dominated by {f['dominated_by']})",
                ok(f["p50_seconds"] <= 10 and f["p95_seconds"] <= 30),
            )
        )
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

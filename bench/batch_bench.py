"""Batch-write benchmark: HTTP requests per 1,000 creates into Asana and Jira, batched and one by one.

One engine pass (``run_pass``, temporary SQLite state store) from a ``MemorySource`` of N records
(pages of 100) into each destination, pointed at its stateful fake (``tests/fakes/asana.py``,
``tests/fakes/jira.py``) in-process through ``httpx.ASGITransport``, with the fakes' rate limits off:
this counts requests, it does not measure the APIs' pacing. Each destination runs twice on a fresh
fake: ``batch=True`` (the default: Asana's Batch API, 10 actions a request; Jira's bulk create, 50
issues a request) and ``batch=False`` (one request per create).

Targets (issue 16): at most 110 requests per 1,000 creates into Asana, at most 30 into Jira. The
count is every request the fake answered during the pass: the session's reads (project, custom
fields / field catalog), the reconcile listing (and Jira's read past the search index), and the
writes.

Prints one JSON object: per system and mode ``requests``, ``write_requests`` (the requests that
carried creates), ``created`` (records the engine counted), ``tasks``/``issues`` (objects the fake
holds, each key once: ``duplicate_keys``), ``wall_seconds``; then the targets and ``ok``.

Usage: python bench/batch_bench.py [--records N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from connectors.asana import AsanaDestination
from connectors.core import Record
from connectors.http import HttpSettings, Rate
from connectors.jira import JiraDestination
from connectors.memory import MemorySource
from sync_assets.engine import PassOptions, run_pass
from sync_assets.routes import Route
from sync_assets.state import StateStore
from tests.fakes.asana import FakeAsana
from tests.fakes.jira import SITE, FakeJira

TARGETS = {"asana": 110, "jira": 30}
UNPACED = Rate(100_000, 1, burst=100_000)  # the client's limiter out of the way: requests are counted


def asana_records(n: int) -> list[Record]:
    return [Record(f"rec-{i:05d}", {"Name": f"Record {i}", "Count": i}, body=f"Body {i}") for i in range(n)]


def jira_records(n: int) -> list[Record]:
    return [Record(f"rec-{i:05d}", {"Summary": f"Record {i}", "Labels": ["bench"]}, body=f"Body {i}") for i in range(n)]


def one_pass(route: Route) -> tuple[Any, float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = StateStore(f"sqlite:///{tmp}/state.sqlite3")
        try:
            t0 = time.perf_counter()
            result = asyncio.run(run_pass(route, "all", store, PassOptions()))
            return result, time.perf_counter() - t0
        finally:
            store.dispose()


def asana(n: int, *, batch: bool) -> dict[str, Any]:
    fake = FakeAsana(rate_per_minute=None)
    project = fake.add_project("Batch bench", {"Source ID": "text", "Count": "number"})
    dest = AsanaDestination(
        project.gid,
        token=fake.token,
        token_env=None,
        project_env=None,
        base_url="https://app.asana.com/api/1.0",
        http=HttpSettings(transport=httpx.ASGITransport(app=fake.app)),
        rate=UNPACED,
        batch=batch,
        name=f"bench_asana_{'batch' if batch else 'single'}",
    )
    route = Route(MemorySource({"all": asana_records(n)}, page_size=100), dest, name=dest.name)
    result, wall = one_pass(route)
    keys = Counter(fake.values(t.gid)["Source ID"] for t in fake.tasks(project.gid))
    return {
        "requests": len(fake.log),
        "write_requests": len(fake.requests("POST", r"^/(batch|tasks)$")),
        "created": result.stats.created,
        "tasks": len(keys),
        "duplicate_keys": sum(c - 1 for c in keys.values()),
        "wall_seconds": round(wall, 2),
    }


def jira(n: int, *, batch: bool) -> dict[str, Any]:
    fake = FakeJira(burst=None)
    fake.add_project("ENG", name="Engineering")
    dest = JiraDestination(
        "ENG",
        base_url=SITE,
        email=fake.email,
        token=fake.token,
        base_url_env=None,
        email_env=None,
        token_env=None,
        project_env=None,
        field_map={"Labels": "labels"},
        http=HttpSettings(transport=httpx.ASGITransport(app=fake.app)),
        rate=UNPACED,
        batch=batch,
        name=f"bench_jira_{'batch' if batch else 'single'}",
    )
    route = Route(MemorySource({"all": jira_records(n)}, page_size=100), dest, name=dest.name)
    result, wall = one_pass(route)
    keys = Counter(i.properties["durable-sync"]["pk"] for i in fake.issues("ENG") if "durable-sync" in i.properties)
    return {
        "requests": len(fake.log),
        "write_requests": len(fake.requests("POST", r"/issue(/bulk)?$")),
        "created": result.stats.created,
        "issues": len(keys),
        "duplicate_keys": sum(c - 1 for c in keys.values()),
        "wall_seconds": round(wall, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1000)
    args = parser.parse_args()
    n = args.records
    out: dict[str, Any] = {"records": n}
    for system, run in (("asana", asana), ("jira", jira)):
        batched, single = run(n, batch=True), run(n, batch=False)
        per_1000 = batched["requests"] * 1000 / n
        out[system] = {
            "batch": batched,
            "single": single,
            "requests_per_1000_creates": round(per_1000, 1),
            "target_requests_per_1000": TARGETS[system],
            "ok": per_1000 <= TARGETS[system] and batched["created"] == n and batched["duplicate_keys"] == 0,
        }
    out["ok"] = all(out[s]["ok"] for s in TARGETS)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

"""Production layout on the real PostgreSQL: dagster-webserver and dagster-daemon as separate processes.

Two routes with several partitions are dispatched by the daemon; runs and event logs land in
PostgreSQL; two runs of one partition never overlap; a run worker SIGKILLed mid-pass is retried
by the instance and the retry finishes the pass with no duplicate.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import signal
from pathlib import Path

import pytest
import sqlalchemy as sa

from sync_assets.state import StateStore
from tests.e2e.procs import BIN, REPO, dagster_process, free_port, graphql, wait_for, wait_ready

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

SIZES = {"a1": 120, "a2": 80, "a3": 600, "b1": 150, "b2": 60}


def write_csv(path: Path, n: int, prefix: str) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "title"])
        for i in range(n):
            w.writerow([f"{prefix}-{i:04d}", f"{prefix} {i}"])


def all_runs(port: int) -> list[dict]:
    q = """{ runsOrError { ... on Runs { results { runId status jobName startTime endTime
            tags { key value } } } } }"""
    out = []
    for r in graphql(port, q)["runsOrError"]["results"]:
        r["tags"] = {t["key"]: t["value"] for t in r["tags"]}
        out.append(r)
    return out


def by_partition(runs: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in runs:
        out.setdefault(r["tags"].get("durable_sync/partition", "?"), []).append(r)
    return out


def test_webserver_and_daemon_on_postgres(tmp_path, pg_database):
    data = tmp_path / "data"
    data.mkdir()
    for name, n in SIZES.items():
        write_csv(data / f"{name}.csv", n, name)
    pg_url = pg_database.replace("postgresql://", "postgresql+psycopg2://", 1)
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "deploy" / "dagster-postgres.yaml").read_text())
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        "load_from:\n  - python_module:\n      module_name: tests.e2e.pg_routes\n"
        f"      working_directory: {REPO}\n      location_name: pg_e2e\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DURABLE_SYNC_")}
    env.update(
        DAGSTER_HOME=str(home),
        DAGSTER_PG_URL=pg_url,
        DURABLE_SYNC_STATE_URL=pg_url,
        E2E_DIR=str(data),
        E2E_WRITE_DELAY="0.02",
        PYTHONUNBUFFERED="1",
        PATH=f"{BIN}:{env.get('PATH', '')}",
    )
    port = free_port()
    store = StateStore(pg_url)
    web_cmd = [str(BIN / "dagster-webserver"), "-w", str(workspace), "-h", "127.0.0.1", "-p", str(port)]
    daemon_cmd = [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)]
    with (
        dagster_process(web_cmd, env, tmp_path / "webserver.log") as web,
        dagster_process(daemon_cmd, env, tmp_path / "daemon.log") as daemon,
    ):
        wait_ready(port, web, tmp_path / "webserver.log")

        # The dispatcher starts every partition of both routes. Kill a3's worker mid-pass.
        def a3_half_written():
            path = data / "a.jsonl"
            rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
            return sum(1 for r in rows if r["key"].startswith("a3-")) >= 150 and (data / "pid-a3").exists()

        wait_for(a3_half_written, 120, 0.2, "a3's pass to be under way")
        victim = int((data / "pid-a3").read_text())
        os.kill(victim, signal.SIGKILL)

        def everything_synced():
            runs = by_partition(all_runs(port))
            done = {p for p, rs in runs.items() if any(r["status"] == "SUCCESS" for r in rs)}
            if done >= {f"pg_a/{p}" for p in ("a1", "a2", "a3")} | {"pg_b/b1", "pg_b/b2"}:
                return True
            return {p: [r["status"] for r in rs] for p, rs in runs.items()} or None

        wait_for(everything_synced, 240, 2, "every partition of both routes to sync")
        a3_runs = by_partition(all_runs(port))["pg_a/a3"]
        assert any(r["status"] == "FAILURE" for r in a3_runs), a3_runs
        retry = next(r for r in a3_runs if r["status"] == "SUCCESS")
        assert "dagster/parent_run_id" in retry["tags"]  # the instance's run retry, not a new dispatch

        # Two runs of one partition never overlap: queue two full refreshes of a1 back to back.
        store.enqueue_request("pg_a", "a1", full_refresh=True)
        wait_for(lambda: not store.pending_requests("pg_a"), 30, 0.5, "the first request to be taken")
        store.enqueue_request("pg_a", "a1", full_refresh=True)
        wait_for(
            lambda: sum(r["status"] == "SUCCESS" for r in by_partition(all_runs(port))["pg_a/a1"]) >= 3,
            120,
            1,
            "both full refreshes of a1",
        )
        for partition, runs in by_partition(all_runs(port)).items():
            spans = sorted((r["startTime"], r["endTime"]) for r in runs if r["startTime"] and r["endTime"])
            for (s1, e1), (s2, _) in itertools.pairwise(spans):
                assert s2 >= e1, f"{partition}: runs overlap ({s1}-{e1} and {s2}-…)"

    assert web.poll() is not None and daemon.poll() is not None

    # Nothing lost, nothing duplicated in the destination that never deduplicates.
    live: dict[str, str] = {}
    for line in (data / "a.jsonl").read_text().splitlines():
        row = json.loads(line)
        live[row["id"]] = row["key"]
    keys = sorted(live.values())
    expected = sorted(f"{p}-{i:04d}" for p in ("a1", "a2", "a3") for i in range(SIZES[p]))
    assert keys == expected

    # Runs and event logs are in PostgreSQL.
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        runs = conn.execute(sa.text("SELECT count(*) FROM runs")).scalar_one()
        mats = conn.execute(
            sa.text("SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'")
        ).scalar_one()
        links = conn.execute(
            sa.text("SELECT count(*) FROM ds_links WHERE state = 'linked' AND route IN ('pg_a', 'pg_b')")
        ).scalar_one()
    engine.dispose()
    assert runs >= 7 and mats >= 7
    assert links == sum(SIZES.values())
    store.dispose()

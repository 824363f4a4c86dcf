"""`dagster dev` (webserver + daemon) on loopback: the demo route syncs with no click; two code
locations share one sync-now inbox and each takes only its own routes' requests."""

from __future__ import annotations

import asyncio
import importlib
import subprocess
from pathlib import Path

import pytest

from sync_assets.engine import run_pass
from sync_assets.state import StateStore
from tests.e2e.procs import (
    BIN,
    REPO,
    dagster_env,
    dagster_process,
    free_port,
    graphql,
    runs,
    wait_for,
    wait_ready,
)

pytestmark = pytest.mark.e2e

SPECS = [f"s{i}" for i in range(1, 9)]  # tests/e2e/second_location.py's spec keys


def test_dagster_dev_dispatches_the_first_sync_with_no_click(tmp_path):
    port = free_port()
    env = dagster_env(tmp_path / "home", DURABLE_SYNC_DEMO_DIR=str(tmp_path / "demo"))
    log = tmp_path / "dagster-dev.log"
    cmd = [str(BIN / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
    with dagster_process(cmd, env, log) as proc:
        wait_ready(port, proc, log)
        nodes = graphql(
            port, "{ assetNodes { assetKey { path } dependencyKeys { path } isPartitioned partitionKeys } }"
        )["assetNodes"]
        by_key = {"/".join(n["assetKey"]["path"]): n for n in nodes}
        assert set(by_key) == {"files", "files_to_sqlite", "files_to_sqlite_link_report"}
        assert by_key["files_to_sqlite"]["dependencyKeys"] == [{"path": ["files"]}]
        assert by_key["files_to_sqlite_link_report"]["dependencyKeys"] == [{"path": ["files_to_sqlite"]}]

        def first_success():
            done = [r for r in runs(port, "files_to_sqlite_sync") if r["status"] == "SUCCESS"]
            return done or None

        (run, *_) = wait_for(first_success, timeout=150, interval=2, what="the dispatcher's first run")
        tags = {t["key"]: t["value"] for t in run["tags"]}
        assert tags["durable_sync/trigger"] == "interval"
        assert tags["dagster/partition"] == "tasks"
        partitions = graphql(port, '{ assetNodes(assetKeys: [{path: ["files_to_sqlite"]}]) { partitionKeys } }')
        assert partitions["assetNodes"][0]["partitionKeys"] == ["tasks"]
        mats = graphql(
            port,
            """{ assetOrError(assetKey: {path: ["files_to_sqlite"]}) { ... on Asset {
                 assetMaterializations(limit: 1) { partition metadataEntries { label
                   ... on IntMetadataEntry { intValue } } } } } }""",
        )["assetOrError"]["assetMaterializations"]
        md = {e["label"]: e.get("intValue") for e in mats[0]["metadataEntries"]}
        assert mats[0]["partition"] == "tasks" and md["created"] == 300
    assert proc.poll() is not None


def _workspace(project: Path) -> None:
    """The project's location plus the second one, both importing from the repository."""
    (project / "workspace.yaml").write_text(
        "load_from:\n"
        "  - python_module:\n"
        "      module_name: sync_assets.definitions\n"
        f"      working_directory: {REPO}\n"
        "      location_name: durable_sync\n"
        "  - python_module:\n"
        "      module_name: tests.e2e.second_location\n"
        f"      working_directory: {REPO}\n"
        "      location_name: second\n"
    )


def _dagster_dev_in(project: Path, env: dict[str, str], port: int, log_path: Path):
    """`dagster dev` run from ``project`` (where its .env is), stopped by PID like every e2e process."""
    cmd = [str(BIN / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
    return dagster_process(cmd, env, log_path, cwd=project)


def _cli(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "durable-sync"), *args], cwd=project, env=env, capture_output=True, text=True, timeout=120
    )


def test_two_code_locations_each_take_only_their_own_sync_requests(tmp_path, monkeypatch):
    project, second = tmp_path / "project", tmp_path / "second"
    project.mkdir()
    second.mkdir()
    for i, key in enumerate(SPECS):
        (second / f"{key}.csv").write_text("id,title\n" + "".join(f"{key}-{n},row {n} of {i}\n" for n in range(5)))
    state_url = f"sqlite:///{tmp_path / 'state.sqlite3'}"
    # Only in .env: dagster dev and the CLI must both read it from the directory they run in.
    dotenv = {
        "DURABLE_SYNC_STATE_URL": state_url,
        "DURABLE_SYNC_DEMO_DIR": str(tmp_path / "demo"),
        "E2E_SECOND_DIR": str(second),
    }
    (project / ".env").write_text("".join(f"{k}={v}\n" for k, v in dotenv.items()))
    _workspace(project)
    env = dagster_env(tmp_path / "home")
    assert not set(dotenv) & set(env)

    # The second route's partitions were synced a moment ago, so its dispatcher starts nothing
    # and every run of that job below comes from a request.
    for k, v in dotenv.items():
        monkeypatch.setenv(k, v)
    store = StateStore(state_url)
    second_module = importlib.import_module("tests.e2e.second_location")
    assert second_module.SPECS == SPECS
    second_route = second_module.routes[0]
    for key in SPECS:
        asyncio.run(run_pass(second_route, key, store))

    # Nine requests wait in the shared inbox when the daemon starts: the first tick of either
    # location's sync-now sensor sees the other location's requests too.
    cli_env = {**env, "PYTHONPATH": str(REPO)}
    refused = _cli(project, cli_env, "sync", "e2e_second")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "no route named 'e2e_second' in module sync_assets.definitions" in refused.stderr
    out = _cli(project, cli_env, "--module", "tests.e2e.second_location", "sync", "e2e_second", "--no-wait")
    assert out.returncode == 0, out.stderr
    out2 = _cli(project, cli_env, "sync", "files_to_sqlite", "--no-wait")
    assert out2.returncode == 0, out2.stderr
    assert (out.stdout + out2.stdout).count("queued request") == 9
    assert len(store.pending_requests()) == 9  # the CLI found the state store through .env too

    port = free_port()
    log = tmp_path / "dagster-dev.log"
    with _dagster_dev_in(project, env, port, log) as proc:
        wait_ready(port, proc, log)
        nodes = graphql(port, "{ assetNodes { assetKey { path } } }")["assetNodes"]
        assert {"files_to_sqlite", "e2e_second"} <= {"/".join(n["assetKey"]["path"]) for n in nodes}

        def manual_runs():
            done = [
                r
                for job in ("e2e_second_sync", "files_to_sqlite_sync")
                for r in runs(port, job)
                if {t["key"]: t["value"] for t in r["tags"]}.get("durable_sync/trigger") == "manual"
                and r["status"] == "SUCCESS"
            ]
            return done if len(done) >= 9 else None

        done = wait_for(manual_runs, timeout=300, interval=3, what="the 9 requested runs")
        partitions = sorted({t["key"]: t["value"] for t in r["tags"]}["durable_sync/partition"] for r in done)
        assert partitions == sorted([f"e2e_second/{k}" for k in SPECS] + ["files_to_sqlite/tasks"])
        assert store.pending_requests() == []
        # The second route's dispatcher found nothing due: every one of its runs was requested.
        assert all(
            {t["key"]: t["value"] for t in r["tags"]}.get("durable_sync/trigger") == "manual"
            for r in runs(port, "e2e_second_sync")
        )
    assert proc.poll() is not None
    store.dispose()

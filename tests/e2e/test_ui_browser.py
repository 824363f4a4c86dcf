"""What a user sees: `dagster dev` on loopback, driven by a real headless Chromium.

The browser is Debian's `chromium`, driven by playwright-core from npm (tests/e2e/ui/, pinned in
package-lock.json). playwright-core ships no browser and downloads none: it launches the system
Chromium by path, and it waits for text in the single-page app instead of sleeping. (Selenium
would need Debian's chromium-driver as well, and its own waits; `.ci/run` installs both browser and
playwright-core.) Skips when the browser or playwright-core is missing, except under CI=true.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

import psutil
import pytest

from tests.e2e.procs import (
    BIN,
    REPO,
    dagster_env,
    dagster_process,
    free_port,
    graphql,
    runs,
    stop,
    wait_for,
    wait_ready,
)

pytestmark = pytest.mark.e2e

UI = REPO / "tests" / "e2e" / "ui"
SCRIPT = UI / "check_pages.mjs"


def _chromium() -> str | None:
    return shutil.which("chromium") or next(
        (p for p in ("/usr/bin/chromium", "/usr/lib/chromium/chromium") if os.access(p, os.X_OK)), None
    )


def _require_browser() -> tuple[str, str]:
    chromium, node = _chromium(), shutil.which("node")
    missing = [
        what
        for what, ok in (
            ("Debian's chromium (apt-get install chromium)", chromium),
            ("node", node),
            ("playwright-core (npm ci --prefix tests/e2e/ui)", (UI / "node_modules" / "playwright-core").is_dir()),
        )
        if not ok
    ]
    if missing:
        reason = "browser test needs " + ", ".join(missing)
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}: required under CI=true (.ci/run installs them)")
        pytest.skip(reason)
    assert chromium and node
    return chromium, node


def _stop_browser_processes(browser_dir: Path, timeout: float = 10) -> None:
    """End, by PID, every Chromium process of this test: each names browser_dir on its command line.

    Playwright closes the browser with node, but Chromium runs in its own process group and its
    crash handlers are re-parented to init, so a killed node could leave them behind.
    """

    def ours() -> list[psutil.Process]:
        return [
            p
            for p in psutil.process_iter(["name", "cmdline", "status"])
            if (p.info["name"] or "").startswith("chrom")  # chromium, chrome_crashpad_handler
            and p.info["status"] != psutil.STATUS_ZOMBIE
            and any(str(browser_dir) in arg for arg in p.info["cmdline"] or ())
        ]

    deadline = time.time() + timeout
    while (left := ours()) and time.time() < deadline:
        time.sleep(0.2)
    for p in left:
        with suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(left, timeout=5)


def _browse(node: str, config: dict, env: dict[str, str], shots: Path, browser_dir: Path) -> dict[str, dict]:
    """Run check_pages.mjs once; its pages by name, each with the texts it found."""
    # node in a process group of its own, stopped by PID; then Chromium's processes, found by browser_dir.
    browser = subprocess.Popen(
        [node, str(SCRIPT), json.dumps(config)],
        cwd=UI,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = browser.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        stop(browser, timeout=5)
        out, err = browser.communicate()
        pytest.fail(f"the browser script timed out; screenshots in {shots}\n{out}\n{err}")
    finally:
        stop(browser, timeout=5)
        _stop_browser_processes(browser_dir)
    assert browser.returncode == 0, f"a page check failed; screenshots in {shots}\n{out}\n{err[-4000:]}"
    pages = {p["page"]: p for p in map(json.loads, out.splitlines())}
    for page in pages.values():
        png = (shots / f"{page['page']}.png").read_bytes()
        # A real page, not an empty canvas: PNG signature and more than a blank frame's few KB.
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000, page
    return pages


def _launch_partition_run(port: int, job: str, partition: str) -> str:
    """Launch one partition's run as the UI's Materialize button does (GraphQL); its run id."""
    repos = graphql(
        port, "{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } } }"
    )
    (repo,) = repos["repositoriesOrError"]["nodes"]
    mutation = """mutation($p: ExecutionParams!) { launchPipelineExecution(executionParams: $p) {
        __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""
    params = {
        "selector": {
            "repositoryLocationName": repo["location"]["name"],
            "repositoryName": repo["name"],
            "jobName": job,
        },
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
    }
    launched = graphql(port, mutation, {"p": params})["launchPipelineExecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return launched["run"]["runId"]


def test_ui_shows_the_route_its_partition_and_the_first_run_then_a_pause(tmp_path):
    chromium, node = _require_browser()
    port = free_port()
    home = tmp_path / "home"
    env = dagster_env(home, DURABLE_SYNC_DEMO_DIR=str(tmp_path / "demo"))
    log = tmp_path / "dagster-dev.log"
    shots = tmp_path / "screenshots"
    shots.mkdir()
    browser_dir = tmp_path / "browser"
    # Chromium's crash handler writes under $XDG_CONFIG_HOME (~/.config by default): keep it here too.
    browser_env = dict(
        os.environ, XDG_CONFIG_HOME=str(browser_dir / "config"), XDG_CACHE_HOME=str(browser_dir / "cache")
    )
    reason = "frozen for the quarterly audit"
    cmd = [str(BIN / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
    with dagster_process(cmd, env, log) as proc:
        wait_ready(port, proc, log)

        def first_success():
            return [r for r in runs(port, "files_to_sqlite_sync") if r["status"] == "SUCCESS"] or None

        (run, *_) = wait_for(first_success, timeout=150, interval=2, what="the dispatcher's first run")
        config = {
            "baseUrl": f"http://127.0.0.1:{port}",
            "runId": run["runId"],
            "outDir": str(shots),
            "userDataDir": str(browser_dir / "profile"),
            "chromium": chromium,
            "timeoutMs": 30_000,
        }
        pages = _browse(node, config, browser_env, shots, browser_dir)

        # A pause set by hand: the dispatcher skips the partition from now on; a run of it (here the
        # UI's Materialize, through GraphQL) meets the pause and reports it on the asset and partition.
        paused = subprocess.run(
            [
                sys.executable,
                "-m",
                "sync_assets.cli",
                "pause",
                "files_to_sqlite",
                "--spec",
                "tasks",
                "--reason",
                reason,
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert paused.returncode == 0, paused.stderr
        paused_run_id = _launch_partition_run(port, "files_to_sqlite_sync", "tasks")

        def paused_run_ended():
            return [
                r
                for r in runs(port, "files_to_sqlite_sync")
                if r["runId"] == paused_run_id and r["status"] in ("FAILURE", "SUCCESS")
            ] or None

        (ended,) = wait_for(paused_run_ended, timeout=120, interval=1, what="the run of the paused partition")
        assert ended["status"] == "FAILURE"
        paused_pages = _browse(
            node, {**config, "paused": {"runId": paused_run_id, "reason": reason}}, browser_env, shots, browser_dir
        )
    assert proc.poll() is not None

    assert list(pages) == ["lineage-groups", "lineage", "partitions", "partition-tasks", "run"]
    assert pages["lineage"]["found"] == ["files", "files_to_sqlite", "files_to_sqlite_link_report"]
    assert "tasks" in pages["partitions"]["found"]
    assert run["runId"][:8] in pages["partition-tasks"]["found"]
    assert pages["run"]["url"].endswith(f"/runs/{run['runId']}")
    assert {"Success", "files_to_sqlite", "partition: tasks"} <= set(pages["run"]["found"])

    assert list(paused_pages) == ["paused-asset", "paused-check", "paused-partition"]
    assert {"Failed in", paused_run_id[:8]} <= set(paused_pages["paused-asset"]["found"])
    fix = "durable-sync resume files_to_sqlite"
    assert {"not_paused", reason, fix, "tasks", "partition:files_to_sqlite/tasks"} <= set(
        paused_pages["paused-check"]["found"]
    )
    assert {f"Run {paused_run_id[:8]} failed, and did not materialize this asset.", reason, fix} <= set(
        paused_pages["paused-partition"]["found"]
    )

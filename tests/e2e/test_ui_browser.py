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


def test_ui_shows_the_route_its_partition_and_the_first_run(tmp_path):
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
        # node in a process group of its own, stopped by PID; then Chromium's processes, found by browser_dir.
        browser = subprocess.Popen(
            [node, str(SCRIPT), json.dumps(config)],
            cwd=UI,
            env=browser_env,
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
    assert proc.poll() is not None

    assert browser.returncode == 0, f"a page check failed; screenshots in {shots}\n{out}\n{err[-4000:]}"
    pages = {p["page"]: p for p in map(json.loads, out.splitlines())}
    assert list(pages) == ["lineage-groups", "lineage", "partitions", "partition-tasks", "run"]
    assert pages["lineage"]["found"] == ["files", "files_to_sqlite", "files_to_sqlite_link_report"]
    assert "tasks" in pages["partitions"]["found"]
    assert run["runId"][:8] in pages["partition-tasks"]["found"]
    assert pages["run"]["url"].endswith(f"/runs/{run['runId']}")
    assert {"Success", "files_to_sqlite", "partition: tasks"} <= set(pages["run"]["found"])
    for page in pages.values():
        png = (shots / f"{page['page']}.png").read_bytes()
        # A real page, not an empty canvas: PNG signature and more than a blank frame's few KB.
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000, page

"""Start and stop real Dagster processes for end-to-end tests (always stopped by PID)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _reset_sigint() -> None:
    # A child of a non-interactive shell may inherit SIGINT ignored; Dagster maps SIGTERM onto the
    # SIGINT handler, so restore the default or the process ignores both.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def stop(proc: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM the process group by PID, then SIGKILL what is left."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    # Children (code server, daemon) share the group; make sure none outlives the test.
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def spawn(args: list[str], env: dict[str, str], log_path: Path, *, cwd: Path = REPO) -> subprocess.Popen:
    """Start a process in its own process group (so ``stop`` ends it and its children by PID), its
    output appended to ``log_path``, with SIGINT back at its default."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            args,
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_reset_sigint,
        )


@contextmanager
def dagster_process(
    args: list[str], env: dict[str, str], log_path: Path, *, cwd: Path = REPO
) -> Iterator[subprocess.Popen]:
    """``spawn`` for the length of a ``with`` block; stopped by PID at its end."""
    proc = spawn(args, env, log_path, cwd=cwd)
    try:
        yield proc
    finally:
        stop(proc)


def graphql(port: int, query: str, variables: dict[str, Any] | None = None, timeout: float = 10) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=body, headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        data = json.loads(resp.read())
    if data.get("errors"):
        raise AssertionError(data["errors"])
    return data["data"]


def wait_ready(port: int, proc: subprocess.Popen, log_path: Path, timeout: float = 240) -> None:
    """Wait until the webserver answers ``/server_info`` and GraphQL lists asset nodes.

    On a loaded 2-core CI machine the webserver has once needed more than two minutes; the timeout is
    generous, and a failure says what the last probe saw and what the webserver itself logged (the
    tail of the log is usually the daemon's chatter).
    """
    deadline = time.time() + timeout
    last: Exception | None = None
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"dagster exited early:\n{log_path.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5) as r:
                if r.status == 200:
                    graphql(port, "{ assetNodes { id } }", timeout=30)
                    return
        except Exception as err:
            last = err
            time.sleep(0.5)
    text = log_path.read_text()
    own = [line for line in text.splitlines() if "dagster.daemon" not in line]
    raise AssertionError(
        f"dagster did not come up on port {port} in {timeout:.0f} s; last probe: {last!r}\n"
        + "\n".join(own[-60:])
        + f"\n--- tail ---\n{text[-1500:]}"
    )


def wait_for(predicate, timeout: float, interval: float = 1.0, what: str = "condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = predicate()
        if last is True or (last and not isinstance(last, dict)):
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def runs(port: int, job: str) -> list[dict]:
    q = """query($job: String!) { runsOrError(filter: {pipelineName: $job}) {
        ... on Runs { results { runId status tags { key value } } } } }"""
    return graphql(port, q, {"job": job})["runsOrError"]["results"]


def dagster_env(home: Path, **extra: str) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith("DURABLE_SYNC_")}
    env.update(DAGSTER_HOME=str(home), PATH=f"{BIN}:{env.get('PATH', '')}", PYTHONUNBUFFERED="1", **extra)
    return env

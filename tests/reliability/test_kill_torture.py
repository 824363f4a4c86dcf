"""kill -9 torture: a 10,000-record pass killed at 20 random points, resumed after each kill.

Each run is a fresh process (as a Dagster run worker is) writing to a destination that never
deduplicates; it SIGKILLs itself right after its n-th create lands. At the end the destination holds
exactly one row per key with the latest content, no page was committed twice, and the writes redone
are bounded by one page per kill.
"""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.reliability

N = 10_000
PAGE = 100
KILLS = 20

SCRIPT = textwrap.dedent(
    """
    import asyncio, json, os, signal, sys
    from contextlib import asynccontextmanager
    from connectors.files import FileSpec, FilesSource, JSONLDestination
    from sync_assets.engine import run_pass
    from sync_assets.routes import Route
    from sync_assets.state import StateStore

    csv_path, out_path, state_url, kill_at, log_path = sys.argv[1:6]
    kill_at = int(kill_at)
    writes = 0

    class KillingJSONL(JSONLDestination):
        @asynccontextmanager
        async def connect(self):
            async with super().connect() as session:
                create, update = session.create, session.update

                async def counted(fn, *args):
                    global writes
                    result = await fn(*args)
                    writes += 1
                    with open(log_path, "a") as log:
                        log.write("write\\n")
                    if writes == kill_at:
                        os.kill(os.getpid(), signal.SIGKILL)
                    return result

                session.create = lambda r, t: counted(create, r, t)
                session.update = lambda i, r, t: counted(update, i, r, t)
                yield session

    def committed(stats):
        with open(log_path, "a") as log:
            log.write(f"page {stats.pages}\\n")

    source = FilesSource([FileSpec(key="tasks", path=csv_path, key_column="id")], page_size=100)
    route = Route(source, KillingJSONL(out_path), name="torture")
    result = asyncio.run(run_pass(route, "tasks", StateStore(state_url), progress=committed))
    print(json.dumps(result.stats.as_dict()))
    """
)


def test_twenty_kills_lose_nothing_and_duplicate_nothing(tmp_path: Path):
    csv_path = tmp_path / "tasks.csv"
    with csv_path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "title"])
        for i in range(N):
            w.writerow([f"T{i:05d}", f"task {i}"])
    out, log = tmp_path / "dest.jsonl", tmp_path / "log.txt"
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    # A killed pass keeps its partition's lease until it expires; the next process takes it over
    # then. A short lease keeps the test fast (production: 20 s).
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "DURABLE_SYNC_LEASE_SECONDS": "1",
    }
    # Kill points spread over the pass: each run dies after this many writes of its own.
    rng = random.Random(20261123)
    kill_points = [rng.randint(1, N // KILLS) for _ in range(KILLS)]

    kills = 0
    for kill_at in [*kill_points, 0]:
        proc = subprocess.run(
            [sys.executable, str(script), str(csv_path), str(out), state_url, str(kill_at), str(log)],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        if kill_at:
            assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
            kills += 1
        else:
            assert proc.returncode == 0, proc.stderr[-2000:]
    final = json.loads(proc.stdout.strip().splitlines()[-1])
    assert kills == KILLS and final["resumed_from"] is not None

    live: dict[str, str] = {}
    for line in out.read_text().splitlines():
        row = json.loads(line)
        live[row["id"]] = row["key"]
    keys = sorted(live.values())
    assert keys == [f"T{i:05d}" for i in range(N)]  # one row per key: 0 duplicates, 0 missing
    entries = log.read_text().splitlines()
    pages = [int(e.split()[1]) for e in entries if e.startswith("page ")]
    assert len(pages) == N // PAGE and sorted(pages) == list(range(1, N // PAGE + 1))  # no page committed twice
    writes = sum(1 for e in entries if e == "write")
    assert writes - N <= KILLS * PAGE  # what a kill redoes is bounded by the page in flight

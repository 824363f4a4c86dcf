"""A pass killed with SIGKILL mid-page resumes at the page in flight with no duplicate, nothing lost."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import asyncio, json, os, signal, sys
    from contextlib import asynccontextmanager
    from connectors.files import FileSpec, FilesSource, JSONLDestination
    from sync_assets.engine import run_pass
    from sync_assets.routes import Route
    from sync_assets.state import StateStore

    csv_path, out_path, state_url, kill_at = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

    class KillingJSONL(JSONLDestination):
        # Dies right after the kill_at-th create lands in the file, before its link is committed.
        creates = 0

        @asynccontextmanager
        async def connect(self):
            async with super().connect() as session:
                create = session.create

                async def killing_create(record, synced_at):
                    result = await create(record, synced_at)
                    KillingJSONL.creates += 1
                    if KillingJSONL.creates == kill_at:
                        os.kill(os.getpid(), signal.SIGKILL)
                    return result

                session.create = killing_create
                yield session

    source = FilesSource([FileSpec(key="tasks", path=csv_path, key_column="id")], page_size=100)
    route = Route(source, KillingJSONL(out_path), name="kill_test")
    result = asyncio.run(run_pass(route, "tasks", StateStore(state_url)))
    print(json.dumps(result.stats.as_dict()))
    """
)


def test_sigkill_mid_page_resumes_without_duplicates(tmp_path: Path):
    csv_path = tmp_path / "tasks.csv"
    with csv_path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "title"])
        for i in range(1000):
            w.writerow([f"T{i:04d}", f"task {i}"])
    out = tmp_path / "dest.jsonl"
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

    def run(kill_at: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(script), str(csv_path), str(out), state_url, str(kill_at)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )

    killed = run(337)  # pages 1-3 committed, 37 creates of page 4 landed unlinked
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    done = run(0)
    assert done.returncode == 0, done.stderr
    stats = json.loads(done.stdout.strip().splitlines()[-1])
    assert stats["resumed_from"] == 3
    assert stats["adopted"] >= 37  # the unlinked rows were found, not created again

    keys = [json.loads(line)["key"] for line in out.read_text().splitlines() if line.strip()]
    live: dict[str, int] = {}
    for line in out.read_text().splitlines():
        row = json.loads(line)
        live[row["id"]] = row["key"]
    assert sorted(live.values()) == [f"T{i:04d}" for i in range(1000)]  # one row per key, none missing
    assert len(set(keys)) == 1000

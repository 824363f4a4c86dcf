"""Freshness benchmark: a signed webhook per change, through the real dagster-daemon, to the destination write.

Serves the fake GitHub (tests/fakes) on a loopback port with one org of ``--repos`` repos; starts
``dagster-daemon run`` on a fresh instance (the repo's dagster.yaml: queued run coordinator, one run
per partition) over ``bench/freshness_location.py``, and ``durable-sync webhooks`` as its own
process; waits for the first full pass; then ``--changes`` times: changes one repo's description in
the fake and POSTs a signed ``push`` webhook for it, one every ``--pace`` seconds.

Measured per change, from the moment the webhook is sent (on loopback that is its arrival) to the
write of the changed record in the destination (``writes.jsonl`` of the location): ``p50_seconds``,
``p95_seconds``, ``max_seconds``. And where the time goes, per change (medians):

- ``to_request_taken``: webhook → the sync_now sensor took the request and created the run (the
  sensor's ``minimum_interval_seconds`` and the daemon's tick, plus waiting for a run of the same
  partition still in flight: requests arriving during a run wait for the next one);
- ``run_created_to_started``: the run's launch (dequeue, a new run-worker process, imports, loading
  the code location) until Dagster marks it STARTED;
- ``started_to_write``: the pass itself (a targeted read of the repo, the write).

Usage: python bench/freshness_bench.py [--changes 50] [--pace 2] [--repos 50] [--keep DIR]
Prints one JSON object. Not a test (it takes a few minutes).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dagster as dg
import sqlalchemy as sa

from sync_assets.sensors import SYNC_NOW_INTERVAL_SECONDS
from sync_assets.state import StateStore, requests
from sync_assets.webhooks import hub_signature
from tests.e2e.procs import BIN, REPO, dagster_env, free_port, spawn, stop
from tests.fakes.github import FakeGitHub
from tests.fakes.loopback import serve_app

SECRET = "bench-webhook-secret"  # a throwaway value for this bench's own server
ORG = "acme"


def _writes(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _wait(predicate, timeout: float, what: str, poll: float = 0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(poll)
    raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")


def _post(port: int, body: bytes, delivery: str) -> dict:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/webhooks/github",
        data=body,
        headers={
            "content-type": "application/json",
            "x-github-event": "push",
            "x-github-delivery": delivery,
            "x-hub-signature-256": hub_signature(SECRET, body),
        },
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--changes", type=int, default=50)
    p.add_argument("--repos", type=int, default=50)
    p.add_argument("--pace", type=float, default=2.0, help="seconds between changes")
    p.add_argument(
        "--dequeue-interval",
        type=int,
        help="the QueuedRunCoordinator's dequeue_interval_seconds in the bench instance (the repo's dagster.yaml: 1)",
    )
    p.add_argument("--sync-now-interval", type=int, help="the sync_now sensor's interval (default: sensors.py's)")
    p.add_argument("--keep", help="keep the working directory here (logs of the daemon and the webhooks)")
    args = p.parse_args()

    root = Path(args.keep or tempfile.mkdtemp(prefix="freshness-"))
    root.mkdir(parents=True, exist_ok=True)
    data = root / "data"
    data.mkdir(exist_ok=True)
    fake = FakeGitHub()
    repos = fake.add_repos(ORG, args.repos)
    with serve_app(fake.app, name="github") as api_url:
        state_url = f"sqlite:///{root / 'state.sqlite3'}"
        env = dagster_env(
            root / "home",
            DURABLE_SYNC_STATE_URL=state_url,
            FRESH_DIR=str(data),
            FRESH_ORG=ORG,
            GITHUB_API_URL=api_url,
            GITHUB_TOKEN=fake.token,
            GITHUB_WEBHOOK_SECRET=SECRET,
        )
        if args.sync_now_interval:
            env["FRESH_SYNC_NOW_INTERVAL"] = str(args.sync_now_interval)
        if args.dequeue_interval:
            with (root / "home" / "dagster.yaml").open("a") as f:
                f.write(
                    "\nrun_coordinator:\n  module: dagster._core.run_coordinator\n  class: QueuedRunCoordinator\n"
                    f"  config:\n    dequeue_interval_seconds: {args.dequeue_interval}\n"
                )
        workspace = root / "workspace.yaml"
        workspace.write_text(
            "load_from:\n  - python_module:\n      module_name: bench.freshness_location\n"
            f"      working_directory: {REPO}\n      location_name: freshness\n"
        )
        port = free_port()
        daemon = spawn([str(BIN / "dagster-daemon"), "run", "-w", str(workspace)], env, root / "daemon.log")
        hooks = spawn(
            [str(BIN / "durable-sync"), "--module", "bench.freshness_location", "webhooks", "--port", str(port)],
            env,
            root / "webhooks.log",
        )
        try:
            writes = data / "writes.jsonl"
            t_start = time.time()
            _wait(lambda: _healthy(port), 120, "the webhooks server")
            _wait(lambda: len({w["key"] for w in _writes(writes)}) >= args.repos, 600, "the first full pass")
            first_pass = time.time() - t_start
            time.sleep(3)  # let the first run finish (its end is not a write)

            sent: dict[str, tuple[float, str, int]] = {}  # key -> (t0, description, request id)
            order = [repos[i % len(repos)] for i in range(args.changes)]
            for n, repo in enumerate(order):
                description = f"change {n} {uuid.uuid4().hex[:6]}"
                fake.modify_repo(repo.full_name, description=description)
                body = json.dumps(
                    {
                        "ref": "refs/heads/main",
                        "repository": {"id": repo.id, "full_name": repo.full_name, "owner": {"login": ORG}},
                    }
                ).encode()
                t0 = time.time()
                answer = _post(port, body, f"bench-{n}-{uuid.uuid4()}")
                sent[f"{n}"] = (t0, description, int(answer["enqueued"][0]["request"]))
                time.sleep(args.pace)

            def landed(n: str) -> dict | None:
                t0, description, _ = sent[n]
                return next((w for w in _writes(writes) if w["description"] == description and w["t"] >= t0), None)

            _wait(lambda: all(landed(n) for n in sent), 300, "every change to reach the destination", poll=1)
            latencies = {n: landed(n)["t"] - sent[n][0] for n in sent}  # type: ignore[index]

            # Where the time went: the request's taken_at (the sensor created the run), the run's
            # create and start times in the Dagster instance.
            store = StateStore(state_url)
            with store.engine.connect() as conn:
                rows = conn.execute(sa.select(requests.c.id, requests.c.taken_at, requests.c.run_key)).all()
            taken = {r[0]: (r[1], r[2]) for r in rows}
            os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
            instance = dg.DagsterInstance.get()
            run_times: dict[str, tuple[float, float | None]] = {}
            for record in instance.get_run_records():
                key = record.dagster_run.tags.get("dagster/run_key")
                if key:
                    run_times[key] = (record.create_timestamp.timestamp(), record.start_time)
            to_taken, to_started, in_run = [], [], []
            for n, (t0, _desc, rid) in sent.items():
                when, run_key = taken.get(rid, (None, None))
                created, started = run_times.get(run_key or "", (None, None))
                if when is None or created is None or started is None:
                    continue
                stamp = when.replace(tzinfo=when.tzinfo or dt.UTC).timestamp()
                to_taken.append(stamp - t0)
                to_started.append(started - created)
                in_run.append(t0 + latencies[n] - started)
            runs = len({taken[rid][1] for _t, _d, rid in sent.values() if taken.get(rid, (None, None))[1]})
            med = {
                "to_request_taken": round(statistics.median(to_taken), 2) if to_taken else None,
                "run_created_to_started": round(statistics.median(to_started), 2) if to_started else None,
                "started_to_write": round(statistics.median(in_run), 2) if in_run else None,
            }
            dominant = max((k for k in med if med[k] is not None), key=lambda k: med[k] or 0.0, default=None)
            values = list(latencies.values())
            out = {
                "scenario": "webhook_to_destination_write",
                "changes": len(values),
                "pace_seconds": args.pace,
                "runs": runs,
                "first_full_pass_seconds": round(first_pass, 1),
                "p50_seconds": round(statistics.median(values), 2),
                "p95_seconds": round(_pct(values, 0.95), 2),
                "max_seconds": round(max(values), 2),
                "median_breakdown_seconds": med,
                "dominated_by": dominant,
                "sync_now_interval_seconds": args.sync_now_interval or SYNC_NOW_INTERVAL_SECONDS,
                "dequeue_interval_seconds": args.dequeue_interval or 1,
                "goal": {"p50_seconds": 10, "p95_seconds": 30},
            }
            logs = "".join(f.read_text(errors="replace") for f in (root / "webhooks.log", root / "daemon.log"))
            out["secret_in_logs"] = SECRET in logs
            print(json.dumps(out))
            instance.dispose()
            store.dispose()
        finally:
            stop(hooks)
            stop(daemon)
            if not args.keep:
                shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

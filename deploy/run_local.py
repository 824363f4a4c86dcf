"""Run the production process layout on this machine: dagster-webserver and dagster-daemon as two
separate processes against PostgreSQL (Dagster's runs, event logs and schedules, and the state store).

    make prod-local                      # http://127.0.0.1:3000, Ctrl-C stops both
    DAGSTER_PG_URL=postgresql+psycopg2://user:pw@host:5432/db make prod-local
    python deploy/run_local.py --webhooks 8790   # also `durable-sync webhooks` on 127.0.0.1:8790

Environment: DAGSTER_PG_URL (default postgresql+psycopg2://postgres@127.0.0.1:5432/durable_sync,
created if missing), DURABLE_SYNC_STATE_URL (default: the same database), DAGSTER_HOME (default
.dagster_home_prod; deploy/dagster-postgres.yaml is copied there as dagster.yaml).
Every process is started in its own process group and stopped by PID.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEFAULT_PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/durable_sync"


def ensure_database(url: str) -> None:
    """Create the database named in ``url`` if it does not exist (connecting to ``postgres``)."""
    target = sa.engine.make_url(url)
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}
            ).first()
            if not exists:
                conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
                print(f"created database {target.database}")
    finally:
        admin.dispose()


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    handle = log.open("ab")
    return subprocess.Popen(args, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen, name: str) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    print(f"stopped {name} (pid {proc.pid})")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    p.add_argument("--port", default=os.environ.get("PORT", "3000"))
    p.add_argument("--webhooks", metavar="PORT", help="also run `durable-sync webhooks` on HOST:PORT")
    a = p.parse_args()
    pg_url = os.environ.get("DAGSTER_PG_URL", "").strip() or DEFAULT_PG_URL
    home = Path(os.environ.get("DAGSTER_HOME_PROD", "").strip() or REPO / ".dagster_home_prod").resolve()
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO / "deploy" / "dagster-postgres.yaml", home / "dagster.yaml")
    ensure_database(pg_url)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_URL": pg_url,
        "DURABLE_SYNC_STATE_URL": os.environ.get("DURABLE_SYNC_STATE_URL", "").strip() or pg_url,
    }
    redacted = sa.engine.make_url(pg_url).render_as_string(hide_password=True)
    print(f"DAGSTER_HOME={home}\nPostgreSQL: {redacted}")
    web = start(
        [str(BIN / "dagster-webserver"), "-w", "workspace.yaml", "-h", a.host, "-p", str(a.port)],
        env,
        home / "webserver.log",
    )
    daemon = start([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], env, home / "daemon.log")
    print(f"dagster-webserver pid {web.pid} on http://{a.host}:{a.port}  (log {home / 'webserver.log'})")
    print(f"dagster-daemon    pid {daemon.pid}  (log {home / 'daemon.log'})")
    procs = [(web, "dagster-webserver"), (daemon, "dagster-daemon")]
    if a.webhooks:
        hooks = start(
            [str(BIN / "durable-sync"), "webhooks", "--host", a.host, "--port", str(a.webhooks)],
            env,
            home / "webhooks.log",
        )
        procs.append((hooks, "durable-sync webhooks"))
        print(f"durable-sync webhooks pid {hooks.pid} on http://{a.host}:{a.webhooks}  (log {home / 'webhooks.log'})")
    print("Ctrl-C stops them all.")
    stopping = False

    def on_signal(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        while not stopping:
            for proc, name in procs:
                if proc.poll() is not None:
                    print(f"{name} exited with {proc.returncode}; see its log in {home}", file=sys.stderr)
                    stopping = True
            time.sleep(0.5)
    finally:
        for proc, name in procs:
            stop(proc, name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

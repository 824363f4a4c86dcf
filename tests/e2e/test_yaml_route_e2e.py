"""A new user's first route, as they would add it: one YAML file, then `dagster dev`, then the CLI.

A copy of the project (so the test never writes into the repository's ``sync_assets/defs``) gets
``sync_assets/defs/people/defs.yaml``; `dagster dev` shows the route without a line of Python, the
dispatcher runs its first sync, `dagster asset materialize` runs another, and the UI's GraphQL shows
the resources with their secrets as environment variables (names, never values).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.e2e.procs import BIN, REPO, dagster_env, dagster_process, free_port, graphql, runs, wait_for, wait_ready

pytestmark = pytest.mark.e2e

ROUTE_YAML = """\
type: sync_assets.components.RouteComponent
attributes:
  name: people_to_sqlite
  description: People from a CSV file in a SQLite table.
  source:
    system: files
    files:
      - key: people
        path: people.csv
        key_column: id
        types: {age: int}
        interval_minutes: 5
  destination:
    system: files
    path: people.sqlite3
    table: people
    key_column: person_id
"""


def _copy_project(target: Path) -> None:
    target.mkdir()
    for name in ("pyproject.toml", "workspace.yaml", "dagster.yaml"):
        shutil.copy(REPO / name, target / name)
    for name in ("sync_assets", "connectors", "examples"):
        shutil.copytree(REPO / name, target / name, ignore=shutil.ignore_patterns("__pycache__"))


def test_a_route_in_one_yaml_file_shows_up_in_dagster_dev_and_syncs(tmp_path):
    project = tmp_path / "project"
    _copy_project(project)
    route_file = project / "sync_assets" / "defs" / "people" / "defs.yaml"
    route_file.parent.mkdir()
    route_file.write_text(ROUTE_YAML)
    demo = tmp_path / "demo"
    demo.mkdir()
    (demo / "people.csv").write_text("id,name,age\n1,Ada,36\n2,Grace,45\n3,Edsger,72\n")

    env = dagster_env(
        tmp_path / "home",
        DURABLE_SYNC_DEMO_DIR=str(demo),
        PYTHONPATH=str(project),
        GITHUB_TOKEN="test-secret-value",
    )
    port = free_port()
    log = tmp_path / "dagster-dev.log"
    cmd = [str(BIN / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
    with dagster_process(cmd, env, log, cwd=project) as proc:
        wait_ready(port, proc, log)
        keys = {
            "/".join(n["assetKey"]["path"]) for n in graphql(port, "{ assetNodes { assetKey { path } } }")["assetNodes"]
        }
        assert {"people_to_sqlite", "files_to_sqlite"} <= keys

        def first_success():
            return [r for r in runs(port, "people_to_sqlite_sync") if r["status"] == "SUCCESS"] or None

        wait_for(first_success, timeout=150, interval=2, what="the new route's first run")
        rows = sqlite3.connect(demo / "people.sqlite3").execute("select person_id, name, age from people").fetchall()
        assert sorted(rows) == [("1", "Ada", 36), ("2", "Grace", 45), ("3", "Edsger", 72)]

        selector = '{repositoryName: "__repository__", repositoryLocationName: "durable_sync"}'
        resources = graphql(
            port,
            f"""{{ allTopLevelResourceDetailsOrError(repositorySelector: {selector}) {{
                 ... on ResourceDetailsList {{ results {{ name configuredValues {{ key value type }}
                   assetKeysUsing {{ path }} }} }} }} }}""",
        )["allTopLevelResourceDetailsOrError"]["results"]
        by_name = {r["name"]: r for r in resources}
        token = {v["key"]: v for v in by_name["github"]["configuredValues"]}["token"]
        assert token["type"] == "ENV_VAR" and token["value"] == "GITHUB_TOKEN"
        assert ["people_to_sqlite"] in [k["path"] for k in by_name["files"]["assetKeysUsing"]]
        env_vars = graphql(
            port,
            f"""{{ utilizedEnvVarsOrError(repositorySelector: {selector}) {{
                 ... on EnvVarWithConsumersList {{ results {{ envVarName }} }} }} }}""",
        )["utilizedEnvVarsOrError"]["results"]
        assert {"GITHUB_TOKEN", "NOTION_TOKEN"} <= {e["envVarName"] for e in env_vars}
        assert "test-secret-value" not in log.read_text()

        # What a user types to run it again by hand; the second pass writes nothing.
        (demo / "people.csv").write_text("id,name,age\n1,Ada,37\n2,Grace,45\n3,Edsger,72\n")
        out = subprocess.run(
            [
                str(BIN / "dagster"),
                "asset",
                "materialize",
                "--select",
                "people_to_sqlite",
                "--partition",
                "people",
                "-m",
                "sync_assets.definitions",
            ],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert proc.poll() is not None
    ages = dict(sqlite3.connect(demo / "people.sqlite3").execute("select name, age from people").fetchall())
    assert ages == {"Ada": 37, "Grace": 45, "Edsger": 72}
    assert os.listdir(REPO / "sync_assets" / "defs").count("people") == 0
    assert textwrap.dedent(ROUTE_YAML) == route_file.read_text()

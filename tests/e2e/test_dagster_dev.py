"""`dagster dev` (webserver + daemon) on loopback: the demo route syncs with no click."""

from __future__ import annotations

import pytest

from tests.e2e.procs import BIN, dagster_env, dagster_process, free_port, graphql, runs, wait_for, wait_ready

pytestmark = pytest.mark.e2e


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

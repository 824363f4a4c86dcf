"""Both instance configurations shipped (dagster.yaml, deploy/dagster-postgres.yaml) load, and their
run queue keeps a run whose code server is briefly unreachable instead of failing it."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("config", ["dagster.yaml", "deploy/dagster-postgres.yaml"])
def test_the_run_queue_retries_a_dequeue_that_cannot_reach_the_code_server(tmp_path, config, monkeypatch):
    settings = yaml.safe_load((REPO / config).read_text())
    # The storage is not what this test is about: an ephemeral one, the rest as shipped.
    settings.pop("storage", None)
    settings["local_artifact_storage"] = {
        "module": "dagster.core.storage.root",
        "class": "LocalArtifactStorage",
        "config": {"base_dir": str(tmp_path)},
    }
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(settings))
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        queue = instance.get_concurrency_config().run_queue_config
        assert queue is not None
        assert queue.max_user_code_failure_retries == 3
        assert queue.user_code_failure_retry_delay == 10
        assert ("durable_sync/partition", 1) in [(t["key"], t["limit"]) for t in queue.tag_concurrency_limits]
    finally:
        instance.dispose()

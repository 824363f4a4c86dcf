"""Connector log lines reach the run's event log through the instance's ``python_logs`` (issue 14).

The instance is built from the repo's own ``dagster.yaml`` (what ``make`` copies into DAGSTER_HOME),
never from a hand-written ``python_logs`` block: deleting the block from the file fails
``test_a_retried_503_is_one_line_in_the_runs_event_log``. ``deploy/dagster-postgres.yaml`` must
carry the same block, and every module logger must be under a managed name.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest
import yaml

from connectors.github import GitHubSource
from connectors.http import HttpSettings, RetryPolicy
from connectors.memory import MemoryDestination
from sync_assets.routes import Route
from sync_assets.state import StateStore
from sync_assets.testing import materialize_route
from tests.fakes.github import FakeClock, FakeGitHub

REPO = Path(__file__).resolve().parents[2]
SQLITE_INSTANCE = REPO / "dagster.yaml"
POSTGRES_INSTANCE = REPO / "deploy" / "dagster-postgres.yaml"
# The HTTP toolkit's retry line (connectors/http/retry.py, ``_log_retry``).
RETRY_LINE = re.compile(r"^GitHub GET (/\S*) -> 503; retry 1/\d+ in \d+\.\d\d s$")


def instance_config(path: Path) -> dict[str, Any]:
    config = yaml.safe_load(path.read_text())
    assert isinstance(config, dict)
    return config


@pytest.fixture(autouse=True)
def _restore_logger_levels() -> Iterator[None]:
    """A run sets the managed loggers' levels for the whole process; put them back for later tests."""
    names = [*instance_config(SQLITE_INSTANCE).get("python_logs", {}).get("managed_python_loggers", []), "connectors"]
    saved = {name: logging.getLogger(name).level for name in names}
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def run_github_route_with_one_503(tmp_path: Path, config: dict[str, Any]) -> list[dg.EventLogEntry]:
    """Materialize a GitHub route whose first request answers 503; the run's event log."""
    clock = FakeClock()
    fake = FakeGitHub(clock=clock.clock)
    fake.add_repos("acme", 3)
    source = GitHubSource(
        token=fake.token,
        orgs=["acme"],
        http=HttpSettings(
            transport=httpx.ASGITransport(app=fake.app),
            retry=RetryPolicy(jitter=0),
            sleep=clock.sleep,
            clock=clock.clock,
        ),
    )
    route = Route(source, MemoryDestination(), name="github_event_log")
    fake.fail_next(1, status=503)
    store = StateStore(f"sqlite:///{tmp_path / 'state.sqlite3'}")
    home = tmp_path / "instance"
    home.mkdir()
    try:
        with dg.instance_for_test(temp_dir=str(home), overrides=config) as instance:
            run = materialize_route(route, store=store, instance=instance)
            assert run.success, run.failure
            assert fake.statuses()[503] == 1  # the fault was served, and retried
            return list(instance.all_logs(run.result.run_id))
    finally:
        store.dispose()


def retry_lines(events: list[dg.EventLogEntry]) -> list[str]:
    return [e.user_message for e in events if e.dagster_event is None and RETRY_LINE.match(e.user_message)]


def test_a_retried_503_is_one_line_in_the_runs_event_log(tmp_path: Path) -> None:
    events = run_github_route_with_one_503(tmp_path, instance_config(SQLITE_INSTANCE))

    lines = retry_lines(events)
    assert len(lines) == 1, [e.user_message for e in events]
    match = RETRY_LINE.match(lines[0])
    assert match is not None
    assert match.group(1) == "/orgs/acme/repos"  # the path only: no query string reaches a log line
    (entry,) = [e for e in events if e.user_message == lines[0]]
    assert entry.level == logging.INFO
    assert entry.step_key  # recorded against the sync step, not floating in the run


def test_without_python_logs_the_retry_line_stays_out_of_the_event_log(tmp_path: Path) -> None:
    """The control: the line above is there because of the file's python_logs, not by default."""
    config = instance_config(SQLITE_INSTANCE)
    assert config.pop("python_logs", None) is not None, "dagster.yaml has no python_logs block"

    events = run_github_route_with_one_503(tmp_path, config)

    assert retry_lines(events) == []


def test_the_postgres_instance_captures_the_same_loggers() -> None:
    sqlite_logs = instance_config(SQLITE_INSTANCE).get("python_logs")
    assert sqlite_logs == {"managed_python_loggers": ["connectors", "sync_assets"], "python_log_level": "INFO"}
    assert instance_config(POSTGRES_INSTANCE).get("python_logs") == sqlite_logs


MODULE_LOGGER = re.compile(r"^\w+ = logging\.getLogger\((.+)\)", re.MULTILINE)


@pytest.mark.parametrize("package", ["connectors", "sync_assets"])
def test_every_module_logger_is_under_a_managed_name(package: str) -> None:
    """Dagster captures a managed logger and its children (they propagate to it), nothing else."""
    managed = instance_config(SQLITE_INSTANCE)["python_logs"]["managed_python_loggers"]
    names = []
    for path in sorted((REPO / package).rglob("*.py")):
        module = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        for arg in MODULE_LOGGER.findall(path.read_text()):
            names.append(module if arg == "__name__" else arg.strip("\"'"))
    assert names
    outside = [n for n in names if not any(n == m or n.startswith(m + ".") for m in managed)]
    assert outside == []

"""The documented way to test a route: isolated, failing fast, naming the root cause.

The README's example is run as written (extracted from README.md), twice, as two runs of a user's test
suite would run it: both must pass with the same result and write nothing outside their tmp_path.
"""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import pytest

from connectors.core import TransientError
from sync_assets.state import StateStore
from sync_assets.testing import materialize_route
from tests.sync_assets.helpers import memory_route

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_section_code(heading: str) -> str:
    text = README.read_text()
    section = text[text.index(heading) :]
    section = section[: section.index("\n## ", 1)]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    return code


@pytest.fixture
def outside(tmp_path, monkeypatch) -> Path:
    """Where a test must not write: the working directory and the deployment's DAGSTER_HOME and state."""
    outside = tmp_path / "outside"
    (outside / "cwd").mkdir(parents=True)
    (outside / "home").mkdir()
    monkeypatch.chdir(outside / "cwd")
    monkeypatch.setenv("DAGSTER_HOME", str(outside / "home"))
    monkeypatch.setenv("DURABLE_SYNC_STATE_URL", f"sqlite:///{outside / 'home' / 'deployment-state.sqlite3'}")
    return outside


def test_readme_route_test_passes_twice_and_writes_only_under_its_tmp_path(tmp_path, outside):
    code = _readme_section_code("### Testing a route\n")
    namespace: dict = {"__name__": "readme_example"}
    exec(compile(code, "README.md#testing-a-route", "exec"), namespace)
    tests = [fn for name, fn in namespace.items() if name.startswith("test_") and callable(fn)]
    assert tests, "the README's testing example defines no test"
    for attempt in ("first", "second"):  # two runs of the user's suite: each a new tmp_path
        suite_tmp = tmp_path / attempt
        suite_tmp.mkdir()
        for test in tests:
            test(suite_tmp)  # the README's own assertions: created == 3, then unchanged == 3
    assert sorted(p.name for p in (tmp_path / "first").iterdir()) == ["tasks.csv", "tasks.sqlite3"]
    assert sorted(str(p.relative_to(outside)) for p in outside.rglob("*")) == ["cwd", "home"]


def test_default_state_is_a_fresh_temporary_store_not_the_deployments(outside):
    route = memory_route()
    first = materialize_route(route)
    assert first.stats.created == 250
    assert "outside" not in first.store.url
    again = materialize_route(route, store=first.store)
    assert again.stats.unchanged == 250 and again.stats.destination_calls == 0
    # A new default store knows nothing of the first: the route's destination adopts its rows.
    fresh = materialize_route(route)
    assert fresh.store is not first.store and fresh.metadata["adopted"] == 250
    assert sorted(str(p.relative_to(outside)) for p in outside.rglob("*")) == ["cwd", "home"]


def test_a_failing_destination_fails_at_once_with_the_root_cause_in_failure(sqlite_store):
    route = memory_route(fail=lambda op, r: TransientError("POST /rows -> 503 Service Unavailable: upstream down"))
    run = materialize_route(route, store=sqlite_store)
    assert not run.success
    assert "STEP_UP_FOR_RETRY" not in run.event_types  # no retries by default: no minute of backoff
    assert "503 Service Unavailable: upstream down" in run.failure
    assert "TransientError" in run.failure and "Exceeded max_retries" not in run.failure


def test_with_a_retry_policy_the_failure_still_names_the_root_cause(sqlite_store):
    route = memory_route(fail=lambda op, r: TransientError("POST /rows -> 503 Service Unavailable"))
    policy = dg.RetryPolicy(max_retries=2, delay=0.01)
    run = materialize_route(route, store=sqlite_store, retry_policy=policy)
    assert run.event_types.count("STEP_UP_FOR_RETRY") == 2
    assert run.failure.startswith("connectors.core.TransientError: POST /rows -> 503 Service Unavailable")
    assert run.failure.endswith("(exceeded max_retries of 2)")


def test_stats_of_a_failed_run_raise_with_the_root_cause(sqlite_store):
    route = memory_route(fail=lambda op, r: TransientError("POST /rows -> 502 Bad Gateway"))
    run = materialize_route(route, store=sqlite_store)
    with pytest.raises(AssertionError, match=r"did not materialize: .*502 Bad Gateway"):
        run.stats  # noqa: B018 - the property raises


def test_a_given_store_is_the_one_the_run_uses(sqlite_store):
    run = materialize_route(memory_route(), store=sqlite_store)
    assert run.store is sqlite_store and StateStore._shared[sqlite_store.url] is sqlite_store
    assert sqlite_store.link_count(run.route.name, "all") == 250

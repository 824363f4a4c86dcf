"""A two-way route's ``no_conflicts`` asset check and its line in ``durable-sync status``, through Dagster."""

from __future__ import annotations

import asyncio

from sync_assets.cli import _fmt_stats
from sync_assets.testing import materialize_route
from tests.engine.test_two_way_local import Side, pair


def test_the_no_conflicts_check_fails_with_the_resolved_fields_then_passes(tmp_path, sqlite_store):
    a, b = Side(tmp_path / "a.sqlite3", "tasks", "a"), Side(tmp_path / "b.sqlite3", "todo", "b")
    row = asyncio.run(a.add(title="t", status="open"))
    a_to_b, b_to_a = pair(a, b, tie="b").routes()
    first = materialize_route(a_to_b, store=sqlite_store)
    assert first.success and first.checks["no_conflicts"].passed
    materialize_route(b_to_a, store=sqlite_store)
    [twin] = b.rows()
    asyncio.run(a.edit(row, title="from a"))
    asyncio.run(b.edit(twin, name="from b"))

    run = materialize_route(a_to_b, store=sqlite_store)
    check = run.checks["no_conflicts"]
    assert run.success and not check.passed
    assert check.metadata["conflicts"].value == 1
    assert f"{row}: title (side b won)" in check.metadata["resolved"].value
    [last] = sqlite_store.last_passes(a_to_b.name, run.partition, limit=1)
    assert "conflicts 1" in _fmt_stats(last.stats)  # as durable-sync status shows the pass

    assert materialize_route(b_to_a, store=sqlite_store).checks["no_conflicts"].passed
    assert materialize_route(a_to_b, store=sqlite_store).checks["no_conflicts"].passed
    assert b.values("name") == a.values("title") == [("from b",)]


def test_a_one_way_route_has_no_conflicts_check(tmp_path):
    from connectors.core import Record
    from sync_assets.routes import Route
    from sync_assets.testing import MemoryDestination, MemorySource

    run = materialize_route(Route(MemorySource([Record("k", {"a": 1})]), MemoryDestination()))
    assert run.success and "no_conflicts" not in run.checks

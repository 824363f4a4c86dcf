"""Two-way sync on a local pair (SQLite table A ⇄ SQLite table B), driven by the engine directly.

Each side is a ``SQLiteDestination`` table read back by a ``SQLiteTableSource``; a "human" edit is a
write to one table outside any route. Every test runs on SQLite and on the real PostgreSQL store.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from connectors.core import ConfigError, Record
from connectors.files import SQLiteDestination
from connectors.files.sqlite_table import SQLiteTableSource
from sync_assets.engine import PassOptions, PassResult, run_pass
from sync_assets.routes import Route, TwoWayRoute

NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


class Side:
    """One table: the destination a route writes and the source the other route reads."""

    def __init__(self, path: Path, table: str, name: str) -> None:
        self.dest = SQLiteDestination(path, table, name=name)
        self.source = SQLiteTableSource(self.dest, name=name)
        self.humans = 0

    async def add(self, **values) -> str:
        """A row made by hand: a key of its own, no route involved."""
        self.humans += 1
        async with self.dest.connect() as session:
            return str(await session.create(Record(f"hand-{self.dest.name}-{self.humans}", values), NOW))

    async def edit(self, row_id: str, **values) -> None:
        """A hand edit of some columns of a row."""
        async with self.dest.connect() as session:
            await session.update(row_id, Record("hand", values), NOW)

    def rows(self) -> dict[str, dict]:
        return {r["id"]: r for r in self.dest.read_rows()}

    def values(self, *fields: str) -> list[tuple]:
        return sorted(tuple(r.get(f) for f in fields) for r in self.dest.read_rows())


@pytest.fixture
def sides(tmp_path) -> tuple[Side, Side]:
    return Side(tmp_path / "a.sqlite3", "tasks", "a"), Side(tmp_path / "b.sqlite3", "todo", "b")


def pair(a: Side, b: Side, **kw) -> TwoWayRoute:
    kw.setdefault("fields", {"title": "name", "status": "state"})
    return TwoWayRoute(a=(a.source, a.dest), b=(b.source, b.dest), **kw)


async def run(route: Route, store, **opts) -> PassResult:
    [partition] = route.specs_by_partition()
    return await run_pass(route, partition, store, PassOptions(**opts))


async def both(routes: tuple[Route, Route], store) -> tuple[PassResult, PassResult]:
    return await run(routes[0], store), await run(routes[1], store)


def writes(result: PassResult) -> int:
    return result.stats.created + result.stats.updated


async def test_a_row_created_by_the_sync_is_never_copied_back_as_new(sides, store):
    a, b = sides
    for i in range(3):
        await a.add(title=f"task {i}", status="open")
    await b.add(name="from b", state="done")
    a_to_b, b_to_a = pair(a, b).routes()
    first, second = await both((a_to_b, b_to_a), store)
    assert (first.stats.created, second.stats.created) == (3, 1)
    assert len(a.rows()) == 4 and len(b.rows()) == 4
    assert a.values("title", "status") == b.values("name", "state")
    for _ in range(3):
        again = await both((a_to_b, b_to_a), store)
        assert [writes(r) for r in again] == [0, 0]
    assert len(a.rows()) == 4 and len(b.rows()) == 4


async def test_an_edit_goes_across_once_and_its_read_back_is_not_echoed(sides, store):
    a, b = sides
    row = await a.add(title="draft", status="open")
    routes = pair(a, b).routes()
    await both(routes, store)
    await a.edit(row, title="final")
    there, back = await both(routes, store)
    assert (there.stats.updated, back.stats.updated) == (1, 0)
    assert b.values("name") == [("final",)]
    [twin] = b.rows()
    await b.edit(twin, state="done")
    there, back = await both(routes, store)
    assert (there.stats.updated, back.stats.updated) == (0, 1)
    assert a.values("title", "status") == [("final", "done")]
    assert [writes(r) for r in await both(routes, store)] == [0, 0]


async def test_only_the_changed_fields_are_written_so_an_edit_on_the_other_side_survives(sides, store):
    a, b = sides
    row = await a.add(title="t", status="open")
    routes = pair(a, b).routes()
    await both(routes, store)
    [twin] = b.rows()
    await a.edit(row, title="t2")  # A edits one field...
    await b.edit(twin, state="blocked")  # ...B another, before either direction runs
    await both(routes, store)
    assert a.values("title", "status") == [("t2", "blocked")]
    assert b.values("name", "state") == [("t2", "blocked")]


async def test_a_conflict_is_resolved_once_by_the_tie_side_and_reported(sides, store):
    a, b = sides
    row = await a.add(title="t", status="open")
    routes = pair(a, b, tie="b").routes()
    await both(routes, store)
    [twin] = b.rows()
    await a.edit(row, title="from a")
    await b.edit(twin, name="from b")
    there, back = await both(routes, store)
    # A -> B runs first, finds B's edit of the same field: B wins (the tie side, no times known).
    assert there.stats.conflicts == 1 and there.conflicts == [(row, "title", "b")]
    assert there.stats.updated == 0
    assert back.stats.conflicts == 0 and back.stats.updated == 1
    assert a.values("title") == b.values("name") == [("from b",)]
    assert [writes(r) for r in await both(routes, store)] == [0, 0]


async def test_last_writer_wins_by_the_sides_modification_times(sides, store):
    a, b = sides
    row = await a.add(title="t", edited=NOW)
    routes = pair(a, b, fields={"title": "name"}, modified=("edited", "changed"), tie="a").routes()
    await both(routes, store)
    [twin] = b.rows()
    await a.edit(row, title="older", edited=NOW + dt.timedelta(minutes=1))
    await b.edit(twin, name="newer", changed=NOW + dt.timedelta(minutes=5))
    there, _ = await both(routes, store)
    assert there.conflicts == [(row, "title", "b")]
    assert a.values("title") == [("newer",)] and b.values("name") == [("newer",)]


async def test_an_owned_field_is_written_only_from_its_owner(sides, store):
    a, b = sides
    row = await a.add(title="t", status="open")
    routes = pair(a, b, policy="owner", owners={"title": "a", "status": "b"}).routes()
    await both(routes, store)
    [twin] = b.rows()
    await b.edit(twin, name="renamed in b")  # not B's field: never written to A
    await a.edit(row, status="closed in a")  # not A's field: never written to B
    assert [writes(r) for r in await both(routes, store)] == [0, 0]
    assert a.values("title", "status") == [("t", "closed in a")]
    assert b.values("name", "state") == [("renamed in b", "open")]
    await a.edit(row, title="t2")  # the owner's edit wins over B's
    there, _ = await both(routes, store)
    assert there.stats.conflicts == 1 and b.values("name") == [("t2",)]


async def test_a_deletion_is_never_propagated(sides, store):
    a, b = sides
    await a.add(title="t", status="open")
    routes = pair(a, b).routes()
    await both(routes, store)
    [twin] = b.rows()
    import sqlite3

    with sqlite3.connect(b.dest.path) as conn:
        conn.execute("DELETE FROM todo WHERE id = ?", (int(twin),))
    results = await both(routes, store)
    assert [r.stats.created for r in results] == [0, 0]
    assert len(a.rows()) == 1 and b.rows() == {}


def test_the_two_routes_are_named_after_their_directions_and_checked(sides):
    a, b = sides
    a_to_b, b_to_a = pair(a, b).routes()
    assert (a_to_b.name, b_to_a.name) == ("a_to_b", "b_to_a")
    assert a_to_b.two_way is not None and a_to_b.two_way.peer_route == "b_to_a"
    with pytest.raises(ConfigError, match="needs an owner for status"):
        pair(a, b, policy="owner", owners={"title": "a"})
    with pytest.raises(ConfigError, match="not in fields"):
        pair(a, b, owners={"nope": "a"})


async def test_a_crash_before_the_pairs_are_stored_duplicates_nothing(sides, store, monkeypatch):
    a, b = sides
    for i in range(3):
        await a.add(title=f"task {i}", status="open")
    a_to_b, b_to_a = pair(a, b).routes()

    def crash(*args, **kwargs):
        raise ConnectionError("the state store went away")

    with monkeypatch.context() as m:
        m.setattr(type(store), "put_pairs", crash)
        with pytest.raises(ConnectionError):
            await run(a_to_b, store)  # B's rows exist; neither their pairs nor their links were stored
    assert len(b.rows()) == 3
    held = await run(b_to_a, store)  # A -> B has unconfirmed creates: B's rows may be its own
    assert held.stats.created == 0 and held.stats.failed == 3
    for _ in range(2):
        results = await both((a_to_b, b_to_a), store)
        assert [r.stats.created for r in results] == [0, 0]
    assert len(a.rows()) == 3 and len(b.rows()) == 3
    assert a.values("title", "status") == b.values("name", "state")


def test_field_values_compare_as_both_systems_may_hold_them():
    from sync_assets._two_way import value_hash

    paris = dt.timezone(dt.timedelta(hours=2))
    assert value_hash(["b", "a"]) == value_hash(["a", "b"])
    assert value_hash([]) == value_hash(None) != value_hash("")
    assert value_hash(dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)) == value_hash(
        dt.datetime(2024, 5, 1, 14, tzinfo=paris)
    )
    assert value_hash(dt.date(2024, 5, 1)) != value_hash("2024-05-01")
    assert value_hash(1) != value_hash("1") and value_hash(True) != value_hash(1)

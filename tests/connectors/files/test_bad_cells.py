"""A cell that fails its declared type fails its record only, and no value types a SQLite column for good.

The issue this guards against: a CSV cell ``soon`` in a ``date`` column reached SQLite as text; being
the first value of the column, it made the column text for good, so every valid date after it was
refused, on this pass and on every later one, until the table was dropped by hand.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from connectors.core import Record, RecordError, neutral_type_error
from connectors.files import FileSpec, FilesSource, SQLiteDestination
from sync_assets.engine import PassOptions, run_pass
from sync_assets.routes import Route
from sync_assets.state import StateStore

TYPES = {"due": "date", "n": "int"}


def _route(csv_path: Path, db_path: Path, **dest_kwargs: object) -> Route:
    source = FilesSource([FileSpec("tasks", str(csv_path), "id", TYPES)], page_size=50)
    return Route(source, SQLiteDestination(db_path, "tasks", **dest_kwargs), name="files_to_sqlite")  # type: ignore[arg-type]


async def test_a_bad_cell_fails_its_record_and_the_rest_of_the_page_is_written(write_csv, tmp_path):
    # The bad cell is the first value the "due" column ever sees.
    rows = [["t1", "soon", "1"], ["t2", "2024-05-01", "2"], ["t3", "2024-06-01", "3"]]
    csv_path = write_csv("tasks.csv", ["id", "due", "n"], rows)
    db = tmp_path / "out.sqlite"
    store = StateStore(f"sqlite:///{tmp_path}/state.db")
    route = _route(csv_path, db)

    result = await run_pass(route, "tasks", store, PassOptions())

    assert [key for key, _ in result.failures] == ["t1"]
    assert "'due'" in result.failures[0][1]
    assert (result.stats.created, result.stats.failed) == (2, 1)
    assert [o.primary_key for o in store.failed_records(route.name, "tasks")] == ["t1"]
    written = SQLiteDestination(db, "tasks").read_rows()
    assert [(r["primary_key"], r["due"]) for r in written] == [
        ("t2", dt.date(2024, 5, 1)),
        ("t3", dt.date(2024, 6, 1)),
    ]

    # The cell is fixed by hand: the next pass writes the record, with its date.
    rows[0][1] = "2024-04-01"
    write_csv("tasks.csv", ["id", "due", "n"], rows)
    again = await run_pass(_route(csv_path, db), "tasks", store, PassOptions())

    assert again.failures == []
    assert again.stats.created == 1
    by_key = {r["primary_key"]: r for r in SQLiteDestination(db, "tasks").read_rows()}
    assert by_key["t1"]["due"] == dt.date(2024, 4, 1) and type(by_key["t1"]["n"]) is int
    assert store.failed_records(route.name, "tasks") == []


async def test_a_bad_cell_is_a_value_the_engine_and_the_destinations_reject(write_csv, tmp_path, synced_at):
    path = write_csv("bad.csv", ["id", "due", "n"], [["t1", "soon", "x1"]])
    source = FilesSource([FileSpec("bad", str(path), "id", TYPES)])

    (record,) = await source.fetch(source.specs()[0])

    assert source.conversion_failures == 2
    assert "'due'" in (neutral_type_error("due", record.properties["due"]) or "")
    assert "'n'" in (neutral_type_error("n", record.properties["n"]) or "")
    # A caller that skips the engine's validation still cannot write it.
    dest = SQLiteDestination(tmp_path / "d.sqlite", "t")
    assert "not a date" in (dest.check_record(record) or "")
    async with dest.connect() as session:
        with pytest.raises(RecordError, match="not a date"):
            await session.create(record, synced_at)
    assert not (tmp_path / "d.sqlite").exists()


async def test_no_single_value_types_an_undeclared_column_for_good(tmp_path, synced_at):
    dest = SQLiteDestination(tmp_path / "m.sqlite", "t")
    values = ["soon", dt.date(2024, 5, 1), 7, True, 2.5, ["a"], dt.datetime(2024, 5, 1, 9, tzinfo=dt.UTC), "2024-05-02"]
    async with dest.connect() as session:
        for i, value in enumerate(values):
            await session.create(Record(f"k{i}", {"x": value}), synced_at)

    got = [r["x"] for r in SQLiteDestination(dest.path, "t").read_rows()]
    assert got == values
    assert [type(v) for v in got] == [type(v) for v in values]


async def test_ints_read_back_as_ints_after_a_float_lands_in_their_column(tmp_path, synced_at):
    dest = SQLiteDestination(tmp_path / "n.sqlite", "t")
    async with dest.connect() as session:
        first = await session.create(Record("a", {"n": 1}), synced_at)
        await session.create(Record("b", {"n": 2.5}), synced_at)
        await session.create(Record("c", {"n": 3}), synced_at)
        await session.create(Record("d", {"n": 4.0}), synced_at)
        await session.update(first, Record("a", {"n": 10}), synced_at)

    got = [r["n"] for r in dest.read_rows()]
    assert got == [10, 2.5, 3, 4.0]
    assert [type(v) for v in got] == [int, float, int, float]


async def test_declared_types_decide_the_column_and_refuse_other_values(tmp_path, synced_at):
    dest = SQLiteDestination(tmp_path / "d.sqlite", "t", types={"due": "date", "ratio": "float"})
    async with dest.connect() as session:
        with pytest.raises(RecordError, match="property 'due': declared date, got str"):
            await session.create(Record("k0", {"due": "soon"}), synced_at)
        assert dest.check_record(Record("k0", {"due": "soon"})) is not None
        await session.create(Record("k1", {"due": dt.date(2024, 5, 1), "ratio": 2}), synced_at)
        await session.create(Record("k2", {"due": None, "ratio": 0.5}), synced_at)

    assert [(r["primary_key"], r["due"], r["ratio"]) for r in dest.read_rows()] == [
        ("k1", dt.date(2024, 5, 1), 2.0),
        ("k2", None, 0.5),
    ]
    with sqlite3.connect(dest.path) as conn:
        declared = {row[1]: row[2] for row in conn.execute('PRAGMA table_info("t")')}
    assert (declared["due"], declared["ratio"]) == ("TEXT", "REAL")


OLDER_LAYOUT = """
    CREATE TABLE "_durable_sync_columns" ("table" TEXT NOT NULL, property TEXT NOT NULL,
        "column" TEXT NOT NULL, kind TEXT, PRIMARY KEY ("table", property));
    CREATE TABLE "t" (id INTEGER PRIMARY KEY AUTOINCREMENT, "primary_key" TEXT UNIQUE NOT NULL,
        body TEXT, synced_at TEXT, "due" TEXT, "n" REAL, "w" INTEGER);
    INSERT INTO "_durable_sync_columns" VALUES ('t', 'due', 'due', 'str'), ('t', 'n', 'n', 'float'),
        ('t', 'w', 'w', 'float');
    INSERT INTO "t" (primary_key, synced_at, due, n, w) VALUES ('t1', '2024-01-01T00:00:00+00:00', 'soon', 1.5, 3);
"""
"""What the older version left: ``due`` a TEXT column typed str by the bad cell ``soon``; ``n`` a REAL
column; ``w`` an INTEGER column it widened to float (so its 3.0 is stored as the integer 3)."""


@pytest.mark.parametrize("user_index", [False, True], ids=["rebuilt", "index-on-the-column"])
async def test_a_table_wedged_by_an_older_version_heals_without_being_dropped(tmp_path, synced_at, user_index):
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    # An index of the user's on a column stops SQLite dropping it: the property then moves to a new one.
    conn.executescript(OLDER_LAYOUT + ('CREATE INDEX "by_w" ON "t" ("w");' if user_index else ""))
    conn.close()
    dest = SQLiteDestination(path, "t")
    async with dest.connect() as session:
        await session.update("1", Record("t1", {"due": dt.date(2024, 4, 1), "n": 2}), synced_at)
        await session.create(Record("t2", {"due": dt.date(2024, 5, 1), "n": 3.5, "w": 5}), synced_at)
        await session.create(Record("t3", {"due": "a note", "n": 4, "w": 2.5}), synced_at)

    rows = dest.read_rows()
    assert [(r["due"], r["n"], r["w"]) for r in rows] == [
        (dt.date(2024, 4, 1), 2, 3.0),
        (dt.date(2024, 5, 1), 3.5, 5),
        ("a note", 4, 2.5),
    ]
    assert [(type(r["n"]), type(r["w"])) for r in rows] == [(int, float), (float, int), (int, float)]

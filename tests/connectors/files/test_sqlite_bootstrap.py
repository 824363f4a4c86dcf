"""SQLiteDestination.bootstrap_schema: the table and columns a sample needs, created up front, never altered."""

from __future__ import annotations

import datetime as dt
import sqlite3

from connectors.core import Record, SchemaBootstrap
from connectors.files import SQLiteDestination


def sample() -> list[Record]:
    return [
        Record("1", {"title": "a", "count": 3, "due": dt.date(2024, 1, 2), "tags": ["x"], "none": None}),
        Record("2", {"title": "b", "count": 4, "flag": True}),
    ]


def columns(path, table: str) -> dict[str, str]:
    conn = sqlite3.connect(path)
    try:
        return {row[1]: row[2] for row in conn.execute(f'PRAGMA table_info("{table}")')}
    finally:
        conn.close()


async def test_plan_creates_nothing_not_even_the_file_and_apply_creates_table_and_columns(tmp_path, synced_at):
    path = tmp_path / "out.sqlite"
    dest = SQLiteDestination(path, "tasks", types={"count": "int"})
    assert isinstance(dest, SchemaBootstrap)

    planned = await dest.bootstrap_schema(sample(), apply=False)
    assert [(c.action, c.name, c.kind) for c in planned] == [
        ("create", "tasks", "table"),
        ("create", "title", "str"),
        ("create", "count", "int"),
        ("create", "due", "date"),
        ("create", "tags", "list"),
        ("create", "flag", "bool"),
    ]
    assert not path.exists()

    assert await dest.bootstrap_schema(sample(), apply=True) == planned
    cols = columns(path, "tasks")
    assert {"title", "count", "due", "tags", "flag"} <= set(cols) and "none" not in cols
    assert cols["count"] == "INTEGER" and cols["title"] == ""  # declared types only, as on write

    assert await dest.bootstrap_schema(sample(), apply=True) == []  # idempotent

    # The columns it made are the ones writes use: values round-trip with their types.
    async with dest.connect() as session:
        await session.create(sample()[0], synced_at)
    (row,) = dest.read_rows()
    assert row["due"] == dt.date(2024, 1, 2) and row["tags"] == ["x"] and row["count"] == 3


async def test_a_column_whose_type_would_convert_the_values_is_reported_and_left_alone(tmp_path, synced_at):
    path = tmp_path / "out.sqlite"
    typed = SQLiteDestination(path, "tasks", types={"count": "int"})
    async with typed.connect() as session:
        await session.create(Record("1", {"count": 1}), synced_at)

    loose = SQLiteDestination(path, "tasks")  # the route no longer declares it; the source sends text
    changes = await loose.bootstrap_schema([Record("2", {"count": "many", "extra": 1.5})], apply=True)
    assert [(c.action, c.name) for c in changes] == [("mismatch", "count"), ("create", "extra")]
    assert "INTEGER affinity" in str(changes[0])
    assert columns(path, "tasks")["count"] == "INTEGER"  # not rebuilt

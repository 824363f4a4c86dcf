"""``plan`` writes nothing: the SQLite and JSONL destinations create nothing before their first write.

The engine, in plan mode, calls ``connect()`` and lists the destination, and never ``create`` or
``update``. Both destinations used to create their file (and SQLite its table and WAL) on ``connect``,
so a dry run left a database behind while it printed "(nothing written)". ``check_record`` is what
the engine asks in plan mode for the records it would write.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import sqlite3
from pathlib import Path

import pytest

from connectors.core import Record
from connectors.files import FileSpec, FilesSource, JSONLDestination, SQLiteDestination
from sync_assets.engine import PassOptions, run_pass
from sync_assets.routes import Route
from sync_assets.state import StateStore


def _tree(root: Path) -> dict[str, str]:
    """Every file and directory under ``root`` with a digest of its bytes (directories: "dir")."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            out[os.path.relpath(Path(dirpath, name), root)] = "dir"
        for name in filenames:
            path = Path(dirpath, name)
            out[os.path.relpath(path, root)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture
def tasks_csv(write_csv, tmp_path) -> Path:
    rows = [["t1", "2024-05-01", "a"], ["t2", "soon", "b"], ["t3", "2024-06-01", "c"]]
    return write_csv("in/tasks.csv", ["id", "due", "title"], rows)


@pytest.mark.parametrize("kind", ["sqlite", "jsonl"])
async def test_plan_into_a_path_that_does_not_exist_leaves_the_directory_unchanged(kind, tasks_csv, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    target = out / "deeper" / ("db.sqlite" if kind == "sqlite" else "rows.jsonl")
    dest = SQLiteDestination(target, "tasks") if kind == "sqlite" else JSONLDestination(target)
    source = FilesSource([FileSpec("tasks", str(tasks_csv), "id", {"due": "date"})])
    route = Route(source, dest, name="files_plan")  # type: ignore[arg-type]
    store = StateStore(f"sqlite:///{tmp_path}/state.db")
    before = _tree(out)

    result = await run_pass(route, "tasks", store, PassOptions(plan=True))

    assert _tree(out) == before == {}
    assert result.mode == "plan"
    assert (result.stats.created, result.stats.failed) == (2, 1)
    assert result.planned["failed"] == ["t2"]


async def test_sqlite_connect_and_listing_create_nothing(tmp_path):
    dest = SQLiteDestination(tmp_path / "out" / "a" / "b.sqlite", "tasks")
    async with dest.connect() as session:
        assert await session.query_existing_ids() == {}
        assert [pair async for pair in session.query_existing_rows()] == []
        assert session.check_record(Record("k", {"n": 1})) is None
    assert not (tmp_path / "out").exists()


async def test_sqlite_listing_of_an_existing_file_without_the_table_adds_nothing(tmp_path, synced_at):
    path = tmp_path / "shared.sqlite"
    async with SQLiteDestination(path, "other").connect() as session:
        await session.create(Record("k", {"n": 1}), synced_at)
    before = _tree(tmp_path)

    async with SQLiteDestination(path, "tasks").connect() as session:
        assert await session.query_existing_ids() == {}

    assert _tree(tmp_path) == before
    with sqlite3.connect(path) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.close()
    assert "tasks" not in tables


async def test_sqlite_first_write_creates_the_file_and_table(tmp_path, synced_at):
    dest = SQLiteDestination(tmp_path / "a" / "b.sqlite", "tasks")
    async with dest.connect() as session:
        assert await session.query_existing_ids() == {}
        row_id = await session.create(Record("k", {"n": 1}), synced_at)
        assert await session.query_existing_ids() == {"k": row_id}
    with sqlite3.connect(dest.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


async def test_jsonl_connect_and_listing_create_nothing(tmp_path, synced_at):
    dest = JSONLDestination(tmp_path / "out" / "a" / "rows.jsonl")
    async with dest.connect() as session:
        assert await session.query_existing_ids() == {}
        assert session.check_record(Record("k", {"n": 1})) is None
    assert not (tmp_path / "out").exists()

    async with dest.connect() as session:
        row_id = await session.create(Record("k", {"n": 1}), synced_at)
        assert await session.query_existing_ids() == {"k": row_id}
    assert dest.path.exists()


async def test_jsonl_listing_never_compacts(tmp_path, synced_at):
    dest = JSONLDestination(tmp_path / "rows.jsonl")
    async with dest.connect() as session:
        row_id = await session.create(Record("k", {"n": 0}), synced_at)
        for n in range(1, 6):
            await session.update(row_id, Record("k", {"n": n}), synced_at)
        before = _tree(tmp_path)
        # A session that only lists (what plan does) closes without rewriting the log.
        async with dest.connect() as reader:
            assert await reader.query_existing_ids() == {"k": row_id}
        assert _tree(tmp_path) == before


LONG = "x" * 11


@pytest.mark.parametrize(
    ("record", "expect"),
    [
        (Record("k", {"s": "short", "n": 1, "due": dt.date(2024, 5, 1), "tags": ["a"]}), None),
        (Record("k", {"s": LONG}), "11 characters, longer than the limit of 10"),
        (Record("k", {"tags": ["ok", LONG]}), "11 characters"),
        (Record("k", {"nested": {"a": 1}}), "unsupported type dict"),
        (Record("k", {"x": float("nan")}), "not a finite number"),
        (Record("k", {"at": dt.datetime(2024, 1, 1)}), "has no timezone"),
        (Record("", {"n": 1}), "empty primary key"),
    ],
)
async def test_check_record_returns_the_message_a_write_would_fail_with(record, expect, tmp_path, synced_at):
    out = tmp_path / "out"
    for dest in (
        SQLiteDestination(out / "c.sqlite", "t", max_value_length=10),
        JSONLDestination(out / "c.jsonl", max_value_length=10),
    ):
        async with dest.connect() as session:
            problem = session.check_record(record)
        if expect is None:
            assert problem is None, (dest, problem)
        else:
            assert problem is not None and expect in problem, (dest, problem)
    assert not out.exists()


@pytest.mark.parametrize(
    ("record", "expect"),
    [
        (Record("k", {"big": 2**70}), "does not fit SQLite's 64-bit integers"),
        (Record("k", {"due": "tomorrow"}), "property 'due': declared date, got str"),
        (Record("k", {"n": 2.5}), "property 'n': declared int, got float"),
        (Record("k", {"n": True}), "property 'n': declared int, got bool"),
        (Record("k", {"bad\x00name": 1}), "NUL"),
        (Record("k", {"due": None, "n": 3, "other": "anything"}), None),
    ],
)
async def test_sqlite_check_record_agrees_with_create(record, expect, tmp_path, synced_at):
    dest = SQLiteDestination(tmp_path / "c.sqlite", "t", types={"due": "date", "n": "int"})
    problem = dest.check_record(record)
    async with dest.connect() as session:
        try:
            await session.create(record, synced_at)
            error = None
        except Exception as err:  # the message create fails with, whatever its class
            error = str(err)
    if expect is None:
        assert problem is None and error is None
    else:
        assert problem is not None and expect in problem
        assert error is not None and expect in error

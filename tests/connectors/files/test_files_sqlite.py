"""SQLiteDestination: typed round-trips, idempotent create, create-only columns, listing, errors."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest

from connectors.core import AuthError, ConfigError, Record, RecordError, TransientError
from connectors.files import SQLiteDestination

EVERY_TYPE = {
    "flag": True,
    "off": False,
    "count": 42,
    "big": 2**62,
    "ratio": 0.1,
    "title": "Ünïcødé — \"quoted\" 'text'\nline two",
    "empty": "",
    "due": dt.date(2024, 2, 29),
    "at": dt.datetime(2024, 5, 1, 10, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
    "tags": ["a", "b, c", '"d"'],
    "no_tags": [],
    "nothing": None,
}


@pytest.fixture
def dest(tmp_path) -> SQLiteDestination:
    return SQLiteDestination(tmp_path / "nested" / "dir" / "out.sqlite", "tasks")


def props_of(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in ("id", "primary_key", "body", "synced_at")}


async def test_every_neutral_type_round_trips_with_its_python_type(dest, synced_at):
    async with dest.connect() as session:
        row_id = await session.create(Record("k1", dict(EVERY_TYPE), "the body"), synced_at)

    (row,) = SQLiteDestination(dest.path, "tasks").read_rows()  # a fresh instance: read from disk

    assert row_id == row["id"] == "1"
    assert row["primary_key"] == "k1" and row["body"] == "the body" and row["synced_at"] == synced_at
    assert props_of(row) == EVERY_TYPE
    for name, value in EVERY_TYPE.items():
        assert type(row[name]) is type(value), name
    assert row["at"].utcoffset() == dt.timedelta(hours=-5)


async def test_create_of_an_existing_key_updates_that_row_and_returns_its_id(dest, synced_at):
    later = synced_at + dt.timedelta(hours=1)
    async with dest.connect() as session:
        first = await session.create(Record("k1", {"n": 1, "s": "a"}, "b1"), synced_at)
        await session.create(Record("k2", {"n": 2}), synced_at)
        # The engine crashed after the first create, before linking it, and creates again.
        again = await session.create(Record("k1", {"n": 10}, "b2"), later)

    assert again == first
    assert await _ids(dest) == {"k1": first, "k2": "2"}
    row = dest.read_rows()[0]
    assert (row["n"], row["s"], row["body"], row["synced_at"]) == (10, "a", "b2", later)


async def test_update_never_touches_create_only_properties(tmp_path, synced_at):
    dest = SQLiteDestination(tmp_path / "o.sqlite", "t", create_only_properties={"created", "source"})
    async with dest.connect() as session:
        row_id = await session.create(Record("k", {"created": "2024-01-01", "source": "csv", "n": 1}), synced_at)
        assert await session.update(row_id, Record("k", {"created": "CHANGED", "source": None, "n": 2}), synced_at)
        # And neither does a repeated create of the key.
        await session.create(Record("k", {"created": "AGAIN", "n": 3}), synced_at)

    (row,) = dest.read_rows()
    assert (row["created"], row["source"], row["n"]) == ("2024-01-01", "csv", 3)


async def test_none_clears_a_column_and_absent_properties_are_left_alone(dest, synced_at):
    async with dest.connect() as session:
        row_id = await session.create(Record("k", {"a": "x", "b": 1, "tags": ["t"]}, "body"), synced_at)
        await session.update(row_id, Record("k", {"a": None, "tags": None}, None), synced_at)

    (row,) = dest.read_rows()
    assert props_of(row) == {"a": None, "b": 1, "tags": None}
    assert row["body"] is None


async def test_property_names_with_spaces_quotes_and_clashes_get_their_own_columns(dest, synced_at):
    props = {
        "Due date": dt.date(2024, 1, 1),
        'say "hi"': "q",
        "it's": "apostrophe",
        'x"); DROP TABLE tasks; --': "bobby",
        "Status": "upper",
        "status": "lower",
        "id": "T-1",
        "body": "a property called body",
        "primary_key": "a property called primary_key",
        "": "empty name",
    }
    async with dest.connect() as session:
        await session.create(Record("k", props, "the real body"), synced_at)

    (row,) = dest.read_rows()
    assert row["id"] == "1" and row["body"] == "the real body" and row["primary_key"] == "k"
    assert row["property:id"] == "T-1"
    assert row["property:body"] == "a property called body"
    assert row["property:primary_key"] == "a property called primary_key"
    assert {k: row[k] for k in props if k not in ("id", "body", "primary_key")} == {
        k: v for k, v in props.items() if k not in ("id", "body", "primary_key")
    }
    with sqlite3.connect(dest.path) as conn:
        columns = [r[1] for r in conn.execute('PRAGMA table_info("tasks")')]
    assert columns[:4] == ["id", "primary_key", "body", "synced_at"]
    assert {"Status", "status__2", "id__2", "body__2", "primary_key__2"} <= set(columns)


async def test_query_existing_rows_lists_every_row_in_batches(dest, synced_at, monkeypatch):
    monkeypatch.setattr("connectors.files.sqlite.SQLITE_LIST_BATCH", 7)
    async with dest.connect() as session:
        assert await session.query_existing_ids() == {}
        for i in range(30):
            await session.create(Record(f"k{i}", {"n": i}), synced_at)
        pairs = [pair async for pair in session.query_existing_rows()]

    assert pairs == [(f"k{i}", str(i + 1)) for i in range(30)]


async def test_each_write_is_committed_before_it_returns(dest, synced_at):
    async with dest.connect() as session:
        await session.create(Record("k", {"n": 1}), synced_at)
        # Another connection (another process) sees it while the session is still open.
        with sqlite3.connect(dest.path) as other:
            assert other.execute('SELECT primary_key FROM "tasks"').fetchall() == [("k",)]
        assert (await _mode(dest)) == "wal"


async def test_update_of_an_unknown_row_is_a_record_error(dest, synced_at):
    async with dest.connect() as session:
        with pytest.raises(RecordError, match="row 99 not found"):
            await session.update("99", Record("k", {}), synced_at)
        with pytest.raises(RecordError, match="not a row id"):
            await session.update("row-1", Record("k", {}), synced_at)


async def test_values_that_do_not_fit_are_record_errors_and_leave_no_trace(tmp_path, synced_at):
    dest = SQLiteDestination(tmp_path / "v.sqlite", "t", types={"n": "int"}, max_value_length=5)
    async with dest.connect() as session:
        first = await session.create(Record("k1", {"n": 1, "s": "abc", "ratio": 1}), synced_at)
        bad = [
            # A str into a column declared int (a CSV cell that did not convert), after a new column.
            Record("k2", {"fresh": "x", "n": "one"}),
            Record("k3", {"s": "toolong"}),
            Record("k4", {"tags": ["ok", "waytoolong"]}),
            Record("k5", {"nested": {"a": 1}}),
            Record("k6", {"x": float("nan")}),
            Record("k7", {"at": dt.datetime(2024, 1, 1)}),  # naive
            Record("k8", {"n": True}),
            Record("k9", {"huge": 2**70}),
            Record("", {"n": 1}),
        ]
        for record in bad:
            with pytest.raises(RecordError) as info:
                await session.create(record, synced_at)
            assert info.value.primary_key == record.primary_key
            assert session.check_record(record) == str(info.value)
        # Refused inside the transaction, after the column for "fresh" was added: rolled back with it.
        with pytest.raises(RecordError, match="row 99 not found"):
            await session.update("99", Record("k1", {"fresh": "x", "s": "new"}), synced_at)
        # Undeclared columns take any kind, and each value keeps its own.
        await session.create(Record("k10", {"n": 2, "ratio": 2.5}), synced_at)
        await session.create(Record("k11", {"late": None, "s": 5}), synced_at)
        await session.create(Record("k12", {"late": "typed"}), synced_at)
        await session.update(first, Record("k1", {"ratio": 3}), synced_at)

    rows = dest.read_rows()
    assert [r["primary_key"] for r in rows] == ["k1", "k10", "k11", "k12"]
    assert [(r["n"], r["ratio"], r["s"]) for r in rows[:3]] == [(1, 3, "abc"), (2, 2.5, None), (None, None, 5)]
    assert [type(r["ratio"]) for r in rows[:2]] == [int, float]
    assert [r["late"] for r in rows] == [None, None, None, "typed"]
    assert "fresh" not in rows[0]  # the column added by the failed write was rolled back with it


async def test_a_second_session_sees_the_schema_of_the_first(dest, synced_at):
    async with dest.connect() as one, dest.connect() as two:
        await one.create(Record("k1", {"n": 1, "d": dt.date(2024, 1, 1)}), synced_at)
        await two.create(Record("k2", {"n": 2, "new": "x", "d": dt.date(2024, 1, 2)}), synced_at)
        await one.create(Record("k3", {"new": "y"}), synced_at)
        # One gives "d" a second text kind (and a kind column); two, whose map predates that, writes
        # a date through it, and its row must still say "date".
        await one.create(Record("k4", {"n": "str", "d": "not a date"}), synced_at)
        await two.create(Record("k5", {"d": dt.date(2024, 1, 5)}), synced_at)
        await two.create(Record("k6", {"n": True}), synced_at)

    assert [(r["primary_key"], r["n"], r["new"], r["d"]) for r in dest.read_rows()] == [
        ("k1", 1, None, dt.date(2024, 1, 1)),
        ("k2", 2, "x", dt.date(2024, 1, 2)),
        ("k3", None, "y", None),
        ("k4", "str", None, "not a date"),
        ("k5", None, None, dt.date(2024, 1, 5)),
        ("k6", True, None, None),
    ]


async def test_a_locked_database_is_a_transient_error(tmp_path, synced_at, monkeypatch):
    monkeypatch.setattr("connectors.files.sqlite.SQLITE_BUSY_TIMEOUT_SECONDS", 0.05)
    dest = SQLiteDestination(tmp_path / "l.sqlite", "t")
    async with dest.connect() as session:
        blocker = sqlite3.connect(dest.path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(TransientError, match="locked"):
                await session.create(Record("k", {"n": 1}), synced_at)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        await session.create(Record("k", {"n": 1}), synced_at)
    assert len(dest.read_rows()) == 1


async def test_an_existing_table_without_the_key_column_is_a_config_error(tmp_path, synced_at):
    path = tmp_path / "k.sqlite"
    async with SQLiteDestination(path, "t").connect() as session:
        await session.create(Record("k", {}), synced_at)
    async with SQLiteDestination(path, "t", key_column="external_id").connect() as session:
        with pytest.raises(ConfigError, match="without key column 'external_id'"):
            await session.query_existing_ids()
        with pytest.raises(ConfigError, match="without key column 'external_id'"):
            await session.create(Record("k", {}), synced_at)


def test_destination_attributes(tmp_path):
    dest = SQLiteDestination(tmp_path / "a.sqlite", "my table", key_column="ext id", create_only_properties=["c"])

    assert dest.describe() == f"sqlite://{(tmp_path / 'a.sqlite').resolve()}#my table"
    assert dest.describe().startswith("sqlite:///")
    assert dest.rate_limit_key == f"sqlite:{(tmp_path / 'a.sqlite').resolve()}"
    assert (dest.name, dest.configured, dest.stores_keys, dest.max_concurrency) == ("sqlite", True, True, 1)
    assert dest.create_only_properties == {"c"}
    assert "a.sqlite" in dest.config_hint
    assert dest.is_auth_error(AuthError("revoked")) and not dest.is_auth_error(RecordError("bad value"))
    assert dest.read_rows() == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"table": ""}, "table"),
        ({"table": "sqlite_master"}, "reserved"),
        ({"table": "_durable_sync_columns"}, "reserved"),
        ({"table": "t", "key_column": "id"}, "key_column"),
        ({"table": "t", "key_column": "Body"}, "key_column"),
        ({"table": "t", "max_value_length": 0}, "max_value_length"),
        ({"table": "t", "types": {"due": "timestamp"}}, "types\\['due'\\]"),
    ],
)
def test_bad_configuration_is_a_config_error(tmp_path, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        SQLiteDestination(tmp_path / "x.sqlite", **kwargs)


async def test_table_and_key_names_that_need_quoting_work(tmp_path, synced_at):
    dest = SQLiteDestination(tmp_path / "q.sqlite", 'my "odd" table', key_column="ext id")
    async with dest.connect() as session:
        row_id = await session.create(Record("k", {"n": 1}), synced_at)
        await session.update(row_id, Record("k", {"n": 2}), synced_at)
        assert await session.query_existing_ids() == {"k": row_id}
    assert dest.read_rows()[0]["ext id"] == "k"


async def _ids(dest: SQLiteDestination) -> dict[str, str]:
    async with dest.connect() as session:
        return await session.query_existing_ids()


async def _mode(dest: SQLiteDestination) -> str:
    with sqlite3.connect(dest.path) as conn:
        return conn.execute("PRAGMA journal_mode").fetchone()[0]

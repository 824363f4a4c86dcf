"""JSONLDestination: no dedupe on create, durable appends, reopening, compaction, typed values."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from connectors.core import AuthError, ConfigError, Record, RecordError
from connectors.files import JSONLDestination

EVERY_TYPE = {
    "flag": True,
    "count": 2**70,  # JSON has no integer limit
    "ratio": -0.25,
    "title": 'Ünïcødé "quoted"\nline two',
    "due": dt.date(2024, 2, 29),
    "at": dt.datetime(2024, 5, 1, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
    "tags": ["a", "b"],
    "nothing": None,
    "looks_tagged": "{'$date': 'no'}",
}


@pytest.fixture
def dest(tmp_path) -> JSONLDestination:
    return JSONLDestination(tmp_path / "deep" / "out.jsonl")


def log_lines(dest: JSONLDestination) -> list[dict]:
    return [json.loads(line) for line in dest.path.read_text(encoding="utf-8").splitlines() if line.strip()]


def props_of(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in ("id", "key", "body", "synced_at")}


async def test_create_never_deduplicates_on_the_key(dest, synced_at):
    async with dest.connect() as session:
        first = await session.create(Record("k1", {"n": 1}), synced_at)
        second = await session.create(Record("k1", {"n": 2}), synced_at)
        pairs = [pair async for pair in session.query_existing_rows()]

    assert first != second
    assert pairs == [("k1", first), ("k1", second)]  # the duplicate is visible to a reconcile
    assert len(dest.read_rows()) == 2


async def test_every_neutral_type_round_trips_through_type_tags(dest, synced_at):
    async with dest.connect() as session:
        row_id = await session.create(Record("k", dict(EVERY_TYPE), "body"), synced_at)

    (row,) = JSONLDestination(dest.path).read_rows()
    assert (row["id"], row["key"], row["body"], row["synced_at"]) == (row_id, "k", "body", synced_at)
    assert props_of(row) == EVERY_TYPE
    for name, value in EVERY_TYPE.items():
        assert type(row[name]) is type(value), name
    (line,) = log_lines(dest)
    assert line["properties"]["due"] == {"$date": "2024-02-29"}
    assert line["properties"]["at"] == {"$datetime": "2024-05-01T10:30:00+05:30"}


async def test_rows_survive_reopening_and_can_be_updated_by_a_new_instance(dest, synced_at):
    async with dest.connect() as session:
        row_id = await session.create(Record("k", {"n": 1, "s": "a"}, "b"), synced_at)
    # Every append is on disk before create returns, so a new process sees it.
    again = JSONLDestination(dest.path)
    async with again.connect() as session:
        assert await session.query_existing_ids() == {"k": row_id}
        assert await session.update(row_id, Record("k", {"n": 2}, "b2"), synced_at)

    (row,) = again.read_rows()
    assert props_of(row) == {"n": 2, "s": "a"} and row["body"] == "b2"


async def test_writes_are_on_disk_while_the_session_is_open(dest, synced_at):
    async with dest.connect() as session:
        row_id = await session.create(Record("k", {"n": 1}), synced_at)
        assert [r["id"] for r in dest.read_rows()] == [row_id]
        await session.update(row_id, Record("k", {"n": 5}), synced_at)
        assert dest.read_rows()[0]["n"] == 5


async def test_update_keeps_create_only_properties_and_none_clears(tmp_path, synced_at):
    dest = JSONLDestination(tmp_path / "o.jsonl", create_only_properties={"created"})
    async with dest.connect() as session:
        row_id = await session.create(Record("k", {"created": "first", "a": "x", "b": 1}), synced_at)
        await session.update(row_id, Record("k", {"created": "CHANGED", "a": None}), synced_at)
        with pytest.raises(RecordError, match="row nope not found"):
            await session.update("nope", Record("k", {}), synced_at)

    (row,) = dest.read_rows()
    assert props_of(row) == {"created": "first", "a": None, "b": 1}


async def test_non_neutral_and_too_long_values_are_record_errors(tmp_path, synced_at):
    dest = JSONLDestination(tmp_path / "v.jsonl", max_value_length=3)
    async with dest.connect() as session:
        for props in ({"x": {"a": 1}}, {"x": float("inf")}, {"x": "long"}, {"x": dt.datetime(2024, 1, 1)}):
            with pytest.raises(RecordError) as info:
                await session.create(Record("k", props), synced_at)
            assert info.value.primary_key == "k"
    assert not dest.path.exists()  # refused before anything was written, so not even the file


async def test_the_log_is_compacted_on_close_when_mostly_history(dest, synced_at):
    async with dest.connect() as session:
        ids = [await session.create(Record(f"k{i}", {"n": 0}), synced_at) for i in range(3)]
        for version in range(1, 6):
            for row_id in ids:
                await session.update(row_id, Record("ignored", {"n": version}), synced_at)
        assert len(log_lines(dest)) == 18
        before = dest.read_rows()

    assert len(log_lines(dest)) == 3
    assert dest.read_rows() == before
    assert [(r["id"], r["key"], r["n"]) for r in before] == [(ids[i], f"k{i}", 5) for i in range(3)]
    assert not list(dest.path.parent.glob("*.tmp"))


async def test_a_log_with_little_history_is_left_as_is(dest, synced_at):
    async with dest.connect() as session:
        row_id = await session.create(Record("k", {"n": 1}), synced_at)
        await session.update(row_id, Record("k", {"n": 2}), synced_at)  # 2 lines, 1 row: not more than 2x
    assert len(log_lines(dest)) == 2


async def test_a_write_cut_short_by_a_crash_does_not_corrupt_the_next_one(dest, synced_at):
    async with dest.connect() as session:
        kept = await session.create(Record("kept", {"n": 1}), synced_at)
    with dest.path.open("a", encoding="utf-8") as f:
        f.write('{"id": "half", "key": "torn", "prop')  # SIGKILL in the middle of a write

    async with dest.connect() as session:
        assert await session.query_existing_ids() == {"kept": kept}
        new = await session.create(Record("new", {"n": 2}), synced_at)

    assert [(r["key"], r["id"]) for r in dest.read_rows()] == [("kept", kept), ("new", new)]


async def test_two_sessions_see_each_others_writes_and_compactions(dest, synced_at):
    async with dest.connect() as one:
        async with dest.connect() as two:
            row_id = await one.create(Record("k", {"n": 0}), synced_at)
            # Written by one, updated by two (another process, opened earlier).
            for n in range(1, 4):
                await two.update(row_id, Record("k", {"n": n}), synced_at)
        # two compacted the log on close (4 lines, 1 row); one follows the new file.
        assert len(log_lines(dest)) == 1
        other = await one.create(Record("k2", {"n": 9}), synced_at)
        assert await one.query_existing_ids() == {"k": row_id, "k2": other}

    assert [(r["key"], r["n"]) for r in dest.read_rows()] == [("k", 3), ("k2", 9)]


def test_destination_attributes(tmp_path):
    dest = JSONLDestination(tmp_path / "a.jsonl", create_only_properties=["c"])

    assert dest.describe() == f"jsonl://{(tmp_path / 'a.jsonl').resolve()}"
    assert (dest.name, dest.configured, dest.stores_keys, dest.max_concurrency) == ("jsonl", True, True, 1)
    assert dest.rate_limit_key.endswith("a.jsonl")
    assert dest.create_only_properties == {"c"}
    assert "a.jsonl" in dest.config_hint
    assert dest.is_auth_error(AuthError("revoked")) and not dest.is_auth_error(RecordError("x"))
    assert dest.read_rows() == []
    with pytest.raises(ConfigError, match="max_value_length"):
        JSONLDestination(tmp_path / "a.jsonl", max_value_length=0)

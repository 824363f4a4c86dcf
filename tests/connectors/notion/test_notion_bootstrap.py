"""NotionDestination.bootstrap_schema (add what a sample needs, never alter) and session_enrich."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from connectors.core import ConfigError, Record, SchemaBootstrap
from tests.fakes.notion import FakeNotion


def sample() -> list[Record]:
    return [
        Record("1", {"Name": "a", "Stars": 3, "Topics": ["sync"], "Seen": dt.date(2024, 1, 2), "Done": True}),
        Record("2", {"Name": "b", "Stars": 4.5, "Topics": ["notion", "sync"], "Seen": None, "Done": False}),
    ]


def types_of(fake: FakeNotion, ds_id: str) -> dict[str, str]:
    return {name: prop["type"] for name, prop in fake.data_sources[ds_id].properties.items()}


async def test_plan_lists_missing_properties_and_writes_nothing_then_apply_adds_them(fake, make_dest):
    db = fake.add_database({"Name": "title", "Key": "rich_text", "Stars": "number"}, title="Bare")
    (ds_id,) = db.data_source_ids
    dest = make_dest(db.id)
    assert isinstance(dest, SchemaBootstrap)

    planned = await dest.bootstrap_schema(sample(), apply=False)
    assert {(c.action, c.name, c.kind) for c in planned} == {
        ("create", "Topics", "multi_select"),
        ("create", "Seen", "date"),
        ("create", "Done", "checkbox"),
        ("create", "Last synced", "date"),
    }
    assert fake.requests("PATCH", r"^/v1/data_sources/") == []
    assert set(types_of(fake, ds_id)) == {"Name", "Key", "Stars"}

    applied = await dest.bootstrap_schema(sample(), apply=True)
    assert applied == planned
    types = types_of(fake, ds_id)
    assert types["Topics"] == "multi_select" and types["Seen"] == "date" and types["Done"] == "checkbox"
    assert types["Last synced"] == "date" and types["Stars"] == "number"
    assert set(fake.options(ds_id, "Topics")) == {"sync", "notion"}

    again = await dest.bootstrap_schema(sample(), apply=True)
    assert [c for c in again if c.action == "create"] == []
    assert len(fake.requests("PATCH", r"^/v1/data_sources/")) == 1  # the second apply sent nothing

    # What the bootstrap added is what the writes need: a record round-trips into the new columns.
    async with dest.connect() as session:
        page_id = await session.create(sample()[0], dt.datetime(2024, 5, 1, tzinfo=dt.UTC))
    assert fake.values(page_id)["Topics"] == ["sync"] and fake.values(page_id)["Done"] is True


async def test_an_existing_property_of_another_type_is_reported_and_left_alone(fake, make_dest):
    db = fake.add_database({"Name": "title", "Key": "rich_text", "Stars": "rich_text", "Last synced": "date"})
    (ds_id,) = db.data_source_ids
    dest = make_dest(db.id)
    changes = await dest.bootstrap_schema([Record("1", {"Name": "a", "Stars": 3})], apply=True)
    (mismatch,) = changes
    assert (mismatch.action, mismatch.name, mismatch.kind) == ("mismatch", "Stars", "number")
    assert "rich_text" in str(mismatch)
    assert types_of(fake, ds_id)["Stars"] == "rich_text"
    assert fake.requests("PATCH", r"^/v1/data_sources/") == []


async def test_text_into_a_select_or_url_property_is_not_a_mismatch(fake, make_dest):
    db = fake.add_database({"Name": "title", "Key": "number", "URL": "url", "Lang": {"type": "select", "options": []}})
    changes = await make_dest(db.id).bootstrap_schema(
        [Record("1", {"Name": "a", "URL": "https://x", "Lang": "Go"})], apply=False
    )
    assert [c.name for c in changes] == ["Last synced"]  # a Number key is a valid key too


async def test_without_a_database_the_plan_is_a_new_database_and_apply_creates_it(fake, make_dest):
    parent = fake.add_parent_page("Targets")
    dest = make_dest(parent_page_id=parent)
    planned = await dest.bootstrap_schema(sample(), apply=False)
    assert planned[0].kind == "database" and fake.requests("POST", r"^/v1/databases$") == []
    assert {c.name for c in planned[1:]} == {"Name", "Key", "Stars", "Topics", "Seen", "Done", "Last synced"}
    await dest.bootstrap_schema(sample(), apply=True)
    assert dest.database_id in fake.databases
    assert [c for c in await dest.bootstrap_schema(sample(), apply=True) if c.action == "create"] == []


async def test_without_a_database_or_a_parent_page_it_is_a_config_error(fake, make_dest):
    dest = make_dest(parent_page_id=None)
    dest.database_id = None
    with pytest.raises(ConfigError, match="parent_page_id"):
        await dest.bootstrap_schema(sample(), apply=False)


# --------------------------------------------------------------------------------------------------
# session_enrich


async def test_session_enrich_reads_through_the_live_session_and_may_skip_or_fail_a_record(fake, make_dest, synced_at):
    seen: list[tuple[str, bool]] = []

    async def enrich(session: Any, record: Record, creating: bool) -> Record | None:
        seen.append((record.primary_key, creating))
        if record.primary_key == "skip":
            return None
        if record.primary_key == "boom":
            raise ValueError("classifier down")
        # The live session: the client and the schema as read at its start.
        data_source = await session.client.retrieve_data_source(session.target.data_source_id)
        count = len(data_source["properties"])
        return Record(record.primary_key, {**record.properties, "Description": f"{count} columns"})

    dest = make_dest(session_enrich=enrich)
    async with dest.connect() as session:
        page_id = await session.create(Record("1", {"Name": "a"}), synced_at)
        assert await session.create(Record("skip", {"Name": "b"}), synced_at) is False
        with pytest.raises(Exception, match="session_enrich failed: ValueError: classifier down") as info:
            await session.create(Record("boom", {"Name": "c"}), synced_at)
        assert type(info.value).__name__ == "RecordError" and info.value.primary_key == "boom"
        assert await session.update(page_id, Record("1", {"Name": "a2"}), synced_at) is True
    assert fake.values(page_id)["Description"].endswith("columns") and fake.values(page_id)["Name"] == "a2"
    assert seen == [("1", True), ("skip", True), ("boom", True), ("1", False)]
    assert len(fake.pages(dest._resolved[2])) == 1  # type: ignore[index]


def test_session_enrich_must_be_callable(make_dest):
    with pytest.raises(ConfigError, match="session_enrich must be callable"):
        make_dest(session_enrich="not a hook")

"""NotionMcpDestination.bootstrap_schema over notion-update-data-source, and session_enrich over MCP."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from connectors.core import Record, RecordError
from tests.fakes.notion import FakeNotion
from tests.fakes.notion_mcp import FakeNotionMcp


def sample() -> list[Record]:
    return [
        Record("1", {"Name": "a", "Stars": 3, "Tags": ["x", "it's"], "At": dt.datetime(2024, 1, 2, tzinfo=dt.UTC)}),
        Record("2", {"Name": "b", "Stars": 2, "Tags": ["y"], "Note": "hello"}),
    ]


async def test_plan_then_apply_adds_columns_once_and_leaves_a_mismatch_alone(
    make_dest, notion: FakeNotion, mcp_fake: FakeNotionMcp
):
    db = notion.add_database({"Name": "title", "Key": "rich_text", "Note": "number"}, title="Bare")
    (ds_id,) = db.data_source_ids
    dest = make_dest(db.id)

    planned = await dest.bootstrap_schema(sample(), apply=False)
    assert {(c.action, c.name, c.kind) for c in planned} == {
        ("create", "Stars", "number"),
        ("create", "Tags", "multi_select"),
        ("create", "At", "date"),
        ("create", "Last synced", "date"),
        ("mismatch", "Note", "rich_text"),
    }
    assert set(notion.data_sources[ds_id].properties) == {"Name", "Key", "Note"}

    await dest.bootstrap_schema(sample(), apply=True)
    types = {n: p["type"] for n, p in notion.data_sources[ds_id].properties.items()}
    assert types == {
        "Name": "title",
        "Key": "rich_text",
        "Note": "number",  # left alone
        "Stars": "number",
        "Tags": "multi_select",
        "At": "date",
        "Last synced": "date",
    }
    assert set(notion.options(ds_id, "Tags")) == {"x", "it's", "y"}
    patches = notion.requests("PATCH", r"^/v1/data_sources/")
    assert len(patches) == 1 and "Note" not in patches[0].body["properties"]

    again = await dest.bootstrap_schema(sample(), apply=True)
    assert [c.name for c in again] == ["Note"]  # only the mismatch: nothing left to create
    assert len(notion.requests("PATCH", r"^/v1/data_sources/")) == 1


async def test_session_enrich_gets_the_mcp_session_and_a_raise_fails_only_that_record(
    make_dest, notion: FakeNotion, synced_at
):
    async def enrich(session: Any, record: Record, creating: bool) -> Record:
        if record.primary_key == "bad":
            raise KeyError("no such label")
        found = await session.mcp.call("notion-fetch", {"id": f"collection://{session.target.data_source_id}"})
        label = "create" if creating else "update"
        return Record(record.primary_key, {**record.properties, "Description": f"{label} {len(found.text) > 0}"})

    dest = make_dest(session_enrich=enrich)
    async with dest.connect() as session:
        page_id = await session.create(Record("1", {"Name": "a"}), synced_at)
        with pytest.raises(RecordError, match="session_enrich failed"):
            await session.create(Record("bad", {"Name": "b"}), synced_at)
    assert isinstance(page_id, str)
    assert notion.values(page_id)["Description"] == "create True"
    async with dest.connect() as session:
        await session.update(page_id, Record("1", {"Name": "a"}), synced_at)
    assert notion.values(page_id)["Description"] == "update True"

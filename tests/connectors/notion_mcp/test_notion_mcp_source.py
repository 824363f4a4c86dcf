"""NotionMcpSource through the fake MCP server: paging, parity with NotionSource, incremental reads, items."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

import pytest

from connectors.core import ConfigError, SourceSpec
from connectors.memory import MemoryDestination
from connectors.notion import NotionSource
from connectors.notion.mcp import NotionMcpSource, notion_source
from sync_assets.engine import PassOptions, run_pass
from sync_assets.routes import Route
from tests.fakes.notion import FakeNotion

MakeSource = Callable[..., NotionMcpSource]


def fill(notion: FakeNotion, ds_id: str, n: int) -> list[str]:
    ids = []
    for i in range(n):
        page = notion.add_page(
            ds_id,
            {
                "Name": f"repo {i}",
                "Key": str(i),
                "Description": f"line one\nline {i}",
                "Stars": i,
                "Ratio": i + 0.25,
                "Language": "Go" if i % 2 else "Python",
                "Languages": ["Rust", "Go"] if i % 3 else [],
                "Status": "Done",
                "Archived": bool(i % 2),
                "Pushed at": dt.datetime(2024, 5, 1, 12, i % 60, tzinfo=dt.UTC),
                "Created": dt.date(2020, 1, 1 + i % 28),
                "URL": f"https://example.com/{i}",
                "Email": None,
            },
        )
        ids.append(page.id)
    return ids


async def drain(source: NotionMcpSource | NotionSource, spec: SourceSpec) -> tuple[list, int]:
    out, cursor, pages = [], None, 0
    while True:
        records, cursor = await source.fetch_page(spec, None, cursor)
        out += records
        pages += 1
        if cursor is None:
            return out, pages


async def test_pages_read_over_mcp_equal_those_read_over_rest(make_source: MakeSource, make_rest_source, notion, ds_id):
    fill(notion, ds_id, 250)
    mcp_source, rest_source = make_source(), make_rest_source(incremental=False)
    assert mcp_source.spec_key == rest_source.spec_key  # switching transport keeps the partitions
    via_mcp, pages = await drain(mcp_source, mcp_source.specs()[0])
    via_rest, _ = await drain(rest_source, rest_source.specs()[0])
    assert pages == 3 and len(via_mcp) == 250
    assert {r.primary_key: r.properties for r in via_mcp} == {r.primary_key: r.properties for r in via_rest}
    sample = next(r for r in via_mcp if r.properties["Key"] == "7")
    assert sample.properties["Stars"] == 7 and isinstance(sample.properties["Stars"], int)
    assert sample.properties["Archived"] is True and sample.properties["Languages"] == ["Rust", "Go"]
    assert sample.properties["Pushed at"] == dt.datetime(2024, 5, 1, 12, 7, tzinfo=dt.UTC)
    assert sample.properties["Created"] == dt.date(2020, 1, 8)
    assert isinstance(sample.properties["Edited"], dt.datetime) and sample.properties["Email"] is None


async def test_keyset_paging_neither_skips_nor_repeats_when_pages_change_mid_pass(
    make_source: MakeSource, notion, ds_id
):
    ids = fill(notion, ds_id, 120)
    source = make_source(page_size=50)
    spec = source.specs()[0]
    first, cursor = await source.fetch_page(spec, None, None)
    seen = {r.primary_key for r in first}
    for page_id in sorted(seen)[:10]:
        notion.trash_page(page_id)  # rows before the cursor disappear: OFFSET would now skip ten
    notion.add_page(ds_id, {"Name": "late", "Key": "late"})  # a row added anywhere shifts no position
    while cursor is not None:
        records, cursor = await source.fetch_page(spec, None, cursor)
        assert not seen & {r.primary_key for r in records}  # nothing read twice
        seen |= {r.primary_key for r in records}
    assert set(ids) <= seen  # nothing skipped


async def test_incremental_passes_read_only_pages_edited_since_the_last_pass(
    make_source: MakeSource, notion, ds_id, time
):
    ids = fill(notion, ds_id, 5)
    time.advance(3600)  # edited well before the first pass (which re-reads its last 5 minutes)
    source = make_source(edited_property="Edited")
    spec = source.specs()[0]
    assert source.incremental
    assert len(await source.fetch(spec)) == 5
    time.advance(3600)
    notion.edit_page(ids[2], {"Stars": 99})
    time.advance(3600)
    changed = await source.fetch(spec)
    assert [r.primary_key for r in changed] == [ids[2]] and changed[0].properties["Stars"] == 99
    time.advance(3600)
    assert await source.fetch(spec) == []
    time.advance(25 * 3600)  # a full scan is due
    assert len(await source.fetch(spec)) == 5
    source.reset()
    assert len(await source.fetch(spec)) == 5
    assert "next_since" in json.loads(source.watermarks[spec.key])


async def test_incremental_reads_need_a_last_edited_time_property(make_source: MakeSource):
    source = make_source(edited_property="Stars")
    with pytest.raises(ConfigError, match="Last edited time"):
        await source.fetch(source.specs()[0])
    assert not make_source().incremental


async def test_only_items_are_fetched_one_by_one(make_source: MakeSource, notion, ds_id, db, mcp_fake):
    ids = fill(notion, ds_id, 4)
    other = notion.add_data_source(db.id, {"Name": "title"}, name="Other")
    foreign = notion.add_page(other.id, {"Name": "elsewhere"})
    notion.trash_page(ids[3])
    source = make_source()
    records, cursor = await source.fetch_page(
        source.specs()[0], [ids[0], ids[3], foreign.id, "00000000-0000-4000-8000-000000000000", ids[1]], None
    )
    assert cursor is None and [r.primary_key for r in records] == [ids[0], ids[1]]
    assert records[0].properties["Key"] == "0"
    assert not mcp_fake.tool_calls("notion-query-data-sources")


async def test_a_route_from_the_mcp_source_is_idempotent(make_source: MakeSource, notion, ds_id, sqlite_store):
    fill(notion, ds_id, 30)
    destination = MemoryDestination()
    route = Route(make_source(page_size=10), destination)
    first = await run_pass(route, "ds", sqlite_store, PassOptions(), spec=route.source.specs()[0])
    second = await run_pass(route, "ds", sqlite_store, PassOptions(), spec=route.source.specs()[0])
    assert first.stats.created == 30 and second.stats.unchanged == 30 and len(destination.rows) == 30


def test_a_route_picks_the_source_transport_by_configuration():
    assert isinstance(notion_source("mcp", "1a2b3c4d1a2b3c4d1a2b3c4d1a2b3c4d", auth="t"), NotionMcpSource)
    assert isinstance(notion_source("rest", "1a2b3c4d1a2b3c4d1a2b3c4d1a2b3c4d", token="t"), NotionSource)
    with pytest.raises(ConfigError):
        NotionMcpSource("1a2b3c4d1a2b3c4d1a2b3c4d1a2b3c4d", page_size=500)

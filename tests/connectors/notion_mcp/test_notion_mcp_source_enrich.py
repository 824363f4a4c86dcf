"""NotionMcpSource's enrich hook: the live MCP session, a property added, a raise failing its record only."""

from __future__ import annotations

from tests.connectors.enrich_cases import check_enriched, failing_on
from tests.fakes.notion import FakeNotion


async def test_the_hook_calls_the_live_session_and_a_raise_fails_only_its_record(
    make_source, notion: FakeNotion, ds_id
):
    pages = [notion.add_page(ds_id, {"Name": f"row {i}", "Key": str(i)}, body=f"body {i}") for i in range(3)]
    bad = pages[2].id

    async def content(record, ctx):  # type: ignore[no-untyped-def]
        fetched = await ctx.client.call("notion-fetch", {"id": record.primary_key})
        return "body" in fetched.text

    source = make_source(enrich=failing_on(bad, "Has body", content))
    spec = source.specs()[0]
    records, _ = await source.fetch_page(spec, None, None)
    check_enriched(records, bad, "Has body")
    assert all(r.properties["Has body"] is True for r in records if r.primary_key != bad)
    targeted, _ = await source.fetch_page(spec, [pages[0].id], None)
    assert targeted[0].properties["Has body"] is True

"""NotionSource's enrich hook: the live client, a property added, a raise failing its record only."""

from __future__ import annotations

from tests.connectors.enrich_cases import check_enriched, failing_on
from tests.fakes.notion import FakeNotion


async def test_the_hook_calls_the_live_client_and_a_raise_fails_only_its_record(make_source, fake: FakeNotion, ds_id):
    pages = [fake.add_page(ds_id, {"Name": f"row {i}", "Key": str(i)}, body=f"body {i}") for i in range(3)]
    bad = pages[1].id

    async def first_block(record, ctx):  # type: ignore[no-untyped-def]
        children = await ctx.client.request("GET", f"/v1/blocks/{record.primary_key}/children")
        (block,) = children["results"]
        return "".join(t["plain_text"] for t in block["paragraph"]["rich_text"])

    source = make_source(enrich=failing_on(bad, "First line", first_block), incremental=False)
    spec = source.specs()[0]
    records, _ = await source.fetch_page(spec, None, None)
    check_enriched(records, bad, "First line")
    assert {r.properties["First line"] for r in records if r.primary_key != bad} == {"body 0", "body 2"}
    targeted, _ = await source.fetch_page(spec, [pages[0].id], None)
    assert targeted[0].properties["First line"] == "body 0"

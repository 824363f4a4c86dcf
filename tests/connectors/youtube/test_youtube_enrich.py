"""YouTubeSource's enrich hook: the live client (metered), a property added, a raise failing its record only."""

from __future__ import annotations

from tests.connectors.enrich_cases import check_enriched, failing_on
from tests.fakes.youtube import FakeChannel


async def test_the_hook_calls_the_live_client_and_a_raise_fails_only_its_record(make_source, channel: FakeChannel):
    async def title(record, ctx):  # type: ignore[no-untyped-def]
        (video,) = await ctx.client.videos([record.primary_key])
        return "again: " + str(video["snippet"]["title"])

    plain = make_source(page_size=5)
    spec = plain.specs()[0]
    first, _ = await plain.fetch_page(spec, None, None)
    bad = first[2].primary_key

    source = make_source(page_size=5, enrich=failing_on(bad, "Title again", title))
    records, _ = await source.fetch_page(spec, None, None)
    check_enriched(records, bad, "Title again")
    ok = next(r for r in records if r.primary_key != bad)
    assert ok.properties["Title again"] == "again: " + str(ok.properties["Title"])
    # The hook's calls are the source's: metered against the key's quota like its own (one unit each).
    again = make_source(page_size=5)  # the channel is resolved already, as for the enriched source
    await again.fetch_page(spec, None, None)
    assert source.quota_used(spec.key) == again.quota_used(spec.key) + 4

"""ContentfulSource's enrich hook: the live client, a property added, a raise failing its record only."""

from __future__ import annotations

from tests.connectors.enrich_cases import check_enriched, failing_on
from tests.fakes.contentful import FakeContentful, FakeEnvironment


async def test_the_hook_calls_the_live_client_and_a_raise_fails_only_its_record(
    make_source, fake: FakeContentful, env: FakeEnvironment
):
    entries = [fake.add_entry(env, "author", {"name": f"Ada {i}"}) for i in range(3)]
    bad = entries[1].id

    async def version(record, ctx):  # type: ignore[no-untyped-def]
        entry = await ctx.client.get_entry(record.primary_key)
        return int(entry["sys"]["revision"])

    source = make_source(api="cda", deleted_property="Deleted", enrich=failing_on(bad, "Revision", version))
    records, _ = await source.fetch_page(source.specs()[0], None, None)
    check_enriched(records, bad, "Revision")
    assert all(r.properties["Revision"] == 1 for r in records if r.primary_key != bad)


async def test_deletion_records_reach_the_engine_without_the_hook(
    make_source, fake: FakeContentful, env: FakeEnvironment
):
    kept, gone = (fake.add_entry(env, "author", {"name": n}) for n in ("Ada", "Bob"))
    calls: list[str] = []

    def hook(record, ctx):  # type: ignore[no-untyped-def]
        calls.append(record.primary_key)
        return record

    source = make_source(api="cda", deleted_property="Deleted", enrich=hook)
    spec = source.specs()[0]
    _, cursor = await source.fetch_page(spec, None, None)
    assert cursor is None
    source.commit(spec.key)
    fake.unpublish(env, gone.id)
    calls.clear()
    records, _ = await source.fetch_page(spec, None, None)  # a delta sync: the deletion
    assert [(r.primary_key, r.properties) for r in records] == [(gone.id, {"Deleted": True})]
    assert calls == [] and kept.id not in calls

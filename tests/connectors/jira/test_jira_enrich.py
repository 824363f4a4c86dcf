"""JiraSource's enrich hook: the live client, a property added, a raise failing its record only."""

from __future__ import annotations

from tests.connectors.enrich_cases import check_enriched, failing_on
from tests.fakes.jira import FakeJira


async def test_the_hook_calls_the_live_client_and_a_raise_fails_only_its_record(make_source, fake: FakeJira, clock):
    issues = [fake.add_issue("ENG", f"Issue {i}") for i in range(3)]
    clock.advance(60)  # search is eventually consistent: new issues show after a moment
    bad = issues[0].id

    async def key_of(record, ctx):  # type: ignore[no-untyped-def]
        issue = await ctx.client.get_issue(record.primary_key, fields=["summary"])
        return f"{issue['key']}: {issue['fields']['summary']}"

    source = make_source(enrich=failing_on(bad, "Title line", key_of))
    spec = source.specs()[0]
    records, _ = await source.fetch_page(spec, None, None)
    check_enriched(records, bad, "Title line")
    assert {r.properties["Title line"] for r in records if r.primary_key != bad} == {
        f"{issues[1].key}: Issue 1",
        f"{issues[2].key}: Issue 2",
    }
    targeted, _ = await source.fetch_page(spec, [issues[2].key], None)
    assert targeted[0].properties["Title line"] == f"{issues[2].key}: Issue 2"

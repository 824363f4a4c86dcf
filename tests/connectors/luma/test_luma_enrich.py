"""LumaSource's enrich hook: the live client, a property added, a raise failing its record only."""

from __future__ import annotations

import datetime as dt

import pytest

from connectors.core import ConfigError, EnrichContext
from tests.connectors.enrich_cases import check_enriched, failing_on
from tests.fakes.luma import FakeLuma


async def test_the_hook_calls_the_live_client_and_a_raise_fails_only_its_record(make_source, fake: FakeLuma):
    start = dt.datetime(2024, 5, 20, 17, 0, tzinfo=dt.UTC)
    events = [fake.add_event(f"Meetup {i}", start + dt.timedelta(days=i)) for i in range(3)]
    seen: list[EnrichContext] = []

    async def event_name(record, ctx):  # type: ignore[no-untyped-def]
        seen.append(ctx)
        body = await ctx.client.get_event(record.primary_key)
        return str(body["event"]["name"])

    source = make_source(enrich=failing_on(events[1].api_id, "Fetched name", event_name), fetch_hosts=False)
    spec = source.specs()[0]
    records, _ = await source.fetch_page(spec, None, None)
    check_enriched(records, events[1].api_id, "Fetched name")
    assert {r.properties["Fetched name"] for r in records if r.primary_key != events[1].api_id} == {
        "Meetup 0",
        "Meetup 2",
    }
    assert seen[0].spec == spec and seen[0].source == "luma"
    targeted, _ = await source.fetch_page(spec, [events[0].api_id], None)
    assert targeted[0].properties["Fetched name"] == "Meetup 0"


def test_a_hook_that_is_not_callable_is_a_config_error(make_source):
    with pytest.raises(ConfigError, match="enrich must be callable"):
        make_source(enrich="nope")

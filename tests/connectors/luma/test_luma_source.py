"""LumaSource against the fake Luma API: paging, typed records, hosts, filters, targeted syncs, errors."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from connectors.core import AuthError, ConfigError, RateLimited, Record, auth_error_in_chain
from connectors.http import RetryPolicy
from connectors.luma import event_url
from tests.connectors.luma.helpers import SourceFactory
from tests.fakes.github import FakeClock
from tests.fakes.luma import FakeLuma

UTC = dt.UTC


def add_events(fake: FakeLuma, n: int, *, first: dt.datetime = dt.datetime(2024, 5, 20, 17, 0, tzinfo=UTC)) -> list:
    return [
        fake.add_event(f"Meetup {i}", first + dt.timedelta(days=3 * i), hosts=["Ada Lovelace", "Grace Hopper"])
        for i in range(n)
    ]


async def drain(source, spec) -> list[tuple[list[Record], str | None]]:
    pages = []
    cursor = None
    while True:
        records, cursor = await source.fetch_page(spec, None, cursor)
        pages.append((records, cursor))
        if cursor is None:
            return pages


async def test_a_pass_pages_by_cursor_to_the_end_in_start_order(make_source: SourceFactory, fake: FakeLuma) -> None:
    events = add_events(fake, 7)
    source = make_source(page_size=3)
    spec = source.specs()[0]

    pages = await drain(source, spec)

    assert spec.key == "events"
    assert [len(records) for records, _ in pages] == [3, 3, 1]
    assert all(isinstance(c, str) and json.loads(c)["v"] == 1 for _, c in pages[:-1])
    assert [r.primary_key for records, _ in pages for r in records] == [e.api_id for e in events]
    assert fake.count("list-events") == 3


async def test_records_carry_typed_properties(make_source: SourceFactory, fake: FakeLuma, fake_time: FakeClock) -> None:
    past = fake.add_event(
        "Launch party",
        dt.datetime(2024, 5, 1, 17, 0, tzinfo=UTC),
        dt.datetime(2024, 5, 1, 19, 30, tzinfo=UTC),
        timezone="America/New_York",
        hosts=["Ada Lovelace"],
        description_md="**Bring** snacks",
        slug="launch",
    )
    future = fake.add_event("Retro", dt.datetime(2024, 7, 1, 9, 0, tzinfo=UTC), slug="https://luma.com/retro")
    source = make_source()

    records = {r.primary_key: r for r in await source.fetch(source.specs()[0])}

    props = records[past.api_id].properties
    assert props == {
        "Name": "Launch party",
        "URL": "https://lu.ma/launch",
        "Start": dt.datetime(2024, 5, 1, 17, 0, tzinfo=UTC),
        "End": dt.datetime(2024, 5, 1, 19, 30, tzinfo=UTC),
        "Timezone": "America/New_York",
        "Status": "Published",  # started before now
        "Hosts": ["Ada Lovelace"],
    }
    assert props["Start"].tzinfo is not None
    assert records[past.api_id].body == "**Bring** snacks"
    assert records[future.api_id].properties["Status"] == "Scheduled"
    assert records[future.api_id].properties["URL"] == "https://luma.com/retro"  # absolute: kept as given
    assert records[future.api_id].properties["Hosts"] == []

    fake_time.now = dt.datetime(2024, 7, 2, tzinfo=UTC).timestamp()
    later = {r.primary_key: r for r in await source.fetch(source.specs()[0])}
    assert later[future.api_id].properties["Status"] == "Published"


def test_event_urls() -> None:
    assert event_url("abc123") == "https://lu.ma/abc123"
    assert event_url("/abc123") == "https://lu.ma/abc123"
    assert event_url("https://lu.ma/x") == "https://lu.ma/x"
    assert event_url("") is None and event_url(None) is None


async def test_an_event_without_a_name_is_untitled(make_source: SourceFactory, fake: FakeLuma) -> None:
    fake.add_event("x", dt.datetime(2024, 5, 1, tzinfo=UTC)).name = ""
    source = make_source()
    (record,) = await source.fetch(source.specs()[0])
    assert record.properties["Name"] == "(untitled event)"


async def test_hosts_cost_one_event_get_per_event_and_can_be_turned_off(
    make_source: SourceFactory, fake: FakeLuma
) -> None:
    add_events(fake, 7)

    with_hosts = await make_source(page_size=3).fetch(make_source().specs()[0])
    calls_with_hosts = len(fake.log)
    without = await make_source(page_size=3, fetch_hosts=False).fetch(make_source().specs()[0])

    # list-events carries no hosts (checked against Luma's schema), so they cost one event/get each.
    assert calls_with_hosts == 3 + 7
    assert len(fake.log) - calls_with_hosts == 3  # only the listing
    assert all(r.properties["Hosts"] == ["Ada Lovelace", "Grace Hopper"] for r in with_hosts)
    assert all("Hosts" not in r.properties for r in without)  # left out, so a destination keeps what it has


async def test_no_rolling_window_by_default_and_after_before_filters_when_asked(
    make_source: SourceFactory, fake: FakeLuma
) -> None:
    old = fake.add_event("Two years ago", dt.datetime(2022, 6, 1, tzinfo=UTC))
    mid = fake.add_event("Last month", dt.datetime(2024, 5, 1, tzinfo=UTC))
    new = fake.add_event("Next month", dt.datetime(2024, 7, 1, tzinfo=UTC))

    everything = await make_source().fetch(make_source().specs()[0])
    bounded_source = make_source(after="2024-01-01T00:00:00Z", before=dt.datetime(2024, 6, 15, tzinfo=UTC))
    bounded = await bounded_source.fetch(bounded_source.specs()[0])

    assert [r.primary_key for r in everything] == [old.api_id, mid.api_id, new.api_id]
    assert [r.primary_key for r in bounded] == [mid.api_id]
    with pytest.raises(ConfigError):
        make_source(after="last tuesday")


async def test_the_filter_rides_in_the_cursor_so_a_resumed_pass_asks_the_same_question(
    make_source: SourceFactory, fake: FakeLuma
) -> None:
    add_events(fake, 6)
    source = make_source(page_size=2, after="2024-05-22T00:00:00Z")
    spec = source.specs()[0]
    _, cursor = await source.fetch_page(spec, None, None)

    records, _ = await make_source(page_size=2).fetch_page(spec, None, cursor)  # a fresh source, no filter set

    assert cursor is not None and json.loads(cursor)["after"] == "2024-05-22T00:00:00Z"
    assert fake.log[-1 - len(records)].params["after"] == "2024-05-22T00:00:00Z"
    with pytest.raises(ConfigError, match="not one of ours"):
        await source.fetch_page(spec, None, "garbage")


async def test_only_items_reads_each_event_and_skips_unknown_ones(make_source: SourceFactory, fake: FakeLuma) -> None:
    events = add_events(fake, 4)
    source = make_source()

    records, cursor = await source.fetch_page(
        source.specs()[0], [events[2].api_id, "evt-missing", events[0].api_id], None
    )

    assert cursor is None
    assert [r.primary_key for r in records] == [events[2].api_id, events[0].api_id]
    assert records[0].properties["Hosts"] == ["Ada Lovelace", "Grace Hopper"]
    assert fake.count("list-events") == 0 and fake.count("event/get", status=404) == 1


async def test_a_bad_key_is_an_auth_error_and_not_retried(
    make_source: SourceFactory, fake: FakeLuma, fake_time: FakeClock
) -> None:
    add_events(fake, 2)
    fake.revoke_key()
    source = make_source()

    with pytest.raises(AuthError) as raised:
        await source.fetch_page(source.specs()[0], None, None)

    assert auth_error_in_chain(raised.value) and fake.count(status=401) == 1 and fake_time.sleeps == []
    assert fake.key not in str(raised.value)


async def test_a_blocked_key_is_waited_out_for_the_minute_luma_asks(
    make_source: SourceFactory, fake: FakeLuma, fake_time: FakeClock
) -> None:
    add_events(fake, 4)
    fake.block()  # over the limit: 429 for 60 s

    records = await make_source(fetch_hosts=False).fetch(make_source().specs()[0])

    assert len(records) == 4
    assert fake.count(status=429) == 1  # the toolkit blocked the key locally instead of hammering it
    assert fake_time.sleeps == [60.0]


async def test_a_block_longer_than_the_toolkit_waits_is_rate_limited(
    make_source: SourceFactory, fake: FakeLuma, fake_time: FakeClock
) -> None:
    add_events(fake, 4)
    fake.block()
    source = make_source(retry=RetryPolicy(jitter=0, max_wait=30))

    with pytest.raises(RateLimited) as raised:
        await source.fetch_page(source.specs()[0], None, None)

    assert raised.value.retry_after == pytest.approx(60)
    assert not auth_error_in_chain(raised.value)


async def test_the_source_names_its_credential_without_the_key(make_source: SourceFactory, fake: FakeLuma) -> None:
    source = make_source(token=None)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LUMA_API_KEY", fake.key)
        assert source.credential_key == "luma:LUMA_API_KEY"
        assert source.rate_limit_key.startswith("luma:") and fake.key not in source.rate_limit_key
        assert source.configured and fake.key not in repr(source)
    assert not make_source(token=None).configured

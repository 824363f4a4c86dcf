"""YouTubeSource against the fake Data API: paging, typed records, incremental stop, full refresh, targeted syncs."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from connectors.core import ConfigError, SourceSpec
from connectors.youtube import YouTubeSource, format_duration, normalize_channel, parse_duration
from tests.connectors.youtube.helpers import SourceFactory
from tests.fakes.github import FakeClock
from tests.fakes.youtube import FakeChannel, FakeYouTube

UTC = dt.UTC


async def pages_of(source: YouTubeSource, spec: SourceSpec) -> list[tuple[list, str | None]]:
    pages = []
    cursor: str | None = None
    while True:
        records, cursor = await source.fetch_page(spec, None, cursor)
        pages.append((records, cursor))
        if cursor is None:
            return pages
        assert len(pages) < 50


# --------------------------------------------------------------------------------------------------
# Paging and records


async def test_a_first_pass_pages_through_every_upload_50_at_a_time(
    make_source: SourceFactory, fake: FakeYouTube, channel: FakeChannel
) -> None:
    source = make_source()
    spec = source.specs()[0]

    pages = await pages_of(source, spec)

    assert spec.key == "channel:@acme"
    assert [len(records) for records, _ in pages] == [50, 50, 20]
    assert all(isinstance(c, str) and c for _, c in pages[:-1])
    keys = [r.primary_key for records, _ in pages for r in records]
    assert keys == [v.id for v in fake.uploads(channel)]  # newest first, each once
    # 1 channels.list, then per page one playlistItems.list and ONE videos.list: 7 units in all.
    assert (fake.count("channels"), fake.count("playlistItems"), fake.count("videos")) == (1, 3, 3)
    assert all(int(c.params["maxResults"]) <= 50 for c in fake.calls)
    assert source.quota_used(spec.key) == 7 and fake.quota_used == 7


async def test_records_carry_typed_properties(make_source: SourceFactory, fake: FakeYouTube) -> None:
    acme = fake.add_channel("@acme", title="Acme")
    video = fake.add_video(
        acme,
        published=dt.datetime(2024, 5, 1, 17, 30, tzinfo=UTC),
        title="Launch day",
        description="x" * 5000,
        tags=["launch", "demo"],
        duration="PT1H2M3S",
        views=12345,
        likes=None,  # hidden by the owner
        comments=7,
    )
    source = make_source()

    (record,) = await source.fetch(source.specs()[0])

    assert record.primary_key == video.id
    props = record.properties
    assert props["Title"] == "Launch day"
    assert props["URL"] == f"https://www.youtube.com/watch?v={video.id}"
    assert props["Published"] == dt.datetime(2024, 5, 1, 17, 30, tzinfo=UTC)
    assert props["Published"].tzinfo is not None
    assert (props["Views"], props["Likes"], props["Comments"]) == (12345, None, 7)
    assert type(props["Views"]) is int and type(props["Duration"]) is int
    assert (props["Duration"], props["Duration text"]) == (3723, "1:02:03")
    assert props["Description"] == "x" * 2000
    assert props["Channel"] == "Acme"
    assert props["Tags"] == ["launch", "demo"]
    assert record.body is None


async def test_a_video_without_tags_or_description_has_empty_tags_and_no_description(
    make_source: SourceFactory, fake: FakeYouTube
) -> None:
    acme = fake.add_channel("@acme")
    fake.add_video(acme, published=dt.datetime(2024, 5, 1, tzinfo=UTC), tags=[], description="", duration="P0D")
    source = make_source()

    (record,) = await source.fetch(source.specs()[0])

    assert record.properties["Tags"] == [] and record.properties["Description"] is None
    assert (record.properties["Duration"], record.properties["Duration text"]) == (0, "0:00")


async def test_private_uploads_are_left_out_without_stopping_the_walk(
    make_source: SourceFactory, fake: FakeYouTube, channel: FakeChannel
) -> None:
    uploads = fake.uploads(channel)
    fake.make_private(uploads[3].id)
    fake.make_private(uploads[70].id)
    source = make_source()

    records = await source.fetch(source.specs()[0])

    assert len(records) == 118
    assert {uploads[3].id, uploads[70].id}.isdisjoint(r.primary_key for r in records)


async def test_a_handle_is_resolved_once_and_cached_in_the_watermarks(
    make_source: SourceFactory, fake: FakeYouTube, channel: FakeChannel, watermarks: dict[str, str]
) -> None:
    await make_source(full_refresh_every=dt.timedelta(0)).fetch(
        SourceSpec("channel:@acme", params={"channel": "@acme"})
    )
    # A new process (a fresh source over the same durable watermarks) does not resolve it again.
    fresh = make_source(full_refresh_every=dt.timedelta(0))
    await fresh.fetch(fresh.specs()[0])

    assert fake.count("channels") == 1
    state = json.loads(watermarks["channel:@acme"])
    assert (state["channel_id"], state["uploads"]) == (channel.id, channel.uploads)


async def test_channel_ids_urls_and_bare_handles_are_accepted(fake: FakeYouTube) -> None:
    channel_id = "UC" + "a" * 22
    assert normalize_channel(channel_id) == channel_id
    assert normalize_channel("acme") == "@acme"
    assert normalize_channel("https://www.youtube.com/@acme/videos") == "@acme"
    assert normalize_channel(f"https://youtube.com/channel/{channel_id}") == channel_id
    with pytest.raises(ConfigError):
        normalize_channel("not a channel!")


async def test_an_unknown_channel_is_a_config_error(make_source: SourceFactory, fake: FakeYouTube) -> None:
    source = make_source(["@nobody"])
    with pytest.raises(ConfigError, match="@nobody"):
        await source.fetch_page(source.specs()[0], None, None)


async def test_a_cursor_replays_in_a_fresh_source(make_source: SourceFactory, channel: FakeChannel) -> None:
    source = make_source()
    spec = source.specs()[0]
    _, cursor = await source.fetch_page(spec, None, None)
    page_two, _ = await source.fetch_page(spec, None, cursor)

    replayed, _ = await make_source(watermarks={}).fetch_page(spec, None, cursor)

    assert [r.primary_key for r in replayed] == [r.primary_key for r in page_two]
    with pytest.raises(ConfigError, match="not one of ours"):
        await source.fetch_page(spec, None, "page=2")


def test_durations_parse_and_format_as_youtube_shows_them() -> None:
    assert parse_duration("PT4M13S") == 253
    assert parse_duration("PT1H") == 3600
    assert parse_duration("P1DT2H3M4S") == 93784
    assert parse_duration("P0D") == 0
    assert parse_duration("PT") is None and parse_duration("4:13") is None and parse_duration(None) is None
    assert [format_duration(s) for s in (42, 245, 3723)] == ["0:42", "4:05", "1:02:03"]


# --------------------------------------------------------------------------------------------------
# Incremental passes and the periodic full refresh (no rolling window: W3)


async def test_between_full_refreshes_a_pass_stops_at_the_first_video_older_than_the_newest_seen(
    make_source: SourceFactory, fake: FakeYouTube, channel: FakeChannel, fake_time: FakeClock
) -> None:
    source = make_source(lookback=dt.timedelta(0))
    spec = source.specs()[0]
    await source.fetch(spec)
    assert source.pass_metadata(spec)["refresh"] == "full"

    fake_time.now += 3600
    new = fake.add_video(channel, published=dt.datetime(2024, 6, 3, 9, 0, tzinfo=UTC), title="Fresh")
    before = len(fake.calls)
    pages = await pages_of(source, spec)

    assert len(pages) == 1  # stopped inside page one: nothing older was read
    records = pages[0][0]
    # The new video, and the newest already seen (published exactly at the watermark, not before it).
    assert [r.primary_key for r in records] == [new.id, fake.uploads(channel)[1].id]
    assert [c.path.rsplit("/", 1)[-1] for c in fake.calls[before:]] == ["playlistItems", "videos"]
    assert source.quota_used(spec.key) == 2
    assert source.pass_metadata(spec)["refresh"] == "incremental"
    assert source.watermark(spec.key) == new.published


async def test_the_lookback_refreshes_the_statistics_of_recent_videos_on_every_pass(
    make_source: SourceFactory, fake: FakeYouTube, channel: FakeChannel, fake_time: FakeClock
) -> None:
    source = make_source(lookback=dt.timedelta(days=2))
    spec = source.specs()[0]
    await source.fetch(spec)
    fake_time.now += 6 * 3600

    records = await source.fetch(spec)

    assert [r.primary_key for r in records] == [v.id for v in fake.uploads(channel)[:3]]  # 2 days + the newest


async def test_every_full_refresh_period_a_pass_walks_all_uploads_so_old_statistics_never_freeze(
    make_source: SourceFactory, fake: FakeYouTube, channel: FakeChannel, fake_time: FakeClock
) -> None:
    source = make_source(full_refresh_every=dt.timedelta(days=1), lookback=dt.timedelta(0))
    spec = source.specs()[0]
    oldest = fake.uploads(channel)[-1]
    first = {r.primary_key: r for r in await source.fetch(spec)}
    assert first[oldest.id].properties["Views"] == oldest.views

    fake.set_stats(oldest.id, views=999_999)  # a four-month-old video goes viral
    fake_time.now += 6 * 3600
    incremental = await source.fetch(spec)
    assert oldest.id not in {r.primary_key for r in incremental}

    fake_time.now += 18 * 3600  # a day after the last full refresh
    full = {r.primary_key: r for r in await source.fetch(spec)}

    assert len(full) == 120
    assert full[oldest.id].properties["Views"] == 999_999
    assert source.pass_metadata(spec)["refresh"] == "full"
    assert source.last_full_refresh(spec.key) == dt.datetime.fromtimestamp(fake_time.now, UTC)


async def test_reset_makes_the_next_pass_full(
    make_source: SourceFactory, channel: FakeChannel, fake_time: FakeClock
) -> None:
    source = make_source()
    spec = source.specs()[0]
    await source.fetch(spec)
    fake_time.now += 60

    source.reset(spec.key)
    records = await source.fetch(spec)

    assert len(records) == 120
    assert source.pass_metadata(spec)["refresh"] == "full"


async def test_a_resumed_incremental_pass_keeps_its_mode_from_the_cursor(
    make_source: SourceFactory, fake: FakeYouTube, channel: FakeChannel, fake_time: FakeClock
) -> None:
    source = make_source(page_size=2, lookback=dt.timedelta(0))
    spec = source.specs()[0]
    source_full = make_source()  # a first full pass with the default page size sets the watermark
    await source_full.fetch(spec)
    for day in range(3):
        fake.add_video(channel, published=dt.datetime(2024, 6, 2, 10 + day, tzinfo=UTC))
    fake_time.now += 3600

    _, cursor = await source.fetch_page(spec, None, None)
    assert cursor is not None and json.loads(cursor)["mode"] == "incremental"
    resumed = make_source(page_size=2, lookback=dt.timedelta(0))  # a new process picks the cursor up
    records, cursor = await resumed.fetch_page(spec, None, cursor)
    assert len(records) == 2  # the third new video and the previously newest
    records, cursor = await resumed.fetch_page(spec, None, cursor)

    assert (records, cursor) == ([], None)  # stopped at the first video older than the old newest
    assert fake.count("playlistItems") == 3 + 3  # the full pass's 3 pages, then only 3 small ones


# --------------------------------------------------------------------------------------------------
# Targeted syncs (only_items): every id, in calls of 50 (W28)


async def test_only_items_reads_all_of_more_than_fifty_ids_in_calls_of_fifty(
    make_source: SourceFactory, fake: FakeYouTube, channel: FakeChannel
) -> None:
    wanted = [v.id for v in fake.uploads(channel)[:120]]
    source = make_source()

    records, cursor = await source.fetch_page(source.specs()[0], [*wanted, "zzzzzzzzzzz", "not an id"], None)

    assert cursor is None
    assert sorted(r.primary_key for r in records) == sorted(wanted)
    video_calls = [c for c in fake.calls if c.path.endswith("/videos")]
    assert [len(c.params["id"].split(",")) for c in video_calls] == [50, 50, 21]
    assert all(c.status == 200 for c in fake.calls)


async def test_only_items_leaves_out_videos_of_other_channels(
    make_source: SourceFactory, fake: FakeYouTube, channel: FakeChannel
) -> None:
    other = fake.add_channel("@other")
    theirs = fake.add_video(other, published=dt.datetime(2024, 5, 5, tzinfo=UTC))
    mine = fake.uploads(channel)[0]
    source = make_source()

    records, _ = await source.fetch_page(source.specs()[0], [mine.id, theirs.id], None)

    assert [r.primary_key for r in records] == [mine.id]


async def test_a_targeted_sync_does_not_touch_the_watermark(
    make_source: SourceFactory, fake: FakeYouTube, channel: FakeChannel, watermarks: dict[str, str]
) -> None:
    source = make_source()
    spec = source.specs()[0]
    await source.fetch_page(spec, [fake.uploads(channel)[0].id], None)

    state = json.loads(watermarks["channel:@acme"])
    assert "newest" not in state and "full_at" not in state


# --------------------------------------------------------------------------------------------------
# Quota accounting


async def test_pass_metadata_reports_the_quota_spent(
    make_source: SourceFactory, fake: FakeYouTube, channel: FakeChannel, fake_time: FakeClock
) -> None:
    source = make_source()
    spec = source.specs()[0]
    await source.fetch(spec)
    fake_time.now += 3600
    await source.fetch(spec)

    meta = source.pass_metadata(spec)

    assert meta["quota_units"] == 2  # the last pass: one page, one videos.list
    assert meta["quota_units_today"] == 9 == fake.quota_used
    assert meta["quota_budget"] == 10_000
    assert meta["quota_resets_at"] == "2024-06-04T00:00:00-07:00"
    assert meta["refresh"] == "incremental"
    assert json.loads(json.dumps(meta)) == meta  # JSON-friendly, ready for asset metadata


async def test_the_daily_count_survives_a_new_process_and_restarts_after_midnight_pacific(
    make_source: SourceFactory, channel: FakeChannel, fake_time: FakeClock
) -> None:
    await make_source().fetch(SourceSpec("channel:@acme", params={"channel": "@acme"}))
    fresh = make_source()
    spec = fresh.specs()[0]
    assert fresh.pass_metadata(spec)["quota_units_today"] == 7

    fake_time.now += 12 * 3600 + 60  # 00:01 PDT the next day
    assert fresh.pass_metadata(spec)["quota_units_today"] == 0


async def test_a_quota_budget_stops_the_source_before_it_spends_more(
    make_source: SourceFactory, fake: FakeYouTube, channel: FakeChannel
) -> None:
    from connectors.youtube import YouTubeQuotaExceeded

    source = make_source(quota_budget=4)
    spec = source.specs()[0]
    _, cursor = await source.fetch_page(spec, None, None)  # 3 units
    with pytest.raises(YouTubeQuotaExceeded, match="budget"):
        await source.fetch_page(spec, None, cursor)

    assert fake.quota_used == 4  # the playlist page went out, the videos.list over budget did not

"""YouTube Data API v3 as it really answers: id shapes, etags, pageInfo, hidden counts, live streams,
private and deleted playlist entries, and Google's error bodies.

The payloads here are written from the API reference's resource examples (``videos``,
``playlistItems``, ``channels``) and from error bodies that users quote in public issue threads
(quotaExceeded with its HTML anchor: googleapis/google-api-php-client#2055, ShareX#5907; a bad key
answered with ``badRequest`` in 2020: trizen/youtube-viewer#308; ``accessNotConfigured``:
wyozi/gmod-medialib#67; a private playlist's ``playlistItemsNotAccessible``: u-wave/core#32), not from
this connector. They go through the connector as production traffic does: record building, paging,
error mapping, and the engine for the pause decision.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re

import httpx
import pytest

from connectors.core import AuthError, ConfigError, RateLimited, auth_error_in_chain
from connectors.http import HttpSettings
from connectors.memory import MemoryDestination
from connectors.youtube import (
    YouTubeClient,
    YouTubeNotAccessible,
    YouTubeQuotaExceeded,
    YouTubeSource,
    normalize_channel,
    video_record,
)
from sync_assets.engine import PassOptions, run_pass
from sync_assets.routes import Route, partition_key_for
from sync_assets.state import StateStore
from tests.connectors.youtube.helpers import FAST, NO_JITTER, SourceFactory
from tests.fakes.github import FakeClock
from tests.fakes.youtube import CHANNEL_ID_LAST, VIDEO_ID_LAST, FakeChannel, FakeYouTube

ETAG_RE = re.compile(r"^[A-Za-z0-9_-]{27}$")


def documented_video(**changes: object) -> dict[str, object]:
    """A ``videos.list`` item shaped like the reference's example (snippet, contentDetails, statistics)."""
    video: dict[str, object] = {
        "kind": "youtube#video",
        "etag": "Bdx4f4ps3xCOOo1WZ91nTLkRZ_c",
        "id": "Ks-_Mh1QhMc",
        "snippet": {
            "publishedAt": "2012-10-01T15:27:35Z",
            "channelId": "UCAuUUnT6oDeKwE6v1NGQxug",
            "title": "Your body language may shape who you are",
            "description": "Body language affects how others see us, but it may also change how we see ourselves.",
            "thumbnails": {
                "default": {"url": "https://i.ytimg.com/vi/Ks-_Mh1QhMc/default.jpg", "width": 120, "height": 90}
            },
            "channelTitle": "TED",
            "tags": ["Amy Cuddy", "TED", "TEDTalk"],
            "categoryId": "22",
            "liveBroadcastContent": "none",
            "localized": {"title": "Your body language may shape who you are", "description": "…"},
            "defaultAudioLanguage": "en",
        },
        "contentDetails": {
            "duration": "PT21M3S",
            "dimension": "2d",
            "definition": "hd",
            "caption": "true",
            "licensedContent": True,
            "contentRating": {},
            "projection": "rectangular",
        },
        "statistics": {"viewCount": "20336735", "likeCount": "304016", "favoriteCount": "0", "commentCount": "8964"},
    }
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            target = video[section]
            assert isinstance(target, dict)
            if value is None:
                target.pop(field, None)
            else:
                target[field] = value
        else:
            video[section] = value
    return video


async def drain(source: YouTubeSource) -> list[str]:
    spec = source.specs()[0]
    keys: list[str] = []
    cursor: str | None = None
    while True:
        records, cursor = await source.fetch_page(spec, None, cursor)
        keys += [r.primary_key for r in records]
        if cursor is None:
            return keys


# --------------------------------------------------------------------------------------------------
# Records from documented payloads


def test_a_documented_video_becomes_a_record_with_exact_types() -> None:
    record = video_record(documented_video())
    assert record is not None and record.primary_key == "Ks-_Mh1QhMc"
    props = record.properties
    assert props["Views"] == 20336735 and props["Likes"] == 304016 and props["Comments"] == 8964
    assert props["Duration"] == 21 * 60 + 3 and props["Duration text"] == "21:03"
    assert props["Published"] == dt.datetime(2012, 10, 1, 15, 27, 35, tzinfo=dt.UTC)
    assert props["Tags"] == ["Amy Cuddy", "TED", "TEDTalk"] and props["Channel"] == "TED"


def test_a_hidden_like_count_and_disabled_comments_are_none_not_a_crash() -> None:
    record = video_record(documented_video(statistics__likeCount=None, statistics__commentCount=None))
    assert record is not None
    assert record.properties["Likes"] is None and record.properties["Comments"] is None
    assert record.properties["Views"] == 20336735
    no_stats = video_record(documented_video(statistics={}))
    assert no_stats is not None and no_stats.properties["Views"] is None


@pytest.mark.parametrize("state", ["upcoming", "live"])
def test_a_scheduled_or_live_stream_has_no_duration_yet_not_zero_seconds(state: str) -> None:
    record = video_record(documented_video(snippet__liveBroadcastContent=state, contentDetails__duration="P0D"))
    assert record is not None
    assert record.properties["Duration"] is None and record.properties["Duration text"] is None


@pytest.mark.parametrize(
    ("duration", "seconds", "text"),
    [("PT15M33S", 933, "15:33"), ("P1DT2H3M4S", 93784, "26:03:04"), ("PT1H", 3600, "1:00:00"), ("PT59S", 59, "0:59")],
)
def test_iso_8601_durations_as_youtube_sends_them(duration: str, seconds: int, text: str) -> None:
    record = video_record(documented_video(contentDetails__duration=duration))
    assert record is not None
    assert (record.properties["Duration"], record.properties["Duration text"]) == (seconds, text)


def test_handles_in_any_script_and_percent_encoded_channel_urls_are_channels() -> None:
    assert normalize_channel("@日本語チャンネル") == "@日本語チャンネル"
    assert normalize_channel("https://www.youtube.com/@%E6%97%A5%E6%9C%AC%E8%AA%9E/videos") == "@日本語"
    assert normalize_channel("@café.olé") == "@café.olé"
    assert normalize_channel("https://www.youtube.com/channel/UCAuUUnT6oDeKwE6v1NGQxug") == "UCAuUUnT6oDeKwE6v1NGQxug"
    with pytest.raises(ConfigError):
        normalize_channel("@no spaces allowed")


# --------------------------------------------------------------------------------------------------
# The fake's shapes, and the connector paging through them


async def test_the_fake_answers_with_real_id_shapes_etags_and_page_info(
    fake: FakeYouTube, channel: FakeChannel
) -> None:
    assert re.fullmatch(r"UC[A-Za-z0-9_-]{21}[AQgw]", channel.id) and CHANNEL_ID_LAST == "AQgw"
    assert channel.uploads == "UU" + channel.id[2:]
    async with httpx.AsyncClient(
        base_url="https://www.googleapis.com/youtube/v3",
        transport=httpx.ASGITransport(app=fake.app),
        headers={"X-Goog-Api-Key": fake.key},
    ) as http:
        page = (
            await http.get("playlistItems", params={"part": "snippet,contentDetails", "playlistId": channel.uploads})
        ).json()
        videos = (
            await http.get("videos", params={"part": "snippet", "id": page["items"][0]["contentDetails"]["videoId"]})
        ).json()
    assert page["kind"] == "youtube#playlistItemListResponse" and ETAG_RE.match(page["etag"])
    assert page["pageInfo"] == {"totalResults": 120, "resultsPerPage": 5}
    assert page["nextPageToken"].startswith("EAAa")
    item = page["items"][0]
    decoded = base64.b64decode(item["id"]).decode()
    assert re.fullmatch(rf"{channel.uploads}\.[0-9A-F]{{16}}", decoded)
    assert item["snippet"]["videoOwnerChannelId"] == channel.id and ETAG_RE.match(item["etag"])
    video_id = item["contentDetails"]["videoId"]
    assert len(video_id) == 11 and video_id[-1] in VIDEO_ID_LAST
    assert videos["items"][0]["snippet"]["liveBroadcastContent"] == "none"


async def test_private_and_deleted_entries_are_skipped_and_never_stop_the_walk(
    make_source: SourceFactory, fake: FakeYouTube, channel: FakeChannel
) -> None:
    uploads = fake.uploads(channel)
    fake.make_private(uploads[0].id)  # the newest: listed first as "Private video"
    fake.mark_deleted(uploads[1].id)  # listed as "Deleted video"
    fake.mark_deleted(uploads[60].id)
    source = make_source()
    keys = await drain(source)
    assert len(keys) == 117 and {uploads[0].id, uploads[1].id, uploads[60].id}.isdisjoint(keys)
    # The watermark is the newest publicly listed video, so the next (incremental) pass walks one page.
    assert source.watermark("channel:@acme") == uploads[2].published
    fake.calls.clear()
    again = await drain(source)
    assert set(again) <= set(keys) and fake.count("playlistItems") == 1


async def test_the_fake_lists_hidden_entries_as_youtube_does(fake: FakeYouTube, channel: FakeChannel) -> None:
    uploads = fake.uploads(channel)
    fake.make_private(uploads[0].id)
    fake.mark_deleted(uploads[1].id)
    async with httpx.AsyncClient(
        base_url="https://www.googleapis.com/youtube/v3",
        transport=httpx.ASGITransport(app=fake.app),
        headers={"X-Goog-Api-Key": fake.key},
    ) as http:
        body = (
            await http.get(
                "playlistItems",
                params={"part": "snippet,contentDetails,status", "playlistId": channel.uploads, "maxResults": 3},
            )
        ).json()
    private, deleted, public = body["items"]
    assert private["snippet"]["title"] == "Private video" and private["status"]["privacyStatus"] == "private"
    assert deleted["snippet"]["title"] == "Deleted video"
    assert deleted["snippet"]["description"] == "This video is unavailable."
    assert deleted["status"]["privacyStatus"] == "privacyStatusUnspecified"
    for hidden in (private, deleted):
        assert "videoOwnerChannelId" not in hidden["snippet"] and hidden["snippet"]["thumbnails"] == {}
        assert "videoPublishedAt" not in hidden["contentDetails"]
    assert public["snippet"]["videoOwnerChannelId"] == channel.id
    assert "videoPublishedAt" in public["contentDetails"]


async def test_a_live_stream_in_the_uploads_has_no_duration_until_it_ends(
    make_source: SourceFactory, fake: FakeYouTube, channel: FakeChannel
) -> None:
    newest = fake.uploads(channel)[0]
    fake.set_live(newest.id, "live")
    records, _ = await make_source().fetch_page(make_source().specs()[0], [newest.id], None)
    assert records[0].properties["Duration"] is None
    fake.set_live(newest.id, "none")
    newest.duration = "PT2H5M"
    records, _ = await make_source().fetch_page(make_source().specs()[0], [newest.id], None)
    assert records[0].properties["Duration"] == 7500


async def test_a_stored_next_page_token_replays_in_a_fresh_source(
    make_source: SourceFactory, fake: FakeYouTube, channel: FakeChannel
) -> None:
    spec = make_source().specs()[0]
    first, cursor = await make_source().fetch_page(spec, None, None)
    assert cursor is not None
    state = json.loads(cursor)
    assert state["playlist"] == channel.uploads and state["token"].startswith("EAAa")
    second, _ = await make_source().fetch_page(spec, None, cursor)
    assert len(first) == len(second) == 50
    assert not {r.primary_key for r in first} & {r.primary_key for r in second}


# --------------------------------------------------------------------------------------------------
# Google's error bodies


async def test_quota_exceeded_with_googles_html_message_is_a_wait_not_an_auth_failure(
    make_source: SourceFactory, fake: FakeYouTube, channel: FakeChannel
) -> None:
    fake.exhaust_quota()
    with pytest.raises(YouTubeQuotaExceeded) as raised:
        await make_source().fetch_page(make_source().specs()[0], None, None)
    assert isinstance(raised.value, RateLimited) and not auth_error_in_chain(raised.value)
    assert fake.calls[-1].status == 403 and fake.calls[-1].units == 0  # a quota answer costs nothing


async def test_the_quota_body_is_googles(fake: FakeYouTube, channel: FakeChannel) -> None:
    fake.exhaust_quota()
    async with httpx.AsyncClient(
        base_url="https://www.googleapis.com/youtube/v3",
        transport=httpx.ASGITransport(app=fake.app),
        headers={"X-Goog-Api-Key": fake.key},
    ) as http:
        response = await http.get("channels", params={"part": "id", "id": channel.id})
    assert "\\u003ca href" in response.text  # Google escapes the anchor's angle brackets
    (entry,) = response.json()["error"]["errors"]
    assert entry == {
        "message": "The request cannot be completed because you have exceeded your "
        '<a href="/youtube/v3/getting-started#quota">quota</a>.',
        "domain": "youtube.quota",
        "reason": "quotaExceeded",
    }


@pytest.mark.parametrize("details", [True, False], ids=["with-ErrorInfo", "errors-only"])
async def test_a_bad_key_is_an_auth_error_in_todays_shape_and_without_details(
    make_source: SourceFactory, fake: FakeYouTube, channel: FakeChannel, details: bool
) -> None:
    fake.error_details = details
    fake.revoke_key()
    with pytest.raises(AuthError) as raised:
        await make_source().fetch_page(make_source().specs()[0], None, None)
    assert auth_error_in_chain(raised.value) and "API key not valid" in str(raised.value)
    assert fake.statuses() == {400: 1}  # not retried
    assert fake.key not in str(raised.value)


async def test_the_api_not_enabled_is_an_auth_error(
    make_source: SourceFactory, fake: FakeYouTube, channel: FakeChannel
) -> None:
    fake.api_enabled = False
    with pytest.raises(AuthError) as raised:
        await make_source().fetch_page(make_source().specs()[0], None, None)
    assert "has not been used in project" in str(raised.value)


async def test_a_private_uploads_playlist_fails_its_channel_only_and_pauses_nothing(
    make_source: SourceFactory, fake: FakeYouTube, channel: FakeChannel, tmp_path
) -> None:
    other = fake.add_channel("@globex", title="Globex")
    fake.add_videos(other, 3)
    fake.restrict_playlist(channel.uploads)
    store = StateStore(f"sqlite:///{tmp_path}/s.db")
    source = make_source(channels=["@acme", "@globex"])
    route = Route(source, MemoryDestination(rate_limit_key="memory-yt"), name="youtube_to_memory")
    acme, globex = (partition_key_for(s.key) for s in source.specs())
    with pytest.raises(ConfigError) as raised:
        await run_pass(route, acme, store, PassOptions())
    assert isinstance(raised.value, YouTubeNotAccessible)
    assert not auth_error_in_chain(raised.value) and not source.is_auth_error(raised.value)
    assert "playlistItemsNotAccessible" in str(raised.value) and raised.value.http_status == 403
    assert store.pauses() == {}  # the key still serves every other channel
    done = await run_pass(route, globex, store, PassOptions())
    assert done.stats.created == 3
    store.dispose()


async def test_a_per_minute_rate_limit_body_is_a_short_wait(fake: FakeYouTube, fake_time: FakeClock) -> None:
    fake.fail_next(10, 403, reason="rateLimitExceeded")
    async with YouTubeClient(
        fake.key,
        http=HttpSettings(
            transport=httpx.ASGITransport(app=fake.app), retry=NO_JITTER, sleep=fake_time.sleep, clock=fake_time.clock
        ),
        rate=FAST,
    ) as client:
        with pytest.raises(RateLimited) as raised:
            await client.channel("@acme")
    assert not isinstance(raised.value, YouTubeQuotaExceeded) and not auth_error_in_chain(raised.value)

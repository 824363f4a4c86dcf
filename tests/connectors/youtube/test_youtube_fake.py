"""The fake YouTube Data API itself: paging, limits, quota, key errors, and serving on a loopback port."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from connectors.http import HttpSettings
from connectors.youtube import YouTubeSource
from tests.connectors.youtube.helpers import FAST, NO_JITTER
from tests.fakes.github import FakeClock
from tests.fakes.youtube import QUOTA_MESSAGE, FakeChannel, FakeYouTube, serve

API = "https://www.googleapis.com/youtube/v3"


@pytest.fixture
async def http(fake: FakeYouTube):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app), base_url=API) as client:
        yield client


def keyed(fake: FakeYouTube, **params: Any) -> dict[str, Any]:
    return {"key": fake.key, **params}


async def test_playlist_items_page_with_opaque_tokens_up_to_fifty(
    http: httpx.AsyncClient, fake: FakeYouTube, channel: FakeChannel
) -> None:
    seen: list[str] = []
    token = None
    while True:
        params = keyed(fake, part="contentDetails", playlistId=channel.uploads, maxResults=50)
        if token:
            params["pageToken"] = token
        body = (await http.get("playlistItems", params=params)).json()
        seen += [i["contentDetails"]["videoId"] for i in body["items"]]
        token = body.get("nextPageToken")
        if not token:
            break
    assert seen == [v.id for v in fake.uploads(channel)]
    assert body["pageInfo"]["totalResults"] == 120

    too_many = await http.get("playlistItems", params=keyed(fake, part="id", playlistId=channel.uploads, maxResults=51))
    assert too_many.status_code == 400 and too_many.json()["error"]["errors"][0]["reason"] == "invalidValue"
    bad = await http.get("playlistItems", params=keyed(fake, part="id", playlistId=channel.uploads, pageToken="xyz"))
    assert bad.status_code == 400 and bad.json()["error"]["errors"][0]["reason"] == "invalidPageToken"
    missing = await http.get("playlistItems", params=keyed(fake, part="id", playlistId="UUnope"))
    assert missing.status_code == 404 and missing.json()["error"]["errors"][0]["reason"] == "playlistNotFound"
    default = (await http.get("playlistItems", params=keyed(fake, part="id", playlistId=channel.uploads))).json()
    assert len(default["items"]) == 5  # maxResults defaults to 5


async def test_videos_take_at_most_fifty_ids_and_omit_private_ones(
    http: httpx.AsyncClient, fake: FakeYouTube, channel: FakeChannel
) -> None:
    ids = [v.id for v in fake.uploads(channel)]
    fake.make_private(ids[0])

    ok = (await http.get("videos", params=keyed(fake, part="statistics", id=",".join(ids[:50])))).json()
    over = await http.get("videos", params=keyed(fake, part="statistics", id=",".join(ids[:51])))

    assert [i["id"] for i in ok["items"]] == ids[1:50]
    assert isinstance(ok["items"][0]["statistics"]["viewCount"], str)  # counts are decimal strings
    assert over.status_code == 400


async def test_channels_resolve_by_id_or_handle(
    http: httpx.AsyncClient, fake: FakeYouTube, channel: FakeChannel
) -> None:
    by_handle = (await http.get("channels", params=keyed(fake, part="contentDetails", forHandle="ACME"))).json()
    by_id = (await http.get("channels", params=keyed(fake, part="contentDetails", id=channel.id))).json()
    nobody = (await http.get("channels", params=keyed(fake, part="contentDetails", forHandle="@nobody"))).json()

    assert by_handle["items"][0]["contentDetails"]["relatedPlaylists"]["uploads"] == channel.uploads
    assert by_id["items"] == by_handle["items"]
    assert "items" not in nobody and nobody["pageInfo"]["totalResults"] == 0


async def test_keys_come_as_query_or_header_and_a_bad_one_is_a_400_key_invalid(
    http: httpx.AsyncClient, fake: FakeYouTube, channel: FakeChannel
) -> None:
    header = await http.get("channels", params={"part": "id", "id": channel.id}, headers={"X-Goog-Api-Key": fake.key})
    bad = await http.get("channels", params={"part": "id", "id": channel.id, "key": "AIza-wrong"})
    none = await http.get("channels", params={"part": "id", "id": channel.id})

    assert header.status_code == 200
    assert bad.status_code == 400
    error = bad.json()["error"]
    # Google's current shape: the generic reason "badRequest", the meaning in details[] (ErrorInfo).
    assert error["errors"][0]["reason"] == "badRequest" and error["details"][0]["reason"] == "API_KEY_INVALID"
    assert (
        error["status"] == "INVALID_ARGUMENT" and error["message"] == "API key not valid. Please pass a valid API key."
    )
    assert none.status_code == 403 and none.json()["error"]["errors"][0]["reason"] == "forbidden"
    assert [c.key_via for c in fake.calls] == ["header", "query", None]
    assert all("AIza-wrong" not in str(c.params) for c in fake.calls)


async def test_the_quota_costs_units_and_resets_at_midnight_pacific(
    http: httpx.AsyncClient, fake: FakeYouTube, channel: FakeChannel, fake_time: FakeClock
) -> None:
    fake.daily_quota = 3
    for _ in range(3):
        assert (await http.get("channels", params=keyed(fake, part="id", id=channel.id))).status_code == 200
    spent = await http.get("channels", params=keyed(fake, part="id", id=channel.id))

    assert spent.status_code == 403
    assert spent.json() == {
        "error": {
            "code": 403,
            "message": QUOTA_MESSAGE,
            "errors": [{"message": QUOTA_MESSAGE, "domain": "youtube.quota", "reason": "quotaExceeded"}],
        }
    }
    assert fake.quota_used == 3  # a refused call costs nothing

    fake_time.now = dt.datetime(2024, 6, 4, 6, 59, 59, tzinfo=dt.UTC).timestamp()  # 23:59:59 PDT
    assert (await http.get("channels", params=keyed(fake, part="id", id=channel.id))).status_code == 403
    fake_time.now += 1  # midnight Pacific
    assert (await http.get("channels", params=keyed(fake, part="id", id=channel.id))).status_code == 200
    assert fake.quota_used == 1


async def test_invalid_requests_still_cost_a_unit(
    http: httpx.AsyncClient, fake: FakeYouTube, channel: FakeChannel
) -> None:
    response = await http.get("videos", params=keyed(fake, id="abc"))  # no part
    assert response.status_code == 400 and fake.quota_used == 1


async def test_the_fake_serves_the_source_on_a_loopback_port(
    fake: FakeYouTube, channel: FakeChannel, fake_time: FakeClock
) -> None:
    with serve(fake) as base_url:
        source = YouTubeSource(
            ["@acme"],
            token=fake.key,
            base_url=f"{base_url}/youtube/v3",
            rate=FAST,
            http=HttpSettings(retry=NO_JITTER, clock=fake_time.clock),
        )
        records = await source.fetch(source.specs()[0])

    assert len(records) == 120
    assert all(c.key_via == "header" for c in fake.calls)

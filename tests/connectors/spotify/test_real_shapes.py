"""SpotifySource and SpotifyDestination fed Spotify's real response shapes (not the project's fake).

The payloads are written by hand from the Web API reference ("Get User's Saved Tracks", "Search for
Item", "Save Tracks for Current User", the error object and "Rate Limits"): saved-track items
``{added_at, track}`` with a full track object (album with ``release_date_precision`` ``year`` or
``month``, ``external_ids`` with ``isrc`` and sometimes ``upc``/``ean``, ``is_playable`` and
``linked_from`` when a market relinks the track), ``next``/``previous`` as full URLs, a search answer
``{tracks: {items, …}}`` with no match, a 401 ``{"error": {"status", "message"}}``, and a 429 whose only
hint is ``Retry-After``. A small replay transport serves them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import httpx
import pytest

from connectors.core import AuthError, Record
from connectors.http import HttpSettings
from connectors.spotify import SpotifyDestination, SpotifySource
from tests.connectors.spotify.helpers import FAST, NO_JITTER, START
from tests.fakes.common import FakeTime

TOKEN = "test-token"

TRACK = {
    "album": {
        "album_type": "single",
        "total_tracks": 1,
        "available_markets": ["CA", "US"],
        "external_urls": {"spotify": "https://open.spotify.com/album/0tGPJ0bkWOUmH7MEOR77qc"},
        "href": "https://api.spotify.com/v1/albums/0tGPJ0bkWOUmH7MEOR77qc",
        "id": "0tGPJ0bkWOUmH7MEOR77qc",
        "images": [
            {"url": "https://i.scdn.co/image/ab67616d0000b2737359994525d219f64872d3b1", "height": 640, "width": 640}
        ],
        "name": "Cut To The Feeling",
        "release_date": "2017-05-26",
        "release_date_precision": "day",
        "type": "album",
        "uri": "spotify:album:0tGPJ0bkWOUmH7MEOR77qc",
        "artists": [
            {
                "external_urls": {"spotify": "https://open.spotify.com/artist/6sFIWsNpZYqfjUpaCgueju"},
                "href": "https://api.spotify.com/v1/artists/6sFIWsNpZYqfjUpaCgueju",
                "id": "6sFIWsNpZYqfjUpaCgueju",
                "name": "Carly Rae Jepsen",
                "type": "artist",
                "uri": "spotify:artist:6sFIWsNpZYqfjUpaCgueju",
            }
        ],
    },
    "artists": [
        {
            "external_urls": {"spotify": "https://open.spotify.com/artist/6sFIWsNpZYqfjUpaCgueju"},
            "href": "https://api.spotify.com/v1/artists/6sFIWsNpZYqfjUpaCgueju",
            "id": "6sFIWsNpZYqfjUpaCgueju",
            "name": "Carly Rae Jepsen",
            "type": "artist",
            "uri": "spotify:artist:6sFIWsNpZYqfjUpaCgueju",
        }
    ],
    "available_markets": ["CA", "US"],
    "disc_number": 1,
    "duration_ms": 207959,
    "explicit": False,
    "external_ids": {"isrc": "USUM71703861"},
    "external_urls": {"spotify": "https://open.spotify.com/track/11dFghVXANMlKmJXsNCbNl"},
    "href": "https://api.spotify.com/v1/tracks/11dFghVXANMlKmJXsNCbNl",
    "id": "11dFghVXANMlKmJXsNCbNl",
    "is_local": False,
    "name": "Cut To The Feeling",
    "popularity": 63,
    "preview_url": None,
    "track_number": 1,
    "type": "track",
    "uri": "spotify:track:11dFghVXANMlKmJXsNCbNl",
}

RELINKED = {
    **TRACK,
    "id": "6kLCHFM39wkFjOuyPGLGeQ",
    "name": "Heaven and Hell",
    "artists": [{"id": "1eE2Xk3n4Jk5J6L7M8N9O0", "name": "William Onyeabor", "type": "artist"}],
    "album": {
        **TRACK["album"],
        "name": "Who Is William Onyeabor?",
        "release_date": "2013",
        "release_date_precision": "year",
    },
    "external_ids": {"isrc": "gbcel1300362", "upc": "5055148060016"},
    "is_playable": True,
    "linked_from": {
        "external_urls": {"spotify": "https://open.spotify.com/track/6ozxplTAjWO0BlUxN8ia0A"},
        "href": "https://api.spotify.com/v1/tracks/6ozxplTAjWO0BlUxN8ia0A",
        "id": "6ozxplTAjWO0BlUxN8ia0A",
        "type": "track",
        "uri": "spotify:track:6ozxplTAjWO0BlUxN8ia0A",
    },
}

PAGE_1 = {
    "href": "https://api.spotify.com/v1/me/tracks?offset=0&limit=2",
    "limit": 2,
    "next": "https://api.spotify.com/v1/me/tracks?offset=2&limit=2",
    "offset": 0,
    "previous": None,
    "total": 3,
    "items": [
        {"added_at": "2024-05-30T21:14:09Z", "track": TRACK},
        {"added_at": "2023-12-01T08:00:00Z", "track": RELINKED},
    ],
}
PAGE_2 = {
    "href": "https://api.spotify.com/v1/me/tracks?offset=2&limit=2",
    "limit": 2,
    "next": None,
    "offset": 2,
    "previous": "https://api.spotify.com/v1/me/tracks?offset=0&limit=2",
    "total": 3,
    "items": [
        {
            "added_at": "2019-01-05T10:00:00Z",
            "track": {
                **TRACK,
                "id": None,
                "is_local": True,
                "name": "voice memo",
                "external_ids": {},
                "external_urls": {},
                "href": None,
                "uri": "spotify:local:Me::voice+memo:95",
            },
        }
    ],
}
NO_MATCH = {
    "tracks": {
        "href": "https://api.spotify.com/v1/search?query=isrc%3AUSUM71703861&type=track&offset=0&limit=1",
        "limit": 1,
        "next": None,
        "offset": 0,
        "previous": None,
        "total": 0,
        "items": [],
    }
}


def replay(answers: list[tuple[int, Any, dict[str, str]]], seen: list[httpx.Request]) -> httpx.MockTransport:
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status, body, headers = queue.pop(0)
        content = b"" if body is None else json.dumps(body).encode()
        return httpx.Response(status, content=content, headers={"content-type": "application/json", **headers})

    return httpx.MockTransport(handler)


def settings(transport: httpx.MockTransport, clock: FakeTime) -> dict[str, Any]:
    return {
        "token": TOKEN,
        "http": HttpSettings(transport=transport, retry=NO_JITTER, sleep=clock.sleep, clock=clock.clock),
        "rate": FAST,
    }


def test_real_pages_map_to_records_and_a_local_file_is_left_out() -> None:
    seen: list[httpx.Request] = []
    clock = FakeTime(start=START)
    source = SpotifySource(page_size=2, **settings(replay([(200, PAGE_1, {}), (200, PAGE_2, {})], seen), clock))

    records = asyncio.run(source.fetch(source.specs()[0]))

    assert [r.primary_key for r in records] == ["USUM71703861", "GBCEL1300362"]
    first, relinked = (r.properties for r in records)
    assert first["Added"] == dt.datetime(2024, 5, 30, 21, 14, 9, tzinfo=dt.UTC)
    assert first["Artist"] == "Carly Rae Jepsen" and first["Album"] == "Cut To The Feeling"
    # A relinked track is saved under the id the market plays; that id is what PUT /me/tracks accepts.
    assert relinked["Spotify ID"] == "6kLCHFM39wkFjOuyPGLGeQ"
    assert [r.url.params["offset"] for r in seen] == ["0", "2"]
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in seen)


def test_a_401_error_object_is_an_auth_error_with_the_message() -> None:
    seen: list[httpx.Request] = []
    clock = FakeTime(start=START)
    expired = {"error": {"status": 401, "message": "The access token expired"}}
    source = SpotifySource(
        **settings(replay([(401, expired, {"www-authenticate": 'Bearer realm="spotify"'})], seen), clock)
    )

    with pytest.raises(AuthError, match="The access token expired"):
        asyncio.run(source.fetch(source.specs()[0]))
    assert len(seen) == 1 and clock.sleeps == []


def test_a_429_with_only_retry_after_is_waited_out_then_the_save_goes_through() -> None:
    seen: list[httpx.Request] = []
    clock = FakeTime(start=START)
    found = {"tracks": {**NO_MATCH["tracks"], "total": 1, "items": [TRACK]}}
    answers = [(200, found, {}), (429, None, {"retry-after": "4"}), (200, None, {})]
    dest = SpotifyDestination(**settings(replay(answers, seen), clock))

    async def create() -> str | bool:
        async with dest.connect() as session:
            return await session.create(
                Record("USUM71703861", {"Name": "Cut To The Feeling"}),
                dt.datetime(2024, 6, 1, tzinfo=dt.UTC),
            )

    assert asyncio.run(create()) == "11dFghVXANMlKmJXsNCbNl"
    assert 4.0 in clock.sleeps
    assert [(r.method, r.url.path) for r in seen] == [
        ("GET", "/v1/search"),
        ("PUT", "/v1/me/tracks"),
        ("PUT", "/v1/me/tracks"),
    ]
    assert json.loads(seen[-1].content) == {"ids": ["11dFghVXANMlKmJXsNCbNl"]}


def test_an_empty_search_answer_is_no_match() -> None:
    seen: list[httpx.Request] = []
    clock = FakeTime(start=START)
    dest = SpotifyDestination(search_by_name=False, **settings(replay([(200, NO_MATCH, {})], seen), clock))

    async def create() -> str | bool:
        async with dest.connect() as session:
            return await session.create(Record("USUM71703861", {}), dt.datetime(2024, 6, 1, tzinfo=dt.UTC))

    assert asyncio.run(create()) is False
    assert seen[0].url.params["q"] == "isrc:USUM71703861" and seen[0].url.params["type"] == "track"

"""ListenBrainzSource and ListenBrainzDestination fed the real services' shapes (not the project's fake).

Written by hand from the ListenBrainz API documentation (feedback endpoints, rate limiting) and the
MusicBrainz web service documentation: a get-feedback page with ``total_count`` whose items carry
``track_metadata`` with an ``mbid_mapping``, one with ``track_metadata: null`` and one on an unmatched
listen (``recording_mbid: null``, only a ``recording_msid``); ``X-RateLimit-*`` headers with
``Remaining: 0``; MusicBrainz's ``/recording/<mbid>?inc=isrcs`` (``isrcs`` a list, sometimes empty) and
``/isrc/<isrc>`` (several recordings share an ISRC); its 404 body ``{"error": "Not Found", "help"}``;
ListenBrainz's 401 ``{"code": 401, "error": "Invalid authorization token."}``. A replay transport
serves them, routing by host.
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
from connectors.listenbrainz import ListenBrainzDestination, ListenBrainzSource
from tests.connectors.listenbrainz.helpers import FAST, NO_JITTER, START, USER_AGENT
from tests.fakes.common import FakeTime

TOKEN = "00000000-0000-4000-8000-000000000000"  # ListenBrainz user tokens are UUID-shaped
MBID_1 = "9f24c0f7-a644-4074-8fbd-a1dba03de129"
MBID_2 = "e97f805a-ab48-4c52-855e-07049142113d"
MSID = "7d4e2a4c-5f3a-4c51-a2cb-1b1a4c1a8e12"

FEEDBACK = {
    "count": 3,
    "feedback": [
        {
            "created": 1717430400,
            "recording_mbid": MBID_1,
            "recording_msid": None,
            "score": 1,
            "track_metadata": {
                "artist_name": "Portishead",
                "release_name": "Dummy",
                "track_name": "Glory Box",
                "mbid_mapping": {
                    "artist_mbids": ["8f6bd1e4-fbe1-4f50-aa9b-94c450ec0f11"],
                    "artists": [
                        {
                            "artist_credit_name": "Portishead",
                            "artist_mbid": "8f6bd1e4-fbe1-4f50-aa9b-94c450ec0f11",
                            "join_phrase": "",
                        }
                    ],
                    "caa_id": 6279340374,
                    "caa_release_mbid": "76df3287-6cda-33eb-8e9a-044b5e15ffdd",
                    "recording_mbid": MBID_1,
                    "release_mbid": "76df3287-6cda-33eb-8e9a-044b5e15ffdd",
                },
            },
            "user_id": "rob",
        },
        {
            "created": 1717344000,
            "recording_mbid": MBID_2,
            "recording_msid": None,
            "score": 1,
            "track_metadata": None,
            "user_id": "rob",
        },
        {
            "created": 1717257600,
            "recording_mbid": None,
            "recording_msid": MSID,
            "score": 1,
            "track_metadata": {"artist_name": "Unknown", "track_name": "untitled", "release_name": None},
            "user_id": "rob",
        },
    ],
    "offset": 0,
    "total_count": 3,
}
RECORDING_1 = {
    "id": MBID_1,
    "title": "Glory Box",
    "length": 306000,
    "disambiguation": "",
    "video": False,
    "first-release-date": "1994-08-22",
    "isrcs": ["gbags9400025", "GBUM70700186"],
}
RECORDING_2 = {**RECORDING_1, "id": MBID_2, "title": "Roads", "isrcs": []}
NOT_FOUND = {"error": "Not Found", "help": "For usage, please see: https://musicbrainz.org/development/mmd"}
ISRC_ANSWER = {
    "isrc": "GBAGS9400025",
    "recordings": [
        {"id": MBID_1, "title": "Glory Box", "length": 306000, "disambiguation": "", "video": False},
        {"id": MBID_2, "title": "Glory Box (live)", "length": 310000, "disambiguation": "live", "video": False},
    ],
}
WINDOW_SPENT = {
    "X-RateLimit-Limit": "30",
    "X-RateLimit-Remaining": "0",
    "X-RateLimit-Reset-In": "6",
    "X-RateLimit-Reset": "1717430406",
}


def replay(answers: dict[str, list[tuple[int, Any, dict[str, str]]]], seen: list[httpx.Request]) -> httpx.MockTransport:
    queues = {host: list(queue) for host, queue in answers.items()}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status, body, headers = queues[request.url.host].pop(0)
        return httpx.Response(
            status, content=json.dumps(body).encode(), headers={"content-type": "application/json", **headers}
        )

    return httpx.MockTransport(handler)


def settings(transport: httpx.MockTransport, clock: FakeTime) -> dict[str, Any]:
    http = HttpSettings(transport=transport, retry=NO_JITTER, sleep=clock.sleep, clock=clock.clock)
    return {"http": http, "rate": FAST, "musicbrainz_rate": FAST, "user_agent": USER_AGENT}


def test_real_feedback_maps_to_records_and_recordings_without_an_isrc_or_mbid_are_left_out() -> None:
    seen: list[httpx.Request] = []
    clock = FakeTime(start=START)
    transport = replay(
        {
            "api.listenbrainz.org": [(200, FEEDBACK, WINDOW_SPENT)],
            "musicbrainz.org": [(200, RECORDING_1, {}), (200, RECORDING_2, {})],
        },
        seen,
    )
    source = ListenBrainzSource("rob", **settings(transport, clock))

    (record,) = asyncio.run(source.fetch(source.specs()[0]))

    assert record.primary_key == "GBAGS9400025"  # the first ISRC, in canonical form
    assert record.properties["Name"] == "Glory Box" and record.properties["Album"] == "Dummy"
    assert record.properties["Loved"] == dt.datetime(2024, 6, 3, 16, 0, tzinfo=dt.UTC)
    feedback_call = seen[0]
    assert feedback_call.url.path == "/1/feedback/user/rob/get-feedback"
    assert dict(feedback_call.url.params) == {"score": "1", "count": "100", "offset": "0", "metadata": "true"}
    assert [r.url.path for r in seen[1:]] == [f"/ws/2/recording/{MBID_1}", f"/ws/2/recording/{MBID_2}"]
    assert all(r.headers["user-agent"] == USER_AGENT for r in seen[1:])


def test_a_spent_window_is_waited_out_before_the_next_request() -> None:
    seen: list[httpx.Request] = []
    clock = FakeTime(start=START)
    page = {**FEEDBACK, "feedback": FEEDBACK["feedback"][:1], "count": 1, "total_count": 2}
    page_2 = {**FEEDBACK, "feedback": FEEDBACK["feedback"][1:2], "count": 1, "offset": 1, "total_count": 2}
    transport = replay(
        {
            "api.listenbrainz.org": [(200, page, WINDOW_SPENT), (200, page_2, {})],
            "musicbrainz.org": [(200, RECORDING_1, {}), (200, RECORDING_2, {})],
        },
        seen,
    )
    source = ListenBrainzSource("rob", page_size=1, **settings(transport, clock))

    asyncio.run(source.fetch(source.specs()[0]))

    assert clock.sleeps == [6.0]  # X-RateLimit-Reset-In, before page two


def test_the_destination_loves_the_first_recording_of_an_isrc_and_a_401_is_auth() -> None:
    seen: list[httpx.Request] = []
    clock = FakeTime(start=START)
    empty = {"count": 0, "feedback": [], "offset": 0, "total_count": 0}
    transport = replay(
        {
            "musicbrainz.org": [(200, ISRC_ANSWER, {}), (404, NOT_FOUND, {}), (200, ISRC_ANSWER, {})],
            "api.listenbrainz.org": [
                (200, empty, {}),
                (200, {"status": "ok"}, {}),
                (401, {"code": 401, "error": "Invalid authorization token."}, {}),
            ],
        },
        seen,
    )
    dest = ListenBrainzDestination("rob", token=TOKEN, **settings(transport, clock))

    async def run() -> list[str | bool]:
        async with dest.connect() as session:
            out = [await session.create(Record("gbags9400025", {}), clock.utcnow())]
            out.append(await session.create(Record("USUM71703861", {}), clock.utcnow()))
            await session.update(MBID_2, Record("GBAGS9400025", {}), clock.utcnow())
            return out

    with pytest.raises(AuthError, match="Invalid authorization token"):
        asyncio.run(run())
    posts = [r for r in seen if r.method == "POST"]
    assert json.loads(posts[0].content) == {"recording_mbid": MBID_1, "score": 1}
    assert posts[0].headers["authorization"] == f"Token {TOKEN}"
    assert seen[0].url.path == "/ws/2/isrc/GBAGS9400025"

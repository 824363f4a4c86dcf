"""LumaSource and LumaDestination fed Luma's real response shapes (not the project's fake).

The fixtures are written by hand from Luma's API reference (docs.luma.com, and the OpenAPI document
published from it) and from public clients of the API: list entries ``{"api_id", "event": {…}, "tags":
[{"api_id", "name"}]}`` with ``has_more`` / ``next_cursor``; events with ``evt-`` + 15 alphanumeric ids,
``start_at`` / ``end_at`` in UTC with milliseconds and ``Z``, ``timezone``, ``url``, ``cover_url``,
``visibility``, ``duration_interval``, ``geo_address_json`` that is an object for an in-person event and
null for an online one; ``event/get`` answers ``{"event", "hosts"}`` whose hosts may have a null
``name`` (first and last names only); Luma's newer reference shape (flat entries and events keyed by
``id``); create answers ``{"api_id"}`` (and the newer ``{"id"}``); errors ``{"message": …}``; and the
documented 429 (blocked for a minute, ``Retry-After``). A small replay transport serves them.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from typing import Any

import httpx
import pytest

from connectors.core import AuthError, Record, RecordError
from connectors.http import HttpSettings
from connectors.luma import LumaDestination, LumaSource
from tests.connectors.luma.helpers import FAST, NO_JITTER, START
from tests.fakes.github import FakeClock
from tests.fakes.replay import Replay

UTC = dt.UTC
NOW = dt.datetime.fromtimestamp(START, UTC)  # 2024-06-03T19:00:00Z
CURSOR = "eyJzdGFydF9hdCI6IjIwMjQtMDYtMjBUMTc6MDA6MDAuMDAwWiIsImlkIjoiZXZ0LTdKM3FYbTJQYVpRczBrWSJ9+/="

IN_PERSON = {
    "api_id": "evt-HQ36IFDwncocuGy",
    "calendar_api_id": "cal-47FMgklxaO96VYi",
    "user_api_id": "usr-Ab3kQz9TxPw2LmN",
    "created_at": "2024-04-02T09:14:03.512Z",
    "cover_url": "https://images.lumacdn.com/event-covers/4x/8f2c5e1a-3b7d-4e6f-9a0b-1c2d3e4f5a6b",
    "name": "Python Meetup #42",
    "description": "Talks and pizza.",
    "description_md": "Talks and **pizza**.",
    "series_api_id": None,
    "start_at": "2024-05-20T17:00:00.000Z",
    "duration_interval": "PT2H30M",
    "end_at": "2024-05-20T19:30:00.000Z",
    "geo_latitude": "52.5200066",
    "geo_longitude": "13.404954",
    "geo_address_json": {
        "city": "Berlin",
        "type": "google",
        "region": "Berlin",
        "address": "Alexanderplatz 1",
        "country": "Germany",
        "latitude": "52.5200066",
        "place_id": "ChIJAVkDPzdOqEcRcDteW0YgIQQ",
        "longitude": "13.404954",
        "city_state": "Berlin, Germany",
        "description": "Alexanderplatz",
        "full_address": "Alexanderplatz 1, 10178 Berlin, Germany",
    },
    "url": "pymeetup42",
    "timezone": "Europe/Berlin",
    "visibility": "public",
    "meeting_url": None,
    "zoom_meeting_url": None,
}
ONLINE = {
    **IN_PERSON,
    "api_id": "evt-7J3qXm2PaZQs0kY",
    "name": "Remote office hours",
    "description": "",
    "description_md": "",
    "start_at": "2024-06-20T17:00:00.000Z",
    "duration_interval": "PT1H",
    "end_at": "2024-06-20T18:00:00.000Z",
    "geo_latitude": None,
    "geo_longitude": None,
    "geo_address_json": None,
    "url": "https://luma.com/office-hours",
    "timezone": "America/New_York",
    "visibility": "members-only",
    "meeting_url": "https://us02web.zoom.us/j/8123456789",
}
LATE = {**ONLINE, "api_id": "evt-Zr8LwQ1nYb4Kc2D", "name": "Year-end party", "start_at": "2024-12-12T18:00:00.000Z"}

PAGE_1 = {
    "entries": [
        {"api_id": IN_PERSON["api_id"], "event": IN_PERSON, "tags": [{"api_id": "tag-Nq2WcB7e1Xz4Lp9", "name": "AI"}]},
        {"api_id": ONLINE["api_id"], "event": ONLINE, "tags": []},
    ],
    "has_more": True,
    "next_cursor": CURSOR,
}
PAGE_2 = {
    "entries": [{"api_id": LATE["api_id"], "event": LATE, "tags": []}],
    "has_more": False,
    "next_cursor": "eyJzdGFydF9hdCI6bnVsbH0",  # Luma may name a cursor on the last page too: has_more decides
}
HOSTS = [
    {
        "api_id": "usr-Ab3kQz9TxPw2LmN",
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "avatar_url": "https://images.lumacdn.com/avatars/ada.png",
    },
    {
        "api_id": "usr-Gr4ceH0pp3rXy1Z",
        "email": "grace@example.com",
        "name": None,  # a guest account that never set a display name
        "first_name": "Grace",
        "last_name": "Hopper",
        "avatar_url": "https://images.lumacdn.com/avatars/default.png",
    },
]


def luma_json(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers={"Content-Type": "application/json", **(headers or {})})


def api_key() -> str:
    return "secret-" + secrets.token_urlsafe(18)  # built at run time: no key-shaped literal in the repo


def options(replay: Replay, time: FakeClock, key: str | None = None) -> dict[str, Any]:
    return {
        "token": key or api_key(),
        "http": HttpSettings(transport=replay.transport(), retry=NO_JITTER, sleep=time.sleep, clock=time.clock),
        "rate": FAST,
    }


def calendar(request: httpx.Request) -> httpx.Response:
    params = request.url.params
    if request.url.path == "/v1/calendar/list-events":
        return luma_json(200, PAGE_2 if params.get("pagination_cursor") == CURSOR else PAGE_1)
    if request.url.path == "/v1/event/get":
        event = next((e for e in (IN_PERSON, ONLINE, LATE) if e["api_id"] == params.get("api_id")), None)
        if event is None:
            return luma_json(404, {"message": "Event not found."})
        return luma_json(200, {"event": event, "hosts": HOSTS if event is IN_PERSON else []})
    return luma_json(404, {"message": "Not found."})


async def test_real_pages_become_typed_records_and_the_cursor_goes_back_untouched() -> None:
    replay, time = Replay(calendar), FakeClock(START)
    source = LumaSource(**options(replay, time), now=lambda: NOW)
    spec = source.specs()[0]

    records = {r.primary_key: r for r in await source.fetch(spec)}

    assert list(records) == [IN_PERSON["api_id"], ONLINE["api_id"], LATE["api_id"]]
    meetup = records[IN_PERSON["api_id"]]
    assert meetup.properties == {
        "Name": "Python Meetup #42",
        "URL": "https://lu.ma/pymeetup42",
        "Start": dt.datetime(2024, 5, 20, 17, 0, tzinfo=UTC),
        "End": dt.datetime(2024, 5, 20, 19, 30, tzinfo=UTC),
        "Timezone": "Europe/Berlin",
        "Status": "Published",
        "Hosts": ["Ada Lovelace", "Grace Hopper"],  # a null name falls back to first and last names
    }
    assert meetup.body == "Talks and **pizza**."
    online = records[ONLINE["api_id"]]
    assert online.properties["URL"] == "https://luma.com/office-hours"  # an absolute url is kept
    assert online.properties["Status"] == "Scheduled" and online.body is None
    lists = [r for r in replay.seen if r.url.path == "/v1/calendar/list-events"]
    assert len(lists) == 2  # has_more false ends the pass even with a next_cursor
    assert lists[1].url.params["pagination_cursor"] == CURSOR  # +, / and = survive the round trip
    assert all(r.headers["x-luma-api-key"].startswith("secret-") for r in replay.seen)


def newer_reference(request: httpx.Request) -> httpx.Response:
    """Luma's newer reference shape: flat entries and events keyed by ``id``, hosts inside the event."""
    flat = {k: v for k, v in IN_PERSON.items() if k != "api_id"} | {"id": IN_PERSON["api_id"], "platform": "luma"}
    if request.url.path == "/v1/calendar/list-events":
        return luma_json(200, {"entries": [{**flat, "tags": [{"id": "tag-Nq2WcB7e1Xz4Lp9", "name": "AI"}]}]})
    if request.url.path == "/v1/event/get":
        return luma_json(200, {**flat, "hosts": [{**HOSTS[1], "id": HOSTS[1]["api_id"]}]})
    return luma_json(404, {"message": "Not found."})


async def test_the_newer_flat_shape_is_read_too() -> None:
    replay, time = Replay(newer_reference), FakeClock(START)
    source = LumaSource(**options(replay, time), now=lambda: NOW)

    (record,) = await source.fetch(source.specs()[0])
    (targeted,) = await source.fetch(source.specs()[0], [IN_PERSON["api_id"]])

    assert record.primary_key == targeted.primary_key == IN_PERSON["api_id"]
    assert record.properties["Name"] == "Python Meetup #42" and record.properties["Hosts"] == ["Grace Hopper"]
    assert targeted.properties["Hosts"] == ["Grace Hopper"]


@pytest.mark.parametrize("answer", [{"api_id": "evt-Qm4nT8vX2cLp7Rz"}, {"id": "evt-Qm4nT8vX2cLp7Rz"}])
async def test_a_create_answer_of_either_shape_gives_the_event_id(answer: dict[str, str]) -> None:
    sent: list[dict[str, Any]] = []

    def route(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return luma_json(200, answer)

    replay, time = Replay(route), FakeClock(START)
    record = Record("talk-1", {"Name": "Lightning talks", "Start": dt.datetime(2024, 7, 1, 18, 0, tzinfo=UTC)})
    async with LumaDestination(**options(replay, time), timezone="Europe/Berlin").connect() as session:
        assert await session.create(record, NOW) == "evt-Qm4nT8vX2cLp7Rz"
    assert sent == [
        {
            "name": "Lightning talks",
            "start_at": "2024-07-01T18:00:00+00:00",
            "end_at": "2024-07-01T19:00:00+00:00",
            "timezone": "Europe/Berlin",
        }
    ]


async def test_a_rejected_payload_is_a_record_error_quoting_lumas_message() -> None:
    message = "Invalid start_at: expected an ISO 8601 datetime."
    replay, time = Replay(lambda request: luma_json(400, {"message": message})), FakeClock(START)
    record = Record("talk-1", {"Name": "Talk", "Start": dt.datetime(2024, 7, 1, 18, 0, tzinfo=UTC)})
    async with LumaDestination(**options(replay, time)).connect() as session:
        with pytest.raises(RecordError, match="Invalid start_at"):
            await session.create(record, NOW)


async def test_an_update_of_a_deleted_event_asks_to_unlink_it() -> None:
    replay, time = Replay(lambda request: luma_json(404, {"message": "Event not found."})), FakeClock(START)
    record = Record("talk-1", {"Name": "Talk", "Start": dt.datetime(2024, 7, 1, 18, 0, tzinfo=UTC)})
    async with LumaDestination(**options(replay, time)).connect() as session:
        with pytest.raises(RecordError, match="unlink it"):
            await session.update("evt-HQ36IFDwncocuGy", record, NOW)


async def test_an_invalid_key_is_an_auth_error_that_never_quotes_the_key() -> None:
    key = api_key()
    message = "Invalid API key. Find yours in your calendar's settings (requires Luma Plus)."
    replay, time = Replay(lambda request: luma_json(401, {"message": message})), FakeClock(START)
    source = LumaSource(**options(replay, time, key), now=lambda: NOW)
    with pytest.raises(AuthError) as raised:
        await source.fetch(source.specs()[0])
    assert key not in str(raised.value) and source.is_auth_error(raised.value)


async def test_a_429_waits_out_lumas_minute_then_goes_on() -> None:
    answers = [
        luma_json(
            429,
            {"message": "Too many requests. Please try again in a minute."},
            {"Retry-After": "60", "X-RateLimit-Limit": "200", "X-RateLimit-Remaining": "0"},
        ),
        luma_json(200, PAGE_2),
    ]
    replay, time = Replay(lambda request: answers.pop(0)), FakeClock(START)
    source = LumaSource(**options(replay, time), now=lambda: NOW, fetch_hosts=False)

    (record,) = await source.fetch(source.specs()[0])

    assert record.primary_key == LATE["api_id"] and len(replay.seen) == 2
    assert sum(time.sleeps) >= 60  # Luma blocks the key for a minute: the retry waits it out

"""The fake Luma API itself: the per-key limit and its one-minute block, pagination, validation, and
serving the connectors on a loopback port."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import httpx
import pytest

from connectors.core import Record, TransientError
from connectors.http import HttpSettings
from connectors.luma import LumaDestination, LumaSource
from tests.connectors.luma.helpers import FAST, NO_JITTER
from tests.fakes.github import FakeClock
from tests.fakes.luma import FakeLuma, serve

API = "https://public-api.luma.com"
UTC = dt.UTC


@pytest.fixture
async def http(fake: FakeLuma) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=fake.app), base_url=API, headers={"x-luma-api-key": fake.key}
    ) as client:
        yield client


async def test_two_hundred_requests_a_minute_then_the_key_is_blocked_for_a_minute(
    http: httpx.AsyncClient, fake: FakeLuma, fake_time: FakeClock
) -> None:
    for i in range(200):
        fake_time.now += 0.1
        response = await http.get("/v1/calendar/list-events")
        assert response.status_code == 200, i
    assert response.headers["X-RateLimit-Remaining"] == "0"

    over = await http.get("/v1/calendar/list-events")
    assert over.status_code == 429 and over.headers["Retry-After"] == "60"

    fake_time.now += 45  # the window has moved on, but the block has not ended
    still = await http.post("/v1/event/create", json={"name": "x", "start_at": "2024-07-01T10:00:00Z"})
    assert still.status_code == 429 and still.headers["Retry-After"] == "15"
    assert fake.events == {}

    fake_time.now += 15
    assert (await http.get("/v1/calendar/list-events")).status_code == 200


async def test_keys_are_per_key_and_a_bad_key_is_401(http: httpx.AsyncClient, fake: FakeLuma) -> None:
    fake.block()
    other = fake.add_key()
    assert (await http.get("/v1/calendar/list-events", headers={"x-luma-api-key": other})).status_code == 200
    assert (await http.get("/v1/calendar/list-events", headers={"x-luma-api-key": "nope"})).status_code == 401
    fake.revoke_key(other)
    assert (await http.get("/v1/calendar/list-events", headers={"x-luma-api-key": other})).status_code == 401


async def test_list_events_pages_by_cursor_and_filters_by_start(http: httpx.AsyncClient, fake: FakeLuma) -> None:
    events = [fake.add_event(f"E{i}", dt.datetime(2024, 5, 1 + i, tzinfo=UTC)) for i in range(5)]
    seen, cursor = [], None
    while True:
        params = {"pagination_limit": 2, **({"pagination_cursor": cursor} if cursor else {})}
        body = (await http.get("/v1/calendar/list-events", params=params)).json()
        seen += [entry["api_id"] for entry in body["entries"]]
        assert all("hosts" not in entry and "hosts" not in entry["event"] for entry in body["entries"])
        if not body["has_more"]:
            assert body["next_cursor"] is None
            break
        cursor = body["next_cursor"]
    assert seen == [e.api_id for e in events]

    after = (await http.get("/v1/calendar/list-events", params={"after": "2024-05-03T00:00:00Z"})).json()
    assert [entry["event"]["name"] for entry in after["entries"]] == ["E2", "E3", "E4"]
    assert after["entries"][0]["event"]["start_at"] == "2024-05-03T00:00:00.000Z"
    bad = await http.get("/v1/calendar/list-events", params={"pagination_cursor": "###"})
    assert bad.status_code == 400 and "message" in bad.json()
    too_big = await http.get("/v1/calendar/list-events", params={"pagination_limit": 101})
    assert too_big.status_code == 400


async def test_create_and_update_validate_like_luma(http: httpx.AsyncClient, fake: FakeLuma) -> None:
    space = await http.post("/v1/event/create", json={"name": "x", "start_at": "2024-07-01 10:00:00+00:00"})
    naive = await http.post("/v1/event/create", json={"name": "x", "start_at": "2024-07-01T10:00:00"})
    zone = await http.post(
        "/v1/event/create", json={"name": "x", "start_at": "2024-07-01T10:00:00Z", "timezone": "Mars/Base"}
    )
    nameless = await http.post("/v1/event/create", json={"start_at": "2024-07-01T10:00:00Z"})
    assert [r.status_code for r in (space, naive, zone, nameless)] == [400] * 4  # str(datetime) is rejected (W27)

    created = await http.post(
        "/v1/event/create", json={"name": "Demo", "start_at": "2024-07-01T10:00:00+02:00", "timezone": "Europe/Berlin"}
    )
    api_id = created.json()["api_id"]
    assert fake.events[api_id].end == dt.datetime(2024, 7, 1, 9, 0, tzinfo=UTC)  # an hour by default

    backwards = await http.post("/v1/event/update", json={"event_id": api_id, "end_at": "2024-07-01T07:00:00Z"})
    unknown = await http.post("/v1/event/update", json={"event_id": "evt-nope", "name": "x"})
    ok = await http.post("/v1/event/update", json={"event_id": api_id, "name": "Demo day"})
    assert (backwards.status_code, unknown.status_code, ok.status_code) == (400, 404, 200)
    assert ok.json() == {} and fake.events[api_id].name == "Demo day"
    got = (await http.get("/v1/event/get", params={"api_id": api_id})).json()
    assert got["event"]["name"] == "Demo day" and got["hosts"] == []


async def test_a_lost_create_answer_still_creates_the_event(http: httpx.AsyncClient, fake: FakeLuma) -> None:
    fake.lose_next_create("disconnect")
    with pytest.raises(httpx.RemoteProtocolError):
        await http.post("/v1/event/create", json={"name": "Ghost", "start_at": "2024-07-01T10:00:00Z"})
    fake.lose_next_create("504")
    timed_out = await http.post("/v1/event/create", json={"name": "Ghost", "start_at": "2024-07-01T10:00:00Z"})

    assert timed_out.status_code == 504
    assert [e.name for e in fake.events.values()] == ["Ghost", "Ghost"]


async def test_the_fake_serves_the_connectors_on_a_loopback_port(fake: FakeLuma, fake_time: FakeClock) -> None:
    fake.add_event("Meetup", dt.datetime(2024, 5, 1, 17, 0, tzinfo=UTC), hosts=["Ada Lovelace"])
    with serve(fake) as base_url:
        options = {
            "token": fake.key,
            "base_url": base_url,
            "rate": FAST,
            "http": HttpSettings(retry=NO_JITTER, clock=fake_time.clock),
        }
        source = LumaSource(**options)  # type: ignore[arg-type]
        (record,) = await source.fetch(source.specs()[0])
        dest = LumaDestination(**options)  # type: ignore[arg-type]
        async with dest.connect() as session:
            api_id = await session.create(
                Record("k", {"Name": "Copy", "Start": record.properties["Start"]}), dt.datetime.now(UTC)
            )
            fake.lose_next_create("disconnect")  # over a socket, uvicorn answers the dropped answer with a 500
            with pytest.raises(TransientError):
                await session.create(
                    Record("k2", {"Name": "Lost", "Start": "2024-07-01T10:00:00Z"}), dt.datetime.now(UTC)
                )

    assert record.properties["Hosts"] == ["Ada Lovelace"]
    assert fake.events[api_id].name == "Copy"
    assert len(fake.named("Lost")) == 1 and fake.count("event/create") == 2  # created, and not resent

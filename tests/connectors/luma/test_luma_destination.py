"""LumaDestination against the fake Luma API: encoding (W27), validation before any request, creates, updates,
limits, and what a lost create answer does at the session level."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from connectors.core import ConfigError, RateLimited, Record, RecordError, TransientError
from connectors.http import RetryPolicy
from connectors.luma import LumaDestination, encode_event
from tests.connectors.luma.helpers import DestinationFactory
from tests.fakes.github import FakeClock
from tests.fakes.luma import FakeLuma

UTC = dt.UTC
CEST = dt.timezone(dt.timedelta(hours=2))
SYNCED_AT = dt.datetime(2024, 6, 3, 19, 0, tzinfo=UTC)


def event(key: str = "k1", **props: Any) -> Record:
    props.setdefault("Name", "Team sync")
    props.setdefault("Start", dt.datetime(2024, 7, 1, 10, 0, tzinfo=CEST))
    return Record(key, props)


async def create(dest: LumaDestination, record: Record) -> str:
    async with dest.connect() as session:
        return str(await session.create(record, SYNCED_AT))


# --------------------------------------------------------------------------------------------------
# Encoding (W27: never str(datetime))


def test_an_aware_datetime_is_sent_as_iso_8601_with_its_offset() -> None:
    payload = encode_event(event(End=dt.datetime(2024, 7, 1, 11, 30, tzinfo=CEST)))

    assert payload == {
        "name": "Team sync",
        "start_at": "2024-07-01T10:00:00+02:00",
        "end_at": "2024-07-01T11:30:00+02:00",
        "timezone": "UTC",
    }
    assert " " not in payload["start_at"]  # str(datetime) would give "2024-07-01 10:00:00+02:00"


def test_defaults_an_end_from_the_duration_and_a_date_lasts_the_day_in_the_events_timezone() -> None:
    timed = encode_event(event(), default_duration=dt.timedelta(minutes=45))
    all_day = encode_event(event(Start=dt.date(2024, 7, 1), Timezone="Europe/Berlin"))
    through = encode_event(event(Start="2024-07-01", End=dt.date(2024, 7, 3)), timezone="America/New_York")

    assert timed["end_at"] == "2024-07-01T10:45:00+02:00"
    assert (all_day["start_at"], all_day["end_at"], all_day["timezone"]) == (
        "2024-07-01T00:00:00+02:00",
        "2024-07-02T00:00:00+02:00",
        "Europe/Berlin",
    )
    assert (through["start_at"], through["end_at"]) == ("2024-07-01T00:00:00-04:00", "2024-07-04T00:00:00-04:00")


def test_iso_strings_with_offsets_are_accepted_and_the_body_is_the_description() -> None:
    record = Record("k", {"Name": "x", "Start": "2024-07-01T08:00:00Z"}, body="# Agenda")
    payload = encode_event(record)
    assert payload["start_at"] == "2024-07-01T08:00:00+00:00" and payload["description_md"] == "# Agenda"
    own = encode_event(
        Record("k", {"Name": "x", "Start": "2024-07-01T08:00:00Z", "Notes": "n"}, body="b"),
        description_property="Notes",
    )
    assert own["description_md"] == "n"


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"Start": None}, "no 'Start'"),
        ({"Start": ""}, "no 'Start'"),
        ({"Start": dt.datetime(2024, 7, 1, 10, 0)}, "no timezone offset"),
        ({"Start": "2024-07-01T10:00:00"}, "no timezone offset"),
        ({"Start": "next friday"}, "not an ISO 8601"),
        ({"Start": "2024-02-30"}, "not an ISO 8601"),
        ({"Start": 1719828000}, "must be a datetime"),
        ({"End": dt.datetime(2024, 7, 1, 9, 0, tzinfo=CEST)}, "before the start"),
        ({"Timezone": "Mars/Olympus_Mons"}, "not an IANA timezone"),
        ({"Name": ""}, "no 'Name'"),
        ({"Name": None}, "no 'Name'"),
        ({"Name": "x" * 256}, "256 characters"),
    ],
)
def test_bad_values_are_record_errors(props: dict[str, Any], message: str) -> None:
    with pytest.raises(RecordError, match=message) as raised:
        encode_event(event("bad", **props))
    assert raised.value.primary_key == "bad"


def test_a_bad_configuration_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        LumaDestination(token="x", timezone="Nowhere/Special")
    with pytest.raises(ConfigError):
        LumaDestination(token="x", start_property="")


# --------------------------------------------------------------------------------------------------
# The session


async def test_create_returns_the_api_id_and_update_addresses_it_as_event_id(
    make_dest: DestinationFactory, fake: FakeLuma
) -> None:
    dest = make_dest(visibility="private")
    api_id = await create(dest, event(End=dt.datetime(2024, 7, 1, 12, 0, tzinfo=CEST)))

    created = fake.events[api_id]
    assert api_id.startswith("evt-")
    assert (created.name, created.start, created.end) == (
        "Team sync",
        dt.datetime(2024, 7, 1, 8, 0, tzinfo=UTC),
        dt.datetime(2024, 7, 1, 10, 0, tzinfo=UTC),
    )
    assert created.visibility == "private"

    async with dest.connect() as session:
        assert await session.update(api_id, event(Name="Team sync (moved)", Start=dt.date(2024, 7, 2)), SYNCED_AT)

    update = fake.log[-1]
    assert update.path == "/v1/event/update" and update.body["event_id"] == api_id
    assert "visibility" not in update.body  # visibility is a create-time choice
    assert fake.events[api_id].name == "Team sync (moved)"
    assert len(fake.events) == 1


async def test_create_only_properties_are_not_written_on_update(make_dest: DestinationFactory, fake: FakeLuma) -> None:
    dest = make_dest(create_only_properties={"Start"})
    api_id = await create(dest, event())

    async with dest.connect() as session:
        await session.update(api_id, event(Name="Renamed", Start=dt.datetime(2030, 1, 1, tzinfo=UTC)), SYNCED_AT)

    assert set(fake.log[-1].body) == {"event_id", "name"}
    assert fake.events[api_id].start == dt.datetime(2024, 7, 1, 8, 0, tzinfo=UTC)


async def test_a_bad_record_costs_no_request(make_dest: DestinationFactory, fake: FakeLuma) -> None:
    with pytest.raises(RecordError):
        await create(make_dest(), event(Start=dt.datetime(2024, 7, 1, 10, 0)))
    assert fake.count("event/create") == 0 and fake.events == {}


async def test_a_rejected_payload_is_a_record_error(make_dest: DestinationFactory, fake: FakeLuma) -> None:
    fake.fail_next(1, 400, path="create", message="Invalid cover_url.")
    with pytest.raises(RecordError, match="Invalid cover_url"):
        await create(make_dest(), event())
    assert fake.events == {}


async def test_updating_an_event_deleted_in_luma_is_a_record_error(
    make_dest: DestinationFactory, fake: FakeLuma
) -> None:
    dest = make_dest()
    api_id = await create(dest, event())
    del fake.events[api_id]

    async with dest.connect() as session:
        with pytest.raises(RecordError, match="unlink it") as raised:
            await session.update(api_id, event(), SYNCED_AT)
    assert raised.value.primary_key == "k1"


async def test_luma_cannot_list_our_keys(make_dest: DestinationFactory, fake: FakeLuma) -> None:
    dest = make_dest()
    await create(dest, event())
    async with dest.connect() as session:
        assert await session.query_existing_ids() == {}
    assert dest.stores_keys is False and dest.max_concurrency == 1
    assert fake.count("list-events") == 0


@pytest.mark.parametrize("mode", ["disconnect", "504"])
async def test_a_create_whose_answer_is_lost_is_not_resent(
    make_dest: DestinationFactory, fake: FakeLuma, fake_time: FakeClock, mode: str
) -> None:
    fake.lose_next_create(mode)

    with pytest.raises(TransientError):
        await create(make_dest(), event())

    assert fake.count("event/create") == 1  # sent once: a resend could have made a second event
    assert len(fake.events) == 1  # ...and Luma did create it
    assert fake_time.sleeps == []


async def test_a_503_on_create_is_resent_because_nothing_happened(
    make_dest: DestinationFactory, fake: FakeLuma
) -> None:
    fake.fail_next(2, 503, path="create")
    api_id = await create(make_dest(), event())
    assert list(fake.events) == [api_id] and fake.count("event/create") == 3


async def test_a_429_block_is_waited_out(make_dest: DestinationFactory, fake: FakeLuma, fake_time: FakeClock) -> None:
    fake.block()
    api_id = await create(make_dest(), event())
    assert list(fake.events) == [api_id]
    assert fake_time.sleeps == [60.0] and fake.count(status=429) == 1


async def test_a_block_beyond_the_toolkits_wait_propagates_as_rate_limited(
    make_dest: DestinationFactory, fake: FakeLuma
) -> None:
    fake.block(seconds=60)
    with pytest.raises(RateLimited) as raised:
        await create(make_dest(retry=RetryPolicy(jitter=0, max_wait=10)), event())
    assert raised.value.retry_after == pytest.approx(60)
    assert fake.events == {}


async def test_the_destination_paces_below_luma_s_limit() -> None:
    from connectors.luma.settings import LUMA_RATE

    dest = LumaDestination(token="x")
    assert dest.rate == LUMA_RATE
    # A bucket of `burst` that refills at requests/per_seconds: at most this many in any minute.
    most_in_a_minute = (LUMA_RATE.burst or 0) + LUMA_RATE.requests / LUMA_RATE.per_seconds * 60
    assert most_in_a_minute < 200

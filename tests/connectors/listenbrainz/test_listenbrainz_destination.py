"""ListenBrainzDestination against the fake ListenBrainz + MusicBrainz, alone and through the engine."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable

import pytest

from connectors.core import AuthError, Record, RecordError
from connectors.listenbrainz import ListenBrainzDestination
from connectors.memory import MemorySource
from sync_assets.engine import PassOptions, PassResult, run_pass
from sync_assets.routes import Route
from sync_assets.state import StateStore
from tests.connectors.listenbrainz.helpers import add_recordings, love_all
from tests.fakes.common import FakeTime
from tests.fakes.listenbrainz import FakeListenBrainz

DestinationFactory = Callable[..., ListenBrainzDestination]
SYNCED_AT = dt.datetime(2024, 6, 3, 20, 0, tzinfo=dt.UTC)
PARTITION = "liked"


async def create(dest: ListenBrainzDestination, key: str) -> str | bool:
    async with dest.connect() as session:
        return await session.create(Record(key, {"Name": "x"}), SYNCED_AT)


def test_create_finds_the_recording_by_isrc_and_loves_it(fake: FakeListenBrainz, make_dest: DestinationFactory) -> None:
    recordings = add_recordings(fake)

    created = asyncio.run(create(make_dest(), "gbum71507409"))  # Queen's second ISRC, lowercase

    assert created == recordings[1].mbid
    assert fake.loved() == [recordings[1].mbid]
    (post,) = fake.writes()
    assert post.body == {"recording_mbid": recordings[1].mbid, "score": 1} and post.token == fake.token
    assert [c.path for c in fake.log if c.host == "musicbrainz"] == ["/ws/2/isrc/GBUM71507409"]


def test_a_recording_the_user_already_loves_costs_no_write(
    fake: FakeListenBrainz, fake_time: FakeTime, make_dest: DestinationFactory
) -> None:
    recordings = add_recordings(fake)
    love_all(fake, fake_time, recordings[:2])

    async def both() -> list[str | bool]:
        async with make_dest().connect() as session:
            return [await session.create(Record(r.isrcs[0], {}), SYNCED_AT) for r in recordings[:3]]

    assert asyncio.run(both()) == [r.mbid for r in recordings[:3]]
    assert [c.body["recording_mbid"] for c in fake.writes()] == [recordings[2].mbid]
    assert fake.count(path=r"get-feedback$") == 1  # the user's loves are read once per session


def test_an_isrc_musicbrainz_does_not_know_is_skipped(fake: FakeListenBrainz, make_dest: DestinationFactory) -> None:
    add_recordings(fake)

    assert asyncio.run(create(make_dest(), "USUG11904206")) is not False  # known
    assert asyncio.run(create(make_dest(), "FRZ039800212")) is False
    assert len(fake.writes()) == 1


def test_a_key_that_is_not_an_isrc_fails_alone_before_any_call(
    fake: FakeListenBrainz, make_dest: DestinationFactory
) -> None:
    with pytest.raises(RecordError, match="is not an ISRC"):
        asyncio.run(create(make_dest(), "repo-1234"))
    assert list(fake.log) == []


def test_no_token_or_no_user_is_not_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LISTENBRAINZ_TOKEN", raising=False)
    monkeypatch.delenv("LISTENBRAINZ_TOKEN_FILE", raising=False)
    dest = ListenBrainzDestination(None)
    assert dest.configured is False
    assert "LISTENBRAINZ_TOKEN" in dest.config_hint and "LISTENBRAINZ_USER" in dest.config_hint


@pytest.fixture
def store(tmp_path) -> StateStore:
    return StateStore(f"sqlite:///{tmp_path / 'state.sqlite3'}")


def route(dest: ListenBrainzDestination, records: list[Record]) -> Route:
    return Route(MemorySource({PARTITION: records}, page_size=2), dest, name="memory_to_listenbrainz")


def sync(r: Route, store: StateStore) -> PassResult:
    return asyncio.run(run_pass(r, PARTITION, store, PassOptions()))


def test_a_second_pass_writes_nothing_and_the_link_map_holds_the_mbids(
    fake: FakeListenBrainz, make_dest: DestinationFactory, store: StateStore
) -> None:
    recordings = add_recordings(fake)
    records = [Record(r.isrcs[0], {"Name": r.title}) for r in recordings[:4]]
    r = route(make_dest(), [*records, Record("FRZ039800212", {"Name": "Around the World"})])

    first = sync(r, store)
    assert (first.stats.created, first.stats.skipped, first.stats.failed) == (4, 1, 0)
    second = sync(r, store)
    assert (second.stats.created, second.stats.updated, second.stats.unchanged) == (0, 0, 4)
    assert len(fake.writes()) == 4 and sorted(fake.loved()) == sorted(x.mbid for x in recordings[:4])
    # ListenBrainz cannot hold our key: the link map is the record of each love (ISRC -> MBID).
    assert dict(store.iter_links(r.name, PARTITION)) == {x.isrcs[0]: x.mbid for x in recordings[:4]}


def test_a_reset_token_pauses_the_destination_and_musicbrainz_trouble_does_not(
    fake: FakeListenBrainz, make_dest: DestinationFactory, store: StateStore
) -> None:
    recordings = add_recordings(fake)
    dest = make_dest()
    records = [Record(x.isrcs[0], {"Name": x.title}) for x in recordings[:2]]
    fake.fail_next_mb(1, 403, message="Blocked: send a meaningful User-Agent.")
    blocked = make_dest()
    with pytest.raises(Exception) as raised:
        asyncio.run(create(blocked, records[0].primary_key))
    assert not dest.is_auth_error(raised.value)

    fake.reset_token()
    r = route(dest, records)
    with pytest.raises(AuthError, match="Invalid authorization token"):
        sync(r, store)
    assert r.destination_scope in store.pauses()
    assert fake.writes() == []

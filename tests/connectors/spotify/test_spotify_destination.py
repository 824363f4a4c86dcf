"""SpotifyDestination against the fake Spotify API, alone and through the engine (no Dagster)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable

import pytest

from connectors.core import AuthError, Record
from connectors.memory import MemorySource
from connectors.spotify import SpotifyDestination
from sync_assets.engine import PassOptions, PassResult, run_pass
from sync_assets.routes import Route
from sync_assets.state import StateStore
from tests.connectors.spotify.helpers import add_catalog, save_all
from tests.fakes.common import FakeTime
from tests.fakes.spotify import FakeSpotify

DestinationFactory = Callable[..., SpotifyDestination]
SYNCED_AT = dt.datetime(2024, 6, 3, 20, 0, tzinfo=dt.UTC)
PARTITION = "loved"


def record(isrc: str, name: str = "", artist: str = "") -> Record:
    return Record(isrc, {"Name": name or None, "Artist": artist or None})


async def create(dest: SpotifyDestination, rec: Record) -> str | bool:
    async with dest.connect() as session:
        return await session.create(rec, SYNCED_AT)


def test_create_finds_the_track_by_isrc_and_saves_it(fake: FakeSpotify, make_dest: DestinationFactory) -> None:
    tracks = add_catalog(fake)

    created = asyncio.run(create(make_dest(), record("gbum71029604", "Bohemian Rhapsody")))

    assert created == tracks[1].id
    assert fake.saved_ids() == [tracks[1].id]
    search = fake.log.matching("GET", r"/search$")
    assert [c.params["q"] for c in search] == ["isrc:GBUM71029604"]
    assert fake.writes()[0].body == {"ids": [tracks[1].id]}


def test_an_isrc_spotify_does_not_index_falls_back_to_title_and_artist(
    fake: FakeSpotify, make_dest: DestinationFactory
) -> None:
    tracks = add_catalog(fake)  # Spotify knows Blinding Lights as USUG11904206; MusicBrainz has another ISRC

    created = asyncio.run(create(make_dest(), record("US23A8017264", "Blinding Lights", "The Weeknd")))

    assert created == tracks[7].id
    queries = [c.params["q"] for c in fake.log.matching("GET", r"/search$")]
    assert queries == ["isrc:US23A8017264", 'track:"Blinding Lights" artist:"The Weeknd"']


def test_a_track_spotify_does_not_have_is_skipped_without_a_save(
    fake: FakeSpotify, make_dest: DestinationFactory
) -> None:
    add_catalog(fake)

    assert asyncio.run(create(make_dest(), record("FRZ039800212", "Around the World", "Daft Punk"))) is False
    assert asyncio.run(create(make_dest(search_by_name=False), record("US23A8017264", "Blinding Lights"))) is False
    assert fake.writes() == [] and fake.saved_ids() == []


def test_the_listing_is_the_library_by_isrc(
    fake: FakeSpotify, fake_time: FakeTime, make_dest: DestinationFactory
) -> None:
    tracks = add_catalog(fake)
    save_all(fake, fake_time, tracks[:3])
    fake.save_local_file("demo take 3", "Me")

    async def listing() -> dict[str, str]:
        async with make_dest().connect() as session:
            return await session.query_existing_ids()

    assert asyncio.run(listing()) == {str(t.isrc): str(t.id) for t in tracks[:3]}


@pytest.fixture
def store(tmp_path) -> StateStore:
    return StateStore(f"sqlite:///{tmp_path / 'state.sqlite3'}")


def route(dest: SpotifyDestination, records: list[Record]) -> Route:
    return Route(MemorySource({PARTITION: records}, page_size=2), dest, name="memory_to_spotify")


def sync(r: Route, store: StateStore) -> PassResult:
    return asyncio.run(run_pass(r, PARTITION, store, PassOptions()))


def test_a_track_saved_by_hand_is_adopted_and_a_second_pass_writes_nothing(
    fake: FakeSpotify, fake_time: FakeTime, make_dest: DestinationFactory, store: StateStore
) -> None:
    tracks = add_catalog(fake)
    save_all(fake, fake_time, [tracks[0]])  # the user saved Hey Jude already
    records = [record(str(t.isrc), t.name, t.artists[0]) for t in tracks[:4]]
    r = route(make_dest(), records)

    first = sync(r, store)
    assert (first.stats.created, first.stats.updated, first.stats.failed) == (3, 1, 0)
    assert len(fake.writes()) == 3  # the adopted track was listed as saved: no save for it
    assert sorted(fake.saved_ids()) == sorted(str(t.id) for t in tracks[:4])

    second = sync(r, store)
    assert (second.stats.created, second.stats.updated, second.stats.unchanged) == (0, 0, 4)
    assert len(fake.writes()) == 3


def test_a_token_without_the_modify_scope_pauses_the_destination(
    fake: FakeSpotify, make_dest: DestinationFactory, store: StateStore
) -> None:
    tracks = add_catalog(fake)
    read_only = fake.add_token(scopes={"user-library-read"})
    r = route(make_dest(token=read_only), [record(str(t.isrc), t.name) for t in tracks[:2]])

    with pytest.raises(AuthError, match="Insufficient client scope"):
        sync(r, store)

    assert r.destination_scope in store.pauses()
    assert fake.saved_ids() == []

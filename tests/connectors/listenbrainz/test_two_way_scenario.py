"""The contrib's two-way scenario, Spotify saved tracks ⇄ ListenBrainz loved recordings, through our engine.

durable-sync-contrib's ``test_two_way_integration.py`` drove both directions through durable-sync's spine
with every HTTP helper monkeypatched: each route creates, then a second pass is idempotent. Here the
same scenario runs the real connectors against the stateful fakes of Spotify, ListenBrainz and
MusicBrainz, through ``run_pass`` with one state store, as two routes (``spotify_to_listenbrainz`` and
``listenbrainz_to_spotify``); then both routes run in turns and converge. Both sides key on the ISRC, so
what one route wrote comes back to the other as a record it already has: a recording already loved is
not loved again, a track already saved is not saved again, and a third round writes nothing anywhere.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from connectors.listenbrainz import ListenBrainzDestination, ListenBrainzSource
from connectors.spotify import SpotifyDestination, SpotifySource
from sync_assets.engine import PassOptions, PassResult, run_pass
from sync_assets.routes import Route, partition_key_for
from sync_assets.state import StateStore
from tests.connectors.listenbrainz import helpers as lbh
from tests.connectors.spotify import helpers as sph
from tests.fakes.common import FakeTime
from tests.fakes.listenbrainz import FakeListenBrainz, FakeRecording
from tests.fakes.spotify import FakeSpotify, FakeTrack

SONGS = [
    ("Alpha", "Artist", "Alb", "USRC17607839"),
    ("Beta", "Artist", "Alb", "GBAYE0601498"),
    ("Gamma", "Other Artist", "Second Album", "USSM19902991"),
    ("Delta", "Other Artist", "Second Album", "USEE10001993"),
]


@dataclass
class World:
    """One music world: each song in Spotify's catalogue and in MusicBrainz, under the same ISRC."""

    clock: FakeTime
    spotify: FakeSpotify
    lb: FakeListenBrainz
    tracks: dict[str, FakeTrack]
    recordings: dict[str, FakeRecording]

    def saved(self) -> set[str]:
        return {self.spotify.catalog[i].name for i in self.spotify.saved_ids()}

    def loved(self) -> set[str]:
        return {self.lb.recordings[m].title for m in self.lb.loved()}

    def writes(self) -> tuple[int, int]:
        """(Spotify saves, ListenBrainz loves) answered so far."""
        return len(self.spotify.writes()), len(self.lb.writes())


@pytest.fixture
def world() -> World:
    clock = FakeTime(start=sph.START)
    spotify = FakeSpotify(clock=clock.clock)
    lb = FakeListenBrainz(clock=clock.clock)
    tracks = {t: spotify.add_track(t, a, al, isrc=i) for t, a, al, i in SONGS}
    recordings = {t: lb.add_recording(t, a, al, isrcs=[i]) for t, a, al, i in SONGS}
    return World(clock, spotify, lb, tracks, recordings)


def spotify_to_listenbrainz(w: World) -> Route:
    return Route(
        SpotifySource(**sph.options(w.spotify, w.clock)),
        ListenBrainzDestination(w.lb.user, token=w.lb.token, **lbh.options(w.lb, w.clock)),
        name="spotify_to_listenbrainz",
    )


def listenbrainz_to_spotify(w: World) -> Route:
    return Route(
        ListenBrainzSource(w.lb.user, **lbh.options(w.lb, w.clock)),
        SpotifyDestination(**sph.options(w.spotify, w.clock)),
        name="listenbrainz_to_spotify",
    )


def sync(route: Route, store: StateStore) -> PassResult:
    """One pass of the route's only spec, as the dispatcher would start it (a new process each time)."""
    spec = route.source.specs()[0]
    return asyncio.run(run_pass(route, partition_key_for(spec.key), store, PassOptions(), spec=spec))


def counts(result: PassResult) -> dict[str, int]:
    s = result.stats
    return {"created": s.created, "updated": s.updated, "skipped": s.skipped, "failed": s.failed}


def test_spotify_to_listenbrainz_creates_then_is_idempotent(world: World, store: StateStore) -> None:
    for title in ("Alpha", "Beta"):
        world.clock.advance(60)
        world.spotify.save(world.tracks[title])

    first = sync(spotify_to_listenbrainz(world), store)
    assert counts(first) == {"created": 2, "updated": 0, "skipped": 0, "failed": 0}
    assert world.loved() == {"Alpha", "Beta"} and world.writes() == (0, 2)

    second = sync(spotify_to_listenbrainz(world), store)  # a new process: fresh connectors, same store
    assert counts(second) == {"created": 0, "updated": 0, "skipped": 0, "failed": 0}
    assert second.stats.unchanged == 2
    assert world.writes() == (0, 2)  # no new love


def test_listenbrainz_to_spotify_creates_then_is_idempotent(world: World, store: StateStore) -> None:
    for title in ("Alpha", "Beta"):
        world.clock.advance(60)
        world.lb.love(world.recordings[title])

    first = sync(listenbrainz_to_spotify(world), store)
    assert counts(first) == {"created": 2, "updated": 0, "skipped": 0, "failed": 0}
    assert world.saved() == {"Alpha", "Beta"} and world.writes() == (2, 0)

    second = sync(listenbrainz_to_spotify(world), store)
    assert counts(second) == {"created": 0, "updated": 0, "skipped": 0, "failed": 0}
    assert second.stats.unchanged == 2
    assert world.writes() == (2, 0)  # no new save


def test_both_directions_in_turns_converge_without_echo_writes(world: World, store: StateStore) -> None:
    for title in ("Alpha", "Beta"):
        world.clock.advance(60)
        world.spotify.save(world.tracks[title])
    for title in ("Beta", "Gamma"):
        world.clock.advance(60)
        world.lb.love(world.recordings[title])

    rounds = []
    for _ in range(3):
        before = world.writes()
        to_lb = sync(spotify_to_listenbrainz(world), store)
        to_spotify = sync(listenbrainz_to_spotify(world), store)
        after = world.writes()
        rounds.append((counts(to_lb), counts(to_spotify), (after[0] - before[0], after[1] - before[1])))

    assert world.saved() == world.loved() == {"Alpha", "Beta", "Gamma"}
    # Round 1: Alpha is loved (Beta already was: no write); Gamma is saved (Alpha and Beta are found
    # in the library by the first pass's listing: adopted without a write).
    assert rounds[0][2] == (1, 1)
    # Round 2: Gamma comes back from Spotify as a new record, already loved: linked, no write.
    assert rounds[1][2] == (0, 0)
    # Round 3: nothing changed anywhere, nothing is written, nothing is even updated.
    assert rounds[2] == (
        {"created": 0, "updated": 0, "skipped": 0, "failed": 0},
        {"created": 0, "updated": 0, "skipped": 0, "failed": 0},
        (0, 0),
    )
    assert world.writes() == (1, 1)
    assert len(world.spotify.saved_ids()) == 3 and len(world.lb.loved()) == 3  # no duplicate anywhere


def test_a_recording_whose_isrcs_differ_between_services_is_saved_once_and_skipped_back(
    world: World, store: StateStore
) -> None:
    # MusicBrainz knows Blinding Lights by one ISRC, Spotify indexes another (the contrib's own example).
    track = world.spotify.add_track("Blinding Lights", "The Weeknd", "After Hours", isrc="USUG11904206")
    world.lb.love(world.lb.add_recording("Blinding Lights", "The Weeknd", "After Hours", isrcs=["US23A8017264"]))

    rounds = []
    for _ in range(3):
        before = world.writes()
        to_spotify = sync(listenbrainz_to_spotify(world), store)
        to_lb = sync(spotify_to_listenbrainz(world), store)
        after = world.writes()
        rounds.append((counts(to_spotify), counts(to_lb), (after[0] - before[0], after[1] - before[1])))

    # Found by title and artist, saved once; on the way back Spotify's ISRC is unknown to MusicBrainz,
    # so each pass skips it (counted, never an error, never a second love or save).
    assert world.spotify.saved_ids() == [track.id]
    assert rounds[0][0]["created"] == 1 and rounds[0][2] == (1, 0)
    assert [r[1]["skipped"] for r in rounds] == [1, 1, 1]
    assert [r[2] for r in rounds[1:]] == [(0, 0), (0, 0)]
    assert len(world.lb.loved()) == 1

"""The shipped ``spotify_to_listenbrainz`` route (its YAML, its resources) run through Dagster on loopback fakes."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from sync_assets.project import DEFS_DIR, load_project
from sync_assets.systems import ListenBrainzResource, SpotifyResource
from sync_assets.testing import materialize_route
from tests.fakes import listenbrainz as lbfake
from tests.fakes import spotify as spfake

SONGS = [("Glory Box", "Portishead", "GBAGS9400025"), ("Teardrop", "Massive Attack", "GBAAA9800328")]


def test_the_shipped_route_loves_saved_tracks_and_a_second_run_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spotify, lb = spfake.FakeSpotify(), lbfake.FakeListenBrainz()
    for title, artist, isrc in SONGS:
        spotify.save(spotify.add_track(title, artist, isrc=isrc))
        lb.add_recording(title, artist, isrcs=[isrc])
    defs_dir = tmp_path / "defs"
    shutil.copytree(DEFS_DIR / "spotify_to_listenbrainz", defs_dir / "spotify_to_listenbrainz")
    monkeypatch.setenv("LISTENBRAINZ_USER", lb.user)

    with spfake.serve(spotify) as spotify_url, lbfake.serve(lb) as lb_url:
        resources = {
            "spotify": SpotifyResource(access_token=spotify.token, base_url=f"{spotify_url}/v1"),
            "listenbrainz": ListenBrainzResource(
                token=lb.token, base_url=lb_url, musicbrainz_url=f"{lb_url}/ws/2", user_agent="durable-sync-tests/1.0"
            ),
        }
        (loaded,) = load_project(defs_dir, resources=resources).routes
        assert loaded.name == "spotify_to_listenbrainz" and loaded.enabled
        assert type(loaded.source).__name__ == "SpotifySource"
        assert type(loaded.destination).__name__ == "ListenBrainzDestination"
        # The connectors the resources built from the YAML, run as a route of connector objects
        # (materialize_route provides no system resources).
        route = dataclasses.replace(loaded, source_binding=None, destination_binding=None)

        first = materialize_route(route)
        assert first.success, first.failure
        assert (first.stats.created, first.stats.failed) == (2, 0)
        second = materialize_route(route, store=first.store)
        assert second.success, second.failure
        assert (second.stats.created, second.stats.updated, second.stats.unchanged) == (0, 0, 2)

    assert sorted(lb.recordings[m].title for m in lb.loved()) == ["Glory Box", "Teardrop"]
    assert len(lb.writes()) == 2
    assert all(c.token == lb.token for c in lb.writes())

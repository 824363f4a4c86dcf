"""Constants and builders shared by the Spotify connector's tests (fixtures live in conftest.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

from connectors.http import HttpSettings, Rate, RetryPolicy
from tests.fakes.common import FakeTime
from tests.fakes.spotify import FakeSpotify, FakeTrack

START = dt.datetime(2024, 6, 3, 19, 0, tzinfo=dt.UTC).timestamp()
"""The fake clock's start: 2024-06-03T19:00:00Z."""

# The toolkit's own limiter would pace the tests in real time; the fake's window is what is tested.
FAST = Rate(10_000, 1, burst=10_000)
NO_JITTER = RetryPolicy(jitter=0)

SONGS = [
    ("Hey Jude", ["The Beatles"], "Hey Jude", "GBAYE0601498"),
    ("Bohemian Rhapsody", ["Queen"], "A Night at the Opera", "GBUM71029604"),
    ("Billie Jean", ["Michael Jackson"], "Thriller", "USSM19902991"),
    ("Smells Like Teen Spirit", ["Nirvana"], "Nevermind", "USGF19942501"),
    ("Hotel California", ["Eagles"], "Hotel California", "USEE10001993"),
    ("Get Lucky", ["Daft Punk", "Pharrell Williams", "Nile Rodgers"], "Random Access Memories", "USQX91300108"),
    ("Rolling in the Deep", ["Adele"], "21", "GBBKS1000335"),
    ("Blinding Lights", ["The Weeknd"], "After Hours", "USUG11904206"),
]
"""Title, artists, album and ISRC of catalogue tracks (real ISRC shapes)."""


def options(fake: FakeSpotify, clock: FakeTime, **http: Any) -> dict[str, Any]:
    """Connector keywords that put ``fake`` under the real client, on the fake clock."""
    return {
        "token": fake.token,
        "http": HttpSettings(
            transport=httpx.ASGITransport(app=fake.app),
            retry=http.pop("retry", NO_JITTER),
            sleep=clock.sleep,
            clock=clock.clock,
        ),
        "rate": FAST,
    }


def add_catalog(fake: FakeSpotify, songs: list[tuple[str, list[str], str, str]] = SONGS) -> list[FakeTrack]:
    """The songs as catalogue tracks."""
    return [fake.add_track(title, artists, album, isrc=isrc) for title, artists, album, isrc in songs]


def save_all(fake: FakeSpotify, clock: FakeTime, tracks: list[FakeTrack]) -> None:
    """Save the tracks one minute apart (the last one saved is listed first)."""
    for track in tracks:
        clock.advance(60)
        fake.save(track)

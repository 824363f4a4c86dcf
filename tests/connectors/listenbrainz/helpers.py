"""Constants and builders shared by the ListenBrainz connector's tests (fixtures live in conftest.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

from connectors.http import HttpSettings, Rate, RetryPolicy
from tests.fakes.common import FakeTime
from tests.fakes.listenbrainz import FakeListenBrainz, FakeRecording

START = dt.datetime(2024, 6, 3, 19, 0, tzinfo=dt.UTC).timestamp()
"""The fake clock's start: 2024-06-03T19:00:00Z."""

# The toolkit's own limiters would pace the tests in real time; the fake's limits are what is tested.
FAST = Rate(10_000, 1, burst=10_000)
NO_JITTER = RetryPolicy(jitter=0)
USER_AGENT = "durable-sync-tests/1.0 ( tests@example.com )"

SONGS = [
    ("Hey Jude", "The Beatles", "Hey Jude", ["GBAYE0601498"]),
    ("Bohemian Rhapsody", "Queen", "A Night at the Opera", ["GBUM71029604", "GBUM71507409"]),
    ("Billie Jean", "Michael Jackson", "Thriller", ["USSM19902991"]),
    ("Smells Like Teen Spirit", "Nirvana", "Nevermind", ["USGF19942501"]),
    ("Hotel California", "Eagles", "Hotel California", ["USEE10001993"]),
    ("Get Lucky", "Daft Punk feat. Pharrell Williams & Nile Rodgers", "Random Access Memories", ["USQX91300108"]),
    ("Rolling in the Deep", "Adele", "21", ["GBBKS1000335"]),
    ("Blinding Lights", "The Weeknd", "After Hours", ["USUG11904206"]),
]
"""Title, artist, release and ISRCs of MusicBrainz recordings (real ISRC shapes)."""


def options(fake: FakeListenBrainz, clock: FakeTime, **http: Any) -> dict[str, Any]:
    """Connector keywords that put ``fake`` (both hosts) under the real clients, on the fake clock."""
    return {
        "user_agent": USER_AGENT,
        "http": HttpSettings(
            transport=httpx.ASGITransport(app=fake.app),
            retry=http.pop("retry", NO_JITTER),
            sleep=clock.sleep,
            clock=clock.clock,
        ),
        "rate": FAST,
        "musicbrainz_rate": FAST,
    }


def add_recordings(fake: FakeListenBrainz, songs: list[tuple[str, str, str, list[str]]] = SONGS) -> list[FakeRecording]:
    """The songs as MusicBrainz recordings."""
    return [fake.add_recording(title, artist, release, isrcs=isrcs) for title, artist, release, isrcs in songs]


def love_all(fake: FakeListenBrainz, clock: FakeTime, recordings: list[FakeRecording]) -> None:
    """Love the recordings one minute apart (the last one loved is listed first)."""
    for recording in recordings:
        clock.advance(60)
        fake.love(recording)

"""The Spotify source and destination as contract-suite cases (``tests/contract``), wired to the fake API.

``tests/contract/cases.py`` registers them. The destination saves tracks found by ISRC, so its records
are keyed by the ISRCs of the fake's catalogue; a saved track reads back as its name (the catalogue's,
which the records carry), and nothing else of a record is stored, so no property can be cleared.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from connectors.core import Record
from connectors.spotify import SpotifyDestination, SpotifySource
from tests.connectors.spotify.helpers import START, add_catalog, options, save_all
from tests.contract.cases import DestinationHarness, SourceHarness
from tests.fakes.common import FakeTime
from tests.fakes.spotify import FakeSpotify

__all__ = ["spotify_destination", "spotify_source"]


def _served(fake: FakeSpotify) -> Any:
    return lambda status: fake.count(status=status)


@asynccontextmanager
async def spotify_source(tmp_path: Path) -> AsyncIterator[SourceHarness]:
    """SpotifySource on 7 saved tracks and a local file (left out: no ISRC), 3 to a page."""
    clock = FakeTime(start=START)
    fake = FakeSpotify(clock=clock.clock)
    tracks = add_catalog(fake)[:7]
    save_all(fake, clock, tracks[:4])
    fake.save_local_file("demo take 3", "Me")
    save_all(fake, clock, tracks[4:])

    def make() -> SpotifySource:
        return SpotifySource(page_size=3, **options(fake, clock))

    source = make()
    yield SourceHarness(
        source,
        source.specs()[0],
        7,
        make,
        missing_item="ZZXXX0000001",
        inject_failures=lambda n, status: fake.fail_next(n, status),
        revoke=fake.expire_token,
        forbid=lambda: fake.fail_next(1, 403, message="Insufficient client scope"),
        rate_limit=lambda retry_after: fake.fail_next(1, 429, retry_after=int(retry_after)),
        served=_served(fake),
        sleeps=clock.sleeps,
    )


@asynccontextmanager
async def spotify_destination(tmp_path: Path) -> AsyncIterator[DestinationHarness]:
    """SpotifyDestination saving catalogue tracks by ISRC; rows read back from the fake's library."""
    clock = FakeTime(start=START)
    fake = FakeSpotify(clock=clock.clock)
    tracks = add_catalog(fake)
    dest = SpotifyDestination(**options(fake, clock))
    records = [
        Record(str(t.isrc), {"Name": t.name, "Artist": ", ".join(t.artists), "Count": i})
        for i, t in enumerate(tracks[:4])
    ]

    async def rows() -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for track_id in fake.saved_ids():
            track = fake.catalog[track_id]
            key = str(track.isrc)
            if key in out:
                raise AssertionError(f"key {key!r} is saved as more than one track")
            out[key] = {"Name": track.name}
        return out

    yield DestinationHarness(
        dest,
        records,
        rows,
        expected=lambda record: {"Name": record.properties["Name"]},
        cleared=None,  # a saved track stores nothing of the record to clear
        inject_failures=lambda n, status: fake.fail_next(n, status, method="PUT"),
        revoke=fake.expire_token,
        forbid=lambda: fake.fail_next(1, 403, method="PUT", message="Insufficient client scope"),
        rate_limit=lambda retry_after: fake.fail_next(1, 429, method="PUT", retry_after=int(retry_after)),
        served=_served(fake),
        sleeps=clock.sleeps,
    )

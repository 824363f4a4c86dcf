"""The ListenBrainz source and destination as contract-suite cases (``tests/contract``), wired to the fake.

``tests/contract/cases.py`` registers them. The source reads public feedback with no token, so it has
no credential to revoke (that test skips itself). The destination loves recordings found by ISRC, so
its records are keyed by the ISRCs of the fake's MusicBrainz recordings; a loved recording reads back
as its title. ListenBrainz cannot hold our key (``stores_keys = False``): the listing checks skip.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from connectors.core import Record
from connectors.listenbrainz import ListenBrainzDestination, ListenBrainzSource
from tests.connectors.listenbrainz.helpers import START, add_recordings, love_all, options
from tests.contract.cases import DestinationHarness, SourceHarness
from tests.fakes.common import FakeTime
from tests.fakes.listenbrainz import FakeListenBrainz

__all__ = ["listenbrainz_destination", "listenbrainz_source"]


def _served(fake: FakeListenBrainz) -> Any:
    return lambda status: fake.count(status=status)


@asynccontextmanager
async def listenbrainz_source(tmp_path: Path) -> AsyncIterator[SourceHarness]:
    """ListenBrainzSource on 7 loved recordings and one without an ISRC (left out), 3 to a page."""
    clock = FakeTime(start=START)
    fake = FakeListenBrainz(clock=clock.clock)
    recordings = add_recordings(fake)[:7]
    love_all(fake, clock, recordings[:4])
    love_all(fake, clock, [fake.add_recording("Untitled demo", "Someone", isrcs=[])])
    love_all(fake, clock, recordings[4:])

    def make() -> ListenBrainzSource:
        return ListenBrainzSource(fake.user, page_size=3, **options(fake, clock))

    source = make()
    yield SourceHarness(
        source,
        source.specs()[0],
        7,
        make,
        missing_item="ZZXXX0000001",
        inject_failures=lambda n, status: fake.fail_next(n, status),
        revoke=None,  # reading feedback is public: the source sends no token
        forbid=lambda: fake.fail_next(1, 403),
        rate_limit=lambda retry_after: fake.fail_next(1, 429, retry_after=int(retry_after)),
        served=_served(fake),
        sleeps=clock.sleeps,
    )


@asynccontextmanager
async def listenbrainz_destination(tmp_path: Path) -> AsyncIterator[DestinationHarness]:
    """ListenBrainzDestination loving recordings found by ISRC; rows read back from the fake's feedback."""
    clock = FakeTime(start=START)
    fake = FakeListenBrainz(clock=clock.clock)
    recordings = add_recordings(fake)
    dest = ListenBrainzDestination(fake.user, token=fake.token, **options(fake, clock))
    records = [
        Record(r.isrcs[0], {"Name": r.title, "Artist": r.artist, "Count": i}) for i, r in enumerate(recordings[:4])
    ]

    async def rows() -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for mbid in fake.loved():
            recording = fake.recordings[mbid]
            key = recording.isrcs[0]
            if key in out:
                raise AssertionError(f"key {key!r} is loved as more than one recording")
            out[key] = {"Name": recording.title}
        return out

    yield DestinationHarness(
        dest,
        records,
        rows,
        expected=lambda record: {"Name": record.properties["Name"]},
        cleared=None,  # a love stores nothing of the record to clear
        inject_failures=lambda n, status: fake.fail_next(n, status, method="POST"),
        revoke=fake.reset_token,
        forbid=lambda: fake.fail_next(1, 403, method="POST"),
        rate_limit=lambda retry_after: fake.fail_next(1, 429, method="POST", retry_after=int(retry_after)),
        served=_served(fake),
        sleeps=clock.sleeps,
    )

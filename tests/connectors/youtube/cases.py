"""The YouTube source as a contract-suite case (``tests/contract``), wired to the fake Data API.

``tests/contract/cases.py`` registers it, expecting status 400 for a revoked key: Google answers a
deleted API key with 400 "API key not valid" (``API_KEY_INVALID``), not 401 (still an auth failure; see
``test_youtube_errors.py``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from connectors.http import HttpSettings
from connectors.youtube import YouTubeSource
from tests.connectors.youtube.helpers import FAST, NO_JITTER, START
from tests.contract.cases import SourceHarness
from tests.fakes.github import FakeClock
from tests.fakes.youtube import FakeYouTube

__all__ = ["youtube_source"]


@asynccontextmanager
async def youtube_source(tmp_path: Path) -> AsyncIterator[SourceHarness]:
    """YouTubeSource on a channel of 60 uploads: two playlist pages of 50 (nextPageToken).

    ``full_refresh_every=0``: every pass walks all uploads, as the suite expects of a fresh pass.
    """
    clock = FakeClock(start=START)
    fake = FakeYouTube(clock=clock.clock)
    acme = fake.add_channel("@acme", title="Acme")
    fake.add_videos(acme, 60, start=dt.datetime(2024, 3, 1, 15, 0, tzinfo=dt.UTC))
    watermarks: dict[str, str] = {}

    def make() -> YouTubeSource:
        return YouTubeSource(
            ["@acme"],
            token=fake.key,
            full_refresh_every=dt.timedelta(0),
            watermarks=watermarks,
            http=HttpSettings(
                transport=httpx.ASGITransport(app=fake.app), retry=NO_JITTER, sleep=clock.sleep, clock=clock.clock
            ),
            rate=FAST,
        )

    source = make()
    yield SourceHarness(
        source,
        source.specs()[0],
        60,
        make,
        missing_item="zzzzzzzzzzz",  # a well-formed video id nobody has
        inject_failures=lambda n, status: fake.fail_next(n, status),
        revoke=fake.revoke_key,
        forbid=lambda: fake.fail_next(1, 403, reason="forbidden"),
        rate_limit=lambda retry_after: fake.fail_next(1, 429, reason="rateLimitExceeded", retry_after=int(retry_after)),
        served=lambda status: fake.statuses()[status],
        sleeps=clock.sleeps,
    )

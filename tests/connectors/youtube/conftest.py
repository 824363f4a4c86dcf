"""Fixtures of the YouTube connector tests: a fake clock, the fake Data API, a channel, a source factory.

Each test gets a fresh fake with a fresh random API key, so the per-credential state that
``connectors.http`` keeps per process never leaks from one test into another.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from connectors.http import HttpSettings
from connectors.youtube import YouTubeSource
from tests.connectors.youtube.helpers import FAST, NO_JITTER, START, SourceFactory
from tests.fakes.common import FakeTime
from tests.fakes.youtube import FakeChannel, FakeYouTube


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime(start=START)


@pytest.fixture
def fake(fake_time: FakeTime) -> FakeYouTube:
    return FakeYouTube(clock=fake_time.clock)


@pytest.fixture
def channel(fake: FakeYouTube) -> FakeChannel:
    """@acme with 120 uploads, one a day, the newest published two days before the clock's now."""
    acme = fake.add_channel("@acme", title="Acme")
    fake.add_videos(acme, 120, start=dt.datetime(2024, 2, 3, 15, 0, tzinfo=dt.UTC))
    return acme


@pytest.fixture
def watermarks() -> dict[str, str]:
    return {}


@pytest.fixture
def make_source(fake: FakeYouTube, fake_time: FakeTime, watermarks: dict[str, str]) -> SourceFactory:
    """``make_source(channels=[...], ...)``: a YouTubeSource on the fake, in-process, on the fake clock."""

    def make(channels: list[str] | None = None, **kwargs: Any) -> YouTubeSource:
        kwargs.setdefault("token", fake.key)
        kwargs.setdefault("rate", FAST)
        kwargs.setdefault("watermarks", watermarks)
        http = {k: kwargs.pop(k) for k in ("transport", "retry", "sleep", "clock") if k in kwargs}
        defaults = HttpSettings(
            transport=httpx.ASGITransport(app=fake.app), retry=NO_JITTER, sleep=fake_time.sleep, clock=fake_time.clock
        )
        kwargs.setdefault("http", HttpSettings.of(defaults, **http))
        return YouTubeSource(channels or ["@acme"], **kwargs)

    return make

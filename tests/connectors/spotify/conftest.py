"""Fixtures of the Spotify connector tests: a fake clock, the fake Spotify API, connector factories.

Each test gets a fresh fake with a fresh random token, so the per-credential state ``connectors.http``
keeps per process (the limiter, a 429 block) never leaks from one test into another.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from connectors.spotify import SpotifyDestination, SpotifySource
from tests.connectors.http_options import merge_options
from tests.connectors.spotify.helpers import START, options
from tests.fakes.common import FakeTime
from tests.fakes.spotify import FakeSpotify


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime(start=START)


@pytest.fixture
def fake(fake_time: FakeTime) -> FakeSpotify:
    return FakeSpotify(clock=fake_time.clock)


@pytest.fixture
def make_source(fake: FakeSpotify, fake_time: FakeTime) -> Callable[..., SpotifySource]:
    def make(**kwargs: Any) -> SpotifySource:
        return SpotifySource(**merge_options(options(fake, fake_time), kwargs))

    return make


@pytest.fixture
def make_dest(fake: FakeSpotify, fake_time: FakeTime) -> Callable[..., SpotifyDestination]:
    def make(**kwargs: Any) -> SpotifyDestination:
        return SpotifyDestination(**merge_options(options(fake, fake_time), kwargs))

    return make

"""Fixtures of the ListenBrainz connector tests: a fake clock, the fake ListenBrainz + MusicBrainz, factories.

Each test gets a fresh fake with a fresh random token, so the per-credential state ``connectors.http``
keeps per process (the limiter, a 429 block) never leaks from one test into another.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from connectors.listenbrainz import ListenBrainzDestination, ListenBrainzSource
from tests.connectors.http_options import merge_options
from tests.connectors.listenbrainz.helpers import START, options
from tests.fakes.common import FakeTime
from tests.fakes.listenbrainz import FakeListenBrainz


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime(start=START)


@pytest.fixture
def fake(fake_time: FakeTime) -> FakeListenBrainz:
    return FakeListenBrainz(clock=fake_time.clock)


@pytest.fixture
def make_source(fake: FakeListenBrainz, fake_time: FakeTime) -> Callable[..., ListenBrainzSource]:
    def make(**kwargs: Any) -> ListenBrainzSource:
        return ListenBrainzSource(kwargs.pop("user", fake.user), **merge_options(options(fake, fake_time), kwargs))

    return make


@pytest.fixture
def make_dest(fake: FakeListenBrainz, fake_time: FakeTime) -> Callable[..., ListenBrainzDestination]:
    def make(**kwargs: Any) -> ListenBrainzDestination:
        opts = options(fake, fake_time)
        opts["token"] = fake.token
        return ListenBrainzDestination(kwargs.pop("user", fake.user), **merge_options(opts, kwargs))

    return make

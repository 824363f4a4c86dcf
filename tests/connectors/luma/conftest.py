"""Fixtures of the Luma connector tests: a fake clock, the fake Luma API, source and destination factories.

Each test gets a fresh fake with a fresh random key, so the per-credential state ``connectors.http``
keeps per process (the limiter, a 429 block) never leaks from one test into another.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from connectors.http import HttpSettings
from connectors.luma import LumaDestination, LumaSource
from tests.connectors.http_options import merge_options
from tests.connectors.luma.helpers import FAST, NO_JITTER, START, DestinationFactory, SourceFactory
from tests.fakes.common import FakeTime
from tests.fakes.luma import FakeLuma


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime(start=START)


@pytest.fixture
def fake(fake_time: FakeTime) -> FakeLuma:
    return FakeLuma(clock=fake_time.clock)


def client_options(fake: FakeLuma, fake_time: FakeTime) -> dict[str, Any]:
    return {
        "token": fake.key,
        "http": HttpSettings(
            transport=httpx.ASGITransport(app=fake.app), retry=NO_JITTER, sleep=fake_time.sleep, clock=fake_time.clock
        ),
        "rate": FAST,
    }


@pytest.fixture
def make_source(fake: FakeLuma, fake_time: FakeTime) -> SourceFactory:
    def make(**kwargs: Any) -> LumaSource:
        options = client_options(fake, fake_time)
        options["now"] = lambda: dt.datetime.fromtimestamp(fake_time.now, dt.UTC)
        merge_options(options, kwargs)
        return LumaSource(**options)

    return make


@pytest.fixture
def make_dest(fake: FakeLuma, fake_time: FakeTime) -> DestinationFactory:
    def make(**kwargs: Any) -> LumaDestination:
        options = client_options(fake, fake_time)
        merge_options(options, kwargs)
        return LumaDestination(**options)

    return make

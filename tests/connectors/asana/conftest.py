"""Fixtures of the Asana connector tests: the fake API in-process, a fake clock, factories."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from connectors.asana import AsanaDestination
from connectors.http import HttpSettings, Rate, RetryPolicy
from tests.connectors.http_options import merge_options
from tests.fakes import common
from tests.fakes.asana import FakeAsana, FakeProject, FakeUser

START = 1_700_000_040.0  # 2023-11-14T22:14:00Z, the start of a minute-long window

API = "https://app.asana.com/api/1.0"

# The toolkit's limiter paces in real (loop) time; the fake's per-minute budget is what is tested.
FAST = Rate(10_000, 1, burst=10_000)
NO_JITTER = RetryPolicy(jitter=0)

# A project as a GitHub -> Asana route would want it (README), plus the awkward kinds of field.
SCHEMA: dict[str, Any] = {
    "Source ID": "text",
    "Summary": "text",
    "Stars": "number",
    "Priority": {"type": "enum", "options": ["Low", "Medium", "High", "Urgent"], "disabled": ["Urgent"]},
    "Labels": {"type": "multi_enum", "options": ["bug", "docs", "infra"]},
    "Released": "date",
    "Last synced": "date",
    "Reviewers": "people",
    "Score": {"type": "number", "formula": True},
    "Audit": {"type": "text", "locked": True},
}


class FakeTime(common.FakeTime):
    """The shared fake clock, starting at the start of a minute-long window (Asana's rate windows)."""

    def __init__(self, start: float = START) -> None:
        """Start the clock at ``start`` (default: ``START``)."""
        super().__init__(start)


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def fake(time: FakeTime) -> FakeAsana:
    return FakeAsana(rate_per_minute=None, clock=time.clock)


@pytest.fixture
def project(fake: FakeAsana) -> FakeProject:
    return fake.add_project("Repositories", SCHEMA)


@pytest.fixture
def dana(fake: FakeAsana) -> FakeUser:
    return fake.add_user("Dana Dev", "dana@example.com")


@pytest.fixture
def synced_at() -> dt.datetime:
    return dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


def client_options(fake: FakeAsana, time: FakeTime) -> dict[str, Any]:
    return {
        "token": fake.token,
        "token_env": None,
        "project_env": None,
        "base_url": API,
        "http": HttpSettings(
            transport=httpx.ASGITransport(app=fake.app), retry=NO_JITTER, sleep=time.sleep, clock=time.clock
        ),
        "rate": FAST,
    }


@pytest.fixture
def make_dest(fake: FakeAsana, project: FakeProject, time: FakeTime) -> Callable[..., AsanaDestination]:
    def make(*args: Any, **kwargs: Any) -> AsanaDestination:
        options = client_options(fake, time)
        merge_options(options, kwargs)
        return AsanaDestination(*(args or (project.gid,)), **options)

    return make


@pytest.fixture
def dest(make_dest: Callable[..., AsanaDestination]) -> AsanaDestination:
    return make_dest()

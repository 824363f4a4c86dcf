"""Fixtures of the Jira connector tests: the fake API in-process on a fake clock, and factories.

Each test gets a fresh fake with a fresh random API token, so the per-credential state that
``connectors.http`` keeps per process (limiter, "blocked until") never leaks between tests.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from connectors.http import HttpSettings, Rate, RetryPolicy
from connectors.jira import JiraDestination, JiraSource
from tests.connectors.http_options import merge_options
from tests.fakes.common import FakeTime
from tests.fakes.jira import SITE, FakeJira

# The toolkit's own limiter paces in real (loop) time; the fake's burst limit is what a test exercises.
FAST = Rate(10_000, 1, burst=10_000)
NO_JITTER = RetryPolicy(jitter=0)


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime()


@pytest.fixture
def fake(clock: FakeTime) -> FakeJira:
    fake = FakeJira(clock=clock.clock, burst=None)
    fake.add_project("ENG", name="Engineering", components=["API", "UI"], versions=["1.0", "2.0"])
    fake.add_project("OPS", name="Operations")
    return fake


def client_options(fake: FakeJira, clock: FakeTime) -> dict[str, Any]:
    return {
        "base_url": SITE,
        "email": fake.email,
        "token": fake.token,
        "base_url_env": None,
        "email_env": None,
        "token_env": None,
        "http": HttpSettings(
            transport=httpx.ASGITransport(app=fake.app), retry=NO_JITTER, sleep=clock.sleep, clock=clock.clock
        ),
        "rate": FAST,
    }


@pytest.fixture
def make_source(fake: FakeJira, clock: FakeTime):
    def make(*args: Any, **kwargs: Any) -> JiraSource:
        options = client_options(fake, clock)
        merge_options(options, kwargs)
        if not args and "queries" not in kwargs and "projects" not in kwargs:
            options["projects"] = ["ENG"]
        return JiraSource(*args, **options)

    return make


@pytest.fixture
def make_dest(fake: FakeJira, clock: FakeTime):
    def make(*args: Any, **kwargs: Any) -> JiraDestination:
        options = client_options(fake, clock)
        options["project_env"] = None
        merge_options(options, kwargs)
        return JiraDestination(*(args or ("ENG",)), **options)

    return make

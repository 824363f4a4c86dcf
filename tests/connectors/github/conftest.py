"""Fixtures of the GitHub connector's tests: a fake clock, the fake GitHub API, and a source wired to both.

Each test gets a fresh fake with a fresh random token, so the per-credential state that
``connectors.http`` keeps per process (limiter, "blocked until") and the process-wide ETag cache
never leak from one test into another.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from connectors.github import GitHubSource
from connectors.http import HttpSettings, RetryPolicy
from tests.connectors.github.helpers import SourceFactory
from tests.fakes.common import FakeTime
from tests.fakes.github import FakeGitHub


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def fake(fake_time: FakeTime) -> FakeGitHub:
    return FakeGitHub(clock=fake_time.clock)


@pytest.fixture
def make_source(fake: FakeGitHub, fake_time: FakeTime) -> SourceFactory:
    """``make_source(orgs=[...], ...)``: a GitHubSource talking to the fake in-process, on the fake clock."""

    def make(**kwargs: Any) -> GitHubSource:
        kwargs.setdefault("token", fake.token)
        http = {k: kwargs.pop(k) for k in ("transport", "retry", "sleep", "clock") if k in kwargs}
        defaults = HttpSettings(
            transport=httpx.ASGITransport(app=fake.app),
            retry=RetryPolicy(jitter=0),
            sleep=fake_time.sleep,
            clock=fake_time.clock,
        )
        kwargs.setdefault("http", HttpSettings.of(defaults, **http))
        return GitHubSource(**kwargs)

    return make

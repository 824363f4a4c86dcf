"""Fixtures of the Contentful-over-MCP tests: one FakeContentful seen through the fake hosted MCP server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from connectors.contentful.mcp import ContentfulMcpDestination
from connectors.http import HttpSettings, Rate
from sync_assets.state import StateStore
from tests.fakes.contentful import FakeContentful, FakeEnvironment
from tests.fakes.contentful_mcp import IN_PROCESS_URL, FakeContentfulMcp

SPACE = "space1"
CONTENT_TYPE = "talk"
FAST = Rate(10_000, 1, burst=10_000)  # the toolkit's limiter would pace the tests in real time
FIELD_MAP = {"Name": "title", "Views": "views", "Summary": "summary", "Tags": "tags", "Date": "date"}

DestinationFactory = Callable[..., ContentfulMcpDestination]


@pytest.fixture
def contentful() -> FakeContentful:
    fake = FakeContentful(cda_rate=None, cma_rate=None)
    env = fake.add_space(SPACE)
    fake.add_content_type(
        env,
        CONTENT_TYPE,
        {
            "title": "Symbol",
            "views": "Integer",
            "summary": "Text",
            "tags": "Array:Symbol",
            "date": "Date",
            "notes": "Text",  # not managed: edited by humans
        },
        required=["title"],
    )
    return fake


@pytest.fixture
def env(contentful: FakeContentful) -> FakeEnvironment:
    return contentful.env(SPACE)


@pytest.fixture
def mcp(contentful: FakeContentful) -> FakeContentfulMcp:
    return FakeContentfulMcp(contentful)


@pytest.fixture
def make_dest(mcp: FakeContentfulMcp) -> DestinationFactory:
    def make(**overrides: Any) -> ContentfulMcpDestination:
        kwargs: dict[str, Any] = {
            "auth": mcp.token,
            "mcp_url": IN_PROCESS_URL,
            "http": HttpSettings(transport=httpx.ASGITransport(app=mcp.app)),
            "rate": FAST,
        }
        kwargs.update(overrides)
        return ContentfulMcpDestination(SPACE, CONTENT_TYPE, FIELD_MAP, **kwargs)

    return make


@pytest.fixture
def store(tmp_path: Any) -> Iterator[StateStore]:
    s = StateStore(f"sqlite:///{tmp_path}/s.db")
    yield s
    s.dispose()

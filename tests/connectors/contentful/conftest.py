"""Fixtures of the Contentful connector tests: the fake CDA/CMA in-process, a fake clock, factories."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from connectors.contentful import ContentfulDestination, ContentfulSource
from connectors.http import HttpSettings, Rate, RetryPolicy
from tests.connectors.http_options import merge_options
from tests.fakes.common import FakeTime
from tests.fakes.contentful import CDA_HOST, CMA_HOST, FakeContentful, FakeEnvironment

START = 1_700_000_000.0  # 2023-11-14T22:13:20Z
SPACE = "space1"

# The toolkit's own limiter would pace the tests in real time; the fake's limits are what is tested.
FAST = Rate(10_000, 1, burst=10_000)
NO_JITTER = RetryPolicy(jitter=0)

ARTICLE_FIELDS: dict[str, Any] = {
    "title": "Symbol",
    "slug": "Symbol",
    "body": "Text",
    "views": "Integer",
    "score": "Number",
    "featured": "Boolean",
    "published": "Date",
    "tags": "Array:Symbol",
    "author": "Link:Entry",
    "related": "Array:Link:Entry",
    "summary": "Text",
    "content": "RichText",
    "place": "Location",
    "key": "Symbol",
}


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def fake(time: FakeTime) -> FakeContentful:
    return FakeContentful(cda_rate=None, cma_rate=None, clock=time.clock)


@pytest.fixture
def env(fake: FakeContentful) -> FakeEnvironment:
    environment = fake.add_space(SPACE, locales=("en-US", "de-DE"))
    fake.add_content_type(
        environment,
        "article",
        ARTICLE_FIELDS,
        display_field="title",
        required=("title",),
        localized=("title", "summary"),
    )
    fake.add_content_type(environment, "author", {"name": "Symbol"}, display_field="name")
    return environment


def source_options(fake: FakeContentful, time: FakeTime) -> dict[str, Any]:
    return {
        "delivery_token": fake.delivery_token,
        "delivery_token_env": None,
        "cma_token": fake.cma_token,
        "cma_token_env": None,
        "cda_base_url": f"https://{CDA_HOST}",
        "cma_base_url": f"https://{CMA_HOST}",
        "http": HttpSettings(
            transport=httpx.ASGITransport(app=fake.app), retry=NO_JITTER, sleep=time.sleep, clock=time.clock
        ),
        "rate": FAST,
    }


@pytest.fixture
def make_source(fake: FakeContentful, env: FakeEnvironment, time: FakeTime) -> Callable[..., ContentfulSource]:
    def make(**kwargs: Any) -> ContentfulSource:
        options = source_options(fake, time)
        merge_options(options, kwargs)
        return ContentfulSource(SPACE, **options)

    return make


ARTICLE_MAP = {
    "Title": "title",
    "Slug": "slug",
    "Views": "views",
    "Score": "score",
    "Featured": "featured",
    "Published": "published",
    "Tags": "tags",
    "Author": "author",
    "Summary": "summary",
}


@pytest.fixture
def make_dest(fake: FakeContentful, env: FakeEnvironment, time: FakeTime) -> Callable[..., ContentfulDestination]:
    def make(**kwargs: Any) -> ContentfulDestination:
        options: dict[str, Any] = {
            "cma_token": fake.cma_token,
            "cma_token_env": None,
            "base_url": f"https://{CMA_HOST}",
            "http": HttpSettings(
                transport=httpx.ASGITransport(app=fake.app), retry=NO_JITTER, sleep=time.sleep, clock=time.clock
            ),
            "rate": FAST,
            "key_field": "key",
        }
        merge_options(options, kwargs)
        content_type = options.pop("content_type", "article")
        field_map = options.pop("field_map", ARTICLE_MAP)
        return ContentfulDestination(SPACE, content_type, field_map, **options)

    return make


@pytest.fixture
def synced_at() -> dt.datetime:
    return dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)

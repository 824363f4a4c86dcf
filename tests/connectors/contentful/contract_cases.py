"""Contentful's cases for the shared contract suite (``tests/contract``), registered in its ``cases.py``."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from connectors.contentful import ContentfulDestination, ContentfulSource
from connectors.http import HttpSettings, Rate, RetryPolicy
from tests.contract.cases import DestinationHarness, SourceHarness, sample_records
from tests.fakes.contentful import CDA_HOST, CMA_HOST, FakeContentful
from tests.fakes.github import FakeClock

__all__ = ["CONTENTFUL_ITEM_FIELDS", "contentful_destination", "contentful_source"]

FAST = Rate(10_000, 1, burst=10_000)
NO_JITTER = RetryPolicy(jitter=0)
SPACE = "contract"

CONTENTFUL_ITEM_FIELDS: dict[str, Any] = {
    "name": "Symbol",
    "count": "Integer",
    "score": "Number",
    "done": "Boolean",
    "tags": "Array:Symbol",
    "due": "Date",
    "updated": "Date",
    "notes": "Text",
    "key": "Symbol",
}
ITEM_MAP = {
    "Name": "name",
    "Count": "count",
    "Score": "score",
    "Done": "done",
    "Tags": "tags",
    "Due": "due",
    "Updated": "updated",
    "Notes": "notes",
}


def _served(fake: FakeContentful) -> Any:
    return fake.served


@asynccontextmanager
async def contentful_source(tmp_path: Path) -> AsyncIterator[SourceHarness]:
    """ContentfulSource (CDA, Sync API) on 5 published entries, 2 items a sync page (nextPageUrl)."""
    clock = FakeClock()
    fake = FakeContentful(cda_rate=None, cma_rate=None, clock=clock.clock)
    env = fake.add_space(SPACE)
    fake.add_content_type(env, "item", CONTENTFUL_ITEM_FIELDS, display_field="name")
    for i in range(5):
        fake.add_entry(
            env,
            "item",
            {
                "name": f"Item {i}",
                "count": i,
                "score": i + 0.25,
                "done": i % 2 == 0,
                "tags": ["a", "b"][: i % 3],
                "due": dt.date(2024, 5, i + 1).isoformat(),
                "updated": f"2024-05-01T10:0{i}:00+02:00",
            },
        )
    fake.add_entry(env, "item", {"name": "draft"}, publish=False)

    def make() -> ContentfulSource:
        return ContentfulSource(
            SPACE,
            content_types=["item"],
            delivery_token=fake.delivery_token,
            delivery_token_env=None,
            cma_token_env=None,
            cda_base_url=f"https://{CDA_HOST}",
            page_size=2,
            http=HttpSettings(
                transport=httpx.ASGITransport(app=fake.app), retry=NO_JITTER, sleep=clock.sleep, clock=clock.clock
            ),
            rate=FAST,
        )

    source = make()
    yield SourceHarness(
        source,
        source.specs()[0],
        5,
        make,
        missing_item="no-such-entry",
        inject_failures=lambda n, status: fake.fail_next(n, status, api="cda"),
        revoke=lambda: fake.revoke_token(fake.delivery_token),
        forbid=lambda: fake.fail_next(1, 403, api="cda"),
        rate_limit=lambda retry_after: fake.fail_next(1, 429, retry_after=int(retry_after), api="cda"),
        served=_served(fake),
        sleeps=clock.sleeps,
    )


@asynccontextmanager
async def contentful_destination(tmp_path: Path) -> AsyncIterator[DestinationHarness]:
    """ContentfulDestination on a content type with a field per sample property and a ``key`` field;
    rows read back with ContentfulSource in CMA mode (drafts), with a second token."""
    clock = FakeClock()
    fake = FakeContentful(cda_rate=None, cma_rate=None, clock=clock.clock)
    env = fake.add_space(SPACE)
    fake.add_content_type(env, "item", CONTENTFUL_ITEM_FIELDS, display_field="name")
    transport = httpx.ASGITransport(app=fake.app)
    dest = ContentfulDestination(
        SPACE,
        "item",
        ITEM_MAP,
        key_field="key",
        cma_token=fake.cma_token,
        cma_token_env=None,
        base_url=f"https://{CMA_HOST}",
        http=HttpSettings(transport=transport, retry=NO_JITTER, sleep=clock.sleep, clock=clock.clock),
        rate=FAST,
    )
    reader_token = fake.add_token("cma")  # revoking the destination's token must not blind the test

    async def rows() -> dict[str, dict[str, Any]]:
        reader = ContentfulSource(
            SPACE,
            api="cma",
            content_types=["item"],
            cma_token=reader_token,
            cma_token_env=None,
            delivery_token_env=None,
            cma_base_url=f"https://{CMA_HOST}",
            sys_properties={},
            http=HttpSettings(transport=transport),
            rate=FAST,
        )
        out: dict[str, dict[str, Any]] = {}
        for record in await reader.fetch(reader.specs()[0]):
            key = str(record.properties["key"])
            if key in out:
                raise AssertionError(f"key {key!r} is stored in more than one entry")
            out[key] = {prop: record.properties[field] for prop, field in ITEM_MAP.items()}
        return out

    yield DestinationHarness(
        dest,
        sample_records(),
        rows,
        # None removes the value: every field reads back as absent (None).
        inject_failures=lambda n, status: fake.fail_next(n, status, api="cma", method="PUT"),
        revoke=lambda: fake.revoke_token(fake.cma_token),
        forbid=lambda: fake.fail_next(1, 403, api="cma", method="PUT"),
        rate_limit=lambda retry_after: fake.fail_next(1, 429, retry_after=int(retry_after), api="cma", method="PUT"),
        served=_served(fake),
        sleeps=clock.sleeps,
    )

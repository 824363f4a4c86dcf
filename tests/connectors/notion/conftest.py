"""Fixtures of the Notion connector tests: the fake API in-process, a fake clock, factories."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from connectors.http import HttpSettings, Rate
from connectors.notion import NotionDestination, NotionSource
from tests.fakes.common import FakeTime
from tests.fakes.notion import FakeDatabase, FakeNotion

START = 1_700_000_000.0  # 2023-11-14T22:13:20Z

# The toolkit's own limiter would pace the tests in real time; the fake's bucket is what is tested.
FAST = Rate(10_000, 1, burst=10_000)

# The database the README tells GitHub -> Notion users to create, plus a few more types.
GITHUB_SCHEMA: dict[str, Any] = {
    "Name": "title",
    "Key": "rich_text",
    "URL": "url",
    "Description": "rich_text",
    "Stars": "number",
    "Forks": "number",
    "Open issues": "number",
    "Language": {"type": "select", "options": ["Python", "Go"]},
    "Languages": {"type": "multi_select", "options": ["Python", "Go", "Rust"]},
    "Topics": {"type": "multi_select", "options": ["sync", "notion"]},
    "Archived": "checkbox",
    "Fork": "checkbox",
    "License": {"type": "select", "options": ["MIT", "Apache-2.0"]},
    "Contributors": {"type": "multi_select", "options": []},
    "Pushed at": "date",
    "Created": "date",
    "Last synced": "date",
    "Email": "email",
    "Phone": "phone_number",
    "Created time": "created_time",
    "Edited": "last_edited_time",
    "Status": "status",
}


@pytest.fixture
def github_schema() -> dict[str, Any]:
    return dict(GITHUB_SCHEMA)


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def fake(time: FakeTime) -> FakeNotion:
    return FakeNotion(rate=None, clock=time.clock)


@pytest.fixture
def db(fake: FakeNotion) -> FakeDatabase:
    return fake.add_database(GITHUB_SCHEMA, title="Repositories")


@pytest.fixture
def ds_id(db: FakeDatabase) -> str:
    return db.data_source_ids[0]


@pytest.fixture
def synced_at() -> dt.datetime:
    return dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


def client_options(fake: FakeNotion, time: FakeTime) -> dict[str, Any]:
    return {
        "token": fake.token,
        "token_env": None,
        "base_url": "https://api.notion.com",
        "http": HttpSettings(transport=httpx.ASGITransport(app=fake.app), sleep=time.sleep, clock=time.clock),
        "rate": FAST,
    }


@pytest.fixture
def make_dest(fake: FakeNotion, db: FakeDatabase, time: FakeTime) -> Callable[..., NotionDestination]:
    def make(*args: Any, **kwargs: Any) -> NotionDestination:
        options = client_options(fake, time)
        options["database_id_env"] = None
        options.update(kwargs)
        if not args and "data_source_id" not in kwargs and "parent_page_id" not in kwargs:
            args = (db.id,)
        return NotionDestination(*args, **options)

    return make


@pytest.fixture
def dest(make_dest: Callable[..., NotionDestination]) -> NotionDestination:
    return make_dest()


@pytest.fixture
def make_source(fake: FakeNotion, ds_id: str, time: FakeTime) -> Callable[..., NotionSource]:
    def make(*args: Any, **kwargs: Any) -> NotionSource:
        options = client_options(fake, time)
        options["now"] = time.utcnow
        options.update(kwargs)
        return NotionSource(*(args or (ds_id,)), **options)

    return make

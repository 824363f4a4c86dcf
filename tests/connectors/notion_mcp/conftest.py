"""Fixtures of the Notion-over-MCP tests: one FakeNotion seen through REST and through the fake MCP server."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Generator
from typing import Any

import httpx
import pytest

from connectors.http import HttpSettings, Rate
from connectors.notion import NotionDestination, NotionSource
from connectors.notion.mcp import NotionMcpDestination, NotionMcpSource
from tests.fakes.common import FakeTime
from tests.fakes.notion import FakeDatabase, FakeNotion
from tests.fakes.notion_mcp import IN_PROCESS_URL, FakeNotionMcp

START = 1_700_000_000.0  # 2023-11-14T22:13:20Z

# The toolkit's limiter would pace the tests in real time; the fakes' limits are what is tested.
FAST = Rate(10_000, 1, burst=10_000)

# Every writable type, a key, a synced stamp, and computed columns.
SCHEMA: dict[str, Any] = {
    "Name": "title",
    "Key": "rich_text",
    "URL": "url",
    "Description": "rich_text",
    "Stars": "number",
    "Ratio": "number",
    "Language": {"type": "select", "options": ["Python", "Go"]},
    "Languages": {"type": "multi_select", "options": ["Python", "Go", "Rust"]},
    "Status": "status",
    "Archived": "checkbox",
    "Pushed at": "date",
    "Created": "date",
    "Last synced": "date",
    "Email": "email",
    "Phone": "phone_number",
    "Created time": "created_time",
    "Edited": "last_edited_time",
}


class StaticBearer(httpx.Auth):
    """The simplest OAuth stand-in: one bearer token, no refresh."""

    def __init__(self, token: str) -> None:
        self.token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


class RefreshingBearer(httpx.Auth):
    """Like the OAuth provider: bearer from ``current()``; on a 401, ``refresh()`` and retry once."""

    def __init__(self, current: Callable[[], str], refresh: Callable[[], str]) -> None:
        self.current = current
        self.refresh = refresh
        self.refreshes = 0

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.current()}"
        response = yield request
        if response.status_code == 401:
            self.refreshes += 1
            request.headers["Authorization"] = f"Bearer {self.refresh()}"
            yield request


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def notion(time: FakeTime) -> FakeNotion:
    return FakeNotion(rate=None, clock=time.clock)


@pytest.fixture
def db(notion: FakeNotion) -> FakeDatabase:
    return notion.add_database(SCHEMA, title="Repositories")


@pytest.fixture
def ds_id(db: FakeDatabase) -> str:
    return db.data_source_ids[0]


@pytest.fixture
def mcp_fake(notion: FakeNotion, time: FakeTime) -> FakeNotionMcp:
    return FakeNotionMcp(notion, sleep=time.sleep)


@pytest.fixture
def synced_at() -> dt.datetime:
    return dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


def mcp_options(fake: FakeNotionMcp, time: FakeTime, token: str | None = None) -> dict[str, Any]:
    return {
        "auth": StaticBearer(token or fake.notion.token),
        "mcp_url": IN_PROCESS_URL,
        "http": HttpSettings(transport=httpx.ASGITransport(app=fake.app), sleep=time.sleep, clock=time.clock),
        "rate": FAST,
    }


@pytest.fixture
def make_dest(mcp_fake: FakeNotionMcp, db: FakeDatabase, time: FakeTime) -> Callable[..., NotionMcpDestination]:
    def make(*args: Any, **kwargs: Any) -> NotionMcpDestination:
        options = mcp_options(mcp_fake, time)
        options.update(kwargs)
        if not args and "data_source_id" not in kwargs and "parent_page_id" not in kwargs:
            args = (db.id,)
        return NotionMcpDestination(*args, **options)

    return make


@pytest.fixture
def make_rest_dest(notion: FakeNotion, db: FakeDatabase, time: FakeTime) -> Callable[..., NotionDestination]:
    def make(*args: Any, **kwargs: Any) -> NotionDestination:
        options: dict[str, Any] = {
            "token": notion.token,
            "token_env": None,
            "database_id_env": None,
            "http": HttpSettings(transport=httpx.ASGITransport(app=notion.app), sleep=time.sleep, clock=time.clock),
            "rate": FAST,
        }
        options.update(kwargs)
        return NotionDestination(*(args or (db.id,)), **options)

    return make


@pytest.fixture
def make_source(mcp_fake: FakeNotionMcp, ds_id: str, time: FakeTime) -> Callable[..., NotionMcpSource]:
    def make(*args: Any, **kwargs: Any) -> NotionMcpSource:
        options = mcp_options(mcp_fake, time)
        options["now"] = time.utcnow
        options.update(kwargs)
        return NotionMcpSource(*(args or (ds_id,)), **options)

    return make


@pytest.fixture
def make_rest_source(notion: FakeNotion, ds_id: str, time: FakeTime) -> Callable[..., NotionSource]:
    def make(*args: Any, **kwargs: Any) -> NotionSource:
        options: dict[str, Any] = {
            "token": notion.token,
            "token_env": None,
            "http": HttpSettings(transport=httpx.ASGITransport(app=notion.app), sleep=time.sleep, clock=time.clock),
            "rate": FAST,
            "now": time.utcnow,
        }
        options.update(kwargs)
        return NotionSource(*(args or (ds_id,)), **options)

    return make

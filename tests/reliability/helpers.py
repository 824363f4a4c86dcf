"""Shared wiring of the reliability matrices: a 60-record MemorySource into the fake Notion, in-process,
on a fake clock (nothing sleeps for real)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from connectors.core import Record
from connectors.http import HttpSettings, Rate, RetryPolicy
from connectors.memory import MemorySource
from connectors.notion import NotionDestination
from connectors.notion.settings import NOTION_RETRY_STATUSES
from sync_assets.routes import Route
from sync_assets.state import StateStore
from tests.fakes.github import FakeClock
from tests.fakes.notion import FakeDatabase, FakeNotion

N_RECORDS = 60
PAGE_SIZE = 20
PARTITION = "items"
FAST = Rate(10_000, 1, burst=10_000)
NO_JITTER = RetryPolicy(jitter=0, retry_statuses=NOTION_RETRY_STATUSES)  # Notion's default, unjittered

SCHEMA: dict[str, Any] = {
    "Name": "title",
    "Key": "rich_text",
    "Score": "number",
    "Tags": {"type": "multi_select", "options": ["a", "b"]},
    "Due": "date",
    "Last synced": "date",
}

Hook = Callable[[httpx.Request], httpx.Response | None]


class HookTransport(httpx.AsyncBaseTransport):
    """Wraps the fake's ASGI transport; ``hook(request)`` may raise, answer itself, or pass (None)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.hook: Hook | None = None
        self.seen: Counter[str] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen[f"{request.method} {request.url.path}"] += 1
        if self.hook is not None:
            answer = self.hook(request)
            if answer is not None:
                return answer
        return await self.inner.handle_async_request(request)


def records(version: str = "v1") -> list[Record]:
    return [Record(f"k{i:03d}", {"Name": f"Item {i} {version}", "Score": i}) for i in range(N_RECORDS)]


@dataclass
class NotionEnv:
    fake: FakeNotion
    db: FakeDatabase
    clock: FakeClock
    transport: HookTransport
    dest: NotionDestination
    source: MemorySource
    route: Route
    store: StateStore
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ds_id(self) -> str:
        return self.db.data_source_ids[0]

    def rows(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for page in self.fake.pages(self.ds_id, include_trash=False):
            values = self.fake.values(page.id)
            out.setdefault(values["Key"], []).append(values)
        return out

    def assert_complete(self, version: str = "v1") -> None:
        rows = self.rows()
        dupes = {k: len(v) for k, v in rows.items() if len(v) > 1}
        assert not dupes, f"duplicate pages: {dupes}"
        assert len(rows) == N_RECORDS
        for record in self.source.records[PARTITION]:
            (row,) = rows[record.primary_key]
            assert row["Name"] == record.properties["Name"]
            assert row["Score"] == record.properties["Score"]


def make_env(tmp_path: Path, store: StateStore | None = None, **dest_kwargs: Any) -> NotionEnv:
    clock = FakeClock()
    fake = FakeNotion(rate=None, clock=clock.clock)
    db = fake.add_database(SCHEMA, title="Items")
    transport = HookTransport(httpx.ASGITransport(app=fake.app))
    options: dict[str, Any] = {
        "token": fake.token,
        "token_env": None,
        "database_id_env": None,
        "base_url": "https://api.notion.com",
        "http": HttpSettings(transport=transport, retry=NO_JITTER, sleep=clock.sleep, clock=clock.clock),
        "rate": FAST,
    }
    options.update(dest_kwargs)
    dest = NotionDestination(db.id, key_property="Key", title_property="Name", **options)
    source = MemorySource({PARTITION: records()}, page_size=PAGE_SIZE)
    route = Route(source, dest, name="fault_matrix")
    store = store or StateStore(f"sqlite:///{tmp_path}/s.db")
    return NotionEnv(fake, db, clock, transport, dest, source, route, store)

"""``Route(on_missing="mark")``: a row whose key left the source is marked, and un-marked when it returns.

Only after a complete full pass; never on a targeted, plan, failed or resumed one; nothing deleted.
Destinations: SQLite (a bool column), Notion (the trash) on its fake; sources that report deletions
(``DeletionReportingSource``) feed the same path.
"""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from connectors.core import ConfigError, Record, TransientError
from connectors.files import SQLiteDestination
from connectors.http import HttpSettings, Rate
from connectors.memory import MemoryDestination, MemorySource
from connectors.notion import NotionDestination, NotionSource
from sync_assets.engine import PassOptions, PassResult, run_pass
from sync_assets.routes import Route
from tests.fakes.common import FakeTime
from tests.fakes.notion import FakeNotion


def recs(*keys: str) -> list[Record]:
    return [Record(k, {"Name": f"item {k}"}) for k in keys]


async def sync(route: Route, store, **opts) -> PassResult:
    return await run_pass(route, "all", store, PassOptions(**opts))


@pytest.fixture
def sqlite_dest(tmp_path) -> SQLiteDestination:
    return SQLiteDestination(tmp_path / "out.sqlite3", "items")


def marks(dest: SQLiteDestination) -> dict[str, object]:
    return {r["primary_key"]: r.get("Missing at source") for r in dest.read_rows()}


async def test_a_key_gone_from_a_full_pass_is_marked_once_and_unmarked_when_it_returns(sqlite_dest, store):
    source = MemorySource({"all": recs("a", "b", "c")})
    route = Route(source, sqlite_dest, on_missing="mark")
    await sync(route, store)
    source.records["all"] = recs("a", "c")
    gone = await sync(route, store)
    assert gone.stats.missing_marked == 1
    assert marks(sqlite_dest) == {"a": None, "b": True, "c": None}
    again = await sync(route, store)
    assert again.stats.missing_marked == 0  # marked once
    source.records["all"] = recs("a", "b", "c")
    back = await sync(route, store)
    assert (back.stats.missing_cleared, back.stats.created) == (1, 0)
    assert marks(sqlite_dest) == {"a": None, "b": False, "c": None}
    assert len(sqlite_dest.read_rows()) == 3  # never deleted, never re-created


async def test_targeted_plan_and_failed_passes_mark_nothing(sqlite_dest, store):
    source = MemorySource({"all": recs("a", "b", "c")}, page_size=1)
    route = Route(source, sqlite_dest, on_missing="mark")
    await sync(route, store)
    source.records["all"] = recs("a", "c")
    assert (await sync(route, store, only_items=("a",))).stats.missing_marked == 0
    assert (await sync(route, store, plan=True)).stats.missing_marked == 0
    source.fail_at_page = {1: TransientError("503 from the source")}
    with pytest.raises(TransientError):
        await sync(route, store)
    resumed = await sync(route, store)  # goes on after the failed page: it did not see page 1
    assert resumed.stats.resumed_from is not None and resumed.stats.missing_marked == 0
    assert set(marks(sqlite_dest).values()) == {None}
    assert (await sync(route, store)).stats.missing_marked == 1  # the next complete pass does


class IncrementalMemorySource(MemorySource):
    """Returns only what it is given (as an incremental source returns only what changed)."""

    incremental = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.deleted: list[str] = []

    def deleted_keys(self, spec_key: str) -> list[str]:
        return list(self.deleted)


async def test_an_incremental_source_marks_what_it_reports_deleted_not_what_it_left_out(sqlite_dest, store):
    source = IncrementalMemorySource({"all": recs("a", "b", "c")})
    route = Route(source, sqlite_dest, on_missing="mark")
    await sync(route, store)
    source.records["all"] = recs("a")  # only "a" changed: b and c are not gone
    assert (await sync(route, store)).stats.missing_marked == 0
    source.records["all"], source.deleted = [], ["c"]
    assert (await sync(route, store)).stats.missing_marked == 1
    assert marks(sqlite_dest)["c"] is True and marks(sqlite_dest)["b"] is None


async def test_a_destination_that_cannot_mark_is_a_config_error(store):
    route = Route(MemorySource({"all": recs("a")}), MemoryDestination(), on_missing="mark")
    with pytest.raises(ConfigError, match="cannot mark rows"):
        await sync(route, store)
    with pytest.raises(ConfigError, match="on_missing"):
        Route(MemorySource({"all": recs("a")}), MemoryDestination(), on_missing="delete")


async def test_notion_rows_go_to_the_trash_and_come_back(store):
    time = FakeTime()
    fake = FakeNotion(rate=None, clock=time.clock)
    db = fake.add_database({"Name": "title", "Key": "rich_text", "Last synced": "date"}, title="Items")
    dest = NotionDestination(
        db.id,
        token=fake.token,
        token_env=None,
        database_id_env=None,
        base_url="https://api.notion.com",
        http=HttpSettings(transport=httpx.ASGITransport(app=fake.app), sleep=time.sleep, clock=time.clock),
        rate=Rate(10_000, 1, burst=10_000),
    )
    source = MemorySource({"all": recs("a", "b")})
    route = Route(source, dest, on_missing="mark")
    await sync(route, store)
    [page_b] = [p for p in fake.pages(db.data_source_ids[0]) if fake.values(p.id)["Key"] == "b"]
    source.records["all"] = recs("a")
    assert (await sync(route, store)).stats.missing_marked == 1
    assert fake.page(page_b.id).in_trash
    source.records["all"] = [Record("b", {"Name": "item b, edited"})]
    source.records["all"] += recs("a")
    back = await sync(route, store)
    assert back.stats.missing_cleared == 1 and back.stats.updated == 1  # restored, then written
    assert not fake.page(page_b.id).in_trash and fake.values(page_b.id)["Name"] == "item b, edited"
    assert len(fake.pages(db.data_source_ids[0])) == 2


async def test_asana_tasks_are_completed_and_reopened(store):
    from connectors.asana import AsanaDestination
    from tests.connectors.asana.conftest import SCHEMA, client_options
    from tests.connectors.asana.conftest import FakeTime as AsanaTime
    from tests.fakes.asana import FakeAsana

    time = AsanaTime()
    fake = FakeAsana(rate_per_minute=None, clock=time.clock)
    project = fake.add_project("Items", SCHEMA)
    source = MemorySource({"all": recs("a", "b")})
    route = Route(source, AsanaDestination(project.gid, **client_options(fake, time)), on_missing="mark")
    await sync(route, store)
    [task_b] = [t for t in fake.tasks(project.gid) if t.name == "item b"]
    source.records["all"] = recs("a")
    assert (await sync(route, store)).stats.missing_marked == 1
    assert fake.task(task_b.gid).completed
    assert not next(t for t in fake.tasks(project.gid) if t.name == "item a").completed
    source.records["all"] = recs("a", "b")
    assert (await sync(route, store)).stats.missing_cleared == 1
    assert not fake.task(task_b.gid).completed and len(fake.tasks(project.gid)) == 2


async def test_a_notion_page_trashed_is_marked_by_the_next_full_scan_not_by_an_incremental_pass(sqlite_dest, store):
    time = FakeTime()
    fake = FakeNotion(rate=None, clock=time.clock)
    db = fake.add_database({"Name": "title"}, title="Items")
    ds = db.data_source_ids[0]
    pages = [fake.add_page(ds, {"Name": f"page {i}"}) for i in range(3)]
    source = NotionSource(
        ds,
        token=fake.token,
        token_env=None,
        base_url="https://api.notion.com",
        http=HttpSettings(transport=httpx.ASGITransport(app=fake.app), sleep=time.sleep, clock=time.clock),
        rate=Rate(10_000, 1, burst=10_000),
        now=time.utcnow,
        full_scan_every=dt.timedelta(hours=6),
    )
    route = Route(source, sqlite_dest, on_missing="mark")
    [partition] = route.specs_by_partition()
    assert (await run_pass(route, partition, store)).stats.created == 3
    time.advance(120)
    fake.trash_page(pages[1].id)
    time.advance(120)
    incremental = await run_pass(route, partition, store)  # only edits since the watermark
    assert incremental.stats.missing_marked == 0
    time.advance(7 * 3600)  # the next pass is a full scan: the trashed page is not in it
    full = await run_pass(route, partition, store)
    assert full.stats.missing_marked == 1
    assert marks(sqlite_dest) == {pages[0].id: None, pages[1].id: True, pages[2].id: None}

"""Two-way sync Notion ⇄ Jira on the stateful fakes: NotionSource + NotionDestination on one side,
JiraSource + JiraDestination on the other, paired by ``TwoWayRoute`` and run by the engine.

Both fakes share one fake clock, so Notion's ``last_edited_time`` and Jira's ``updated`` compare (a
test advances it between edits: Notion reports edit times to the minute).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from connectors.http import HttpSettings, Rate, RetryPolicy
from connectors.jira import JiraDestination, JiraSource
from connectors.notion import NotionDestination, NotionSource
from sync_assets.engine import PassOptions, PassResult, run_pass
from sync_assets.routes import Route, TwoWayRoute
from tests.fakes.common import FakeTime
from tests.fakes.jira import SITE, FakeJira
from tests.fakes.notion import FakeNotion

FAST = Rate(10_000, 1, burst=10_000)
PRIORITIES = ["Highest", "High", "Medium", "Low", "Lowest"]
SCHEMA: dict[str, Any] = {
    "Name": "title",
    "Key": "rich_text",
    "Last synced": "date",
    "Priority": {"type": "select", "options": PRIORITIES},
    "Labels": {"type": "multi_select", "options": ["api", "ui", "bug"]},
    "Due": "date",
    "Edited": "last_edited_time",
}
FIELDS = {"Name": "Summary", "Priority": "Priority", "Labels": "Labels", "Due": "Due"}


class World:
    """Both fakes, their connectors and the pair's two routes."""

    def __init__(self, **pair_options: Any) -> None:
        self.time = FakeTime()
        self.notion = FakeNotion(rate=None, clock=self.time.clock)
        self.db = self.notion.add_database(SCHEMA, title="Tasks")
        self.ds = self.db.data_source_ids[0]
        self.jira = FakeJira(clock=self.time.clock, burst=None)
        self.jira.add_project("ENG", name="Engineering")
        notion_http = {
            "token": self.notion.token,
            "token_env": None,
            "base_url": "https://api.notion.com",
            "http": HttpSettings(
                transport=httpx.ASGITransport(app=self.notion.app), sleep=self.time.sleep, clock=self.time.clock
            ),
            "rate": FAST,
        }
        jira_http = {
            "base_url": SITE,
            "email": self.jira.email,
            "token": self.jira.token,
            "base_url_env": None,
            "email_env": None,
            "token_env": None,
            "http": HttpSettings(
                transport=httpx.ASGITransport(app=self.jira.app),
                retry=RetryPolicy(jitter=0),
                sleep=self.time.sleep,
                clock=self.time.clock,
            ),
            "rate": FAST,
        }
        source = NotionSource(self.ds, now=self.time.utcnow, **notion_http)
        dest = NotionDestination(self.db.id, database_id_env=None, **notion_http)
        pair_options.setdefault("fields", FIELDS)
        pair_options.setdefault("modified", ("Edited", "Updated"))
        self.pair = TwoWayRoute(
            a=(source, dest),
            b=(JiraSource(projects=["ENG"], **jira_http), JiraDestination("ENG", project_env=None, **jira_http)),
            **pair_options,
        )
        self.to_jira, self.to_notion = self.pair.routes()

    def tick(self, minutes: float = 1) -> None:
        self.time.advance(60 * minutes)

    def notion_rows(self) -> list[tuple]:
        rows = []
        for page in self.notion.pages(self.ds, include_trash=False):
            v = self.notion.values(page.id)
            rows.append((v["Name"], v["Priority"], sorted(v["Labels"] or []), v["Due"]))
        return sorted(rows)

    def jira_rows(self) -> list[tuple]:
        rows = []
        for issue in self.jira.issues("ENG"):
            f = issue.fields
            priority = (f.get("priority") or {}).get("name")
            rows.append((f["summary"], priority, sorted(f.get("labels") or []), f.get("duedate")))
        return sorted(rows)


async def run(route: Route, store) -> PassResult:
    [partition] = route.specs_by_partition()
    return await run_pass(route, partition, store, PassOptions())


async def both(world: World, store) -> tuple[PassResult, PassResult]:
    first = await run(world.to_jira, store)
    world.tick()
    second = await run(world.to_notion, store)
    world.tick()
    return first, second


def same(world: World) -> bool:
    return [(n, p, lab, d and str(d)) for n, p, lab, d in world.notion_rows()] == world.jira_rows()


@pytest.fixture
def world() -> World:
    return World()


async def test_notion_and_jira_rows_each_exist_once_on_both_sides_after_any_number_of_passes(world, store):
    for i in range(3):
        world.notion.add_page(
            world.ds, {"Name": f"page {i}", "Priority": "High", "Labels": ["api"], "Due": "2024-06-01"}
        )
    for i in range(2):
        world.jira.add_issue("ENG", f"issue {i}", priority="Low", labels=["bug"])
    world.tick()
    first, second = await both(world, store)
    assert (first.stats.created, second.stats.created) == (3, 2)
    assert len(world.jira.issues("ENG")) == 5 and len(world.notion.pages(world.ds)) == 5
    assert same(world), (world.notion_rows(), world.jira_rows())
    jira_writes, notion_writes = world.jira.counters.writes, len(world.notion.requests("PATCH"))
    for _ in range(3):
        results = await both(world, store)
        assert [r.stats.created + r.stats.updated for r in results] == [0, 0]
    # Not one more write on either side: our own writes, read back, are no change ("Last synced" included).
    assert world.jira.counters.writes == jira_writes
    assert len(world.notion.requests("PATCH")) == notion_writes
    assert len(world.jira.issues("ENG")) == 5 and len(world.notion.pages(world.ds)) == 5


async def test_edits_on_each_side_cross_once_and_do_not_bounce(world, store):
    page = world.notion.add_page(world.ds, {"Name": "write docs", "Priority": "Medium"})
    issue = world.jira.add_issue("ENG", "fix bug", priority="High")
    world.tick()
    await both(world, store)
    world.notion.edit_page(page.id, {"Priority": "Highest"})
    world.jira.set_fields(issue.id, {"labels": ["ui"]})
    world.tick()
    there, back = await both(world, store)
    assert (there.stats.updated, back.stats.updated) == (1, 1)
    assert (there.stats.conflicts, back.stats.conflicts) == (0, 0)
    assert same(world)
    assert ("write docs", "Highest", [], None) in world.jira_rows()
    results = await both(world, store)
    assert [r.stats.updated for r in results] == [0, 0]


async def test_a_conflict_goes_to_the_later_edit_and_is_reported(world, store):
    page = world.notion.add_page(world.ds, {"Name": "plan", "Priority": "Medium"})
    world.tick()
    await both(world, store)
    [issue] = world.jira.issues("ENG")
    world.notion.edit_page(page.id, {"Priority": "Low"})
    world.tick(5)
    world.jira.set_fields(issue.id, {"priority": {"name": "Highest", "id": "1"}})  # edited later: wins
    world.tick()
    there, back = await both(world, store)
    assert there.conflicts == [(page.id, "Priority", "b")]
    assert back.stats.conflicts == 0 and back.stats.updated == 1
    assert world.notion.values(page.id)["Priority"] == "Highest"
    assert same(world)


async def test_deleting_on_one_side_deletes_nothing_on_the_other(world, store):
    page = world.notion.add_page(world.ds, {"Name": "to trash"})
    world.tick()
    await both(world, store)
    world.notion.trash_page(page.id)
    world.tick()
    results = await both(world, store)
    assert [r.stats.created for r in results] == [0, 0]
    assert len(world.jira.issues("ENG")) == 1


async def test_a_listing_of_either_side_changes_nothing(world, store, monkeypatch):
    monkeypatch.setattr("sync_assets._reconcile.RECONCILE_MIN_GAP", dt.timedelta(0))
    page = world.notion.add_page(world.ds, {"Name": "from notion", "Priority": "High"})
    issue = world.jira.add_issue("ENG", "from jira", priority="Low")
    world.tick()
    await both(world, store)
    world.notion.edit_page(page.id, {"Priority": "Low"})
    world.jira.set_fields(issue.id, {"summary": "from jira, renamed"})
    world.tick()
    await both(world, store)  # each direction now also links the row it updated on the other side
    for route in (world.to_jira, world.to_notion):
        [partition] = route.specs_by_partition()
        listed = await run_pass(route, partition, store, PassOptions(reconcile=True))
        assert listed.stats.reconciled and listed.stats.created == 0 and listed.stats.updated == 0
    for _ in range(2):
        results = await both(world, store)
        assert [r.stats.created + r.stats.updated for r in results] == [0, 0]
    assert len(world.jira.issues("ENG")) == 2 and len(world.notion.pages(world.ds)) == 2
    assert same(world)

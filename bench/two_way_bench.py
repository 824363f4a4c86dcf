"""Two-way benchmark: Notion ⇄ Jira on the stateful fakes, random edits on both sides, no echo, nothing lost.

Each round people create a few rows on each side and edit random fields of random rows — some rows
on both sides, the same field to different values (a conflict) — one edit a minute on one fake clock;
then the pair's two passes run (Notion → Jira, then Jira → Notion). After the last round one quiet
round (no edits) lets the last conflicts settle. Measured:

- ``echo_creates``: rows beyond one per record on each side (a row copied back as new);
- ``echo_updates``: writes that changed nothing on the row they were sent to (every field sent
  already held the value: the read-back of our own write, or a stamp bouncing);
- ``lost_edits``: fields whose final value, on either side, is not the newest edit of that field
  (the policy is last-writer-wins by modification time; one edit per row per side per round, so the
  row's time is the field's);
- ``conflicts``: fields edited on both sides in one round; ``conflicts_reported``: what the passes
  counted (the ``no_conflicts`` check's figure).

``--naive`` runs the old advice instead — two plain routes pointed at each other, each renaming the
fields — for comparison (``lost_edits`` is not measured there: rows have no single twin).

Usage: python bench/two_way_bench.py [--rounds 10] [--seed 7] [--edits 8] [--naive]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from connectors.core import Record
from connectors.http import HttpSettings, Rate, RetryPolicy
from connectors.jira import JiraDestination, JiraSource
from connectors.notion import NotionDestination, NotionSource
from sync_assets.engine import PassOptions, PassResult, run_pass
from sync_assets.routes import Route, TwoWayRoute
from sync_assets.state import StateStore
from tests.fakes.common import FakeTime
from tests.fakes.jira import SITE, FakeJira
from tests.fakes.notion import FakeNotion

FAST = Rate(10_000, 1, burst=10_000)
PRIORITIES = ["Highest", "High", "Medium", "Low", "Lowest"]
LABELS = ["api", "ui", "bug", "docs"]
FIELDS = {"Name": "Summary", "Priority": "Priority", "Labels": "Labels", "Due": "Due"}  # Notion -> Jira
SCHEMA: dict[str, Any] = {
    "Name": "title",
    "Key": "rich_text",
    "Last synced": "date",
    "Priority": {"type": "select", "options": PRIORITIES},
    "Labels": {"type": "multi_select", "options": LABELS},
    "Due": "date",
    "Edited": "last_edited_time",
}


def norm(value: Any) -> Any:
    """A field value as both fakes and records can be compared (dates as text, lists as sorted, [] as None)."""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()[:10]
    if isinstance(value, (list, tuple)):
        return sorted(value) or None
    return value


class EchoCounting:
    """A destination wrapper that counts updates whose every field already held the value sent."""

    def __init__(self, dest: Any, current: Callable[[str], dict[str, Any]]) -> None:
        self._dest, self._current = dest, current
        self.updates = self.echoes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dest, name)

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[Any]:
        async with self._dest.connect() as session:
            yield _EchoSession(self, session)


class _EchoSession:
    def __init__(self, owner: EchoCounting, session: Any) -> None:
        self._owner, self._session = owner, session

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    async def update(self, existing_id: str, record: Record, synced_at: dt.datetime) -> bool:
        now = self._owner._current(existing_id)
        self._owner.updates += 1
        if all(norm(now.get(k)) == norm(v) for k, v in record.properties.items()):
            self._owner.echoes += 1
        return await self._session.update(existing_id, record, synced_at)


class Bench:
    """The two fakes on one clock, the pair, and what people did to them."""

    def __init__(self, seed: int, edits_per_round: int, *, naive: bool = False) -> None:
        self.rng = random.Random(seed)
        self.edits_per_round = edits_per_round
        self.time = FakeTime()
        self.notion = FakeNotion(rate=None, clock=self.time.clock)
        db = self.notion.add_database(SCHEMA, title="Tasks")
        self.ds = db.data_source_ids[0]
        self.jira = FakeJira(clock=self.time.clock, burst=None)
        self.jira.add_project("ENG", name="Engineering")
        nh = {
            "token": self.notion.token,
            "token_env": None,
            "base_url": "https://api.notion.com",
            "rate": FAST,
            "http": HttpSettings(
                transport=httpx.ASGITransport(app=self.notion.app), sleep=self.time.sleep, clock=self.time.clock
            ),
        }
        jh = {
            "base_url": SITE,
            "email": self.jira.email,
            "token": self.jira.token,
            "base_url_env": None,
            "email_env": None,
            "token_env": None,
            "rate": FAST,
            "http": HttpSettings(
                transport=httpx.ASGITransport(app=self.jira.app),
                retry=RetryPolicy(jitter=0),
                sleep=self.time.sleep,
                clock=self.time.clock,
            ),
        }
        self.to_notion = EchoCounting(NotionDestination(db.id, database_id_env=None, **nh), self.notion_values)
        self.to_jira = EchoCounting(JiraDestination("ENG", project_env=None, **jh), self.jira_values)
        self.pair = TwoWayRoute(
            a=(NotionSource(self.ds, now=self.time.utcnow, **nh), self.to_notion),
            b=(JiraSource(projects=["ENG"], **jh), self.to_jira),
            fields=FIELDS,
            modified=("Edited", "Updated"),
        )
        self.naive = naive
        self.routes = self.pair.routes() if not naive else self.naive_routes()
        # What people did: expected[(side, key)][field] = (when, value); keys of the side that made the row.
        self.expected: dict[tuple[str, str], dict[str, tuple[float, Any]]] = {}
        self.edits = self.conflicts = self.made = 0

    # -- each side's current values, by Notion's field names ---------------------------------------

    def notion_values(self, page_id: str) -> dict[str, Any]:
        v = self.notion.values(page_id)
        return {f: v.get(f) for f in FIELDS}

    def jira_values(self, issue_id: str) -> dict[str, Any]:
        f = self.jira.issue(issue_id).fields
        return {
            "Summary": f.get("summary"),
            "Priority": (f.get("priority") or {}).get("name"),
            "Labels": f.get("labels"),
            "Due": f.get("duedate"),
        }

    def canonical(self, side: str, key: str) -> dict[str, Any]:
        if side == "a":
            return {f: norm(v) for f, v in self.notion_values(key).items()}
        jira = self.jira_values(key)
        return {a: norm(jira[b]) for a, b in FIELDS.items()}

    # -- people --------------------------------------------------------------------------------------

    def tick(self) -> float:
        self.time.advance(60)  # Notion reports edit times to the minute
        return self.time.clock()

    def value(self, field: str) -> Any:
        if field == "Name":
            self.made += 1
            return f"task {self.made}"
        if field == "Priority":
            return self.rng.choice(PRIORITIES)
        if field == "Labels":
            return sorted(self.rng.sample(LABELS, self.rng.randint(1, 2)))
        return (dt.date(2025, 1, 1) + dt.timedelta(days=self.rng.randint(0, 300))).isoformat()

    def write(self, side: str, key: str, field: str, value: Any) -> None:
        if side == "a":
            self.notion.edit_page(key, {field: value})
            return
        api = {"Name": ("summary", value), "Priority": ("priority", {"name": value})}
        api |= {"Labels": ("labels", value), "Due": ("duedate", value)}
        name, raw = api[field]
        self.jira.set_fields(key, {name: raw})

    def create(self, side: str) -> None:
        values = {f: self.value(f) for f in FIELDS}
        when = self.tick()
        if side == "a":
            key = self.notion.add_page(self.ds, values).id
        else:
            key = self.jira.add_issue(
                "ENG", values["Name"], priority=values["Priority"], labels=values["Labels"], due=values["Due"]
            ).id
        self.expected[(side, key)] = {f: (when, norm(v)) for f, v in values.items()}
        self.edits += 1

    def naive_routes(self) -> tuple[Route, Route]:
        """What the README used to say: two routes pointed at each other, each renaming the fields."""
        (a_source, a_dest), (b_source, b_dest) = self.pair.a, self.pair.b

        def to_jira(r: Record) -> Record:
            return Record(r.primary_key, {b: r.properties.get(a) for a, b in FIELDS.items()})

        def to_notion(r: Record) -> Record:
            return Record(r.primary_key, {a: r.properties.get(b) for a, b in FIELDS.items()})

        return Route(a_source, b_dest, transform=to_jira), Route(b_source, a_dest, transform=to_notion)

    def naive_edits(self) -> None:
        for side in ("a", "b"):
            for _ in range(self.rng.randint(0, 2)):
                self.create(side)
        pages = [("a", p.id) for p in self.notion.pages(self.ds, include_trash=False)]
        issues = [("b", i.id) for i in self.jira.issues("ENG")]
        for side, key in self.rng.sample(pages + issues, min(self.edits_per_round, len(pages) + len(issues))):
            field = self.rng.choice(list(FIELDS))
            self.tick()
            self.write(side, key, field, self.value(field))
            self.edits += 1

    def twins(self) -> dict[tuple[str, str], tuple[str, str]]:
        """(side, key) of every row -> (Notion page id, Jira issue id) of its pair."""
        store = self.store
        pages = [p.id for p in self.notion.pages(self.ds, include_trash=False)]
        out: dict[tuple[str, str], tuple[str, str]] = {}
        for pair in store.get_pairs(self.pair.name, "a", pages).values():
            out[("a", pair.a_key)] = out[("b", pair.b_key)] = (pair.a_key, pair.b_key)
        return out

    def edit_round(self) -> None:
        for side in ("a", "b"):
            for _ in range(self.rng.randint(0, 2)):
                self.create(side)
        twins = self.twins()
        # In the order the rows were made (ids are random: sorting by them would change every run).
        pairs = list(dict.fromkeys(twins[origin] for origin in self.expected if origin in twins))
        for a_key, b_key in self.rng.sample(pairs, min(self.edits_per_round, len(pairs))):
            origin = next(k for k in (("a", a_key), ("b", b_key)) if k in self.expected)
            field = self.rng.choice(list(FIELDS))
            sides = self.rng.choice([("a",), ("b",), ("a", "b")])
            if len(sides) == 2:
                self.conflicts += 1
            first = None
            for side in self.rng.sample(sides, len(sides)):  # either order
                key = a_key if side == "a" else b_key
                held = self.canonical(side, key)[field]
                value = self.value(field)
                # An edit changes the value; a conflict is two different values.
                while norm(value) in (first, held):
                    value = self.value(field)
                first = norm(value)
                when = self.tick()
                self.write(side, key, field, value)
                self.expected[origin][field] = (when, norm(value))
                self.edits += 1

    async def passes(self) -> list[PassResult]:
        out = []
        for route in self.routes:
            [partition] = route.specs_by_partition()
            out.append(await run_pass(route, partition, self.store, PassOptions()))
            self.tick()
        return out

    def lost(self) -> int:
        twins = self.twins()
        lost = 0
        for origin, fields in self.expected.items():
            pair = twins.get(origin)
            if pair is None:
                lost += len(fields)
                continue
            a_now, b_now = self.canonical("a", pair[0]), self.canonical("b", pair[1])
            for field, (_, value) in fields.items():
                lost += (a_now[field] != value) + (b_now[field] != value)
        return lost

    async def run(self, rounds: int, store: StateStore) -> dict[str, Any]:
        self.store = store
        for side in ("a", "b"):
            for _ in range(3):
                self.create(side)
        results: list[PassResult] = []
        results += await self.passes()
        started = time.perf_counter()
        for _ in range(rounds):
            self.naive_edits() if self.naive else self.edit_round()
            results += await self.passes()
        results += await self.passes()  # a quiet round: the last conflicts settle
        quiet = await self.passes()  # ... and then nothing is left to write
        records = len(self.expected)
        return {
            "rounds": rounds,
            "edits": self.edits,
            "records": records,
            "notion_rows": len(self.notion.pages(self.ds, include_trash=False)),
            "jira_rows": len(self.jira.issues("ENG")),
            "echo_creates": len(self.notion.pages(self.ds, include_trash=False))
            + len(self.jira.issues("ENG"))
            - 2 * records,
            "echo_updates": self.to_notion.echoes + self.to_jira.echoes,
            "updates": self.to_notion.updates + self.to_jira.updates,
            "writes_after_settling": sum(r.stats.created + r.stats.updated for r in quiet),
            "lost_edits": self.lost() if not self.naive else None,
            "conflicts": self.conflicts,
            "conflicts_reported": sum(r.stats.conflicts for r in results + quiet),
            "seconds": round(time.perf_counter() - started, 2),
        }


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--edits", type=int, default=8, help="rows edited per round")
    p.add_argument("--naive", action="store_true", help="two plain routes instead of a TwoWayRoute (the old advice)")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = StateStore(f"sqlite:///{tmp}/state.sqlite3")
        try:
            out = asyncio.run(Bench(a.seed, a.edits, naive=a.naive).run(a.rounds, store))
        finally:
            store.dispose()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

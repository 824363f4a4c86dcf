"""AsanaDestination driven by the real engine (no Dagster): idempotent passes, no duplicates after a
lost answer, per-record errors that lose nothing else, Asana's limits respected, auth pauses."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

import httpx
import pytest

from connectors.asana import AsanaDestination
from connectors.core import AuthError, Record, TransientError
from connectors.http import HttpSettings
from connectors.memory import MemorySource
from sync_assets.engine import PassOptions, run_pass
from sync_assets.routes import Route
from sync_assets.state import StateStore
from tests.connectors.asana.conftest import API, FAST, NO_JITTER, SCHEMA, FakeTime
from tests.fakes.asana import FakeAsana, FakeProject, serve

MakeDest = Callable[..., AsanaDestination]


def records(n: int, *, stars: int = 1) -> list[Record]:
    return [
        Record(
            str(1000 + i),
            {
                "Name": f"acme/repo-{i}",
                "Stars": stars + i,
                "Labels": ["infra"],
                "Priority": "Low",
                "Released": dt.date(2024, 5, 1) + dt.timedelta(days=i),
            },
            body=f"README of repo {i}",
        )
        for i in range(n)
    ]


def writes(fake: FakeAsana) -> int:
    return len(fake.requests("POST")) + len(fake.requests("PUT"))


async def test_a_second_pass_writes_nothing_and_a_change_is_one_update(
    make_dest: MakeDest, fake: FakeAsana, project: FakeProject, sqlite_store: StateStore
) -> None:
    source = MemorySource({"all": records(5)})
    route = Route(source, make_dest(batch=False))  # counts single requests; batched: test_asana_batch.py
    first = await run_pass(route, "all", sqlite_store, PassOptions())
    assert first.stats.created == 5 and len(fake.tasks(project.gid)) == 5
    assert len(fake.requests("POST")) == 5

    before = writes(fake)
    second = await run_pass(route, "all", sqlite_store, PassOptions())
    assert second.stats.unchanged == 5 and writes(fake) == before

    source.records["all"][2] = records(5, stars=100)[2]
    third = await run_pass(route, "all", sqlite_store, PassOptions())
    assert third.stats.updated == 1 and writes(fake) == before + 1 and len(fake.requests("PUT")) == 1
    assert sorted(fake.values(t.gid)["Stars"] for t in fake.tasks(project.gid)) == [1, 2, 4, 5, 102]
    assert sorted(fake.values(t.gid)["Source ID"] for t in fake.tasks(project.gid)) == [str(1000 + i) for i in range(5)]


async def test_a_create_whose_answer_was_lost_is_adopted_not_duplicated(
    make_dest: MakeDest, fake: FakeAsana, project: FakeProject, sqlite_store: StateStore
) -> None:
    route = Route(MemorySource({"all": records(5)}), make_dest(batch=False))
    fake.fail_next(1, 502, after=True, method="POST", path=r"^/tasks$")
    with pytest.raises(TransientError):
        await run_pass(route, "all", sqlite_store, PassOptions())
    again = await run_pass(route, "all", sqlite_store, PassOptions())
    assert again.stats.adopted >= 1

    keys = sorted(fake.values(t.gid)["Source ID"] for t in fake.tasks(project.gid))
    assert keys == [str(1000 + i) for i in range(5)]  # each key exactly once
    assert sqlite_store.link_count(route.name, "all") == 5


async def test_bad_records_fail_alone_and_the_rest_of_the_page_syncs(
    make_dest: MakeDest, fake: FakeAsana, project: FakeProject, sqlite_store: StateStore
) -> None:
    good = records(4)
    bad = [
        Record("enum", {"Name": "missing option", "Priority": "Critical"}),
        Record("long", {"Name": "long notes"}, body="x" * 70_000),
        Record("user", {"Name": "invalid assignee", "assignee": "nobody@example.com"}),
        Record("type", {"Name": "wrong type", "Stars": "many"}),
        Record("unknown", {"Name": "unknown field dropped", "Colour": "teal"}),
    ]
    source = MemorySource({"all": [*good[:2], *bad, *good[2:]]})
    route = Route(source, make_dest())
    result = await run_pass(route, "all", sqlite_store, PassOptions())

    assert result.stats.failed == 4 and result.stats.created == 5
    failures = dict(result.failures)
    assert set(failures) == {"enum", "long", "user", "type"}
    assert "Critical" in failures["enum"] and "Priority" in failures["enum"]
    assert "70000" in failures["long"]
    assert "nobody@example.com" in failures["user"]
    assert "Stars" in failures["type"]
    names = sorted(t.name for t in fake.tasks(project.gid))
    assert names == sorted([r.properties["Name"] for r in good] + ["unknown field dropped"])

    # Fixed at the source, the failed records are written by the next pass; nothing else is touched.
    before = writes(fake)
    source.records["all"] = [*good, Record("enum", {"Name": "fixed", "Priority": "High"})]
    fixed = await run_pass(route, "all", sqlite_store, PassOptions())
    assert fixed.stats.created == 1 and fixed.stats.failed == 0 and writes(fake) == before + 1


async def test_writes_stay_within_asanas_concurrency_and_per_minute_limits(
    time: FakeTime, sqlite_store: StateStore
) -> None:
    fake = FakeAsana(rate_per_minute=150, latency=10, clock=time.clock)
    project = fake.add_project("Big", SCHEMA)
    dest = AsanaDestination(
        project.gid,
        token=fake.token,
        token_env=None,
        project_env=None,
        base_url=API,
        http=HttpSettings(
            transport=httpx.ASGITransport(app=fake.app), retry=NO_JITTER, sleep=time.sleep, clock=time.clock
        ),
        rate=FAST,  # only the fake's budget and Retry-After pace this test
        max_concurrency=40,  # more workers than Asana allows writes in flight
        batch=False,  # one request per write; the batched variant is in test_asana_batch.py
    )
    route = Route(MemorySource({"all": records(400)}, page_size=100), dest)
    start = time.now
    result = await run_pass(route, "all", sqlite_store, PassOptions())

    assert result.stats.created == 400 and len(fake.tasks(project.gid)) == 400
    assert fake.max_in_flight_writes == 15  # saturated, never exceeded
    assert fake.counters.concurrency_limited == 0
    assert max(fake.requests_per_minute().values()) <= 150
    assert fake.counters.rate_limited > 0 and time.now - start >= 120  # it waited for new windows
    assert all(s <= 60 for s in time.sleeps)  # each wait is the server's Retry-After, never more


async def test_a_revoked_pat_fails_the_pass_and_pauses_the_credential(
    make_dest: MakeDest,
    fake: FakeAsana,
    project: FakeProject,
    sqlite_store: StateStore,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("ASANA_PAT", fake.token)
    source = MemorySource({"all": records(3)})
    route = Route(source, make_dest(token=None, token_env="ASANA_PAT"))
    await run_pass(route, "all", sqlite_store, PassOptions())

    fake.revoke_token(fake.token)
    source.records["all"] = records(3, stars=50)
    with pytest.raises(AuthError) as info:
        await run_pass(route, "all", sqlite_store, PassOptions())
    assert fake.token not in str(info.value)
    pause = sqlite_store.paused(["credential:asana:ASANA_PAT"])
    assert pause is not None and fake.token not in pause.reason
    assert all(fake.token not in r.getMessage() for r in caplog.records)


async def test_a_pass_against_the_fake_on_a_loopback_port(
    fake: FakeAsana, project: FakeProject, time: FakeTime, sqlite_store: StateStore
) -> None:
    with serve(fake) as base_url:
        dest = AsanaDestination(
            project.gid,
            token=fake.token,
            token_env=None,
            project_env=None,
            base_url=base_url,
            rate=FAST,
            http=HttpSettings(sleep=time.sleep, clock=time.clock),
        )
        route = Route(MemorySource({"all": records(3)}), dest)
        first = await run_pass(route, "all", sqlite_store, PassOptions())
        second = await run_pass(route, "all", sqlite_store, PassOptions())
    assert first.stats.created == 3 and second.stats.unchanged == 3
    assert len(fake.tasks(project.gid)) == 3

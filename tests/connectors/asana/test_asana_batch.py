"""AsanaDestination with the Batch API (the default): writes go 10 actions a ``POST /batch``, each record
keeps its own outcome, nothing is duplicated after a lost answer, and Asana's limits (which count every
action) are respected."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from connectors.asana import AsanaDestination
from connectors.core import AuthError, Record, RecordError, TransientError
from connectors.http import HttpSettings
from connectors.memory import MemorySource
from sync_assets.engine import PassOptions, run_pass
from sync_assets.routes import Route
from sync_assets.state import StateStore
from tests.connectors.asana.conftest import API, FAST, NO_JITTER, SCHEMA, FakeTime
from tests.fakes.asana import FakeAsana, FakeProject

MakeDest = Callable[..., AsanaDestination]


def records(n: int, *, stars: int = 1) -> list[Record]:
    return [
        Record(
            f"gh-{100 + i}",
            {"Name": f"acme/repo-{i}", "Stars": stars + i, "Priority": "Low", "Labels": ["infra"]},
            body=f"README of repo {i}",
        )
        for i in range(n)
    ]


def keys(fake: FakeAsana, project: FakeProject) -> Counter[str]:
    return Counter(fake.values(t.gid)["Source ID"] for t in fake.tasks(project.gid))


def batches(fake: FakeAsana) -> list[int]:
    """Actions per batch request the fake answered with 200, in order."""
    return [len(r.body["data"]["actions"]) for r in fake.requests("POST", r"^/batch$") if r.status == 200]


async def test_batched_creates_land_once_each_in_full_batches_and_a_second_pass_writes_nothing(
    make_dest: MakeDest, fake: FakeAsana, project: FakeProject, sqlite_store: StateStore
) -> None:
    source = MemorySource({"all": records(25)})
    dest = make_dest()
    assert dest.batch and dest.max_concurrency >= 2 * 10  # the engine keeps two batches' worth in flight
    route = Route(source, dest)
    first = await run_pass(route, "all", sqlite_store, PassOptions())

    assert first.stats.created == 25 and first.stats.failed == 0
    assert keys(fake, project) == Counter({f"gh-{100 + i}": 1 for i in range(25)})
    assert batches(fake) == [10, 10, 5] and not fake.requests("POST", r"^/tasks$")
    assert fake.counters.creates == 25 and sqlite_store.link_count(route.name, "all") == 25

    second = await run_pass(route, "all", sqlite_store, PassOptions())
    assert second.stats.unchanged == 25 and len(batches(fake)) == 3 and not fake.requests("PUT")

    for i in (2, 5, 9):
        source.records["all"][i] = records(25, stars=100)[i]
    third = await run_pass(route, "all", sqlite_store, PassOptions())
    assert third.stats.updated == 3 and batches(fake)[3:] == [3] and not fake.requests("PUT")
    [update_batch] = fake.requests("POST", r"^/batch$")[3:]
    assert {a["method"] for a in update_batch.body["data"]["actions"]} == {"put"}
    assert sorted(fake.values(t.gid)["Stars"] for t in fake.tasks(project.gid))[-3:] == [102, 105, 109]


async def test_one_invalid_record_in_a_batch_fails_alone_and_is_written_on_the_next_pass(
    make_dest: MakeDest, fake: FakeAsana, project: FakeProject, sqlite_store: StateStore
) -> None:
    source = MemorySource({"all": records(6)})
    route = Route(source, make_dest())
    # Asana refuses the first create action of the batch (a 400 in its result); the batch answers 200.
    fake.fail_next(1, 400, message="name: Value is not allowed", method="POST", path=r"^/tasks$")
    first = await run_pass(route, "all", sqlite_store, PassOptions())

    assert (first.stats.created, first.stats.failed) == (5, 1)
    assert batches(fake) == [6]  # one request carried the refused record with the good ones
    [batch] = fake.requests("POST", r"^/batch$")
    refused_key = next(
        v for v in batch.body["data"]["actions"][0]["data"]["custom_fields"].values() if str(v).startswith("gh-")
    )
    reasons = dict(first.failures)
    assert set(reasons) == {refused_key} and "name: Value is not allowed" in reasons[refused_key]
    assert refused_key not in keys(fake, project) and len(keys(fake, project)) == 5

    second = await run_pass(route, "all", sqlite_store, PassOptions())  # the failed record is retried
    assert (second.stats.created, second.stats.failed) == (1, 0)
    assert keys(fake, project) == Counter({f"gh-{100 + i}": 1 for i in range(6)})


async def test_a_lost_batch_answer_fails_the_page_and_the_next_pass_adopts_instead_of_duplicating(
    make_dest: MakeDest, fake: FakeAsana, project: FakeProject, sqlite_store: StateStore
) -> None:
    route = Route(MemorySource({"all": records(15)}), make_dest())
    # The first batch is carried out, then the connection answers 502: its 10 tasks exist, unlinked.
    fake.fail_next(1, 502, after=True, method="POST", path=r"^/batch$")
    with pytest.raises(TransientError):
        await run_pass(route, "all", sqlite_store, PassOptions())
    assert len(fake.requests("POST", r"^/batch$")) <= 2 and fake.counters.creates >= 10
    assert sqlite_store.pending_intents(route.name, "all") >= 10  # the intents name what may exist

    again = await run_pass(route, "all", sqlite_store, PassOptions())
    assert again.stats.adopted >= 10
    assert keys(fake, project) == Counter({f"gh-{100 + i}": 1 for i in range(15)})  # each key exactly once
    assert sqlite_store.link_count(route.name, "all") == 15


async def test_a_429_on_a_batch_waits_the_retry_after_and_resends_the_batch(
    make_dest: MakeDest, fake: FakeAsana, project: FakeProject, time: FakeTime, sqlite_store: StateStore
) -> None:
    fake.fail_next(1, 429, retry_after=30, method="POST", path=r"^/batch$")
    start = time.now
    result = await run_pass(Route(MemorySource({"all": records(8)}), make_dest()), "all", sqlite_store)

    assert result.stats.created == 8 and 30 in time.sleeps and time.now - start >= 30
    assert [r.status for r in fake.requests("POST", r"^/batch$")] == [429, 200]
    assert keys(fake, project) == Counter({f"gh-{100 + i}": 1 for i in range(8)})


async def test_a_locked_field_in_a_batch_is_that_records_error_and_a_revoked_token_stops_the_pass(
    make_dest: MakeDest, fake: FakeAsana, project: FakeProject, sqlite_store: StateStore, synced_at: dt.datetime
) -> None:
    rows = records(4)
    rows[1] = Record("gh-101", {"Name": "locked", "Audit": "x"})  # a locked field answers 403 in its action
    dest = make_dest()
    result = await run_pass(Route(MemorySource({"all": rows}), dest), "all", sqlite_store)
    assert (result.stats.created, result.stats.failed) == (3, 1)
    reason = dict(result.failures)["gh-101"]
    assert "locked" in reason

    fake.revoke_token(fake.token)
    with pytest.raises(AuthError) as info:
        async with dest.connect() as session:
            await session.create(Record("k", {"Name": "t"}), synced_at)
    assert dest.is_auth_error(info.value) and fake.token not in str(info.value)


async def test_batched_writes_stay_within_asanas_per_action_rate_and_concurrency_limits(
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
        rate=FAST,  # only the fake's budget (which counts every action) and Retry-After pace this test
        max_concurrency=40,
    )
    route = Route(MemorySource({"all": records(400)}, page_size=100), dest)
    result = await run_pass(route, "all", sqlite_store, PassOptions())

    assert result.stats.created == 400 and keys(fake, project) == Counter({f"gh-{100 + i}": 1 for i in range(400)})
    assert fake.max_in_flight_writes <= 15  # one batch of 10 actions at a time: Asana counts each
    assert fake.counters.concurrency_limited == 0
    assert max(fake.requests_per_minute().values()) <= 150  # actions accepted per minute
    assert fake.counters.batches <= 45  # 40 full batches, and a few resent after a 429


async def test_the_fake_batch_endpoint_answers_per_action_in_order(fake: FakeAsana, project: FakeProject) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=fake.app), base_url=API, headers={"Authorization": f"Bearer {fake.token}"}
    ) as http:
        empty = await http.post("/batch", json={"data": {"actions": []}})
        assert empty.status_code == 400
        eleven = [{"method": "get", "relative_path": "/tasks/1"}] * 11
        assert (await http.post("/batch", json={"data": {"actions": eleven}})).status_code == 400
        actions = [
            {"method": "post", "relative_path": "/tasks", "data": {"name": "a", "projects": [project.gid]}},
            {"method": "post", "relative_path": "/tasks", "data": {"name": "b", "completed": "yes"}},
            {"method": "get", "relative_path": "/not_found"},
        ]
        answer = await http.post("/batch", json={"data": {"actions": actions}})
    assert answer.status_code == 200
    created, refused, missing = answer.json()["data"]
    assert created["status_code"] == 201 and created["headers"]["location"].endswith(created["body"]["data"]["gid"])
    assert refused["status_code"] == 400 and refused["body"]["errors"][0]["message"]
    assert missing == {
        "status_code": 404,
        "headers": {},
        "body": {
            "errors": [{"message": "No matching route for request", "help": missing["body"]["errors"][0]["help"]}]
        },
    }
    assert [t.name for t in fake.tasks(project.gid)] == ["a"]


def test_batch_can_be_turned_off_and_then_keeps_the_single_request_concurrency() -> None:
    assert AsanaDestination("1", batch=False).max_concurrency == 8
    assert (
        AsanaDestination("1").max_concurrency == 20 and AsanaDestination("1", max_concurrency=12).max_concurrency == 12
    )


async def test_a_record_error_from_a_batch_never_reads_as_auth(
    make_dest: MakeDest, fake: FakeAsana, project: FakeProject, synced_at: dt.datetime
) -> None:
    dest = make_dest()
    async with dest.connect() as session:
        with pytest.raises(RecordError) as info:
            await session.create(Record("k", {"Name": "t", "Audit": "x"}), synced_at)
    assert not isinstance(info.value, AuthError) and not dest.is_auth_error(info.value)
    assert len(fake.requests("POST", r"^/batch$")) == 1

"""JiraDestination (and JiraSource) driven by the real engine: idempotent passes, no duplicates after a
lost answer or a crash, eventual consistency, per-record errors, rate limits, auth, a loopback run."""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from contextlib import asynccontextmanager

import pytest

from connectors.core import AuthError, Record, TransientError
from connectors.http import HttpSettings
from connectors.memory import MemoryDestination, MemorySource
from sync_assets.engine import PassOptions, run_pass
from sync_assets.routes import Route
from sync_assets.state import StateStore
from tests.fakes.jira import FakeJira, serve


@pytest.fixture
def store(tmp_path):
    s = StateStore(f"sqlite:///{tmp_path}/s.db")
    yield s
    s.dispose()


def records(n: int, *, priority: str = "Medium") -> list[Record]:
    return [
        Record(
            f"gh-{100 + i}",
            {
                "Summary": f"Issue {i}",
                "Labels": ["from github", f"n{i}"],
                "Priority": priority,
                "Due": dt.date(2024, 6, 1 + i),
                "Components": ["API"],
                "Stars": i,  # not mapped: never written
            },
            body=f"Body of issue {i}\n\nSecond paragraph.",
        )
        for i in range(n)
    ]


def keys_in(fake: FakeJira, project: str = "ENG") -> Counter[str]:
    return Counter(i.properties["durable-sync"]["pk"] for i in fake.issues(project) if "durable-sync" in i.properties)


async def test_first_second_and_changed_passes(fake, make_dest, store):
    source = MemorySource({"all": records(5)})
    route = Route(source, make_dest())
    first = await run_pass(route, "all", store, PassOptions())
    assert first.stats.created == 5 and fake.counters.creates == 5
    assert keys_in(fake) == Counter({f"gh-{100 + i}": 1 for i in range(5)})

    writes = fake.counters.writes
    second = await run_pass(route, "all", store, PassOptions())
    assert (second.stats.unchanged, second.stats.created, second.stats.updated) == (5, 0, 0)
    assert fake.counters.writes == writes

    source.records["all"][3] = records(5, priority="High")[3]
    third = await run_pass(route, "all", store, PassOptions())
    assert (third.stats.updated, third.stats.created) == (1, 0)
    assert fake.counters.writes == writes + 1
    [put] = fake.requests("PUT", r"/issue/\d+$")
    assert put.body["fields"]["priority"] == {"name": "High"}
    assert sorted(i.fields["priority"]["name"] for i in fake.issues("ENG")) == ["High"] + ["Medium"] * 4


async def test_a_lost_create_answer_is_adopted_not_duplicated_even_before_search_sees_it(fake, make_dest, store):
    fake.set_index_delay(600)
    fake.drop_next(1, method="POST", path=r"/issue$")  # created, but the answer never arrives
    with pytest.raises(TransientError):
        await run_pass(
            Route(MemorySource({"all": records(5)}), make_dest(max_concurrency=1, batch=False)), "all", store
        )
    assert fake.counters.creates == 1  # the page's intents stay pending: the next pass lists first
    assert store.pending_intents("memory_to_jira", "all") == 5 and store.link_count("memory_to_jira", "all") == 0

    # A new process: it knows no ids to reconcile, and search still shows nothing.
    result = await run_pass(Route(MemorySource({"all": records(5)}), make_dest()), "all", store)
    # The adopted issue is this pass's create (its answer was lost), not a row found by chance.
    assert result.stats.adopted == 1 and result.stats.created == 5
    assert keys_in(fake) == Counter({f"gh-{100 + i}": 1 for i in range(5)})
    assert store.link_count("memory_to_jira", "all") == 5


class SimulatedCrash(TransientError):
    """The worker died right after Jira created the issue, before the engine could link it."""


class CrashAfterCreate:
    """A JiraDestination whose ``crash_on``-th create happens and then the process 'dies'."""

    def __init__(self, inner, crash_on: int) -> None:
        self.inner = inner
        self.name = inner.name
        self.create_only_properties = inner.create_only_properties
        self.stores_keys = True
        self.max_concurrency = 1
        self.crash_on = crash_on
        self.creates = 0

    @property
    def configured(self) -> bool:
        return True

    @property
    def config_hint(self) -> str:
        return ""

    @staticmethod
    def is_auth_error(err: BaseException) -> bool:
        return False

    @asynccontextmanager
    async def connect(self):
        async with self.inner.connect() as session:
            outer = self

            class Session:
                async def create(self, record, synced_at):
                    issue_id = await session.create(record, synced_at)
                    outer.creates += 1
                    if outer.creates == outer.crash_on:
                        raise SimulatedCrash("worker lost after the create")
                    return issue_id

                update = session.update
                query_existing_rows = session.query_existing_rows
                query_existing_ids = session.query_existing_ids

            yield Session()


async def test_a_crash_between_create_and_link_does_not_duplicate(fake, make_dest, store):
    fake.set_index_delay(600)
    with pytest.raises(SimulatedCrash):
        await run_pass(
            Route(MemorySource({"all": records(4)}), CrashAfterCreate(make_dest(), 2), name="r"), "all", store
        )
    assert fake.counters.creates == 2
    # The issue of the crash carries its key already: nothing was left to stamp.
    assert keys_in(fake) == Counter({"gh-100": 1, "gh-101": 1})

    result = await run_pass(Route(MemorySource({"all": records(4)}), make_dest(), name="r"), "all", store)
    # gh-101 (created, link lost in the crash) is adopted and counts as this pass's create.
    assert result.stats.adopted == 1 and result.stats.created == 3
    assert keys_in(fake) == Counter({f"gh-{100 + i}": 1 for i in range(4)})


async def test_a_listing_right_after_creates_takes_none_for_gone(fake, make_dest, store):
    fake.set_index_delay(600)
    route = Route(MemorySource({"all": records(5)}), make_dest())
    await run_pass(route, "all", store)
    refresh = await run_pass(route, "all", store, PassOptions(full_refresh=True))
    assert refresh.stats.reconciled and refresh.stats.listed == 5
    assert (refresh.stats.gone, refresh.stats.created, refresh.stats.updated) == (0, 0, 5)
    assert len(fake.issues("ENG")) == 5
    [listing] = fake.requests("POST", r"/search/jql$")[-1:]
    assert len(listing.body["reconcileIssues"]) == 5


async def test_bad_records_fail_alone_and_the_rest_of_the_page_syncs(fake, make_dest, store):
    team = fake.add_custom_field("Team", "select", options=["Platform"])
    dest = make_dest(field_map={"Team": "Team", "Owner": "assignee", "Ghost": "customfield_99999", "Labels": "labels"})
    good = [Record(f"ok-{i}", {"Summary": f"fine {i}", "Team": "Platform"}) for i in range(3)]
    bad = [
        Record("bad-option", {"Summary": "s", "Team": "Nope"}),
        Record("bad-account", {"Summary": "s", "Owner": "no-such-account"}),
        Record("bad-field", {"Summary": "s", "Ghost": "x"}),
        Record("too-long", {"Summary": "s"}, body="y" * 33_000),
        Record("no-summary", {"Labels": ["x"]}),
    ]
    result = await run_pass(Route(MemorySource({"all": good[:2] + bad + good[2:]}), dest), "all", store)
    assert (result.stats.created, result.stats.failed) == (3, 5)
    reasons = dict(result.failures)
    assert "Option value 'Nope' is not valid" in reasons["bad-option"] and "Team" in reasons["bad-option"]
    assert "no-such-account" in reasons["bad-account"]
    assert "customfield_99999" in reasons["bad-field"]
    assert "32767" in reasons["too-long"]
    assert "Summary" in reasons["no-summary"]
    assert sorted(keys_in(fake)) == ["ok-0", "ok-1", "ok-2"]
    assert all(i.fields[team]["value"] == "Platform" for i in fake.issues("ENG"))


async def test_a_revoked_token_is_an_auth_error_that_never_shows_the_token(fake, make_dest, store, caplog):
    caplog.set_level(logging.DEBUG)
    route = Route(MemorySource({"all": records(2)}), make_dest())
    await run_pass(route, "all", store)
    fake.revoke_token(fake.token)
    route.source.records["all"] = records(3)
    with pytest.raises(AuthError) as info:
        await run_pass(route, "all", store)
    for secret in (fake.token, fake.email):
        assert secret not in str(info.value) and secret not in caplog.text
    assert "401" in str(info.value)


async def test_429_with_retry_after_is_waited_out(fake, make_dest, store, clock):
    fake.set_rate(2)  # two requests per second per endpoint and method
    result = await run_pass(Route(MemorySource({"all": records(8)}), make_dest()), "all", store)
    assert result.stats.created == 8 and len(fake.issues("ENG")) == 8
    limited = [r for r in fake.log if r.status == 429]
    assert limited and fake.counters.rate_limited == len(limited)
    assert clock.sleeps and min(clock.sleeps) >= 1.0  # Retry-After is whole seconds; never shortened
    # A 429 blocks the whole credential until Retry-After: the waits, not retries, carry the load.
    assert len(limited) < fake.counters.requests - len(limited)


async def test_default_pacing_stays_within_the_burst_limit(store):
    # Real time on both sides (the toolkit's limiter runs on the event loop's clock).
    fake = FakeJira(burst=10)  # Jira's burst limit, per endpoint and method, per second
    fake.add_project("ENG", components=["API"])
    import httpx

    from connectors.jira import JiraDestination

    dest = JiraDestination(
        "ENG",
        base_url=fake.site,
        email=fake.email,
        token=fake.token,
        base_url_env=None,
        email_env=None,
        token_env=None,
        project_env=None,
        http=HttpSettings(transport=httpx.ASGITransport(app=fake.app)),
    )
    result = await run_pass(Route(MemorySource({"all": records(16)}), dest), "all", store)
    assert result.stats.created == 16
    assert fake.counters.rate_limited == 0


async def test_jira_to_memory_through_the_engine_keys_on_the_issue_id(fake, make_source, store):
    fake.add_project("NEW")
    ids = [fake.add_issue("ENG", f"i{i}", created=fake.clock() - 100 + i).id for i in range(3)]
    dest = MemoryDestination()
    route = Route(make_source(projects=["ENG", "NEW"]), dest)
    await run_pass(route, "project:ENG", store)
    fake.move_issue(ids[0], "NEW")
    await run_pass(route, "project:NEW", store)
    assert dest.duplicates() == {} and len(dest.rows) == 3
    row = dest.row(ids[0])  # the moved issue updated its row: same primary key, no second row
    assert row.properties["Issue Key"] == "NEW-1"


async def test_the_fake_on_a_loopback_port(fake, store):
    from connectors.jira import JiraDestination, JiraSource

    fake.add_issue("OPS", "from ops", description="hello")
    with serve(fake) as base_url:
        common = {
            "base_url": base_url,
            "email": fake.email,
            "token": fake.token,
            "base_url_env": None,
            "email_env": None,
            "token_env": None,
        }
        route = Route(JiraSource(projects=["OPS"], **common), JiraDestination("ENG", project_env=None, **common))
        first = await run_pass(route, "project:OPS", store)
        second = await run_pass(route, "project:OPS", store)
    assert (first.stats.created, second.stats.unchanged) == (1, 1)
    [copy] = fake.issues("ENG")
    assert copy.fields["summary"] == "from ops" and fake.description_text(copy.id) == "hello"
    assert copy.properties["durable-sync"] == {"pk": fake.issue("OPS-1").id}

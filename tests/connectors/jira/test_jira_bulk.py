"""JiraDestination with bulk create (the default): creates go 50 a ``POST /rest/api/3/issue/bulk``, each
record gets its own outcome (mapped by ``failedElementNumber``), and a lost answer duplicates nothing."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest

from connectors.core import Record, RecordError, TransientError
from connectors.http import HttpSettings
from connectors.jira import JiraDestination
from connectors.jira.client import JiraClient, JiraRejected
from connectors.memory import MemorySource
from sync_assets.engine import PassOptions, run_pass
from sync_assets.routes import Route
from sync_assets.state import StateStore
from tests.connectors.jira.conftest import FAST, NO_JITTER
from tests.fakes.common import FakeTime
from tests.fakes.jira import SITE, FakeJira

BULK = r"/issue/bulk$"


@pytest.fixture
def store(tmp_path):
    s = StateStore(f"sqlite:///{tmp_path}/s.db")
    yield s
    s.dispose()


def records(n: int, *, prefix: str = "gh") -> list[Record]:
    return [
        Record(
            f"{prefix}-{100 + i}",
            {"Summary": f"Issue {i}", "Labels": ["from github"], "Priority": "Medium", "Components": ["API"]},
            body=f"Body of issue {i}",
        )
        for i in range(n)
    ]


def keys_in(fake: FakeJira, project: str = "ENG") -> Counter[str]:
    return Counter(i.properties["durable-sync"]["pk"] for i in fake.issues(project) if "durable-sync" in i.properties)


def bulk_sizes(fake: FakeJira) -> list[int]:
    return [len(r.body["issueUpdates"]) for r in fake.requests("POST", BULK)]


async def test_bulk_creates_land_once_each_fifty_a_request_and_link_each_key_to_its_own_issue(
    fake: FakeJira, make_dest, store: StateStore
) -> None:
    dest = make_dest()
    assert dest.batch and dest.max_concurrency >= 2 * 50
    route = Route(MemorySource({"all": records(60)}), dest)
    first = await run_pass(route, "all", store, PassOptions())

    assert first.stats.created == 60 and first.stats.failed == 0
    assert keys_in(fake) == Counter({f"gh-{100 + i}": 1 for i in range(60)})
    assert bulk_sizes(fake) == [50, 10] and not fake.requests("POST", r"/issue$")
    links = store.get_links(route.name, [f"gh-{100 + i}" for i in range(60)])
    # Each key is linked to the issue that carries it (the answer was mapped to the right elements).
    assert all(fake.issue(link.destination_id).properties["durable-sync"]["pk"] == k for k, link in links.items())
    assert len(links) == 60

    second = await run_pass(route, "all", store, PassOptions())
    assert second.stats.unchanged == 60 and len(bulk_sizes(fake)) == 2


async def test_a_partial_failure_is_mapped_by_failed_element_number_to_its_own_record(
    fake: FakeJira, make_dest, store: StateStore
) -> None:
    rows = records(8)
    rows[2] = Record("gh-102", {"Summary": "bad component", "Components": ["Nope"]})
    rows[5] = Record("gh-105", {"Summary": "bad priority", "Priority": "Whenever"})
    source = MemorySource({"all": rows})
    route = Route(source, make_dest())
    first = await run_pass(route, "all", store, PassOptions())

    assert (first.stats.created, first.stats.failed) == (6, 2)
    [bulk] = fake.requests("POST", BULK)
    assert bulk.status == 201 and len(bulk.body["issueUpdates"]) == 8
    reasons = dict(first.failures)
    assert set(reasons) == {"gh-102", "gh-105"}
    assert "Nope" in reasons["gh-102"] and "components" in reasons["gh-102"].lower()
    assert "Whenever" in reasons["gh-105"] and "priority" in reasons["gh-105"].lower()
    links = store.get_links(route.name, [r.primary_key for r in rows])
    assert sorted(links) == sorted(r.primary_key for i, r in enumerate(rows) if i not in (2, 5))
    assert all(fake.issue(link.destination_id).properties["durable-sync"]["pk"] == k for k, link in links.items())

    source.records["all"][2] = Record("gh-102", {"Summary": "fixed", "Components": ["UI"]})
    source.records["all"][5] = Record("gh-105", {"Summary": "fixed", "Priority": "High"})
    second = await run_pass(route, "all", store, PassOptions())  # the failed records are retried
    assert (second.stats.created, second.stats.failed) == (2, 0)
    assert keys_in(fake) == Counter({f"gh-{100 + i}": 1 for i in range(8)})


async def test_a_bulk_request_where_every_element_fails_is_each_records_error_not_the_pass(
    fake: FakeJira, make_dest, store: StateStore
) -> None:
    rows = [Record(f"bad-{i}", {"Summary": f"s{i}", "Components": [f"Ghost {i}"]}) for i in range(3)]
    result = await run_pass(Route(MemorySource({"all": rows}), make_dest()), "all", store)
    assert (result.stats.created, result.stats.failed) == (0, 3)
    assert [r.status for r in fake.requests("POST", BULK)] == [400]
    reasons = dict(result.failures)
    assert all(f"Ghost {i}" in reasons[f"bad-{i}"] for i in range(3))


async def test_a_lost_bulk_answer_fails_the_page_and_the_next_pass_adopts_without_duplicates(
    fake: FakeJira, make_dest, store: StateStore
) -> None:
    fake.set_index_delay(600)  # search does not see them yet either: the read past the index finds them
    fake.drop_next(1, method="POST", path=BULK)  # carried out, then the connection drops
    route = Route(MemorySource({"all": records(12)}), make_dest())
    with pytest.raises(TransientError):
        await run_pass(route, "all", store)
    assert fake.counters.creates == 12 and store.link_count(route.name, "all") == 0
    assert store.pending_intents(route.name, "all") == 12

    again = await run_pass(Route(MemorySource({"all": records(12)}), make_dest()), "all", store)
    assert again.stats.adopted == 12 and fake.counters.creates == 12
    assert keys_in(fake) == Counter({f"gh-{100 + i}": 1 for i in range(12)})
    assert len(fake.requests("POST", BULK)) == 1  # never resent


async def test_a_429_on_a_bulk_request_is_waited_out_and_the_request_resent(
    fake: FakeJira, make_dest, clock: FakeTime, store: StateStore
) -> None:
    fake.fail_next(1, 429, retry_after=7, method="POST", path=BULK)
    start = clock.now
    result = await run_pass(Route(MemorySource({"all": records(5)}), make_dest()), "all", store)
    assert result.stats.created == 5 and 7 in clock.sleeps and clock.now - start >= 7
    assert [r.status for r in fake.requests("POST", BULK)] == [429, 201]
    assert keys_in(fake) == Counter({f"gh-{100 + i}": 1 for i in range(5)})


async def test_an_answer_that_cannot_be_matched_leaves_the_ids_to_the_listing(store: StateStore) -> None:
    """Jira lists created issues without their element number (JRACLOUD-81005): when the count of
    created issues does not add up, no element is given another's id; they are "created, id unknown"."""
    answer = {
        "issues": [{"id": "10001", "key": "ENG-1", "self": f"{SITE}/rest/api/3/issue/10001"}],  # one for two
        "errors": [
            {
                "status": 400,
                "elementErrors": {"errorMessages": [], "errors": {"priority": "Specify a valid priority"}},
                "failedElementNumber": 2,
            }
        ],
    }

    def reply(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, json=answer)

    clock = FakeTime()
    http = HttpSettings(transport=httpx.MockTransport(reply), retry=NO_JITTER, sleep=clock.sleep, clock=clock.clock)
    async with JiraClient(SITE, "bot@example.com", "test-token-bulk", http=http, rate=FAST) as client:
        first, second, third = await client.bulk_create([{"fields": {}}, {"fields": {}}, {"fields": {}}])
    assert first is None and second is None
    assert isinstance(third, JiraRejected) and third.errors == {"priority": "Specify a valid priority"}
    assert isinstance(third, RecordError)


def test_bulk_create_can_be_turned_off_and_then_keeps_the_single_request_concurrency() -> None:
    assert JiraDestination("ENG", batch=False).max_concurrency == 4
    assert JiraDestination("ENG").max_concurrency == 100
    assert JiraDestination("ENG", max_concurrency=7).max_concurrency == 7


async def test_the_fake_refuses_more_than_fifty_and_answers_in_jiras_bulk_shape(fake: FakeJira) -> None:
    auth = httpx.BasicAuth(fake.email, fake.token)
    issue = {"fields": {"project": {"key": "ENG"}, "issuetype": {"name": "Task"}, "summary": "s"}}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app), base_url=SITE, auth=auth) as http:
        too_many = await http.post("/rest/api/3/issue/bulk", json={"issueUpdates": [issue] * 51})
        assert too_many.status_code == 400 and fake.counters.creates == 0
        mixed = await http.post("/rest/api/3/issue/bulk", json={"issueUpdates": [issue, {"fields": {}}, issue]})
    assert mixed.status_code == 201
    body = mixed.json()
    assert [i["key"] for i in body["issues"]] == ["ENG-1", "ENG-2"]
    [error] = body["errors"]
    assert error["failedElementNumber"] == 1 and error["status"] == 400
    assert set(error["elementErrors"]) == {"errorMessages", "errors"}

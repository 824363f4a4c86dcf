"""One rate limit per credential across processes, kept in the state store (PostgreSQL and SQLite).

Four worker processes send as fast as the shared limiter lets them to one loopback server that
records when each request arrived; the assertions count arrivals per window as the server saw them
(generous slack for a loaded 2-core machine), never time the test itself. Without the shared limiter
each process would take the whole rate, four times the limit.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import multiprocessing
import threading
import time
import uuid
from typing import Any

import httpx
import pytest

from connectors.http import Rate, RetryPolicy, make_client
from sync_assets.state import StateStore, rate_limits
from tests.fakes.loopback import serve_app

WORKERS = 4
RATE = Rate(20, 1, burst=2)


class Arrivals:
    """A raw ASGI app: 200 to every request, 429 with ``Retry-After`` to the n-th; records arrivals."""

    def __init__(self, answer_429_at: int | None = None, retry_after: int = 3) -> None:
        self.answer_429_at = answer_429_at
        self.retry_after = retry_after
        self.seen: list[tuple[float, str, int]] = []  # (arrival, worker, status)
        self._lock = threading.Lock()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        worker = dict(scope["headers"]).get(b"x-worker", b"?").decode()
        with self._lock:
            status = 429 if len(self.seen) + 1 == self.answer_429_at else 200
            self.seen.append((time.time(), worker, status))
        headers = [(b"content-type", b"application/json")]
        if status == 429:
            headers.append((b"retry-after", str(self.retry_after).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"{}"})


def _worker(url: str, key: str, name: str, requests: int, start: Any) -> None:
    """One run process: its own store and client, the store's shared limits, two requests at a time."""
    base_url = start.get()  # the server starts after the fork: no thread of it is copied here
    store = StateStore(url)

    async def main() -> None:
        async with make_client(
            service="Fake",
            base_url=base_url,
            credential=key,
            rate=RATE,
            headers={"X-Worker": name},
            retry=RetryPolicy(jitter=0),
        ) as client:
            queue = list(range(requests))

            async def lane() -> None:
                while queue:
                    queue.pop()
                    (await client.get("/r")).raise_for_status()

            await asyncio.gather(lane(), lane())

    try:
        with store.shared_rate_limits():  # what the asset body does around its pass
            asyncio.run(main())
    finally:
        store.dispose()


def _run_workers(url: str, app: Arrivals, key: str, requests: int) -> None:
    """Fork the workers (they start in milliseconds: a spawned one would import Dagster), then serve."""
    ctx = multiprocessing.get_context("fork")
    start = ctx.SimpleQueue()
    procs = [ctx.Process(target=_worker, args=(url, key, f"w{i}", requests, start)) for i in range(WORKERS)]
    for p in procs:
        p.start()
    try:
        with serve_app(app, name="arrivals") as base_url:
            for _ in procs:
                start.put(base_url)
            for p in procs:
                p.join(180)
        assert [p.exitcode for p in procs] == [0] * WORKERS
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()


def _max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        j = max(j, i)
        while j < len(times) and times[j] < t + window:
            j += 1
        best = max(best, j - i)
    return best


@pytest.fixture
def url(store: StateStore) -> str:
    """The URL of the conftest's store (SQLite, and the real PostgreSQL), emptied for this test."""
    return store.url


def test_four_processes_on_one_credential_stay_within_its_limit(url, store):
    app = Arrivals()
    key = f"fake:{uuid.uuid4().hex[:12]}"
    _run_workers(url, app, key, requests=30)
    times = [t for t, _, _ in app.seen]
    assert len(times) == WORKERS * 30
    assert {w for _, w, _ in app.seen} == {f"w{i}" for i in range(WORKERS)}
    # The limit is 20/s with a burst of 2; one process alone would be allowed as much, four 80/s.
    # Slack: a request delayed on its way (a busy CPU) can arrive in the window of the next ones.
    for window, slack in ((1.0, 4), (3.0, 4)):
        allowed = RATE.capacity + window * RATE.requests / RATE.per_seconds + slack
        assert _max_in_window(times, window) <= allowed, (window, _max_in_window(times, window))
    row = store.rate_limit(key)
    assert row is not None and row.tat >= max(times) - 1.0


def test_a_retry_after_seen_by_one_process_blocks_the_others(url, store):
    app = Arrivals(answer_429_at=12, retry_after=3)
    key = f"fake:{uuid.uuid4().hex[:12]}"
    _run_workers(url, app, key, requests=15)
    limited = [(t, w) for t, w, s in app.seen if s == 429]
    assert len(limited) == 1
    at, who = limited[0]
    # A slot claimed just before the block may still go (a process holds at most a burst's worth,
    # 0.1 s at this rate); after that nobody, in any process, sends until Retry-After is over.
    during = [(round(t - at, 2), w) for t, w, _ in app.seen if at + 1.0 <= t < at + 2.9]
    assert during == []
    others_after = [w for t, w, _ in app.seen if t >= at + 2.9 and w != who]
    assert others_after, "the other processes resumed after the block"
    assert len(app.seen) == WORKERS * 15 + 1  # every request went through in the end
    row = store.rate_limit(key)
    assert row is not None and row.blocked_until == pytest.approx(at + 3, abs=0.5)


def _notion_route(fake: Any, database: Any, name: str) -> Any:
    """A route of three records into the fake Notion, its destination paced at 1,000 requests/s."""
    from connectors.core import Record
    from connectors.http import HttpSettings
    from connectors.memory import MemorySource
    from connectors.notion import NotionDestination
    from sync_assets.routes import Route

    dest = NotionDestination(
        database.id,
        token=fake.token,
        token_env=None,
        database_id_env=None,
        base_url="http://notion.test",
        rate=Rate(1000, 1, burst=50),
        http=HttpSettings(transport=httpx.ASGITransport(fake.app)),
    )
    records = [Record(f"{name}-{i}", {"Name": f"{name} {i}"}) for i in range(3)]
    return Route(MemorySource(records), dest, name=name)


def test_a_run_paces_its_clients_by_the_store_and_a_test_run_by_default_does_not(store):
    from sync_assets.testing import materialize_route
    from tests.fakes.notion import FakeNotion

    fake = FakeNotion(rate=None)  # real clock: a shared schedule is in epoch seconds
    database = fake.add_database({"Name": "title", "Key": "rich_text"}, title="Shared")

    local = _notion_route(fake, database, "local_limits")
    assert materialize_route(local, store=store).success
    key = local.destination.rate_limit_key
    assert store.rate_limit(key) is None  # materialize_route keeps the in-process limiter by default

    assert materialize_route(_notion_route(fake, database, "shared_limits"), store=store, shared_limits=True).success
    row = store.rate_limit(key)
    assert row is not None and row.tat > dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp()
    with store.engine.connect() as conn:
        assert conn.execute(rate_limits.select()).fetchall()[0].key == key


@pytest.mark.parametrize(
    ("value", "on"), [(None, True), ("", True), ("1", True), ("0", False), ("false", False), ("OFF", False)]
)
def test_runs_share_the_schedule_unless_the_variable_turns_it_off(monkeypatch, value, on):
    from sync_assets.factory import shared_limits_enabled

    if value is None:
        monkeypatch.delenv("DURABLE_SYNC_SHARED_LIMITS", raising=False)
    else:
        monkeypatch.setenv("DURABLE_SYNC_SHARED_LIMITS", value)
    assert shared_limits_enabled() is on


def test_a_dagster_run_with_nothing_set_paces_by_the_store(store, monkeypatch):
    """What a daemon- or UI-launched run does: no test helper, no variable."""
    import dagster as dg

    from sync_assets.factory import build_route
    from sync_assets.io_managers import LinkMapIOManager
    from sync_assets.resources import SyncStateResource
    from tests.fakes.notion import FakeNotion

    monkeypatch.delenv("DURABLE_SYNC_SHARED_LIMITS", raising=False)
    fake = FakeNotion(rate=None)
    database = fake.add_database({"Name": "title", "Key": "rich_text"}, title="Default")
    route = _notion_route(fake, database, "default_on")
    dest = route.destination
    rd = build_route(route, dg.AssetKey([route.source.name]), ())
    instance = dg.DagsterInstance.ephemeral()
    (partition,) = route.specs_by_partition()
    instance.add_dynamic_partitions(route.name, [partition])
    StateStore._shared[store.url] = store
    state = SyncStateResource(url=store.url)
    result = dg.materialize(
        [rd.asset],
        partition_key=partition,
        resources={"sync_state": state, "link_map_io_manager": LinkMapIOManager(state=state)},
        instance=instance,
    )
    assert result.success
    assert store.rate_limit(dest.rate_limit_key) is not None  # claimed from the shared schedule


def test_the_store_continues_one_schedule_across_claims_and_keeps_the_longest_block(store):
    key = f"fake:{uuid.uuid4().hex[:12]}"
    assert store.rate_limit(key) is None
    rate = Rate(4, 1, burst=2)
    first = store.claim_rate_slots(key, rate, 3)
    second = store.claim_rate_slots(key, rate, 1)  # another process's claim continues the schedule
    assert first.slots[1] == first.slots[0]  # the burst of 2
    assert first.slots[2] - first.slots[0] == pytest.approx(0.25)
    assert second.slots[0] - first.slots[2] == pytest.approx(0.25)
    until = time.time() + 60
    store.block_rate_limit(key, until)
    store.block_rate_limit(key, until - 30)  # a shorter block later does not shorten it
    blocked = store.claim_rate_slots(key, rate, 2)
    assert blocked.slots == () and blocked.blocked_until == pytest.approx(until, abs=1e-3)
    row = store.rate_limit(key)
    assert row is not None and row.blocked_until == pytest.approx(until, abs=1e-3)
    assert row.tat - second.slots[0] == pytest.approx(0.5)  # the next slot is due 0.25 s after

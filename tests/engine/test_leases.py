"""One pass per partition, one listing per route, one create per key: whatever started the passes.

Passes run in threads (each with its own event loop), so on PostgreSQL their transactions really
overlap; the destination never deduplicates, so any double create shows as a duplicate row.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.core import Record
from connectors.memory import MemoryDestination, MemorySource
from sync_assets.engine import LeaseLost, PartitionBusy, PassOptions, run_pass
from sync_assets.routes import Route
from sync_assets.state import LISTING_LEASE, Fence, StateStore


def recs(n: int, prefix: str = "k", version: int = 0) -> list[Record]:
    return [Record(f"{prefix}{i:05d}", {"Name": f"{prefix} {i} v{version}", "Rank": i}) for i in range(n)]


def in_threads(*calls: Any) -> list[Any]:
    """Run each ``(route, partition, store, options)`` pass in its own thread and event loop, all at
    once; returns each pass's result or the exception it raised."""
    results: list[Any] = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def one(i: int, route: Route, partition: str, store: StateStore, options: PassOptions) -> None:
        start.wait()
        try:
            results[i] = asyncio.run(run_pass(route, partition, store, options))
        except BaseException as err:  # the test inspects it
            results[i] = err

    threads = [threading.Thread(target=one, args=(i, *call)) for i, call in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def test_two_passes_of_one_partition_at_once_write_each_row_once(store):
    dest = MemoryDestination(latency=0.03)
    route = Route(MemorySource({"all": recs(300)}, page_size=50), dest)
    first, second = in_threads(
        (route, "all", store, PassOptions(lease_wait=0.3)),
        (route, "all", store, PassOptions(lease_wait=0.3)),
    )
    outcomes = sorted(type(r).__name__ for r in (first, second))
    assert outcomes == ["PartitionBusy", "PassResult"]
    assert len(dest.rows) == 300 and dest.duplicates() == {}
    busy = first if isinstance(first, PartitionBusy) else second
    assert "nothing was written" in str(busy)


def test_a_second_pass_that_waits_long_enough_runs_after_the_first_and_writes_nothing(store):
    dest = MemoryDestination(latency=0.001)
    route = Route(MemorySource({"all": recs(200)}, page_size=50), dest)
    first, second = in_threads(
        (route, "all", store, PassOptions(lease_wait=60)),
        (route, "all", store, PassOptions(lease_wait=60)),
    )
    stats = sorted([(first.stats.created, first.stats.unchanged), (second.stats.created, second.stats.unchanged)])
    assert stats == [(0, 200), (200, 0)]
    assert len(dest.rows) == 200 and dest.duplicates() == {}


async def test_a_dead_holders_lease_is_taken_over_and_the_pass_resumes_at_its_checkpoint(store, caplog):
    from connectors.core import TransientError

    dest = MemoryDestination()
    source = MemorySource({"all": recs(500)}, page_size=100, fail_at_page={3: TransientError("503")})
    route = Route(source, dest)
    with pytest.raises(TransientError):
        await run_pass(route, "all", store)
    # A worker that died holding the partition: its lease was never released.
    taken, _ = store.acquire_lease(route.name, "all", "dead-holder", seconds=0.5, run_id="run-dead")
    assert taken
    started = time.monotonic()
    result = await run_pass(route, "all", store, PassOptions(lease_seconds=0.5, lease_wait=10))
    assert time.monotonic() - started >= 0.3  # it waited for the lease to run out
    assert result.stats.resumed_from == 3
    assert len(dest.rows) == 500 and dest.duplicates() == {}
    assert "took over the lease of run run-dead" in caplog.text
    lease = store.lease(route.name, "all")
    assert lease is not None and lease.released_at is not None  # given back at the end


async def test_a_pass_whose_lease_was_taken_over_stops_and_commits_nothing_more(store):
    dest = MemoryDestination(latency=0.001)
    route = Route(MemorySource({"all": recs(1000)}, page_size=100), dest)

    async def steal() -> None:
        while len(dest.rows) < 150:
            await asyncio.sleep(0.001)
        # As if this pass had stalled past its lease: it expires, and another pass takes over.
        with store.engine.begin() as conn:
            conn.exec_driver_sql(
                "UPDATE ds_leases SET expires_at = '2000-01-01 00:00:00' WHERE name = 'all'"
                if store.dialect == "sqlite"
                else "UPDATE ds_leases SET expires_at = now() - interval '1 day' WHERE name = 'all'"
            )
        taken, _ = store.acquire_lease(route.name, "all", "thief", seconds=60)
        assert taken

    thief = asyncio.ensure_future(steal())
    with pytest.raises(LeaseLost):
        await run_pass(route, "all", store)
    await thief
    committed = store.link_count(route.name, "all")
    # The pages in flight when the lease went are not committed: the new holder redoes them,
    # and their creates were claimed, so its listing adopts them instead of creating them again.
    assert committed < len(dest.rows) <= 1000
    store.release_lease(route.name, Fence("all", "thief", 60))
    result = await run_pass(route, "all", store)
    assert result.stats.reconciled and dest.duplicates() == {} and len(dest.rows) == 1000


def test_overlapping_full_refreshes_of_three_partitions_share_one_listing_and_mark_nothing_gone(store):
    dest = MemoryDestination(latency=0.003, list_page_size=50)
    source = MemorySource({p: recs(300, prefix=p) for p in "abc"}, page_size=100)
    route = Route(source, dest)
    for p in "abc":
        asyncio.run(run_pass(route, p, store))
    assert len(dest.rows) == 900
    lists_before = dest.counters.list_calls
    results = in_threads(*[(route, p, store, PassOptions(full_refresh=True)) for p in "abc"])
    for result in results:
        assert not isinstance(result, BaseException), result
        assert result.stats.gone == 0 and result.stats.created == 0
        assert result.stats.updated == 300
    assert len(dest.rows) == 900 and dest.duplicates() == {}
    # One listing of the whole destination (18 calls of 50 rows), shared by the three passes.
    assert dest.counters.list_calls - lists_before == 18
    assert store.link_count(route.name) == 900
    # A later normal pass of each partition finds everything linked and unchanged.
    for p in "abc":
        again = asyncio.run(run_pass(route, p, store))
        assert (again.stats.created, again.stats.updated, again.stats.unchanged) == (0, 0, 300)


def test_keys_shared_by_two_partitions_running_at_once_are_created_once(store):
    dest = MemoryDestination(latency=0.003)
    shared = recs(20, prefix="shared")
    source = MemorySource({"a": shared, "b": [*shared, *recs(5, prefix="b")]}, page_size=10)
    route = Route(source, dest)
    a, b = in_threads((route, "a", store, PassOptions()), (route, "b", store, PassOptions()))
    assert not isinstance(a, BaseException) and not isinstance(b, BaseException), (a, b)
    assert dest.duplicates() == {}
    assert len(dest.rows) == 25
    assert a.stats.failed == 0 and b.stats.failed == 0
    assert store.pending_intents(route.name) == 0


async def test_a_create_whose_link_was_lost_is_adopted_as_unchanged_and_counted_as_created(store, monkeypatch):
    dest = MemoryDestination()
    route = Route(MemorySource({"all": recs(250)}, page_size=100), dest)
    real_commit = store.commit_page
    calls = {"n": 0}

    def lose_second_page(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise sa.exc.OperationalError("COMMIT", {}, Exception("server closed the connection"))
        return real_commit(*args, **kwargs)

    monkeypatch.setattr(store, "commit_page", lose_second_page)
    with pytest.raises(sa.exc.OperationalError):
        await run_pass(route, "all", store)
    monkeypatch.setattr(store, "commit_page", real_commit)
    assert len(dest.rows) == 200 and store.pending_intents(route.name, "all") == 100
    updates_before = dest.counters.updates
    result = await run_pass(route, "all", store)
    assert result.stats.adopted == 100 and result.stats.resumed_from == 1
    # The pass's creates: 100 committed before the cut, 100 adopted, 50 new; none an update.
    assert (result.stats.created, result.stats.updated, result.stats.unchanged) == (250, 0, 0)
    assert dest.counters.updates == updates_before  # nothing re-sent
    assert len(dest.rows) == 250 and dest.duplicates() == {}


async def test_a_pass_waits_for_a_listing_in_progress_instead_of_deleting_it(store):
    dest = MemoryDestination()
    route = Route(MemorySource({"all": recs(50)}, page_size=50), dest)
    # Another partition's pass is listing the route right now.
    taken, _ = store.acquire_lease(route.name, LISTING_LEASE, "lister", seconds=60, run_id="run-lister")
    assert taken

    async def finish_listing_later() -> None:
        await asyncio.sleep(0.4)
        rid = store.begin_listing(route.name)
        store.finish_listing(route.name, rid, authoritative=False, fence=Fence(LISTING_LEASE, "lister", 60))
        store.release_lease(route.name, Fence(LISTING_LEASE, "lister", 60))

    later = asyncio.ensure_future(finish_listing_later())
    started = time.monotonic()
    result = await run_pass(route, "all", store)
    await later
    assert time.monotonic() - started >= 0.35
    assert result.stats.created == 50 and result.stats.reconciled
    # Its listing (which began after this pass took the partition... or not) is shared, never
    # run concurrently with the other one.
    assert dest.counters.list_calls <= 1


def test_lease_rows_are_per_route_and_released(store):
    fence = Fence("p", "h1", 30)
    assert store.acquire_lease("r1", "p", "h1", seconds=30)[0]
    assert not store.acquire_lease("r1", "p", "h2", seconds=30)[0]
    assert store.acquire_lease("r2", "p", "h2", seconds=30)[0]  # another route: another lease
    assert store.renew_lease("r1", fence)
    store.release_lease("r1", fence)
    assert not store.renew_lease("r1", fence)
    taken, previous = store.acquire_lease("r1", "p", "h2", seconds=30)
    assert taken and previous is not None and previous.released_at is not None
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=31)
    taken, previous = store.acquire_lease("r1", "p", "h3", seconds=30, now=later)
    assert taken and previous is not None and previous.holder == "h2" and previous.released_at is None


async def test_a_targeted_pass_names_the_keys_the_source_did_not_return(store):
    route = Route(MemorySource({"all": recs(10)}, page_size=5), MemoryDestination())
    result = await run_pass(route, "all", store, PassOptions(only_items=("k00003", "nope", "gone")))
    assert result.stats.created == 1
    assert result.stats.not_found == ["nope", "gone"]  # in the order asked

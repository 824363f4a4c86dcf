"""LumaDestination driven by the real engine (no Dagster): idempotent passes, per-record errors, the 200/min
limit, auth pauses, and the create-then-link crash window that a destination without our key has.

The crash window, measured here (README "The crash window"):

- **A lost answer** (Luma created the event; the response never arrived): the create is not resent, the
  pass stops with ``TransientError``, the record's intent stays; the next pass creates it AGAIN. Exactly
  one duplicate per lost answer — no commit policy can avoid it, since nobody ever learned the first
  event's id.
- **A killed process** (Luma answered; the process died before the link was committed): the engine
  commits each link right after its create for ``stores_keys=False`` destinations, so only the create
  in flight is forgotten: one duplicate. (With links committed once per page, as before that engine
  change, a crash after the k-th create of a page duplicated k events.)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from connectors.core import AuthError, RateLimited, Record, TransientError
from connectors.http import RetryPolicy
from connectors.luma import LumaDestination
from connectors.memory import MemorySource
from sync_assets.engine import PassOptions, PassResult, run_pass
from sync_assets.routes import Route
from sync_assets.state import StateStore
from tests.connectors.luma.helpers import DestinationFactory
from tests.fakes.github import FakeClock
from tests.fakes.luma import FakeEvent, FakeLuma

UTC = dt.UTC
PARTITION = "events"


def records(n: int, *, hour: int = 10) -> list[Record]:
    return [
        Record(
            f"talk-{i:03d}",
            {
                "Name": f"Talk {i}",
                "Start": dt.datetime(2024, 7, 1 + i % 28, hour, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),
                "End": dt.datetime(2024, 7, 1 + i % 28, hour + 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),
                "Speaker": f"Speaker {i}",
            },
            body=f"Abstract of talk {i}",
        )
        for i in range(n)
    ]


@pytest.fixture
def store(tmp_path) -> Iterator[StateStore]:
    s = StateStore(f"sqlite:///{tmp_path}/s.db")
    yield s
    s.dispose()


def route(dest: LumaDestination, rows: list[Record], *, page_size: int = 100) -> Route:
    return Route(MemorySource({PARTITION: rows}, page_size=page_size), dest, name="memory_to_luma")


async def sync(r: Route, store: StateStore) -> PassResult:
    return await run_pass(r, PARTITION, store, PassOptions())


def duplicates(fake: FakeLuma) -> dict[str, int]:
    counts: dict[str, int] = {}
    for e in fake.events.values():
        counts[e.name] = counts.get(e.name, 0) + 1
    return {name: n for name, n in counts.items() if n > 1}


# --------------------------------------------------------------------------------------------------
# Idempotent passes


async def test_first_second_and_changed_passes(
    make_dest: DestinationFactory, fake: FakeLuma, store: StateStore
) -> None:
    rows = records(5)
    r = route(make_dest(), rows, page_size=2)

    first = await sync(r, store)
    assert (first.stats.created, first.stats.failed, first.stats.pages) == (5, 0, 3)
    assert sorted(e.name for e in fake.events.values()) == [f"Talk {i}" for i in range(5)]
    assert store.link_count(r.name, PARTITION) == 5

    requests = len(fake.log)
    second = await sync(r, store)
    assert (second.stats.created, second.stats.updated, second.stats.unchanged) == (0, 0, 5)
    assert second.stats.destination_calls == 0 and len(fake.log) == requests  # not one request to Luma

    moved = Record(rows[3].primary_key, {**rows[3].properties, "Name": "Talk 3 (moved)"}, rows[3].body)
    r.source.records[PARTITION][3] = moved  # type: ignore[attr-defined]
    third = await sync(r, store)
    assert (third.stats.created, third.stats.updated, third.stats.unchanged) == (0, 1, 4)
    (update,) = [c for c in fake.log[requests:] if c.path == "/v1/event/update"]
    linked = dict(store.iter_links(r.name, PARTITION))
    assert update.body["event_id"] == linked["talk-003"]
    assert fake.events[linked["talk-003"]].name == "Talk 3 (moved)"
    assert len(fake.events) == 5 and duplicates(fake) == {}


async def test_bad_records_fail_alone_and_the_rest_is_synced(
    make_dest: DestinationFactory, fake: FakeLuma, store: StateStore
) -> None:
    rows = records(6)
    rows[1] = Record("no-start", {"Name": "No start"})
    rows[2] = Record("bad-date", {"Name": "Bad date", "Start": "2024-13-45T25:00:00Z"})
    rows[3] = Record("naive", {"Name": "Naive", "Start": dt.datetime(2024, 7, 1, 10, 0)})
    rows[4] = Record("long-name", {"Name": "x" * 300, "Start": dt.datetime(2024, 7, 1, 10, 0, tzinfo=UTC)})
    r = route(make_dest(), rows)

    result = await sync(r, store)

    assert (result.stats.created, result.stats.failed) == (2, 4)
    failed = dict(result.failures)
    assert set(failed) == {"no-start", "bad-date", "naive", "long-name"}
    assert "needs a start" in failed["no-start"] and "not an ISO 8601" in failed["bad-date"]
    assert "has no timezone" in failed["naive"] and "300 characters" in failed["long-name"]
    assert sorted(e.name for e in fake.events.values()) == ["Talk 0", "Talk 5"]
    assert fake.count("event/create") == 2  # the bad ones never reached Luma
    assert store.pending_intents(r.name, PARTITION) == 0  # rejected before the call: nothing half-made

    fixed = Record("no-start", {"Name": "No start", "Start": "2024-07-09T18:00:00+02:00"})
    r.source.records[PARTITION][1] = fixed  # type: ignore[attr-defined]
    again = await sync(r, store)
    assert (again.stats.created, again.stats.failed) == (1, 3)  # fixed at the source: created once
    assert duplicates(fake) == {}


async def test_a_pass_over_luma_s_per_minute_limit_waits_out_the_block(
    make_dest: DestinationFactory, fake: FakeLuma, fake_time: FakeClock, store: StateStore
) -> None:
    r = route(make_dest(), records(250))

    result = await sync(r, store)

    assert (result.stats.created, result.stats.failed) == (250, 0)
    assert fake.count(status=429) == 1  # the 201st request in the minute; the key is blocked 60 s
    assert fake_time.sleeps == [60.0]  # waited out once, on the fake clock
    assert len(fake.events) == 250 and duplicates(fake) == {}


async def test_a_block_beyond_the_toolkit_s_wait_stops_the_pass_and_pauses_nothing(
    make_dest: DestinationFactory, fake: FakeLuma, fake_time: FakeClock, store: StateStore
) -> None:
    r = route(make_dest(retry=RetryPolicy(jitter=0, max_wait=30)), records(3))
    fake.block()

    with pytest.raises(RateLimited):
        await sync(r, store)

    assert store.pauses() == {}
    fake_time.now += 61
    result = await sync(r, store)
    assert result.stats.created == 3 and len(fake.events) == 3


async def test_a_revoked_key_fails_the_pass_and_pauses_the_credential(
    make_dest: DestinationFactory, fake: FakeLuma, store: StateStore
) -> None:
    dest = make_dest(token=None)
    r = route(dest, records(3))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LUMA_API_KEY", fake.key)
        await sync(r, store)
        fake.revoke_key()
        r.source.records[PARTITION][0] = records(1, hour=12)[0]  # type: ignore[attr-defined]
        with pytest.raises(AuthError):
            await sync(r, store)

    assert list(store.pauses()) == ["credential:luma:LUMA_API_KEY"]


# --------------------------------------------------------------------------------------------------
# The crash window


async def test_a_create_whose_answer_is_lost_is_not_resent_and_the_next_pass_creates_a_second_event(
    make_dest: DestinationFactory, fake: FakeLuma, store: StateStore
) -> None:
    """CURRENT and inherent behaviour: Luma created talk-002's event, the answer was lost. The create is
    not resent (a resend could duplicate silently); the pass stops with TransientError, keeping the
    links of talk-000/001 and an intent for talk-002. Luma lists no key, so the next pass's reconcile
    adopts nothing and talk-002 is created again: ONE orphaned event, which no commit policy can avoid
    (the first event's id was never known). Later passes are idempotent."""
    r = route(make_dest(), records(5))
    fake.fail_next(2, 500, path="create", after=False)  # two plain 500s first: not retried either
    with pytest.raises(TransientError):
        await sync(r, store)
    assert fake.events == {} and fake.count("event/create") == 1  # a 500 on a create is not resent

    fake._faults.clear()
    creates = 0

    def lose_the_third(event: FakeEvent) -> None:
        nonlocal creates
        creates += 1
        if creates == 2:
            fake.lose_next_create("disconnect")  # armed for the third create of this pass

    fake.after_create.append(lose_the_third)
    with pytest.raises(TransientError):
        await sync(r, store)
    fake.after_create.clear()

    assert [e.name for e in fake.sorted_events()] == ["Talk 0", "Talk 1", "Talk 2"]
    assert fake.count("event/create", method="POST") == 1 + 3  # talk-002's create went out once
    # talk-000/001 are linked; intents remain for talk-002 (created, id unknown) and talk-003/004
    # (never attempted: the pass stopped at the ambiguous failure).
    assert store.link_count(r.name, PARTITION) == 2 and store.pending_intents(r.name, PARTITION) == 3

    second = await sync(r, store)
    assert (second.stats.created, second.stats.failed) == (3, 0)
    assert duplicates(fake) == {"Talk 2": 2}  # the measured cost of a lost answer: one orphaned event
    assert store.link_count(r.name, PARTITION) == 5 and store.pending_intents(r.name, PARTITION) == 0

    third = await sync(r, store)
    assert (third.stats.created, third.stats.updated, third.stats.destination_calls) == (0, 0, 0)
    assert len(fake.events) == 6


class ProcessDied(BaseException):
    """The worker process is gone (SIGKILL, OOM, a lost node): nothing after this reaches Luma or the store."""


class _DyingTransport(httpx.AsyncBaseTransport):
    """A transport that stops sending once the process has 'died'."""

    def __init__(self, inner: httpx.AsyncBaseTransport, died: dict[str, bool]) -> None:
        self.inner, self.died = inner, died

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.died["yes"]:
            raise ProcessDied("the process died")
        return await self.inner.handle_async_request(request)


async def kill_during_pass(
    make_dest: DestinationFactory, fake: FakeLuma, store: StateStore, rows: list[Record], *, after_creates: int
) -> None:
    """Run a pass whose process dies right after Luma created its ``after_creates``-th event: Luma
    answers, but from that moment no request leaves and no state-store statement runs."""
    died = {"yes": False}
    created = 0

    def die(event: FakeEvent) -> None:
        nonlocal created
        created += 1
        if created == after_creates:
            died["yes"] = True

    def no_statements_after_death(*_: Any) -> None:
        if died["yes"]:
            raise ProcessDied("the process died")

    fake.after_create.append(die)
    sa.event.listen(store.engine, "before_cursor_execute", no_statements_after_death)
    dest = make_dest(transport=_DyingTransport(httpx.ASGITransport(app=fake.app), died))
    try:
        with pytest.raises(ProcessDied):
            await sync(route(dest, rows), store)
    finally:
        fake.after_create.clear()
        sa.event.remove(store.engine, "before_cursor_execute", no_statements_after_death)
    assert len(fake.events) == after_creates


async def test_a_process_killed_inside_the_crash_window_duplicates_only_the_create_in_flight(
    make_dest: DestinationFactory, fake: FakeLuma, tmp_path
) -> None:
    """CURRENT behaviour: the process dies right after Luma created the 3rd event of a 5-record page
    (Luma answered; the link was not yet committed). Links are committed per create for a destination
    that cannot hold our key, so talk-000/001 survive; the next process's pass creates talk-002 again
    (at least once: one orphaned event) and talk-003/004 once; later passes are idempotent. Nothing
    is lost. Before per-create commits this crash duplicated all three events of the page."""
    url = f"sqlite:///{tmp_path}/killed.db"
    rows = records(5)
    dying = StateStore(url)
    await kill_during_pass(make_dest, fake, dying, rows, after_creates=3)
    assert dying.link_count("memory_to_luma", PARTITION) == 2  # written before the crash, per create
    dying.dispose()

    store = StateStore(url)  # a new process
    result = await sync(route(make_dest(), rows), store)

    assert {e.name for e in fake.events.values()} == {f"Talk {i}" for i in range(5)}  # nothing is lost
    assert duplicates(fake) == {"Talk 2": 2}  # only the create in flight is repeated
    assert (result.stats.created, result.stats.failed) == (3, 0)
    assert store.link_count("memory_to_luma", PARTITION) == 5
    again = await sync(route(make_dest(), rows), store)
    assert again.stats.destination_calls == 0
    store.dispose()

"""Property-based tests of the engine: generated sources, schedules, crashes and faults.

Each example is a few rounds. A round edits the source (new versions, keys added to and dropped from
specs, keys shared by specs, keys a spec yields more than once — the earlier copies with the latest
content or with other content), then runs a generated set of passes *at once* in one event loop —
several partitions, the same partition twice, full, full-refresh and targeted passes — against a
destination that never deduplicates and yields to the other passes at generated points. Faults are
generated per pass: a transient error before a create lands, a create whose answer is lost after it
landed, and a crash (the pass's process "dies": its state store refuses every further call, so its
lease is never released and its last page never commits).

After the rounds, the world quiesces (passes of every partition, one at a time, until none fails),
and then:

- every key a spec still yields is in the destination exactly once, with the source's latest content
  (for a key a spec yields more than once, its last copy's: the engine dedupes a page, last wins);
- no key was ever created twice, whatever the schedule;
- one more pass of every partition creates nothing and writes nothing, and counts as ``deduplicated``
  exactly the copies that shared a page with a later copy of their key.

A key's copies are kept on one page: the engine dedupes within a page only, and copies on two pages
that differ are rewritten by every pass (an engine bug pinned by a strict xfail test below). A key
whose first copy took over another partition's unconfirmed claim (its pass died, or lost the answer
to the create) was created again by its second copy; fixed, and pinned by the test after it.
``PROPERTY_COPIES_ACROSS_PAGES=1`` generates copies anywhere; the checks then allow the rewrites.

Every example runs on one state database per test, under a route of its own that it forgets at its
end: the schema is created once, and the passes' "processes" share one connection pool (SQLite file
creation, schema and engine per pass were a tenth of an example's time, and a fixed wait for dead
leases at quiescence four tenths; it now waits only as long as a dead pass's lease still runs).

``make test`` runs two hundred and fifty schedules on SQLite (75 to 80 s on two cores) and forty on
the real PostgreSQL (11 to 15 s); ``pytest -m slow tests/engine/test_properties.py`` runs three
thousand on SQLite and four hundred on PostgreSQL. ``PROPERTY_EXAMPLES=N`` runs N in each instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime as dt
import itertools
import os
import random
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from connectors.core import Record, TransientError
from connectors.memory import MemoryDestination, MemorySource, _MemorySession
from sync_assets import engine
from sync_assets.engine import PassOptions, run_pass
from sync_assets.routes import Route
from sync_assets.state import StateStore

KEYS = [f"k{i:02d}" for i in range(14)]
PARTITIONS = ["a", "b", "c"]

# Short leases: a "dead" pass's partition is taken over within a fraction of a second.
# (Several passes share one event loop on a busy machine: a lease much shorter than a loop turn
# would be taken over from a live pass, which no real lease of 20 s sees.)
LEASE_SECONDS = 0.25
LEASE_WAIT = 0.6

# The engine collapses a key's copies within a page (last wins), not across pages: differing copies
# of a key on two pages are each written, by every pass (the xfail test below). Until that is fixed,
# the generated sources keep a key's copies on one page; PROPERTY_COPIES_ACROSS_PAGES=1 generates them
# anywhere (400 such schedules passed once the second copy of a deferred key waited with the first).
COPIES_ACROSS_PAGES = os.environ.get("PROPERTY_COPIES_ACROSS_PAGES") == "1"

ROUTE_NUMBERS = itertools.count(1)  # every example has a route of its own in the test's database


def schedules(default: int) -> settings:
    """Hypothesis settings for ``default`` schedules (``PROPERTY_EXAMPLES`` when set)."""
    return settings(
        max_examples=int(os.environ.get("PROPERTY_EXAMPLES") or default),
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


class Crash(BaseException):
    """The pass's process died (not an Exception: nothing in the engine may catch and go on)."""


class MortalStore(StateStore):
    """A state store connection of one pass's "process": after ``die_at`` calls it crashes and then
    refuses every call, as a killed worker would (its lease is never released, its page never commits).

    It shares the test's database and connection pool (``base``) instead of opening its own: each
    call of the store is one short synchronous transaction, so no connection is held across the
    passes' awaits, and a pool per process would only cost an engine and a schema check per pass.
    """

    def __init__(self, base: StateStore, die_at: int | None) -> None:
        # Not StateStore.__init__ (which opens the database): the parts are stateless over ``db``.
        self.__dict__.update(vars(base))
        self.calls = 0
        self.die_at = die_at
        self.dead = False
        self.died_at: float | None = None  # time.monotonic() of the death

    def _tick(self) -> None:
        if self.dead:
            raise Crash("dead")
        self.calls += 1
        if self.die_at is not None and self.calls >= self.die_at:
            self.dead = True
            self.died_at = time.monotonic()
            raise Crash(f"killed at state call {self.calls}")

    def claim_creates(self, *a: Any, **k: Any) -> Any:
        self._tick()
        return super().claim_creates(*a, **k)

    def commit_page(self, *a: Any, **k: Any) -> Any:
        self._tick()
        return super().commit_page(*a, **k)

    def finish_listing(self, *a: Any, **k: Any) -> Any:
        self._tick()
        return super().finish_listing(*a, **k)

    def finish_pass(self, *a: Any, **k: Any) -> Any:
        self._tick()
        return super().finish_pass(*a, **k)

    def renew_lease(self, *a: Any, **k: Any) -> Any:
        if self.dead:
            raise Crash("dead")
        return super().renew_lease(*a, **k)

    def release_lease(self, *a: Any, **k: Any) -> Any:
        if self.dead:
            raise Crash("dead")
        return super().release_lease(*a, **k)


@dataclass
class Faults:
    seed: int
    transient_at: int | None  # the n-th create fails before it lands
    lost_at: int | None  # the n-th create lands, then its answer is lost


# The pass ("process") a destination call belongs to: its faults, and its state store, whose death
# is the process's — a killed worker sends nothing more (its coroutines in this one shared event loop
# would otherwise go on writing after it "died", which no killed process does).
PROCESS: contextvars.ContextVar[tuple[Faults, MortalStore | None]] = contextvars.ContextVar(
    "PROCESS", default=(Faults(0, None, None), None)
)


class Destination(MemoryDestination):
    """A memory destination that never deduplicates, counts every create and update per key, and
    yields to the other passes (and injects faults) where a pass's generated schedule says."""

    def __init__(self) -> None:
        super().__init__(max_concurrency=3)
        self.creates_per_key: dict[str, int] = {}
        self.updates_per_key: dict[str, int] = {}

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[_MemorySession]:
        faults, store = PROCESS.get()
        yield _Session(self, faults, store)


class _Session(_MemorySession):
    def __init__(self, dest: Destination, faults: Faults, store: MortalStore | None) -> None:
        super().__init__(dest)
        self.rng = random.Random(faults.seed)
        self.faults = faults
        self.store = store
        self.n = 0

    def _alive(self) -> None:
        if self.store is not None and self.store.dead:
            raise Crash("the process is gone: nothing more is sent")

    async def _yield(self) -> None:
        for _ in range(self.rng.randint(0, 3)):
            await asyncio.sleep(0)

    async def query_existing_rows(self) -> AsyncIterator[tuple[str, str]]:
        async for pair in super().query_existing_rows():
            await self._yield()
            yield pair

    async def create(self, record: Record, synced_at: dt.datetime) -> str:
        await self._yield()
        self._alive()
        self.n += 1
        if self.faults.transient_at == self.n:
            raise TransientError("503 before the create landed")
        rid = await super().create(record, synced_at)
        dest: Destination = self.dest  # type: ignore[assignment]
        dest.creates_per_key[record.primary_key] = dest.creates_per_key.get(record.primary_key, 0) + 1
        await self._yield()
        if self.faults.lost_at == self.n:
            raise TransientError("connection reset: the create landed, its answer was lost")
        return rid

    async def update(self, existing_id: str, record: Record, synced_at: dt.datetime) -> bool:
        await self._yield()
        self._alive()
        done = await super().update(existing_id, record, synced_at)
        dest: Destination = self.dest  # type: ignore[assignment]
        dest.updates_per_key[record.primary_key] = dest.updates_per_key.get(record.primary_key, 0) + 1
        return done


def content(key: str, version: int) -> dict[str, Any]:
    # One key has one content whatever spec yields it, so "the source's latest" is well defined.
    return {"Name": f"{key} v{version}", "Version": version}


def copy_content(key: str, version: int, position: int) -> dict[str, Any]:
    """An earlier copy of a key in one spec that differs from its last copy (the latest content)."""
    return {"Name": f"{key} v{version} copy at {position}", "Version": version}


def spec_records(entries: Sequence[tuple[str, bool]], versions: dict[str, int], page_size: int) -> list[Record]:
    """A spec's records in the generated order: ``(key, differs)``; a key's last copy has the latest
    content, an earlier copy has it too unless ``differs``. Unless ``COPIES_ACROSS_PAGES``, a copy
    that would land on a later page than the key's first is left out."""
    kept: list[tuple[int, str, bool]] = []
    first_page: dict[str, int] = {}
    for i, (key, differs) in enumerate(entries):
        page = len(kept) // page_size
        if first_page.setdefault(key, page) != page and not COPIES_ACROSS_PAGES:
            continue
        kept.append((i, key, differs))
    last = {key: i for i, key, _ in kept}
    return [
        Record(key, copy_content(key, versions[key], i) if differs and i < last[key] else content(key, versions[key]))
        for i, key, differs in kept
    ]


def pages(records: Sequence[Record], page_size: int) -> list[Sequence[Record]]:
    return [records[i : i + page_size] for i in range(0, len(records), page_size)]


def rewrites(records: Sequence[Record], page_size: int) -> dict[str, int]:
    """The updates a pass over settled rows makes per key: the engine dedupes within a page (last
    wins), so a page whose copy of a key differs from what the row holds writes it."""
    row = {r.primary_key: r.properties for r in records}  # settled: each key's last copy
    out: dict[str, int] = {}
    for page in pages(records, page_size):
        for key, props in {r.primary_key: r.properties for r in page}.items():
            if props != row[key]:
                row[key] = props
                out[key] = out.get(key, 0) + 1
    return out


def copies_sharing_a_page(records: Sequence[Record], page_size: int) -> int:
    """What a complete pass counts as ``deduplicated``: copies replaced by a later one on their page."""
    return sum(len(page) - len({r.primary_key for r in page}) for page in pages(records, page_size))


pass_strategy = st.fixed_dictionaries(
    {
        "partition": st.sampled_from(PARTITIONS),
        "mode": st.sampled_from(["full", "full", "full", "full_refresh", "targeted"]),
        "die_at": st.one_of(st.none(), st.none(), st.integers(1, 12)),
        "transient_at": st.one_of(st.none(), st.none(), st.integers(1, 8)),
        "lost_at": st.one_of(st.none(), st.none(), st.integers(1, 8)),
        "seed": st.integers(0, 2**16),
    }
)


def with_copies(keys: list[str], differ: list[bool], copies: list[tuple[int, int, bool]]) -> list[tuple[str, bool]]:
    """``keys`` with ``differ`` flags (``(key, differs)``, each key once) and more copies of some:
    ``(which, where, differs)`` puts a copy of the ``which``-th key at position ``where`` (both modulo
    the lengths)."""
    entries = list(zip(keys, differ, strict=False))
    for which, where, differs in copies:
        if keys:
            entries.insert(where % (len(entries) + 1), (keys[which % len(keys)], differs))
    return entries


# A spec: ``(key, differs)`` in the order the source yields them. Its keys (as many as a set of up to
# nine) and up to six more copies of some of them; ``differs`` gives a copy that is not a key's last
# one other content than the last (which has the key's latest).
spec_strategy = st.builds(
    with_copies,
    st.lists(st.sampled_from(KEYS), max_size=9, unique=True),
    st.lists(st.booleans(), min_size=9, max_size=9),
    st.lists(st.tuples(st.integers(0, 8), st.integers(0, 12), st.booleans()), max_size=3),
)
round_strategy = st.fixed_dictionaries(
    {
        "specs": st.fixed_dictionaries({p: spec_strategy for p in PARTITIONS}),
        "edits": st.sets(st.sampled_from(KEYS), max_size=6),
        "passes": st.lists(pass_strategy, min_size=1, max_size=4),
    }
)


rounds_strategy = st.lists(round_strategy, min_size=1, max_size=3)


@pytest.fixture(scope="module")
def sqlite_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StateStore]:
    """One SQLite state database for every example of a test (each example has a route of its own)."""
    store = StateStore(f"sqlite:///{tmp_path_factory.mktemp('prop') / 'state.sqlite3'}")
    yield store
    store.dispose()


@pytest.fixture(scope="module")
def pg_state(pg_database: str) -> Iterator[StateStore]:
    """The session's PostgreSQL test database (dropped at its end); each example forgets its route."""
    store = StateStore(pg_database)
    yield store
    store.dispose()


@schedules(250)
@given(rounds=rounds_strategy, page_size=st.integers(2, 5))
def test_generated_schedules_never_duplicate_lose_or_rewrite(sqlite_state, rounds, page_size):
    _check(sqlite_state, rounds, page_size)


@pytest.mark.postgres
@schedules(40)
@given(rounds=rounds_strategy, page_size=st.integers(2, 5))
def test_generated_schedules_on_postgres_never_duplicate_lose_or_rewrite(pg_state, rounds, page_size):
    _check(pg_state, rounds, page_size)


@pytest.mark.slow
@schedules(3000)
@given(rounds=rounds_strategy, page_size=st.integers(2, 5))
def test_thousands_of_generated_schedules(sqlite_state, rounds, page_size):
    _check(sqlite_state, rounds, page_size)


@pytest.mark.slow
@pytest.mark.postgres
@schedules(400)
@given(rounds=rounds_strategy, page_size=st.integers(2, 5))
def test_hundreds_of_generated_schedules_on_postgres(pg_state, rounds, page_size):
    _check(pg_state, rounds, page_size)


@pytest.mark.xfail(
    strict=True,
    reason="the engine dedupes a key within a page only: copies of a key on two pages that differ "
    "are both written, by every pass (reported; a fix makes this pass: drop the mark)",
)
def test_differing_copies_on_two_pages_are_not_rewritten_by_every_pass(sqlite_state):
    records = [Record("x", {"Name": "earlier copy"}), Record("y", {"Name": "y"}), Record("x", {"Name": "last copy"})]
    dest = MemoryDestination()
    route = Route(MemorySource({"a": records}, page_size=2), dest, name=f"prop{next(ROUTE_NUMBERS)}")

    async def two_passes() -> None:
        await run_pass(route, "a", sqlite_state)
        writes = dest.counters.writes
        assert dest.row("x").properties == {"Name": "last copy"}
        await run_pass(route, "a", sqlite_state)
        assert dest.counters.writes == writes

    try:
        asyncio.run(two_passes())
    finally:
        sqlite_state.forget_route(route.name)


def test_copies_on_two_pages_of_a_key_a_dead_pass_created_are_not_created_again(sqlite_state):
    # b's pass creates k and dies before it links it; c's spec yields k on two pages. c's first page
    # takes b's dead claim over and defers k (only a listing may decide to create it); its second page
    # must not create k. (A pass of b that lost the create's answer and ended leaves the same claim.)
    k = content("k", 0)
    records: dict[str, Sequence[Record]] = {
        "a": [],
        "b": [Record("k", k)],
        "c": [Record("k", k), Record("x", content("x", 0)), Record("k", k)],
    }
    dest = Destination()
    route = Route(MemorySource(records, page_size=2), dest, name=f"prop{next(ROUTE_NUMBERS)}")
    options = PassOptions(lease_seconds=LEASE_SECONDS, lease_wait=LEASE_WAIT)

    async def scenario() -> None:
        await run_pass(route, "a", sqlite_state, options)  # the route's listing: the next passes list no more
        dying = MortalStore(sqlite_state, die_at=2)  # the claim of k, then the page's commit: dead
        PROCESS.set((Faults(0, None, None), dying))
        with contextlib.suppress(Crash):
            await run_pass(route, "b", dying, options)
        assert dying.dead and dest.creates_per_key == {"k": 1}
        PROCESS.set((Faults(0, None, None), None))
        await asyncio.sleep(LEASE_SECONDS + 0.05)  # b's lease runs out
        await run_pass(route, "c", sqlite_state, options)
        assert dest.duplicates() == {}, dest.creates_per_key

    try:
        asyncio.run(scenario())
    finally:
        sqlite_state.forget_route(route.name)


def _check(state: StateStore, rounds: list[dict[str, Any]], page_size: int) -> None:
    # Deferred creates are retried after 10 ms here, not 500 ms: the other passes share the loop.
    first_delay = engine.DEFERRED_FIRST_DELAY
    engine.DEFERRED_FIRST_DELAY = 0.01
    name = f"prop{next(ROUTE_NUMBERS)}"
    try:
        asyncio.run(_guarded(_run_schedule(state, name, rounds, page_size), rounds, page_size))
    finally:
        engine.DEFERRED_FIRST_DELAY = first_delay
        state.forget_route(name)


# A hang guard, not a timing assertion: an example takes well under a second; one that has not
# finished after this long is stuck, and the failure names the schedule and where each task waits.
SCHEDULE_TIMEOUT = 180.0


async def _guarded(coro: Any, rounds: list[dict[str, Any]], page_size: int) -> None:
    task = asyncio.ensure_future(coro)
    done, _ = await asyncio.wait({task}, timeout=SCHEDULE_TIMEOUT)
    if task in done:
        task.result()
        return
    stacks = []
    for t in asyncio.all_tasks():
        if t is asyncio.current_task():
            continue
        frames = t.get_stack(limit=8)
        where = " <- ".join(
            f"{f.f_code.co_filename.rsplit('/', 1)[-1]}:{f.f_lineno} {f.f_code.co_name}" for f in frames
        )
        stacks.append(f"{t.get_name()}: {where}")
    task.cancel()
    raise AssertionError(
        f"schedule stuck after {SCHEDULE_TIMEOUT:.0f} s (page_size {page_size}): {rounds}\n" + "\n".join(stacks)
    )


async def _run_schedule(state: StateStore, name: str, rounds: list[dict[str, Any]], page_size: int) -> None:
    versions = dict.fromkeys(KEYS, 0)
    source = MemorySource({p: [] for p in PARTITIONS}, page_size=page_size)
    dest = Destination()
    route = Route(source, dest, name=name)
    stores: list[MortalStore] = []

    async def one(spec: dict[str, Any]) -> None:
        store = MortalStore(state, spec["die_at"])
        stores.append(store)
        partition = spec["partition"]
        keys = [r.primary_key for r in source.records[partition]]
        options = PassOptions(
            full_refresh=spec["mode"] == "full_refresh",
            only_items=tuple(keys[:2]) if spec["mode"] == "targeted" and keys else None,
            lease_seconds=LEASE_SECONDS,
            lease_wait=LEASE_WAIT,
        )
        PROCESS.set((Faults(spec["seed"], spec["transient_at"], spec["lost_at"]), store))
        with contextlib.suppress(BaseException):
            await run_pass(route, partition, store, options)

    for rnd in rounds:
        for k in rnd["edits"]:
            versions[k] += 1
        for p in PARTITIONS:
            source.records[p] = spec_records(rnd["specs"][p], versions, page_size)
        await asyncio.gather(*(one(spec) for spec in rnd["passes"]))
        assert all(n == 1 for n in dest.creates_per_key.values()), dest.creates_per_key

    # Quiesce: no faults; every partition in turn until each has had a complete pass that began
    # from the start (a pass resumed at a checkpoint does not re-read the pages before it, so a
    # change there waits for the next pass, as it would in production) and failed nothing.
    PROCESS.set((Faults(0, None, None), None))
    # The dead passes' leases run out: each was last renewed before its process died.
    deaths = [s.died_at for s in stores if s.died_at is not None]
    event(f"passes that died: {min(len(deaths), 3)}{'+' if len(deaths) >= 3 else ''}")
    if deaths:
        await asyncio.sleep(max(0.0, max(deaths) + LEASE_SECONDS + 0.05 - time.monotonic()))
    settled: set[str] = set()
    for _ in range(4):
        for p in PARTITIONS:
            if p not in settled:
                result = await run_pass(route, p, state, PassOptions(lease_wait=2))
                if result.stats.resumed_from is None and result.stats.failed == 0:
                    settled.add(p)
    assert settled == set(PARTITIONS)

    # A key's latest content is its last copy in every spec that yields it (one content per key).
    latest = [{r.primary_key: r.properties for r in source.records[p]} for p in PARTITIONS]
    expected = {key: props for spec in latest for key, props in spec.items()}
    assert all(expected[key] == props for spec in latest for key, props in spec.items())

    def check_rows() -> None:
        rows = dest.rows_by_key()
        assert dest.duplicates() == {}
        assert all(n == 1 for n in dest.creates_per_key.values()), dest.creates_per_key
        for key, props in expected.items():
            assert key in rows, f"{key} lost"
            assert rows[key][0].properties == props, key

    check_rows()
    for p in PARTITIONS:
        records = source.records[p]
        if copies_sharing_a_page(records, page_size):
            event("a spec yields a key twice on one page")
        if rewrites(records, page_size):
            event("a spec yields differing copies of a key on two pages")
        creates, updates = dest.counters.creates, dict(dest.updates_per_key)
        result = await run_pass(route, p, state)
        assert (result.stats.created, result.stats.failed) == (0, 0), (p, result.stats)
        assert dest.counters.creates == creates
        written = {k: n - updates.get(k, 0) for k, n in dest.updates_per_key.items() if n != updates.get(k, 0)}
        # Only keys whose differing copies are on different pages, each at most once per page change.
        allowed = rewrites(records, page_size)
        assert all(n <= allowed.get(k, 0) for k, n in written.items()), (p, written, allowed)
        assert result.stats.updated == sum(written.values()), (p, result.stats)
        assert result.stats.deduplicated == copies_sharing_a_page(records, page_size), (p, result.stats)
    check_rows()

"""Property-based tests of the engine: generated sources, schedules, crashes and faults.

Each example is a few rounds. A round edits the source (new versions, keys added to and dropped from
specs, keys shared by specs), then runs a generated set of passes *at once* in one event loop —
several partitions, the same partition twice, full, full-refresh and targeted passes — against a
destination that never deduplicates and yields to the other passes at generated points. Faults are
generated per pass: a transient error before a create lands, a create whose answer is lost after it
landed, and a crash (the pass's process "dies": its state store refuses every further call, so its
lease is never released and its last page never commits).

After the rounds, the world quiesces (passes of every partition, one at a time, until none fails),
and then:

- every key a spec still yields is in the destination exactly once, with the source's latest content;
- no key was ever created twice, whatever the schedule;
- one more pass of every partition writes nothing.

``make test`` runs a hundred and fifty schedules; ``pytest -m slow tests/engine/test_properties.py``
runs three thousand.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime as dt
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.core import Record, TransientError
from connectors.memory import MemoryDestination, MemorySource, _MemorySession
from sync_assets import engine
from sync_assets.engine import PassOptions, run_pass
from sync_assets.routes import Route
from sync_assets.state import StateStore

COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]}

KEYS = [f"k{i:02d}" for i in range(14)]
PARTITIONS = ["a", "b", "c"]


class Crash(BaseException):
    """The pass's process died (not an Exception: nothing in the engine may catch and go on)."""


class MortalStore(StateStore):
    """A state store connection of one pass's "process": after ``die_at`` calls it crashes and then
    refuses every call, as a killed worker would (its lease is never released, its page never commits)."""

    def __init__(self, url: str, die_at: int | None) -> None:
        super().__init__(url)
        self.calls = 0
        self.die_at = die_at
        self.dead = False

    def _tick(self) -> None:
        if self.dead:
            raise Crash("dead")
        self.calls += 1
        if self.die_at is not None and self.calls >= self.die_at:
            self.dead = True
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
    """A memory destination that never deduplicates, counts every create per key, and yields to the
    other passes (and injects faults) where a pass's generated schedule says."""

    def __init__(self) -> None:
        super().__init__(max_concurrency=3)
        self.creates_per_key: dict[str, int] = {}

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
        return await super().update(existing_id, record, synced_at)


def content(key: str, version: int) -> dict[str, Any]:
    # One key has one content whatever spec yields it, so "the source's latest" is well defined.
    return {"Name": f"{key} v{version}", "Version": version}


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
round_strategy = st.fixed_dictionaries(
    {
        "specs": st.fixed_dictionaries({p: st.sets(st.sampled_from(KEYS), max_size=9) for p in PARTITIONS}),
        "edits": st.sets(st.sampled_from(KEYS), max_size=6),
        "passes": st.lists(pass_strategy, min_size=1, max_size=4),
    }
)


rounds_strategy = st.lists(round_strategy, min_size=1, max_size=3)


@settings(max_examples=150, **COMMON)
@given(rounds=rounds_strategy, page_size=st.integers(2, 5))
def test_generated_schedules_never_duplicate_lose_or_rewrite(tmp_path_factory, rounds, page_size):
    _check(tmp_path_factory, rounds, page_size)


@pytest.mark.slow
@settings(max_examples=3000, **COMMON)
@given(rounds=rounds_strategy, page_size=st.integers(2, 5))
def test_thousands_of_generated_schedules(tmp_path_factory, rounds, page_size):
    _check(tmp_path_factory, rounds, page_size)


def _check(tmp_path_factory: Any, rounds: list[dict[str, Any]], page_size: int) -> None:
    url = f"sqlite:///{tmp_path_factory.mktemp('prop') / 'state.sqlite3'}"
    # Deferred creates are retried after 10 ms here, not 500 ms: the other passes share the loop.
    first_delay = engine.DEFERRED_FIRST_DELAY
    engine.DEFERRED_FIRST_DELAY = 0.01
    try:
        asyncio.run(_guarded(_run_schedule(url, rounds, page_size), rounds, page_size))
    finally:
        engine.DEFERRED_FIRST_DELAY = first_delay


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


async def _run_schedule(url: str, rounds: list[dict[str, Any]], page_size: int) -> None:
    versions = dict.fromkeys(KEYS, 0)
    source = MemorySource({p: [] for p in PARTITIONS}, page_size=page_size)
    dest = Destination()
    route = Route(source, dest, name="prop")
    stores: list[StateStore] = []
    # Short leases: a "dead" pass's partition is taken over within a fraction of a second.
    # (Several passes share one event loop on a busy machine: a lease much shorter than a loop turn
    # would be taken over from a live pass, which no real lease of 20 s sees.)
    lease = {"lease_seconds": 0.25, "lease_wait": 0.6}

    def set_specs(specs: dict[str, set[str]]) -> None:
        for p in PARTITIONS:
            source.records[p] = [Record(k, content(k, versions[k])) for k in sorted(specs[p])]

    async def one(spec: dict[str, Any]) -> None:
        store = MortalStore(url, spec["die_at"])
        stores.append(store)
        partition = spec["partition"]
        keys = [r.primary_key for r in source.records[partition]]
        options = PassOptions(
            full_refresh=spec["mode"] == "full_refresh",
            only_items=tuple(keys[:2]) if spec["mode"] == "targeted" and keys else None,
            **lease,
        )
        PROCESS.set((Faults(spec["seed"], spec["transient_at"], spec["lost_at"]), store))
        with contextlib.suppress(BaseException):
            await run_pass(route, partition, store, options)

    try:
        for rnd in rounds:
            for k in rnd["edits"]:
                versions[k] += 1
            set_specs(rnd["specs"])
            await asyncio.gather(*(one(spec) for spec in rnd["passes"]))
            assert all(n == 1 for n in dest.creates_per_key.values()), dest.creates_per_key

        # Quiesce: no faults; every partition in turn until each has had a complete pass that began
        # from the start (a pass resumed at a checkpoint does not re-read the pages before it, so a
        # change there waits for the next pass, as it would in production) and failed nothing.
        PROCESS.set((Faults(0, None, None), None))
        calm = StateStore(url)
        stores.append(calm)
        await asyncio.sleep(0.3)  # the dead passes' leases run out
        settled: set[str] = set()
        for _ in range(4):
            for p in PARTITIONS:
                if p not in settled:
                    result = await run_pass(route, p, calm, PassOptions(lease_wait=2))
                    if result.stats.resumed_from is None and result.stats.failed == 0:
                        settled.add(p)
        assert settled == set(PARTITIONS)

        expected = {r.primary_key: r.properties for p in PARTITIONS for r in source.records[p]}
        rows = dest.rows_by_key()
        assert dest.duplicates() == {}
        assert all(n == 1 for n in dest.creates_per_key.values()), dest.creates_per_key
        for key, props in expected.items():
            assert key in rows, f"{key} lost"
            assert rows[key][0].properties == props, key
        writes = dest.counters.writes
        for p in PARTITIONS:
            result = await run_pass(route, p, calm)
            assert (result.stats.created, result.stats.updated, result.stats.failed) == (0, 0, 0), (p, result.stats)
        assert dest.counters.writes == writes
    finally:
        for store in stores:
            store.dispose()

"""Faults injected into the fake Notion destination during a 60-record pass (3 source pages of 20).

Every fault is armed at the 25th create (mid page 2). Each case ends either with a complete, correct
destination (60 pages, one per key) — possibly after re-running the pass as Dagster's retries would,
resuming at the checkpoint — or with a clear pause/deferral. Requests are counted at the transport, so
retries are bounded and nothing is sent while paused or blocked. The fake clock means nothing sleeps.
"""

from __future__ import annotations

import email.utils
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy.exc

from connectors.core import AuthError, RateLimited, TransientError
from sync_assets.engine import PassOptions, Paused, run_pass
from sync_assets.state import StateStore
from tests.reliability.helpers import N_RECORDS, PARTITION, NotionEnv, make_env

pytestmark = pytest.mark.reliability

ARM_AT = 25  # the create (1-based) at which a fault is armed
CREATE = r"^/v1/pages$"
# A clean pass: 60 creates plus a few reads (database, data source, the first reconcile's query).
CLEAN_OVERHEAD = 10

Inject = Callable[[NotionEnv, httpx.Request, int], httpx.Response | None]


def arm(n: int, status: int, **kwargs: Any) -> Inject:
    def inject(env: NotionEnv, request: httpx.Request, count: int) -> None:
        if count == ARM_AT:
            env.fake.fail_next(n, status, method="POST", path=CREATE, **kwargs)

    return inject


def raise_transport(exc: type[httpx.TransportError], times: int = 1) -> Inject:
    def inject(env: NotionEnv, request: httpx.Request, count: int) -> None:
        if ARM_AT <= count < ARM_AT + times:
            raise exc("injected", request=request)

    return inject


def http_date_429(times: int, wait: int) -> Inject:
    """429 with ``Retry-After`` as an HTTP date (the fake only sends seconds), answered by the wrapper."""

    def inject(env: NotionEnv, request: httpx.Request, count: int) -> httpx.Response | None:
        if ARM_AT <= count < ARM_AT + times:
            env.extra["date_429"] = env.extra.get("date_429", 0) + 1
            when = email.utils.formatdate(env.clock.now + wait, usegmt=True)
            return httpx.Response(
                429,
                headers={"Retry-After": when},
                json={"object": "error", "status": 429, "code": "rate_limited", "message": "slow down"},
            )
        return None

    return inject


def revoke(env: NotionEnv, request: httpx.Request, count: int) -> None:
    if count == ARM_AT:
        env.fake.revoke_token(env.fake.token)


def nothing(env: NotionEnv, request: httpx.Request, count: int) -> None:
    return None


@dataclass(frozen=True)
class Fault:
    id: str
    inject: Inject
    raises: tuple[type[BaseException], ...] = ()  # what the passes before the complete one raise
    extra: int = 0  # requests allowed above a clean pass (retries, a reconcile listing per re-run)
    slept: float | None = None  # a server-named wait that must have been slept (fake time)


FAULTS = [
    Fault("clean", nothing),
    Fault("429-burst-retry-after-seconds", arm(3, 429, retry_after=2), extra=3, slept=2),
    Fault("429-retry-after-http-date", http_date_429(2, wait=7), extra=0, slept=7),
    Fault("429-without-retry-after", arm(3, 429), extra=3),
    # 16 = 3 writers x 5 retries + 1: one create surely runs out of attempts.
    # A create is never resent after an ambiguous 500/502 (Notion may have acted): the pass stops,
    # the next one reconciles its intents and creates what is missing.
    Fault("500-single", arm(1, 500), raises=(TransientError,), extra=6),
    Fault("502-single", arm(1, 502), raises=(TransientError,), extra=6),
    Fault("503-single", arm(1, 503), extra=1),
    Fault("503-burst-over-budget", arm(16, 503), raises=(TransientError,), extra=24),
    Fault("read-timeout", raise_transport(httpx.ReadTimeout), raises=(TransientError,), extra=6),
    Fault("connection-reset", raise_transport(httpx.RemoteProtocolError), raises=(TransientError,), extra=6),
    Fault("connect-error-retried", raise_transport(httpx.ConnectError, times=2), extra=0),
    Fault("409-conflict", arm(2, 409, code="conflict_error"), extra=2),
    Fault("502-after-create-landed", arm(1, 502, after=True), raises=(TransientError,), extra=6),
    Fault("504-after-create-landed", arm(1, 504, after=True), raises=(TransientError,), extra=6),
]


def _wire(env: NotionEnv, inject: Inject) -> None:
    creates = 0

    def hook(request: httpx.Request) -> httpx.Response | None:
        nonlocal creates
        if request.method == "POST" and request.url.path == "/v1/pages":
            creates += 1
            return inject(env, request, creates)
        return None

    env.transport.hook = hook


def _sent(env: NotionEnv) -> int:
    """Requests that left the client (the fake's own count misses those the wrapper answered)."""
    return sum(env.transport.seen.values())


@pytest.mark.parametrize("fault", FAULTS, ids=[f.id for f in FAULTS])
async def test_fault_ends_complete_without_hammering(tmp_path: Path, fault: Fault):
    env = make_env(tmp_path)
    _wire(env, fault.inject)

    for expected in fault.raises:
        with pytest.raises(expected):
            await run_pass(env.route, PARTITION, env.store, PassOptions())
    result = await run_pass(env.route, PARTITION, env.store, PassOptions())

    env.assert_complete()
    assert result.failures == []
    assert env.store.failed_records(env.route.name, PARTITION) == []
    assert env.store.get_checkpoint(env.route.name, PARTITION) is None
    assert env.store.pending_intents(env.route.name, PARTITION) == 0
    assert _sent(env) <= N_RECORDS + CLEAN_OVERHEAD + fault.extra, env.transport.seen
    if fault.slept is not None:
        assert fault.slept in env.clock.sleeps
    assert all(s <= 120 for s in env.clock.sleeps)  # nothing above the cap was ever slept
    # Dagster's next scheduled pass: nothing changed, nothing written.
    writes = env.fake.counters.writes
    again = await run_pass(env.route, PARTITION, env.store, PassOptions())
    assert again.stats.unchanged == N_RECORDS and env.fake.counters.writes == writes


async def test_revoked_token_mid_pass_pauses_and_stops_calling(tmp_path: Path):
    env = make_env(tmp_path)
    _wire(env, revoke)

    with pytest.raises(AuthError):
        await run_pass(env.route, PARTITION, env.store, PassOptions())
    pauses = env.store.pauses()
    assert any(scope.startswith("credential:") for scope in pauses), pauses
    assert _sent(env) <= ARM_AT + CLEAN_OVERHEAD  # the 401 stopped the pass at once

    before = _sent(env)
    for _ in range(2):
        with pytest.raises(Paused) as info:
            await run_pass(env.route, PARTITION, env.store, PassOptions())
        assert info.value.scope.startswith("credential:")
    assert _sent(env) == before  # 0 requests while paused

    # Nothing written twice: every page the fake holds is one key.
    assert all(len(v) == 1 for v in env.rows().values())


async def test_wait_beyond_cap_defers_at_once(tmp_path: Path):
    env = make_env(tmp_path)
    _wire(env, arm(1, 429, retry_after=3600))

    with pytest.raises(RateLimited) as info:
        await run_pass(env.route, PARTITION, env.store, PassOptions())
    assert info.value.retry_after == pytest.approx(3600, abs=1)
    assert all(s <= 120 for s in env.clock.sleeps)  # never slept towards the hour

    # An early re-run is refused by the client before anything is sent.
    before = _sent(env)
    with pytest.raises(RateLimited):
        await run_pass(env.route, PARTITION, env.store, PassOptions())
    assert _sent(env) == before

    env.clock.now += 3600  # the orchestrator reschedules after retry_after
    result = await run_pass(env.route, PARTITION, env.store, PassOptions())
    assert result.stats.resumed_from is not None  # resumed at the checkpoint
    env.assert_complete()


class FlakyStore(StateStore):
    """A state store whose ``commit_page`` fails once (the database briefly unavailable)."""

    fail_at = 2

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.commits = 0

    def commit_page(self, *args: Any, **kwargs: Any) -> Any:
        self.commits += 1
        if self.commits == self.fail_at:
            raise sqlalchemy.exc.OperationalError("COMMIT", {}, Exception("database is locked"))
        return super().commit_page(*args, **kwargs)


async def test_state_store_unavailable_once_resumes_without_duplicates(tmp_path: Path):
    store = FlakyStore(f"sqlite:///{tmp_path}/s.db")
    env = make_env(tmp_path, store=store)

    with pytest.raises(sqlalchemy.exc.OperationalError):
        await run_pass(env.route, PARTITION, env.store, PassOptions())
    assert len(env.rows()) == 40  # page 2 was written, its commit was lost

    result = await run_pass(env.route, PARTITION, env.store, PassOptions())
    assert result.stats.resumed_from == 1  # page 1 was committed
    env.assert_complete()
    assert result.stats.adopted == 20  # page 2's rows were adopted by key, not created again


async def test_state_file_moved_away_between_passes(tmp_path: Path):
    """The SQLite file unreadable between passes: the pass fails loudly; put back, it resumes."""
    db = tmp_path / "s.db"
    env = make_env(tmp_path)
    env.source.fail_at_page = {1: TransientError("source hiccup")}  # stop after page 1
    with pytest.raises(TransientError):
        await run_pass(env.route, PARTITION, env.store, PassOptions())
    env.store.dispose()
    hidden = tmp_path / "away"
    hidden.mkdir()
    db.rename(hidden / "s.db")
    db.mkdir()  # a directory where the database was: cannot be opened
    try:
        with pytest.raises(sqlalchemy.exc.OperationalError):
            await run_pass(env.route, PARTITION, StateStore(f"sqlite:///{db}"), PassOptions())
    finally:
        db.rmdir()
        (hidden / "s.db").rename(db)
    store = StateStore(f"sqlite:///{db}")
    result = await run_pass(env.route, PARTITION, store, PassOptions())
    assert result.stats.resumed_from == 1
    env.assert_complete()

"""The source contract, run against every source case in ``cases.py`` (DESIGN §3 and §9).

Pages to the end with string cursors; every record valid and neutral; keys unique within a pass and
stable across passes; stored cursors replay in a fresh instance; ``only_items`` is exact; 5xx and 429
are retried inside the HTTP toolkit; a revoked or forbidden credential is an auth failure, never
retried, and through the engine it pauses the source's credential.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from connectors.core import AuthError, Record, SourceSpec, TransientError, auth_error_in_chain
from connectors.memory import MemoryDestination
from sync_assets.engine import PassOptions, PassResult, PassStats, run_pass, validate_record
from sync_assets.routes import Route, partition_key_for
from sync_assets.state import StateStore
from tests.contract.cases import SOURCE_CASES, SourceHarness

MAX_PAGES = 100  # far beyond any case: a source that never returns None fails instead of hanging


@pytest.fixture(params=SOURCE_CASES, ids=lambda case: case.name)
async def harness(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[SourceHarness]:
    async with request.param.make(tmp_path) as h:
        yield h


Page = tuple[list[Record], str | None]


async def pages_of(source: Any, spec: SourceSpec, only_items: list[str] | None = None) -> list[Page]:
    """Every (records, next_cursor) of one pass, following the cursors as the engine does."""
    pages: list[Page] = []
    cursor: str | None = None
    while True:
        records, cursor = await source.fetch_page(spec, only_items, cursor)
        pages.append((list(records), cursor))
        if cursor is None:
            return pages
        assert len(pages) < MAX_PAGES, f"no last page after {MAX_PAGES} pages"


async def drain(source: Any, spec: SourceSpec, only_items: list[str] | None = None) -> list[Record]:
    return [r for records, _ in await pages_of(source, spec, only_items) for r in records]


def keys(records: list[Record]) -> list[str]:
    return [r.primary_key for r in records]


def by_key(records: list[Record]) -> dict[str, tuple[dict[str, Any], str | None]]:
    return {r.primary_key: (r.properties, r.body) for r in records}


def assert_same_records(got: list[Record], expected: list[Record], *, ordered: bool) -> None:
    """Same keys (in the same order when the API orders) and the same properties and bodies."""
    if ordered:
        assert keys(got) == keys(expected)
    else:
        assert sorted(keys(got)) == sorted(keys(expected))
    assert by_key(got) == by_key(expected)  # same content too: an unchanged source causes no writes


NO_HTTP = "makes no HTTP calls: there is no 5xx, 429 or 403 to inject"
NO_CREDENTIAL = "has no credential to revoke"


def need(hook: Any, why: str) -> Any:
    """The case's hook, or a skip saying why the connector has no such failure mode."""
    if hook is None:
        pytest.skip(f"this connector {why}")
    return hook


# --------------------------------------------------------------------------------------------------
# Paging, records, keys, cursors


async def test_a_pass_pages_to_the_end_with_string_cursors_and_stops_at_none(harness: SourceHarness) -> None:
    pages = await pages_of(harness.source, harness.spec)

    assert len(pages) >= 2, "the case must span two pages or more, so that cursors are exercised"
    *middle, (_, last_cursor) = pages
    assert last_cursor is None
    for _, cursor in middle:
        assert isinstance(cursor, str) and cursor, f"cursor {cursor!r} is not a non-empty string"
    assert sum(len(records) for records, _ in pages) == harness.expected_count


async def test_every_record_is_valid_with_neutral_values_and_a_non_empty_key(harness: SourceHarness) -> None:
    records = await drain(harness.source, harness.spec)

    assert records
    for record in records:
        valid, problem = validate_record(record)
        assert problem is None, f"{record.primary_key!r}: {problem}"
        assert valid is not None and valid.primary_key == record.primary_key  # already canonical
        assert all(isinstance(name, str) and name for name in record.properties)


async def test_keys_are_unique_within_a_pass_and_stable_across_passes(harness: SourceHarness) -> None:
    first = await drain(harness.source, harness.spec)
    reset = getattr(harness.source, "reset", None)
    if getattr(harness.source, "incremental", False) and reset is not None:
        reset(harness.spec.key)  # an incremental source re-reads everything only after a reset
    second = await drain(harness.source, harness.spec)
    fresh = await drain(harness.make_source(), harness.spec)

    assert len(set(keys(first))) == len(first) == harness.expected_count
    assert_same_records(second, first, ordered=harness.ordered)
    assert_same_records(fresh, first, ordered=harness.ordered)


async def test_fetch_returns_what_the_pages_return(harness: SourceHarness) -> None:
    paged = await drain(harness.source, harness.spec)
    fetched = await harness.make_source().fetch(harness.spec)
    assert_same_records(fetched, paged, ordered=harness.ordered)


async def test_a_cursor_taken_after_page_one_replays_page_two_in_a_fresh_source(harness: SourceHarness) -> None:
    pages = await pages_of(harness.source, harness.spec)
    assert len(pages) >= 2
    (_, cursor), (page_two, _) = pages[0], pages[1]
    assert cursor is not None

    replayed, _ = await harness.make_source().fetch_page(harness.spec, None, cursor)
    replayed_again, _ = await harness.make_source().fetch_page(harness.spec, None, cursor)

    assert keys(page_two)
    assert keys(replayed) == keys(page_two)
    assert by_key(replayed) == by_key(page_two)
    assert keys(replayed_again) == keys(page_two)


async def test_only_items_returns_exactly_the_requested_records(harness: SourceHarness) -> None:
    records = await drain(harness.source, harness.spec)
    wanted = [records[0], records[-1]]  # on the first and on the last page
    items = [harness.item_for(r) for r in wanted] + [harness.missing_item]

    targeted = await drain(harness.make_source(), harness.spec, items)

    assert sorted(keys(targeted)) == sorted(keys(wanted))
    # A targeted sync must write what a full pass writes, or every other pass would update the row.
    assert by_key(targeted) == by_key(wanted)


async def test_only_items_accepts_primary_keys(harness: SourceHarness) -> None:
    # PassOptions.only_items are primary keys, and the engine re-fetches an incremental source's
    # failed records by key: every source must accept its own keys.
    records = await drain(harness.source, harness.spec)
    wanted = [records[1], records[-2]]

    targeted = await drain(harness.make_source(), harness.spec, [r.primary_key for r in wanted])

    assert sorted(keys(targeted)) == sorted(keys(wanted))
    assert by_key(targeted) == by_key(wanted)


# --------------------------------------------------------------------------------------------------
# Failures


async def test_two_server_errors_are_retried_inside_the_toolkit(harness: SourceHarness) -> None:
    inject = need(harness.inject_failures, NO_HTTP)
    baseline = await drain(harness.source, harness.spec)
    slept = len(harness.sleeps)

    inject(2, 503)
    again = await drain(harness.make_source(), harness.spec)

    assert harness.served is not None and harness.served(503) == 2  # both faults were served...
    assert len(harness.sleeps) - slept >= 2  # ...and backed off from (on the fake clock)
    assert_same_records(again, baseline, ordered=harness.ordered)


async def test_a_429_with_retry_after_is_waited_out(harness: SourceHarness) -> None:
    rate_limit = need(harness.rate_limit, NO_HTTP)
    baseline = await drain(harness.source, harness.spec)

    rate_limit(7)
    again = await drain(harness.make_source(), harness.spec)

    assert harness.served is not None and harness.served(429) == 1
    assert 7 in harness.sleeps  # the server's Retry-After, not a backoff of our own
    assert_same_records(again, baseline, ordered=harness.ordered)


async def test_a_revoked_credential_is_an_auth_error_and_not_retried(harness: SourceHarness) -> None:
    revoke = need(harness.revoke, NO_CREDENTIAL)
    revoke()
    with pytest.raises(Exception) as raised:
        await harness.make_source().fetch_page(harness.spec, None, None)
    assert auth_error_in_chain(raised.value), f"not an auth failure: {raised.value!r}"
    # 401 unless the service documents another answer (the case's ``revoked_status``).
    assert harness.served is not None and harness.served(harness.revoked_status) >= 1
    assert harness.sleeps == []  # never retried: every retry of the toolkit waits first (fake clock)


async def test_a_plain_403_is_an_auth_error_and_not_retried(harness: SourceHarness) -> None:
    forbid = need(harness.forbid, NO_HTTP)
    forbid()
    with pytest.raises(Exception) as raised:
        await harness.make_source().fetch_page(harness.spec, None, None)
    assert auth_error_in_chain(raised.value), f"not an auth failure: {raised.value!r}"
    assert harness.served is not None and harness.served(403) >= 1
    assert harness.sleeps == []  # never retried: every retry of the toolkit waits first (fake clock)


# --------------------------------------------------------------------------------------------------
# Through the engine


def page_guard(stats: PassStats) -> None:
    """The engine's progress hook: a source that never returns a None cursor fails, not hangs."""
    assert stats.pages <= MAX_PAGES, f"no last page after {MAX_PAGES} pages"


async def sync(route: Route, harness: SourceHarness, store: StateStore) -> PassResult:
    partition = partition_key_for(harness.spec.key)
    return await run_pass(route, partition, store, PassOptions(), spec=harness.spec, progress=page_guard)


def route_for(harness: SourceHarness) -> tuple[Route, MemoryDestination]:
    dest = MemoryDestination(rate_limit_key="contract-destination")
    return Route(harness.source, dest), dest


async def test_a_second_engine_pass_over_an_unchanged_source_writes_nothing(
    harness: SourceHarness, store: StateStore
) -> None:
    route, dest = route_for(harness)

    first = await sync(route, harness, store)
    second = await sync(route, harness, store)

    assert (first.stats.created, first.stats.failed) == (harness.expected_count, 0)
    assert (second.stats.created, second.stats.updated, second.stats.failed) == (0, 0, 0)
    assert len(dest.rows) == harness.expected_count and dest.duplicates() == {}


async def test_a_revoked_credential_fails_the_pass_and_pauses_the_source_credential(
    harness: SourceHarness, store: StateStore
) -> None:
    revoke = need(harness.revoke, NO_CREDENTIAL)
    route, dest = route_for(harness)
    revoke()

    with pytest.raises(AuthError):
        await sync(route, harness, store)

    assert route.source_scope.startswith("credential:")
    pause = store.pauses().get(route.source_scope)
    assert pause is not None and pause.source == "auth", sorted(store.pauses())
    assert route.destination_scope not in store.pauses()
    assert dest.rows == {}


async def test_a_pass_stopped_after_page_one_resumes_in_a_fresh_source_without_duplicates(
    harness: SourceHarness, store: StateStore
) -> None:
    pages = await pages_of(harness.make_source(), harness.spec)
    first_of_page_two = pages[1][0][0].primary_key
    failed: list[str] = []

    def fail_once(op: str, record: Record) -> Exception | None:
        if record.primary_key == first_of_page_two and not failed:
            failed.append(record.primary_key)
            return TransientError("503 service unavailable")  # stops the pass, as a crash would
        return None

    dest = MemoryDestination(rate_limit_key="contract-destination", fail=fail_once)
    route = Route(harness.source, dest)
    with pytest.raises(TransientError):
        await sync(route, harness, store)
    assert failed and store.get_checkpoint(route.name, partition_key_for(harness.spec.key)) is not None

    # A new process: a fresh source instance picks the stored cursor up.
    resumed = await sync(Route(harness.make_source(), dest), harness, store)

    assert resumed.stats.resumed_from == 1
    assert len(dest.rows) == harness.expected_count and dest.duplicates() == {}

"""The destination contract, run against every destination case in ``cases.py`` (DESIGN §3 and §9).

A create returns a string id and the row reads back with the neutral values sent (same Python
types); the listing names every row; a repeated upsert changes nothing; through the engine, a second
pass writes nothing and one changed record is one update; None clears; a 5xx or a 429 on a write is
retried by the HTTP toolkit; a revoked credential fails the pass and pauses the credential.

A destination that cannot hold our keys (``stores_keys = False``: its rows are found again through the
engine's link map only) lists nothing: the test of the listing skips itself, and the other tests check
for duplicates on the rows read back only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest

from connectors.core import AuthError, Record
from connectors.memory import MemorySource
from sync_assets.engine import PassOptions, PassResult, Paused, run_pass
from sync_assets.routes import Route
from sync_assets.state import StateStore
from tests.contract.cases import DESTINATION_CASES, DestinationHarness

SYNCED_AT = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)
LATER = SYNCED_AT + dt.timedelta(hours=1)
PARTITION = "all"


@pytest.fixture(params=DESTINATION_CASES, ids=lambda case: case.name)
async def harness(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[DestinationHarness]:
    async with request.param.make(tmp_path) as h:
        yield h


def assert_reads_back(got: dict[str, Any], expected: dict[str, Any], key: str) -> None:
    """Every expected property reads back equal AND as the same Python type (a date, not its text)."""
    for name, value in expected.items():
        assert name in got, f"{key}: property {name!r} did not read back (got {sorted(got)})"
        assert got[name] == value, f"{key}: {name!r} reads back {got[name]!r}, sent {value!r}"
        assert type(got[name]) is type(value), f"{key}: {name!r} reads back as {type(got[name]).__name__}"


async def create_all(harness: DestinationHarness, records: list[Record]) -> dict[str, str]:
    async with harness.destination.connect() as session:
        return {r.primary_key: await session.create(r, SYNCED_AT) for r in records}


async def listing(harness: DestinationHarness) -> list[tuple[str, str]]:
    """Every (key, id) pair the destination lists, a key listed twice included."""
    async with harness.destination.connect() as session:
        rows = getattr(session, "query_existing_rows", None)
        if rows is None:
            return list((await session.query_existing_ids()).items())
        return [(str(key), str(row_id)) async for key, row_id in rows()]


def lists_keys(harness: DestinationHarness) -> bool:
    """Whether the destination's listing names the rows we created (False only for ``stores_keys = False``)."""
    return getattr(harness.destination, "stores_keys", None) is not False


def changed(record: Record, **properties: Any) -> Record:
    return dataclasses.replace(record, properties={**record.properties, **properties})


NO_HTTP = "makes no HTTP calls: there is no 5xx, 429 or 403 to inject"
NO_CREDENTIAL = "has no credential to revoke"
NO_KEYS = (
    "cannot hold our keys (stores_keys = False): it lists no rows, which the engine finds again through its link map"
)


def need(hook: Any, why: str) -> Any:
    """The case's hook, or a skip saying why the connector has no such failure mode."""
    if hook is None:
        pytest.skip(f"this destination {why}")
    return hook


# --------------------------------------------------------------------------------------------------
# The session


async def test_create_returns_a_string_id_and_the_row_reads_back_typed(harness: DestinationHarness) -> None:
    record = harness.records[0]
    created = await create_all(harness, [record])

    row_id = created[record.primary_key]
    assert isinstance(row_id, str) and row_id.strip(), f"create returned {row_id!r}"
    rows = await harness.rows()
    assert list(rows) == [record.primary_key]
    assert_reads_back(rows[record.primary_key], harness.expected(record), record.primary_key)


async def test_the_listing_names_every_created_row_by_key_and_id(harness: DestinationHarness) -> None:
    if not lists_keys(harness):
        pytest.skip(f"this destination {NO_KEYS}")
    created = await create_all(harness, harness.records)

    assert len(set(created.values())) == len(harness.records)  # one id per row
    assert sorted(await listing(harness)) == sorted(created.items())
    async with harness.destination.connect() as session:
        assert await session.query_existing_ids() == created


async def test_an_update_with_the_same_record_changes_nothing(harness: DestinationHarness) -> None:
    created = await create_all(harness, harness.records)
    before = await harness.rows()

    async with harness.destination.connect() as session:
        for record in harness.records:
            assert await session.update(created[record.primary_key], record, LATER) is not False

    assert await harness.rows() == before
    if lists_keys(harness):
        assert sorted(await listing(harness)) == sorted(created.items())


async def test_none_clears_a_property(harness: DestinationHarness) -> None:
    cleared = harness.cleared
    if cleared is None:
        pytest.skip("this destination cannot clear a property")
    record = harness.records[1]
    created = await create_all(harness, [record])
    names = [n for n in record.properties if n != "Name"]  # the title stays
    assert names

    async with harness.destination.connect() as session:
        await session.update(created[record.primary_key], changed(record, **dict.fromkeys(names)), LATER)

    row = (await harness.rows())[record.primary_key]
    assert_reads_back(row, {name: cleared(name) for name in names}, record.primary_key)
    assert row["Name"] == record.properties["Name"]


async def test_a_429_on_a_write_is_waited_out(harness: DestinationHarness) -> None:
    rate_limit = need(harness.rate_limit, NO_HTTP)
    record = harness.records[0]

    rate_limit(7)
    created = await create_all(harness, [record])

    assert harness.served is not None and harness.served(429) == 1
    assert 7 in harness.sleeps  # the server's Retry-After, on the fake clock
    assert list(await harness.rows()) == [record.primary_key]  # written once
    if lists_keys(harness):
        assert sorted(await listing(harness)) == sorted(created.items())


# --------------------------------------------------------------------------------------------------
# Through the engine


async def sync(route: Route, store: StateStore) -> PassResult:
    return await run_pass(route, PARTITION, store, PassOptions())


def route_for(harness: DestinationHarness) -> Route:
    # Two records a page, so a pass spans pages and checkpoints.
    return Route(MemorySource({PARTITION: list(harness.records)}, page_size=2), harness.destination)


async def test_a_second_pass_writes_nothing_and_a_change_is_exactly_one_update(
    harness: DestinationHarness, store: StateStore
) -> None:
    route = route_for(harness)
    n = len(harness.records)

    first = await sync(route, store)
    assert (first.stats.created, first.stats.failed) == (n, 0), first.failures
    rows = await harness.rows()  # raises on a key stored twice
    assert sorted(rows) == sorted(r.primary_key for r in harness.records)
    for record in harness.records:
        assert_reads_back(rows[record.primary_key], harness.expected(record), record.primary_key)

    second = await sync(route, store)
    assert (second.stats.created, second.stats.updated, second.stats.unchanged) == (0, 0, n)
    assert second.stats.destination_calls == 0
    assert sorted(await harness.rows()) == sorted(rows)  # no duplicate row (rows() raises on one)
    if lists_keys(harness):
        assert len(await listing(harness)) == n

    target = harness.records[2]
    edited = changed(target, Count=int(target.properties["Count"]) + 100)
    route.source.records[PARTITION][2] = edited  # type: ignore[attr-defined]
    third = await sync(route, store)
    assert (third.stats.created, third.stats.updated, third.stats.unchanged) == (0, 1, n - 1)
    after = await harness.rows()
    assert_reads_back(after[target.primary_key], harness.expected(edited), target.primary_key)
    assert {k: v for k, v in after.items() if k != target.primary_key} == {
        k: v for k, v in rows.items() if k != target.primary_key
    }
    if lists_keys(harness):
        assert len(await listing(harness)) == n


async def test_server_errors_on_writes_are_retried_inside_the_toolkit(
    harness: DestinationHarness, store: StateStore
) -> None:
    inject = need(harness.inject_failures, NO_HTTP)
    route = route_for(harness)

    inject(2, 503)
    result = await sync(route, store)

    assert harness.served is not None and harness.served(503) == 2
    assert (result.stats.created, result.stats.failed) == (len(harness.records), 0), result.failures
    assert len(harness.sleeps) >= 2  # backed off, on the fake clock
    assert sorted(await harness.rows()) == sorted(r.primary_key for r in harness.records)


@pytest.mark.parametrize("failure", ["revoked", "forbidden"])
async def test_an_auth_failure_fails_the_pass_and_pauses_the_credential(
    harness: DestinationHarness, store: StateStore, failure: str
) -> None:
    # Revoked: the token is refused from the next call on (Notion: reading the schema at connect).
    # Forbidden: the next write answers a plain 403 (the write path, not the connect).
    fail = need(harness.revoke, NO_CREDENTIAL) if failure == "revoked" else need(harness.forbid, NO_HTTP)
    route = route_for(harness)
    await sync(route, store)
    before = await harness.rows()

    fail()
    route.source.records[PARTITION][0] = changed(harness.records[0], Count=999)  # type: ignore[attr-defined]
    with pytest.raises(AuthError):
        await sync(route, store)

    scope = route.destination_scope
    assert scope.startswith("credential:")
    pause = store.pauses().get(scope)
    assert pause is not None and pause.source == "auth", sorted(store.pauses())
    with pytest.raises(Paused):
        await sync(route, store)  # nothing is called while the credential is paused
    assert await harness.rows() == before

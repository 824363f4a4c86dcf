"""ContentfulMcpDestination driven by the real engine against the fake hosted MCP server.

The crash window, measured here (README "MCP destination"): a create whose answer is lost is not resent,
the pass stops with ``TransientError``; the next pass creates that record again — one duplicate entry per
lost answer (the entry id is server-assigned, nobody learned the first one).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pytest

from connectors.core import AuthError, Record, TransientError
from connectors.memory import MemorySource
from sync_assets.engine import PassOptions, PassResult, run_pass
from sync_assets.routes import Route
from sync_assets.state import StateStore
from tests.connectors.contentful_mcp.conftest import CONTENT_TYPE, DestinationFactory
from tests.fakes.contentful import FakeContentful, FakeEnvironment
from tests.fakes.contentful_mcp import FakeContentfulMcp

PARTITION = "talks"
ROUTE = "memory_to_contentful_mcp"


def records(n: int) -> list[Record]:
    return [
        Record(
            f"talk-{i:03d}",
            {
                "Name": f"Talk {i}",
                "Views": i * 10,
                "Summary": f"About talk {i}",
                "Tags": ["python", f"t{i}"],
                "Date": dt.date(2024, 7, 1 + i),
            },
        )
        for i in range(n)
    ]


def route(dest: Any, rows: list[Record]) -> Route:
    return Route(MemorySource({PARTITION: rows}, page_size=100), dest, name=ROUTE)


async def sync(r: Route, store: StateStore) -> PassResult:
    return await run_pass(r, PARTITION, store, PassOptions())


def titles(contentful: FakeContentful, env: FakeEnvironment) -> list[str]:
    return sorted(e.fields["title"]["en-US"] for e in contentful.live_entries(env, CONTENT_TYPE))


async def test_first_second_and_changed_passes(
    make_dest: DestinationFactory,
    contentful: FakeContentful,
    env: FakeEnvironment,
    mcp: FakeContentfulMcp,
    store: StateStore,
) -> None:
    rows = records(4)
    r = route(make_dest(), rows)

    first = await sync(r, store)
    assert (first.stats.created, first.stats.failed) == (4, 0)
    assert titles(contentful, env) == [f"Talk {i}" for i in range(4)]
    linked = dict(store.iter_links(ROUTE, PARTITION))
    assert len(linked) == 4
    assert contentful.values(env, linked["talk-002"]) == {
        "title": "Talk 2",
        "views": 20,
        "summary": "About talk 2",
        "tags": ["python", "t2"],
        "date": "2024-07-03",
    }
    assert mcp.tool_calls()[0].tool == "get_initial_context"

    calls = len(mcp.calls)
    second = await sync(r, store)
    assert (second.stats.created, second.stats.updated, second.stats.unchanged) == (0, 0, 4)
    assert second.stats.destination_calls == 0
    assert {c.tool for c in mcp.calls[calls:]} <= {"get_initial_context", "get_content_type"}  # no write

    entry_id = linked["talk-001"]
    contentful.edit_entry(env, entry_id, {"notes": "edited by a human"})
    r.source.records[PARTITION][1] = Record("talk-001", {**rows[1].properties, "Name": "Talk 1 (moved)"})  # type: ignore[attr-defined]
    third = await sync(r, store)
    assert (third.stats.created, third.stats.updated, third.stats.unchanged) == (0, 1, 3)
    (update,) = mcp.tool_calls("update_entry")
    assert update.arguments["entryId"] == entry_id
    assert update.arguments["fields"] == {"title": {"en-US": "Talk 1 (moved)"}}  # only what changed
    values = contentful.values(env, entry_id)
    assert values["title"] == "Talk 1 (moved)" and values["notes"] == "edited by a human"  # human edit kept
    assert len(contentful.live_entries(env, CONTENT_TYPE)) == 4


async def test_create_only_properties_are_not_updated_and_none_removes(
    make_dest: DestinationFactory, contentful: FakeContentful, env: FakeEnvironment, store: StateStore
) -> None:
    rows = records(1)
    r = route(make_dest(create_only_properties={"Views"}), rows)
    await sync(r, store)
    (entry_id,) = dict(store.iter_links(ROUTE, PARTITION)).values()

    r.source.records[PARTITION][0] = Record("talk-000", {**rows[0].properties, "Views": 999, "Summary": None})  # type: ignore[attr-defined]
    result = await sync(r, store)

    assert result.stats.updated == 1
    values = contentful.values(env, entry_id)
    assert values["views"] == 0 and "summary" not in values


async def test_a_version_conflict_is_read_again_and_retried(
    make_dest: DestinationFactory,
    contentful: FakeContentful,
    env: FakeEnvironment,
    mcp: FakeContentfulMcp,
    store: StateStore,
) -> None:
    rows = records(2)
    r = route(make_dest(), rows)
    await sync(r, store)
    entry_id = dict(store.iter_links(ROUTE, PARTITION))["talk-000"]

    edits = 0

    def editor_saves_meanwhile(tool: str, arguments: dict[str, Any]) -> None:
        nonlocal edits
        if tool == "update_entry" and edits == 0:
            edits += 1
            contentful.edit_entry(env, entry_id, {"notes": "saved meanwhile"})

    mcp.before_call.append(editor_saves_meanwhile)
    r.source.records[PARTITION][0] = Record("talk-000", {**rows[0].properties, "Name": "Renamed"})  # type: ignore[attr-defined]
    result = await sync(r, store)

    assert (result.stats.updated, result.stats.failed) == (1, 0)
    updates = mcp.tool_calls("update_entry")
    assert [u.is_error for u in updates] == [True, False]
    assert "Version conflict" in updates[0].text  # the server checks the version itself first
    assert updates[1].arguments["version"] == updates[0].arguments["version"] + 1  # re-read
    values = contentful.values(env, entry_id)
    assert values["title"] == "Renamed" and values["notes"] == "saved meanwhile"


async def test_an_entry_that_keeps_changing_fails_alone(
    make_dest: DestinationFactory,
    contentful: FakeContentful,
    env: FakeEnvironment,
    mcp: FakeContentfulMcp,
    store: StateStore,
) -> None:
    rows = records(2)
    r = route(make_dest(), rows)
    await sync(r, store)
    entry_id = dict(store.iter_links(ROUTE, PARTITION))["talk-000"]

    def always(tool: str, arguments: dict[str, Any]) -> None:
        if tool == "update_entry":
            contentful.edit_entry(env, entry_id, {"notes": "again"})

    mcp.before_call.append(always)
    for i in (0, 1):
        r.source.records[PARTITION][i] = Record(rows[i].primary_key, {**rows[i].properties, "Name": f"New {i}"})  # type: ignore[attr-defined]
    result = await sync(r, store)

    assert (result.stats.updated, result.stats.failed) == (1, 1)
    assert "kept changing" in dict(result.failures)["talk-000"]
    assert len(mcp.tool_calls("update_entry")) == 4 + 1


async def test_publish(
    make_dest: DestinationFactory,
    contentful: FakeContentful,
    env: FakeEnvironment,
    mcp: FakeContentfulMcp,
    store: StateStore,
) -> None:
    r = route(make_dest(publish=True), records(3))
    result = await sync(r, store)

    assert (result.stats.created, result.stats.failed) == (3, 0)
    assert all(e.published for e in contentful.live_entries(env, CONTENT_TYPE))
    published = [c.arguments["entryId"] for c in mcp.tool_calls("publish_entry")]
    assert sorted(published) == sorted([i] for i in dict(store.iter_links(ROUTE, PARTITION)).values())  # lists


async def test_a_publish_refused_for_permission_keeps_the_draft_and_warns(
    make_dest: DestinationFactory,
    contentful: FakeContentful,
    env: FakeEnvironment,
    mcp: FakeContentfulMcp,
    store: StateStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    mcp.refuse_publish = True
    dest = make_dest(publish=True)
    with caplog.at_level(logging.WARNING, logger="connectors.contentful.mcp"):
        result = await sync(route(dest, records(2)), store)

    assert (result.stats.created, result.stats.failed) == (2, 0)
    assert not any(e.published for e in contentful.live_entries(env, CONTENT_TYPE))  # drafts kept
    assert dest.publish_refusals == 2
    assert "not published" in caplog.text


async def test_a_field_of_the_wrong_type_fails_that_record_only(
    make_dest: DestinationFactory,
    contentful: FakeContentful,
    env: FakeEnvironment,
    mcp: FakeContentfulMcp,
    store: StateStore,
) -> None:
    rows = records(3)
    rows[1] = Record("talk-001", {**rows[1].properties, "Views": "many"})
    result = await sync(route(make_dest(), rows), store)

    assert (result.stats.created, result.stats.failed) == (2, 1)
    assert "views" in dict(result.failures)["talk-001"]
    assert len(mcp.tool_calls("create_entry")) == 2  # rejected before the call
    assert store.pending_intents(ROUTE, PARTITION) == 0


async def test_a_lost_create_answer_duplicates_that_entry_on_the_next_pass(
    make_dest: DestinationFactory,
    contentful: FakeContentful,
    env: FakeEnvironment,
    mcp: FakeContentfulMcp,
    store: StateStore,
) -> None:
    """CURRENT and inherent behaviour (README, crash window): the first create ran on the server but its
    answer was lost (HTTP 502). A create is never resent after an ambiguous failure, so the pass stops with
    TransientError; the entry exists but its server-assigned id was never learned, and Contentful entries
    do not carry our key, so the next pass creates it again: exactly one duplicate."""
    rows = records(3)
    r = route(make_dest(), rows)
    mcp.lose_next_answer("create_entry")

    with pytest.raises(TransientError):
        await sync(r, store)
    assert titles(contentful, env) == ["Talk 0"] and len(mcp.tool_calls("create_entry")) == 1
    assert store.link_count(ROUTE, PARTITION) == 0 and store.pending_intents(ROUTE, PARTITION) >= 1

    second = await sync(r, store)
    assert (second.stats.created, second.stats.failed) == (3, 0)
    assert titles(contentful, env) == ["Talk 0", "Talk 0", "Talk 1", "Talk 2"]  # the measured duplicate
    assert store.link_count(ROUTE, PARTITION) == 3 and store.pending_intents(ROUTE, PARTITION) == 0

    third = await sync(r, store)
    assert third.stats.destination_calls == 0


async def test_a_rejected_token_raises_auth_error_and_pauses_the_credential(
    make_dest: DestinationFactory,
    mcp: FakeContentfulMcp,
    store: StateStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bad = "cf-mcp-revoked-0123456789abcdef0123456789abcdef"
    with caplog.at_level(logging.DEBUG), pytest.raises(AuthError) as info:
        await sync(route(make_dest(auth=bad), records(2)), store)

    assert list(store.pauses()) == ["credential:contentful-mcp:contentful-mcp"]
    assert mcp.http_401 >= 1
    assert bad not in str(info.value) and bad not in caplog.text


async def test_the_bearer_token_never_reaches_errors_or_logs(
    make_dest: DestinationFactory,
    mcp: FakeContentfulMcp,
    store: StateStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rows = records(3)
    rows[0] = Record("talk-000", {**rows[0].properties, "Views": 1.5})
    mcp.refuse_publish = True
    with caplog.at_level(logging.DEBUG):
        result = await sync(route(make_dest(publish=True), rows), store)
        mcp.lose_next_answer("create_entry")
        r = route(make_dest(), records(5))
        with pytest.raises(TransientError) as info:
            await sync(r, store)

    assert result.stats.failed == 1
    everything = caplog.text + str(info.value) + repr(result.failures)
    assert mcp.token not in everything

"""NotionMcpDestination through the fake MCP server, over the same FakeNotion state as the REST fake."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

import pytest

from connectors.auth.tokens import MemoryTokenStore, OAuthToken
from connectors.core import AuthError, ConfigError, RateLimited, Record, RecordError, TransientError
from connectors.memory import MemorySource
from connectors.notion import NotionDestination, infer_schema
from connectors.notion.mcp import (
    NotionMcpDestination,
    notion_destination,
    schema_to_ddl,
    to_flat_properties,
)
from sync_assets.engine import PassOptions, run_pass
from sync_assets.routes import Route
from sync_assets.state import StateStore
from tests.connectors.notion_mcp.conftest import SCHEMA
from tests.fakes.notion import FakeNotion

MakeDest = Callable[..., NotionMcpDestination]

COMPUTED = ("Created time", "Edited")


def repo(key: str = "101", **overrides: Any) -> Record:
    properties: dict[str, Any] = {
        "Name": "acme/widgets",
        "URL": "https://github.com/acme/widgets",
        "Description": "Widgets — “quoted”, ünïcødé\nsecond line",
        "Stars": 1234,
        "Ratio": 1.5,
        "Language": "Python",
        "Languages": ["Python", "Go"],
        "Status": "In progress",
        "Archived": True,
        "Pushed at": dt.datetime(2024, 4, 30, 9, 15, 30, 250_000, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        "Created": dt.date(2020, 2, 29),
        "Email": "team@example.com",
        "Phone": "+1 555 0100",
    }
    properties.update(overrides)
    return Record(key, properties, body="A README.\n\nSecond paragraph.")


def stored(notion: FakeNotion, page_id: str) -> dict[str, Any]:
    values = notion.values(page_id)
    for name in COMPUTED:
        values.pop(name)
    return values


async def create(dest: Any, record: Record, synced_at: dt.datetime) -> str:
    async with dest.connect() as session:
        page_id = await session.create(record, synced_at)
    assert isinstance(page_id, str)
    return page_id


# -- the engine ---------------------------------------------------------------------------------


def records(n: int, *, stars: int = 1) -> list[Record]:
    return [
        Record(
            str(1000 + i),
            {
                "Name": f"acme/repo-{i}",
                "Stars": stars + i,
                "Languages": ["Python"],
                "Pushed at": dt.datetime(2024, 5, 1, 12, i, tzinfo=dt.UTC),
            },
            body=f"README of repo {i}",
        )
        for i in range(n)
    ]


async def test_passes_through_the_engine_are_idempotent(make_dest: MakeDest, mcp_fake, notion, ds_id, tmp_path):
    store = StateStore(f"sqlite:///{tmp_path}/s.db")
    source = MemorySource({"all": records(5)})
    route = Route(source, make_dest())
    try:
        first = await run_pass(route, "all", store, PassOptions())
        assert first.stats.created == 5 and len(notion.pages(ds_id)) == 5

        writes = notion.counters.writes
        second = await run_pass(route, "all", store, PassOptions())
        assert second.stats.unchanged == 5 and notion.counters.writes == writes
        assert not mcp_fake.tool_calls("notion-update-page")

        source.records["all"][2] = records(5, stars=100)[2]
        third = await run_pass(route, "all", store, PassOptions())
        assert third.stats.updated == 1 and notion.counters.writes == writes + 1
        assert sorted(notion.values(p.id)["Stars"] for p in notion.pages(ds_id)) == [1, 2, 4, 5, 102]
        assert {notion.values(p.id)["Key"] for p in notion.pages(ds_id)} == {str(1000 + i) for i in range(5)}
    finally:
        store.dispose()


async def test_a_create_whose_answer_was_lost_is_adopted_not_duplicated(make_dest, notion, ds_id, sqlite_store):
    route = Route(MemorySource({"all": records(5)}), make_dest())
    notion.fail_next(1, 502, after=True, method="POST", path=r"^/v1/pages$")  # created, but the answer is lost
    with pytest.raises(TransientError):
        await run_pass(route, "all", sqlite_store, PassOptions())
    await run_pass(route, "all", sqlite_store, PassOptions())
    keys = sorted(notion.values(p.id)["Key"] for p in notion.pages(ds_id))
    assert keys == [str(1000 + i) for i in range(5)]  # each key exactly once
    assert sqlite_store.link_count(route.name, "all") == 5


async def test_a_revoked_login_pauses_the_credential_and_never_shows_the_token(make_dest, notion, sqlite_store, caplog):
    caplog.set_level(logging.DEBUG)
    token = notion.token
    dest = make_dest()
    route = Route(MemorySource({"all": records(2)}), dest)
    notion.revoke_token(token)
    with pytest.raises(AuthError) as caught:
        await run_pass(route, "all", sqlite_store, PassOptions())
    assert dest.credential_key == "notion-mcp:notion"
    assert token not in str(caught.value) and token not in caplog.text
    assert "credential:notion-mcp:notion" in sqlite_store.pauses()


# -- REST and MCP share one state and one encoding -----------------------------------------------


async def test_every_neutral_type_is_stored_as_the_rest_destination_stores_it(
    make_dest: MakeDest, make_rest_dest, notion: FakeNotion, synced_at
):
    other = notion.add_database(SCHEMA, title="Twin")  # same schema, its own data source
    record = repo(Topics=None)  # "Topics" is not a column: dropped by both
    via_rest = await create(make_rest_dest(other.id), record, synced_at)
    via_mcp = await create(make_dest(), record, synced_at)
    assert stored(notion, via_mcp) == stored(notion, via_rest)
    assert notion.body_text(via_mcp) == notion.body_text(via_rest) == "A README.\n\nSecond paragraph."
    values = stored(notion, via_mcp)
    assert values["Key"] == "101" and values["Archived"] is True and values["Ratio"] == 1.5
    assert values["Pushed at"] == "2024-04-30T09:15:30.250+02:00" and values["Created"] == "2020-02-29"
    assert values["Last synced"] == "2024-05-01T12:00:00+00:00"

    nones: dict[str, Any] = dict.fromkeys(
        ("URL", "Description", "Stars", "Language", "Languages", "Status", "Archived", "Pushed at")
    )
    cleared = repo(**nones)
    for dest, page_id in ((make_rest_dest(other.id), via_rest), (make_dest(), via_mcp)):
        async with dest.connect() as session:
            assert await session.update(page_id, cleared, synced_at)
    assert stored(notion, via_mcp) == stored(notion, via_rest)
    values = stored(notion, via_mcp)
    assert values["Stars"] is None and values["Language"] is None and values["Languages"] == []
    assert values["Archived"] is False and values["Pushed at"] is None and values["Description"] == ""


async def test_pages_created_over_mcp_are_seen_by_rest_and_the_other_way_round(
    make_dest: MakeDest, make_rest_dest, notion, ds_id, synced_at
):
    via_mcp = await create(make_dest(), repo("1"), synced_at)
    via_rest = await create(make_rest_dest(), repo("2"), synced_at)
    async with make_rest_dest().connect() as rest_session:
        assert await rest_session.query_existing_ids() == {"1": via_mcp, "2": via_rest}
    async with make_dest().connect() as mcp_session:
        assert await mcp_session.query_existing_ids() == {"1": via_mcp, "2": via_rest}
        assert await mcp_session.update(via_rest, repo("2", Stars=7), synced_at)
    assert notion.values(via_rest)["Stars"] == 7


async def test_the_listing_pages_through_every_row_and_skips_trashed_and_keyless_ones(
    make_dest: MakeDest, mcp_fake, notion, ds_id
):
    pages = [notion.add_page(ds_id, {"Name": f"r{i}", "Key": f"k{i:03}"}) for i in range(230)]
    notion.add_page(ds_id, {"Name": "added by hand"})  # no key
    notion.trash_page(pages[7].id)
    async with make_dest().connect() as session:
        listed = [pair async for pair in session.query_existing_rows()]
    assert len(listed) == 229 and ("k007", pages[7].id) not in listed
    assert dict(listed) == {f"k{i:03}": p.id for i, p in enumerate(pages) if i != 7}
    assert len(mcp_fake.tool_calls("notion-query-data-sources")) == 3


async def test_create_only_properties_the_key_and_the_synced_stamp(make_dest: MakeDest, notion, synced_at):
    dest = make_dest(create_only_properties={"Created"})
    page_id = await create(dest, repo("7", Key="ignored: the key is the primary key"), synced_at)
    later = synced_at + dt.timedelta(hours=1)
    async with dest.connect() as session:
        await session.update(page_id, repo("7", Created=dt.date(1999, 1, 1), Stars=9), later)
    values = notion.values(page_id)
    assert values["Key"] == "7" and values["Created"] == "2020-02-29" and values["Stars"] == 9
    assert values["Last synced"] == "2024-05-01T13:00:00+00:00"
    assert notion.body_text(page_id) == "A README.\n\nSecond paragraph."  # the body is written on create only


async def test_unknown_columns_are_dropped_with_one_warning(make_dest: MakeDest, mcp_fake, notion, synced_at, caplog):
    caplog.set_level(logging.WARNING)
    dest = make_dest()
    async with dest.connect() as session:
        first = await session.create(repo("1", Nope="x"), synced_at)
        await session.create(repo("2", Nope="y"), synced_at)
    assert isinstance(first, str) and notion.values(first)["Name"] == "acme/widgets"
    assert sum("'Nope'" in r.getMessage() for r in caplog.records) == 1
    assert all("Nope" not in c.arguments["pages"][0]["properties"] for c in mcp_fake.tool_calls("notion-create-pages"))


async def test_a_rejected_value_is_a_record_error_with_notions_message(make_dest: MakeDest, notion, ds_id, synced_at):
    dest = make_dest()
    async with dest.connect() as session:
        notion.remove_property(ds_id, "Stars")  # deleted in Notion after the session read the schema
        with pytest.raises(RecordError, match="Stars is not a property that exists"):
            await session.create(repo("1"), synced_at)
        with pytest.raises(RecordError, match="option 'Rust, Go'"):
            await session.create(repo("2", Language="Rust, Go"), synced_at)  # encode.py's check, shared


async def test_updating_a_trashed_or_deleted_page_is_a_record_error(make_dest: MakeDest, notion, synced_at):
    dest = make_dest()
    page_id = await create(dest, repo("1"), synced_at)
    notion.trash_page(page_id)
    async with dest.connect() as session:
        with pytest.raises(RecordError, match="in the trash"):
            await session.update(page_id, repo("1", Stars=2), synced_at)
        notion.delete_page(page_id)
        with pytest.raises(RecordError, match="not found"):
            await session.update(page_id, repo("1", Stars=2), synced_at)


async def test_a_rate_limit_surfaces_with_its_retry_after(make_dest: MakeDest, mcp_fake, notion, ds_id, synced_at):
    async with make_dest(max_wait=0).connect() as session:  # two fetches: database, data source
        notion.set_rate(0.01, burst=1)  # the create's schema read passes, its POST waits 100 s
        with pytest.raises(RateLimited) as caught:
            await session.create(repo("1"), synced_at)
    assert caught.value.retry_after == 100 and mcp_fake.counters.rate_limited == 1
    assert not notion.pages(ds_id)


async def test_a_database_id_or_a_data_source_id_finds_the_data_source(make_dest: MakeDest, notion, db, ds_id, caplog):
    second = notion.add_data_source(db.id, SCHEMA, name="Second")
    caplog.set_level(logging.WARNING)
    for dest in (make_dest(db.id), make_dest(data_source_id=ds_id), make_dest(ds_id)):
        async with dest.connect() as session:
            assert session.target.data_source_id == ds_id
    assert "has 2 data sources" in caplog.text and second.id in caplog.text
    async with make_dest(data_source_id=second.id).connect() as session:
        assert session.target.data_source_id == second.id
    with pytest.raises(ConfigError, match="visible to the authorized user"):
        async with make_dest("00000000-0000-4000-8000-000000000000").connect():
            pass
    page = notion.add_page(ds_id, {"Name": "a page, not a database"})
    with pytest.raises(ConfigError, match="not a database or a data source"):
        async with make_dest(page.id).connect():
            pass


async def test_a_missing_key_property_is_a_config_error(make_dest: MakeDest):
    with pytest.raises(ConfigError, match="no property 'Repo ID'"):
        async with make_dest(key_property="Repo ID").connect():
            pass


@pytest.mark.parametrize("with_parent", [True, False])
async def test_ensure_schema_creates_the_database_and_writes_go_there(
    make_dest: MakeDest, notion: FakeNotion, synced_at, with_parent
):
    sample = [repo("1"), repo("2", Languages=["Rust"])]
    schema = infer_schema(sample, title="Name", key="Key", synced="Last synced", overrides={"URL": "url"})
    parent = notion.add_parent_page("Home") if with_parent else None
    dest = make_dest(parent_page_id=parent) if parent else make_dest(data_source_id=None)
    if not with_parent:
        dest.database_id = None
    database_id = await dest.ensure_schema(schema)
    assert database_id is not None and notion.databases[database_id].parent_page_id == parent
    (ds,) = notion.databases[database_id].data_source_ids
    assert notion.data_sources[ds].properties["Languages"]["type"] == "multi_select"
    assert set(notion.options(ds, "Languages")) == {"Python", "Go", "Rust"}
    page_id = await create(dest, repo("3"), synced_at)
    assert notion.values(page_id)["Key"] == "3" and notion.values(page_id)["URL"] == "https://github.com/acme/widgets"
    assert await dest.ensure_schema(schema) is None  # create-only


def test_schema_ddl_and_flat_values():
    schema = infer_schema(
        [repo("1", Languages=["it's", 'say "hi"'])], title="Name", key="Key", overrides={"URL": "url"}
    )
    ddl = schema_to_ddl(schema)
    assert ddl.startswith('CREATE TABLE ("Name" TITLE, "Key" RICH_TEXT, "URL" URL,')
    assert "MULTI_SELECT('it''s', 'say \"hi\"')" in ddl
    flat = to_flat_properties(
        {
            "URL": {"url": "https://x"},
            "Done": {"checkbox": False},
            "Due": {"date": {"start": "2024-05-01"}},
            "At": {"date": {"start": "2024-05-01T10:00:00+00:00"}},
            "Gone": {"date": None},
            "Tags": {"multi_select": []},
            "Title": {"title": []},
        }
    )
    assert flat == {
        "userDefined:URL": "https://x",
        "Done": "__NO__",
        "date:Due:start": "2024-05-01",
        "date:Due:is_datetime": 0,
        "date:At:start": "2024-05-01T10:00:00+00:00",
        "date:At:is_datetime": 1,
        "date:Gone:start": None,
        "Tags": None,
        "Title": "",
    }


def test_credential_key_fingerprint_and_configuration(make_dest: MakeDest):
    store = MemoryTokenStore()
    dest = make_dest(auth=None, token_store=store, account="acme")
    assert not dest.configured and "durable-sync auth login" in dest.config_hint
    assert dest.credential_fingerprint() is None
    store.replace("acme", OAuthToken("access-1", refresh_token="refresh-1"))
    first = dest.credential_fingerprint()
    assert dest.configured and dest.credential_key == dest.rate_limit_key == "notion-mcp:acme"
    assert first and "refresh-1" not in first
    store.replace("acme", OAuthToken("access-2", refresh_token="refresh-2"))  # a new login
    assert dest.credential_fingerprint() != first
    assert NotionMcpDestination.is_auth_error(AuthError("x"))


async def test_a_token_store_alone_authorizes_with_the_stored_access_token(make_dest: MakeDest, notion, synced_at):
    store = MemoryTokenStore()
    store.replace("acme", OAuthToken(notion.token, refresh_token="r"))
    page_id = await create(make_dest(auth=None, token_store=store, account="acme"), repo("1"), synced_at)
    assert notion.values(page_id)["Key"] == "1"


def test_a_route_picks_the_transport_by_configuration():
    rest = notion_destination("rest", "1a2b3c4d1a2b3c4d1a2b3c4d1a2b3c4d", token="t", token_env=None)
    mcp = notion_destination("mcp", "1a2b3c4d1a2b3c4d1a2b3c4d1a2b3c4d", auth="t")
    assert isinstance(rest, NotionDestination) and isinstance(mcp, NotionMcpDestination)
    assert rest.credential_key != mcp.credential_key
    with pytest.raises(ConfigError):
        notion_destination("soap")  # type: ignore[arg-type]

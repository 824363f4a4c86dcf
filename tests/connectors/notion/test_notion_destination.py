"""NotionDestination against the stateful fake: encodings, clearing, limits, ids, trash, retries, auth."""

from __future__ import annotations

import datetime as dt
import json
import logging
import urllib.parse
from collections.abc import Callable
from typing import Any

import pytest

from connectors.core import AuthError, ConfigError, Record, RecordError, TransientError
from connectors.notion import NotionDestination, infer_schema
from tests.fakes.notion import MAX_PAYLOAD_BYTES, FakeNotion, encode_property_id, serve, utf16_len

MakeDest = Callable[..., NotionDestination]


def repo(key: str = "101", **overrides: Any) -> Record:
    properties: dict[str, Any] = {
        "Name": "acme/widgets",
        "URL": "https://github.com/acme/widgets",
        "Description": "Widgets — “quoted”, ünïcødé\nsecond line",
        "Stars": 1234,
        "Forks": 0,
        "Open issues": 1.5,
        "Language": "Python",
        "Languages": ["Python", "Go"],
        "Topics": ["sync"],
        "Archived": True,
        "Fork": False,
        "License": "MIT",
        "Contributors": [],
        "Pushed at": dt.datetime(2024, 4, 30, 9, 15, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        "Created": dt.date(2020, 2, 29),
        "Email": "team@example.com",
        "Phone": "+1 555 0100",
    }
    properties.update(overrides)
    return Record(key, properties)


async def create(dest: NotionDestination, record: Record, synced_at: dt.datetime) -> str:
    async with dest.connect() as session:
        return await session.create(record, synced_at)


async def update(dest: NotionDestination, page_id: str, record: Record, synced_at: dt.datetime) -> bool:
    async with dest.connect() as session:
        return await session.update(page_id, record, synced_at)


# --------------------------------------------------------------------------------------------------
# Encodings


async def test_every_neutral_type_round_trips_through_the_fake(dest, make_source, fake, ds_id, synced_at):
    record = repo()
    page_id = await create(dest, record, synced_at)

    (read,) = await make_source().fetch(make_source().specs()[0])
    assert read.primary_key == page_id
    for name, value in record.properties.items():
        got = read.properties[name]
        expected = value if value != [] else []
        assert got == expected, name
        assert type(got) is type(expected), name
    assert read.properties["Key"] == "101"
    assert read.properties["Last synced"] == synced_at
    assert read.properties["Pushed at"].utcoffset() == dt.timedelta(hours=2)
    assert isinstance(read.properties["Created time"], dt.datetime)
    assert read.properties["Status"] is None
    assert fake.values(page_id)["Key"] == "101"


async def test_none_and_empty_lists_clear_every_kind_of_property(dest, fake, synced_at):
    page_id = await create(dest, repo(), synced_at)
    cleared: dict[str, Any] = {name: None for name in repo().properties if name != "Name"}
    cleared.update(Languages=[], Topics=None)
    await update(dest, page_id, Record("101", {"Name": None, **cleared}), synced_at)

    values = fake.values(page_id)
    assert values["Name"] == "" and values["Description"] == ""
    assert values["Stars"] is None and values["Open issues"] is None
    assert values["Language"] is None and values["License"] is None
    assert values["Languages"] == [] and values["Topics"] == []
    assert values["Pushed at"] is None and values["Created"] is None
    assert values["URL"] is None and values["Email"] is None and values["Phone"] is None
    assert values["Archived"] is False  # a checkbox cannot be empty: None unchecks it
    assert values["Key"] == "101"  # the key is always written


async def test_empty_strings_clear_options_dates_and_urls(dest, fake, synced_at):
    page_id = await create(dest, repo(), synced_at)
    await update(dest, page_id, repo(Language="", Created="", URL="  ", Description=""), synced_at)
    values = fake.values(page_id)
    assert values["Language"] is None and values["Created"] is None and values["URL"] is None
    assert values["Description"] == ""


async def test_long_title_is_split_into_elements_without_loss(dest, fake, synced_at):
    title = "".join(chr(0x61 + i % 26) for i in range(5000))
    page_id = await create(dest, repo(Name=title), synced_at)
    elements = fake.rich_text(page_id, "Name")
    assert [utf16_len(e["plain_text"]) for e in elements] == [2000, 2000, 1000]
    assert fake.values(page_id)["Name"] == title
    assert not dest.truncations


async def test_text_beyond_100_elements_is_truncated_and_reported(dest, fake, synced_at, caplog):
    caplog.set_level(logging.WARNING, logger="connectors.notion")
    long = "x" * 250_000
    page_id = await create(dest, repo("long-1", Name=long, Description=long), synced_at)

    for name in ("Name", "Description"):
        elements = fake.rich_text(page_id, name)
        assert len(elements) == 100
        assert fake.values(page_id)[name] == "x" * 200_000
    reports = {r.truncation.property: r for r in dest.truncations}
    assert set(reports) == {"Name", "Description"}
    assert reports["Name"].primary_key == "long-1"
    assert (reports["Name"].truncation.original, reports["Name"].truncation.kept) == (250_000, 200_000)
    assert "long-1" in caplog.text and "truncated from 250000 to 200000" in caplog.text


async def test_astral_characters_count_double_against_the_2000_limit(dest, fake, synced_at):
    text = "🚀" * 1500 + "é" * 10  # 3010 UTF-16 units in 1510 Python characters
    page_id = await create(dest, repo(Description=text), synced_at)
    elements = fake.rich_text(page_id, "Description")
    assert max(utf16_len(e["plain_text"]) for e in elements) <= 2000
    assert fake.values(page_id)["Description"] == text


async def test_a_multi_select_option_that_does_not_exist_is_a_record_error(dest, fake, ds_id, synced_at):
    with pytest.raises(RecordError) as raised:
        await create(dest, repo(Languages=["Python", "Zig"]), synced_at)
    assert "'Zig'" in str(raised.value) and "Languages" in str(raised.value)
    assert raised.value.primary_key == "101"
    assert fake.pages(ds_id) == []
    assert "Zig" not in fake.options(ds_id, "Languages")


async def test_a_select_option_that_does_not_exist_is_a_record_error(dest, fake, ds_id, synced_at):
    with pytest.raises(RecordError, match=r"'GPL-3\.0'"):
        await create(dest, repo(License="GPL-3.0"), synced_at)
    assert fake.pages(ds_id) == []


async def test_create_missing_options_lets_notion_add_them(make_dest, fake, ds_id, synced_at):
    dest = make_dest(create_missing_options=True)
    page_id = await create(
        dest, repo(Languages=["Python", "Zig"], License="GPL-3.0", Contributors=["ann", "bob"]), synced_at
    )
    assert fake.values(page_id)["Languages"] == ["Python", "Zig"]
    assert "Zig" in fake.options(ds_id, "Languages")
    assert "GPL-3.0" in fake.options(ds_id, "License")
    assert fake.options(ds_id, "Contributors") == ["ann", "bob"]


async def test_option_names_with_commas_are_record_errors(make_dest, synced_at):
    with pytest.raises(RecordError, match="comma"):
        await create(make_dest(create_missing_options=True), repo(Topics=["a,b"]), synced_at)


async def test_a_date_string_that_is_no_date_is_a_record_error(dest, fake, ds_id, synced_at):
    with pytest.raises(RecordError, match="not a date"):
        await create(dest, repo(Created="last tuesday"), synced_at)
    assert fake.pages(ds_id) == []


async def test_iso_date_strings_are_written_as_dates(dest, fake, synced_at):
    page_id = await create(dest, repo(Created="2021-03-04", **{"Pushed at": "2024-05-01T10:00:00Z"}), synced_at)
    values = fake.values(page_id)
    assert values["Created"] == "2021-03-04"
    assert dt.datetime.fromisoformat(values["Pushed at"]) == dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Stars", ["1", "2"]),
        ("Stars", "12"),
        ("Stars", True),
        ("Archived", "yes"),
        ("Created", 20240501),
        ("Language", ["Python"]),
        ("URL", 42),
        ("Pushed at", dt.datetime(2024, 5, 1, 12)),  # naive
        ("URL", "https://example.com/" + "a" * 2000),
    ],
)
async def test_a_value_that_does_not_fit_its_property_is_a_record_error(dest, fake, ds_id, synced_at, name, value):
    with pytest.raises(RecordError, match=repr(name)):
        await create(dest, repo(**{name: value}), synced_at)
    assert fake.pages(ds_id) == []


async def test_values_written_as_text_keep_their_meaning(dest, fake, synced_at):
    page_id = await create(dest, repo(Description=["a", "b"], Name=42), synced_at)
    assert fake.values(page_id)["Description"] == "a, b"
    assert fake.values(page_id)["Name"] == "42"


async def test_unknown_and_computed_properties_are_dropped_with_one_warning_per_session(
    dest, fake, ds_id, synced_at, caplog
):
    caplog.set_level(logging.WARNING, logger="connectors.notion")
    extra = {"Homepage": "https://acme.dev", "Created time": "2020-01-01", "Edited": None}
    async with dest.connect() as session:
        first = await session.create(repo("1", **extra), synced_at)
        second = await session.create(repo("2", **extra), synced_at)
    assert len(fake.pages(ds_id)) == 2
    assert fake.values(first)["Stars"] == 1234 and fake.values(second)["Key"] == "2"
    messages = [r.getMessage() for r in caplog.records]
    for name in ("Homepage", "Created time", "Edited"):
        assert sum(f"{name!r}" in m for m in messages) == 1, name


async def test_a_column_deleted_in_notion_is_dropped_not_fatal(dest, fake, ds_id, synced_at):
    fake.remove_property(ds_id, "Topics")
    page_id = await create(dest, repo(), synced_at)
    assert fake.values(page_id)["Stars"] == 1234


async def test_the_title_goes_to_the_title_property_whatever_it_is_called(fake, make_dest, synced_at):
    other = fake.add_database({"Repository": "title", "Key": "rich_text"}, title="Renamed")
    page_id = await create(make_dest(other.id), Record("7", {"Name": "acme/widgets"}), synced_at)
    assert fake.values(page_id) == {"Repository": "acme/widgets", "Key": "7"}


async def test_a_numeric_key_property_round_trips(fake, make_dest, synced_at):
    other = fake.add_database({"Name": "title", "Repo ID": "number"}, title="Numeric")
    dest = make_dest(other.id, key_property="Repo ID")
    page_id = await create(dest, Record("123456789", {"Name": "x"}), synced_at)
    assert fake.values(page_id)["Repo ID"] == 123456789
    async with dest.connect() as session:
        assert await session.query_existing_ids() == {"123456789": page_id}
        for bad in ("abc", "007", "1_000", str(2**60)):
            with pytest.raises(RecordError, match="not a plain integer"):
                await session.create(Record(bad, {"Name": "y"}), synced_at)


async def test_a_data_source_without_the_key_property_is_a_config_error(fake, make_dest):
    other = fake.add_database({"Name": "title"}, title="No key")
    with pytest.raises(ConfigError, match="'Key'"):
        async with make_dest(other.id).connect():
            pass


async def test_a_missing_synced_property_is_skipped_with_a_warning(fake, make_dest, synced_at, caplog):
    caplog.set_level(logging.WARNING, logger="connectors.notion")
    other = fake.add_database({"Name": "title", "Key": "rich_text"}, title="No stamp")
    page_id = await create(make_dest(other.id), Record("1", {"Name": "x"}), synced_at)
    assert fake.values(page_id) == {"Name": "x", "Key": "1"}
    assert "'Last synced'" in caplog.text


# --------------------------------------------------------------------------------------------------
# Ids and data sources


async def test_a_data_source_id_given_as_the_database_id_is_resolved(make_dest, fake, ds_id, synced_at):
    page_id = await create(make_dest(ds_id), repo(), synced_at)
    assert fake.page(page_id).data_source_id == ds_id


async def test_a_database_id_given_as_the_data_source_id_is_resolved(make_dest, fake, db, ds_id, synced_at):
    page_id = await create(make_dest(data_source_id=db.id), repo(), synced_at)
    assert fake.page(page_id).data_source_id == ds_id


async def test_ids_without_dashes_and_notion_urls_are_accepted(make_dest, fake, db, ds_id, synced_at):
    url = f"https://www.notion.so/acme/Repositories-{db.id.replace('-', '')}?v=0123456789abcdef0123456789abcdef"
    page_id = await create(make_dest(url), repo(), synced_at)
    assert fake.page(page_id).data_source_id == ds_id
    assert make_dest(url).describe() == f"https://www.notion.so/{db.id.replace('-', '')}"


async def test_a_database_with_several_data_sources_uses_the_first_unless_one_is_pinned(
    make_dest, fake, db, ds_id, synced_at, caplog, github_schema
):
    caplog.set_level(logging.WARNING, logger="connectors.notion")
    second = fake.add_data_source(db.id, github_schema, name="Archive")
    first_page = await create(make_dest(), repo(), synced_at)
    assert fake.page(first_page).data_source_id == ds_id
    assert "2 data sources" in caplog.text
    pinned = await create(make_dest(data_source_id=second.id), repo(), synced_at)
    assert fake.page(pinned).data_source_id == second.id


async def test_an_id_nobody_shared_is_a_config_error(make_dest):
    dest = make_dest("0123456789abcdef0123456789abcdef")
    with pytest.raises(ConfigError, match="share the database"):
        async with dest.connect():
            pass


def test_garbage_ids_are_config_errors_at_construction():
    with pytest.raises(ConfigError, match="not a Notion id"):
        NotionDestination("my database", token="t")


async def test_resolution_is_cached_and_the_schema_reread_per_session(dest, fake, synced_at):
    await create(dest, repo("1"), synced_at)
    await create(dest, repo("2"), synced_at)
    assert len(fake.requests("GET", r"^/v1/databases/")) == 1
    assert len(fake.requests("GET", r"^/v1/data_sources/")) == 2


# --------------------------------------------------------------------------------------------------
# Bodies, updates, listing


async def test_a_long_body_is_created_then_appended_in_requests_within_every_limit(dest, fake, synced_at):
    paragraphs = [f"{i:05d} " + "y" * 92 for i in range(2500)]  # 2,500 paragraphs, 250,000 characters
    body = "\n\n".join(paragraphs)
    async with dest.connect() as session:
        page_id = await session.create(Record("b1", {"Name": "big"}, body), synced_at)

    creates = fake.requests("POST", r"^/v1/pages$")
    appends = fake.requests("PATCH", r"/children$")
    assert len(creates) == 1 and len(creates[0].body["children"]) == 100
    assert len(appends) == 24
    for request in creates + appends:
        assert request.status == 200
        assert len(request.body["children"]) <= 100
        assert request.size <= MAX_PAYLOAD_BYTES
    assert fake.body_text(page_id) == body


async def test_a_huge_paragraph_of_wide_characters_stays_under_the_payload_limit(dest, fake, synced_at):
    body = "漢字" * 150_000  # 300,000 characters, ~900 KB of UTF-8 in one paragraph
    async with dest.connect() as session:
        page_id = await session.create(Record("b2", {"Name": "wide"}, body), synced_at)
    requests = fake.requests("POST", r"^/v1/pages$") + fake.requests("PATCH", r"/children$")
    assert len(requests) >= 2
    assert all(r.status == 200 and r.size <= MAX_PAYLOAD_BYTES for r in requests)
    assert fake.body_text(page_id).replace("\n\n", "") == body


async def test_update_never_sends_create_only_properties_nor_the_body(make_dest, fake, synced_at):
    dest = make_dest(create_only_properties={"Created", "Description"})
    page_id = await create(dest, Record("9", {**repo().properties}, "the original body"), synced_at)
    later = synced_at + dt.timedelta(hours=1)
    changed = repo(Created=dt.date(1999, 1, 1), Description="rewritten", Stars=5)
    await update(dest, page_id, Record("9", changed.properties, "a new body"), later)

    values = fake.values(page_id)
    assert values["Created"] == "2020-02-29" and values["Description"].startswith("Widgets")
    assert values["Stars"] == 5
    assert dt.datetime.fromisoformat(values["Last synced"]) == later
    assert fake.body_text(page_id) == "the original body"
    (patch,) = fake.requests("PATCH", r"^/v1/pages/")
    assert set(patch.body) == {"properties"}
    assert not {"Created", "Description"} & set(patch.body["properties"])
    assert fake.requests("PATCH", r"/children$") == []


async def test_query_existing_rows_pages_through_250_rows_in_3_calls_sorted_by_key(dest, fake, ds_id):
    keys = [f"k{(i * 7919) % 250:03d}" for i in range(250)]
    ids = {key: fake.add_page(ds_id, {"Name": key, "Key": key}).id for key in keys}
    fake.add_page(ds_id, {"Name": "added by hand"})  # no key: not ours
    trashed = fake.add_page(ds_id, {"Name": "trashed", "Key": "zzz"})
    fake.trash_page(trashed.id)

    async with dest.connect() as session:
        rows = [pair async for pair in session.query_existing_rows()]

    assert [key for key, _ in rows] == sorted(keys)
    assert dict(rows) == ids
    queries = fake.requests("POST", r"/query$")
    assert len(queries) == 3
    assert all(
        q.body["page_size"] == 100 and q.body["sorts"] == [{"property": "Key", "direction": "ascending"}]
        for q in queries
    )


@pytest.mark.parametrize("raw_id", ["swq\\", "=qI;", "U:C<", "a&b+", "%#?/", "iAk8"])
async def test_the_listing_sends_the_key_property_id_encoded_once(fake, make_dest, raw_id):
    # Notion lists property ids URL-encoded (swq%5C); sent as listed, httpx encodes the % again
    # (swq%255C) and Notion answers 400 validation_error. The wire must carry the id encoded once.
    db = fake.add_database({"Name": "title", "Key": "rich_text"})
    ds = fake.data_sources[db.data_source_ids[0]]
    ds.properties["Key"]["id"] = encode_property_id(raw_id)
    page = fake.add_page(ds.id, {"Key": "k1"})

    async with make_dest(db.id).connect() as session:
        rows = [pair async for pair in session.query_existing_rows()]

    assert rows == [("k1", page.id)]
    (query,) = fake.requests("POST", r"/query$")
    assert query.status == 200
    assert urllib.parse.parse_qs(query.query)["filter_properties"] == [raw_id]


async def test_a_rejected_filter_falls_back_to_an_unfiltered_listing_logged_once(fake, make_dest, ds_id, caplog):
    page = fake.add_page(ds_id, {"Name": "one", "Key": "k1"})
    dest = make_dest()
    caplog.set_level(logging.INFO, logger="connectors.notion.destination")
    async with dest.connect() as session:
        # The key property's id changed after the session read the schema: Notion rejects the old one.
        fake.data_sources[ds_id].properties["Key"]["id"] = encode_property_id("n3w;")
        assert [pair async for pair in session.query_existing_rows()] == [("k1", page.id)]
        assert [pair async for pair in session.query_existing_rows()] == [("k1", page.id)]
    async with dest.connect() as session:
        assert await session.query_existing_ids() == {"k1": page.id}

    queries = fake.requests("POST", r"/query$")
    assert [q.status for q in queries] == [400, 200, 200, 200]  # later listings ask unfiltered at once
    assert "filter_properties" in queries[0].query and not any(q.query for q in queries[1:])
    fallbacks = [r for r in caplog.records if "filter_properties" in r.getMessage()]
    assert len(fallbacks) == 1 and fallbacks[0].levelno == logging.INFO
    assert "is not a property that exists" in fallbacks[0].getMessage()


async def test_the_listing_reads_past_the_query_result_cap_by_creation_time(dest, fake, ds_id, time, caplog):
    # Notion stops one query at 10,000 pages (here 25) and says so in request_status; the engine must
    # not take the rows past the cap as gone.
    fake.query_limit = 25
    ids: dict[str, str] = {}
    for i in range(70):
        ids[f"k{(i * 37) % 70:03d}"] = fake.add_page(ds_id, {"Key": f"k{(i * 37) % 70:03d}"}).id
        if i % 3 == 2:
            time.advance(60)  # created_time has minute resolution: three pages a minute
    fake.add_page(ds_id, {"Name": "added by hand"})

    async with dest.connect() as session:
        rows = [pair async for pair in session.query_existing_rows()]

    assert sorted(rows) == sorted(ids.items())
    assert [key for key, _ in rows[:25]] == sorted(ids)[:25]  # the first query is sorted by key
    queries = fake.requests("POST", r"/query$")
    assert all(q.status == 200 for q in queries)
    assert any("filter" in q.body and "created_time" in q.body["filter"] for q in queries)
    assert any("more pages than one query returns" in r.getMessage() for r in caplog.records)


async def test_a_listing_stuck_on_the_cap_within_one_minute_fails_instead_of_being_partial(dest, fake, ds_id):
    fake.query_limit = 25
    for i in range(30):  # all created in the same minute
        fake.add_page(ds_id, {"Key": f"k{i:03d}"})
    async with dest.connect() as session:
        with pytest.raises(TransientError, match="more than 10,000 pages were created within one minute"):
            await session.query_existing_ids()


async def test_a_duplicate_key_is_listed_twice(dest, fake, ds_id):
    first = fake.add_page(ds_id, {"Key": "dup"})
    second = fake.add_page(ds_id, {"Key": "dup"})
    async with dest.connect() as session:
        rows = [pair async for pair in session.query_existing_rows()]
    assert sorted(rows) == sorted([("dup", first.id), ("dup", second.id)])


async def test_updating_a_page_in_the_trash_is_a_record_error(dest, fake, synced_at):
    page_id = await create(dest, repo(), synced_at)
    fake.trash_page(page_id)
    with pytest.raises(RecordError, match="trash") as raised:
        await update(dest, page_id, repo(Stars=1), synced_at)
    assert raised.value.primary_key == "101"
    assert fake.page(page_id).in_trash and fake.values(page_id)["Stars"] == 1234
    async with dest.connect() as session:
        assert await session.query_existing_ids() == {}


async def test_updating_a_deleted_page_is_a_record_error(dest, fake, synced_at):
    page_id = await create(dest, repo(), synced_at)
    fake.delete_page(page_id)
    with pytest.raises(RecordError, match="not found"):
        await update(dest, page_id, repo(), synced_at)


# --------------------------------------------------------------------------------------------------
# Auth, rate limits, retries


async def test_a_revoked_token_is_an_auth_error_that_pauses(dest, fake, synced_at):
    page_id = await create(dest, repo(), synced_at)
    fake.revoke_token(fake.token)
    with pytest.raises(AuthError) as raised:
        await update(dest, page_id, repo(), synced_at)
    assert dest.is_auth_error(raised.value)
    assert "401" in str(raised.value) and fake.token not in str(raised.value)


async def test_429_with_retry_after_is_waited_out_by_the_toolkit(fake, make_dest, ds_id, time, synced_at):
    fake.set_rate(3, burst=3)
    dest = make_dest()
    async with dest.connect() as session:
        for i in range(6):
            await session.create(repo(str(i)), synced_at)
    assert len(fake.pages(ds_id)) == 6
    assert fake.counters.rate_limited >= 1
    assert time.sleeps and all(s >= 1.0 for s in time.sleeps)  # the server's Retry-After (integer seconds)
    assert {r.status for r in fake.log} == {200, 429}


async def test_a_409_conflict_is_retried_even_for_a_create(dest, fake, ds_id, synced_at):
    fake.fail_next(1, 409, method="POST", path=r"^/v1/pages$")
    await create(dest, repo(), synced_at)
    assert [r.status for r in fake.requests("POST", r"^/v1/pages$")] == [409, 200]
    assert len(fake.pages(ds_id)) == 1


async def test_a_create_that_may_have_happened_is_never_resent(dest, fake, ds_id, synced_at):
    fake.fail_next(1, 502, after=True, method="POST", path=r"^/v1/pages$")
    with pytest.raises(TransientError):
        await create(dest, repo(), synced_at)
    assert len(fake.requests("POST", r"^/v1/pages$")) == 1
    (page,) = fake.pages(ds_id)  # it did happen: the engine's reconcile adopts it by key
    async with dest.connect() as session:
        assert await session.query_existing_ids() == {"101": page.id}


async def test_an_update_is_retried_after_a_503(dest, fake, synced_at):
    page_id = await create(dest, repo(), synced_at)
    fake.fail_next(2, 503, method="PATCH")
    assert await update(dest, page_id, repo(Stars=7), synced_at)
    assert fake.values(page_id)["Stars"] == 7


async def test_a_failed_append_keeps_the_page_and_warns(dest, fake, ds_id, synced_at, caplog):
    caplog.set_level(logging.WARNING, logger="connectors.notion")
    body = "\n\n".join(f"p{i}" for i in range(150))
    fake.fail_next(1, 502, method="PATCH", path=r"/children$")
    page_id = await create(dest, Record("1", {"Name": "x"}, body), synced_at)
    assert [p.id for p in fake.pages(ds_id)] == [page_id]
    assert "body is incomplete" in caplog.text


async def test_the_token_never_appears_in_errors_or_logs(fake, make_dest, synced_at, caplog):
    caplog.set_level(logging.DEBUG)
    dest = make_dest()
    fake.fail_next(2, 502, method="PATCH")
    errors: list[BaseException] = []
    page_id = await create(dest, repo(), synced_at)
    await update(dest, page_id, repo(Stars=2), synced_at)
    for bad in (repo(Languages=["nope"]), repo(Stars="many")):
        with pytest.raises(RecordError) as raised:
            await create(dest, bad, synced_at)
        errors.append(raised.value)
    fake.revoke_token(fake.token)
    with pytest.raises(AuthError) as auth:
        await create(dest, repo(), synced_at)
    errors.append(auth.value)
    texts = [caplog.text, dest.describe(), dest.rate_limit_key, dest.config_hint, str(dest.credential_fingerprint())]
    texts += [f"{e!s} {e!r} {getattr(e, 'body', '')} {getattr(e, 'url', '')}" for e in errors]
    assert caplog.records
    for text in texts:
        assert fake.token not in text
        assert fake.token.removeprefix("ntn_") not in text


# --------------------------------------------------------------------------------------------------
# Configuration, ensure_schema, loopback


def test_configured_needs_a_token_and_an_id(monkeypatch):
    monkeypatch.delenv("NOTION_TOKEN", raising=False)
    monkeypatch.delenv("NOTION_DATABASE_ID", raising=False)
    dest = NotionDestination()
    assert not dest.configured
    assert "NOTION_TOKEN" in dest.config_hint and "NOTION_DATABASE_ID" in dest.config_hint
    monkeypatch.setenv("NOTION_TOKEN", "ntn_secret_value_123456789")
    assert not dest.configured and "NOTION_TOKEN" not in dest.config_hint
    monkeypatch.setenv("NOTION_DATABASE_ID", "0123456789abcdef0123456789abcdef")
    assert dest.configured
    assert dest.describe() == "https://www.notion.so/0123456789abcdef0123456789abcdef"


def test_rate_limit_key_and_fingerprint_follow_the_token_without_revealing_it(monkeypatch):
    monkeypatch.setenv("NOTION_TOKEN", "ntn_first_token_abcdefghij")
    dest = NotionDestination("0123456789abcdef0123456789abcdef")
    key, fingerprint = dest.rate_limit_key, dest.credential_fingerprint()
    assert key.startswith("notion:") and len(key) == len("notion:") + 12
    assert "ntn_" not in key and "ntn_" not in str(fingerprint)
    monkeypatch.setenv("NOTION_TOKEN", "ntn_second_token_abcdefghij")
    assert dest.rate_limit_key != key and dest.credential_fingerprint() != fingerprint
    assert dest.stores_keys is True and dest.max_concurrency == 3


async def test_ensure_schema_creates_a_database_only_when_none_is_configured(fake, make_dest, synced_at):
    parent = fake.add_parent_page("Sync targets")
    records = [repo("1"), repo("2", Stars=None, Topics=["notion"])]
    schema = infer_schema(
        records, title="Name", key="Key", synced="Last synced", overrides={"URL": "url"}, name="Repos"
    )
    dest = make_dest(parent_page_id=parent)
    assert not dest.configured

    database_id = await dest.ensure_schema(schema)
    assert database_id in fake.databases and dest.configured
    (ds,) = [fake.data_sources[i] for i in fake.databases[database_id].data_source_ids]
    types = {name: prop["type"] for name, prop in ds.properties.items()}
    assert types["Name"] == "title" and types["Key"] == "rich_text" and types["URL"] == "url"
    assert types["Stars"] == "number" and types["Archived"] == "checkbox" and types["Topics"] == "multi_select"
    assert types["Pushed at"] == "date" and types["Last synced"] == "date" and types["Contributors"] == "multi_select"
    assert set(fake.options(ds.id, "Topics")) == {"sync", "notion"}

    page_id = await create(dest, repo("1", Language="Python"), synced_at)
    assert fake.page(page_id).data_source_id == ds.id
    assert await dest.ensure_schema(schema) is None  # configured now: create-only, never altered
    assert len(fake.requests("POST", r"^/v1/databases$")) == 1


async def test_ensure_schema_leaves_a_configured_database_alone(dest, fake):
    schema = infer_schema([repo()], title="Name", key="Key")
    assert await dest.ensure_schema(schema) is None
    assert fake.requests("POST", r"^/v1/databases$") == []


async def test_ensure_schema_without_a_parent_page_is_a_config_error(fake, make_dest):
    dest = NotionDestination(token=fake.token, token_env=None, database_id_env=None)
    with pytest.raises(ConfigError, match="parent_page_id"):
        await dest.ensure_schema(infer_schema([repo()], title="Name", key="Key"))


async def test_the_destination_works_against_the_fake_on_a_loopback_port(synced_at, github_schema):
    fake = FakeNotion()  # real time, 3 requests/s with a burst of 10
    database = fake.add_database(github_schema, title="Loopback")
    with serve(fake) as base_url:
        dest = NotionDestination(database.id, token=fake.token, token_env=None, base_url=base_url)
        async with dest.connect() as session:
            page_id = await session.create(repo("lo-1"), synced_at)
            assert await session.update(page_id, repo("lo-1", Stars=9), synced_at)
            assert await session.query_existing_ids() == {"lo-1": page_id}
    assert fake.values(page_id)["Stars"] == 9
    assert json.dumps([r.status for r in fake.log]) == json.dumps([200] * len(fake.log))


async def test_a_github_shaped_record_keyed_on_repo_id(fake, make_dest, github_schema, synced_at):
    schema = {("Repo ID" if name == "Key" else name): spec for name, spec in github_schema.items()}
    database = fake.add_database(schema, title="GitHub")
    dest = make_dest(database.id, key_property="Repo ID", create_missing_options=True)
    record = repo("4242", **{"Repo ID": "4242", "Full name": "acme/widgets", "Topics": ["new-topic"]})
    page_id = await create(dest, record, synced_at)
    values = fake.values(page_id)
    assert values["Repo ID"] == "4242" and values["Topics"] == ["new-topic"]
    async with dest.connect() as session:
        assert await session.query_existing_ids() == {"4242": page_id}

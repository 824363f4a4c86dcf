"""ContentfulSource against the fake: the Sync API's initial sync and deltas, crash safety, typed values, CMA mode."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from connectors.contentful import ContentfulSource
from connectors.core import AuthError, ConfigError, Record, SourceSpec, TransientError, auth_error_in_chain
from connectors.http import HttpSettings
from connectors.memory import MemoryDestination
from sync_assets.engine import PassOptions, run_pass
from sync_assets.routes import Route, partition_key_for
from tests.connectors.contentful.conftest import SPACE, FakeTime
from tests.fakes.contentful import FakeContentful, FakeEnvironment, serve

MakeSource = Callable[..., ContentfulSource]
UTC = dt.UTC


def article(i: int, **overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"title": f"Article {i}", "slug": f"article-{i}", "views": i, "tags": ["a"]}
    fields.update(overrides)
    return fields


async def pages_of(source: ContentfulSource, spec: SourceSpec) -> list[tuple[list[Record], str | None]]:
    pages = []
    cursor: str | None = None
    while True:
        records, cursor = await source.fetch_page(spec, None, cursor)
        pages.append((records, cursor))
        if cursor is None:
            return pages


def keys(records: list[Record]) -> list[str]:
    return [r.primary_key for r in records]


# --------------------------------------------------------------------------------------------------
# The Sync API: initial sync, deltas


async def test_the_initial_sync_pages_to_the_end_and_only_then_stores_the_sync_token(
    make_source: MakeSource, fake: FakeContentful, env: FakeEnvironment
):
    entries = [fake.add_entry(env, "article", article(i)) for i in range(5)]
    fake.add_entry(env, "article", article(9), publish=False)  # a draft: not delivered
    fake.add_entry(env, "author", {"name": "Ada"})  # another content type
    watermarks: dict[str, str] = {}
    source = make_source(content_types=["article", "author"], page_size=2, watermarks=watermarks)
    spec = source.specs()[0]
    assert [s.key for s in source.specs()] == ["type:article", "type:author"]

    first, cursor = await source.fetch_page(spec, None, None)
    assert cursor is not None and json.loads(cursor)["api"] == "cda"
    assert watermarks == {}  # nothing stored mid-pass
    pages = [(first, cursor), *(await pages_of_from(source, spec, cursor))]

    assert [len(records) for records, _ in pages] == [2, 2, 1]
    assert [r.primary_key for records, _ in pages for r in records] == [e.id for e in entries]
    assert watermarks == {}  # held until the engine commits the completed pass
    source.commit(spec.key)
    assert json.loads(watermarks["type:article"])["token"]
    query = fake.sync_requests()[0].query
    assert "type=Entry" in query and "content_type=article" in query and "limit=2" in query
    assert source.pass_metadata(spec)["mode"] == "initial"


async def pages_of_from(source: ContentfulSource, spec: SourceSpec, cursor: str | None) -> list[Any]:
    pages = []
    while cursor is not None:
        records, cursor = await source.fetch_page(spec, None, cursor)
        pages.append((records, cursor))
    return pages


async def test_a_pass_over_an_unchanged_space_costs_one_request(
    make_source: MakeSource, fake: FakeContentful, env: FakeEnvironment
):
    for i in range(5):
        fake.add_entry(env, "article", article(i))
    source = make_source(page_size=2)
    spec = source.specs()[0]
    assert len(await source.fetch(spec)) == 5
    before = len(fake.log)

    again = await source.fetch(spec)

    assert again == [] and len(fake.log) - before == 1  # one sync request, not even a content type read
    assert source.pass_metadata(spec) == {"mode": "delta", "entries": 0, "deletions": 0, "skipped": 0, "requests": 1}


async def test_an_edit_a_publish_and_a_deletion_show_up_in_the_delta_and_nothing_else(
    make_source: MakeSource, fake: FakeContentful, env: FakeEnvironment
):
    entries = [fake.add_entry(env, "article", article(i)) for i in range(6)]
    source = make_source(page_size=2)
    spec = source.specs()[0]  # "all": the deltas carry deletions
    assert spec.key == "all"
    await source.fetch(spec)
    synced = len(fake.sync_requests())

    fake.edit_entry(env, entries[0].id, {"title": "Edited"}, publish=True)
    fake.edit_entry(env, entries[1].id, {"title": "Draft edit"})  # not published: not delivered yet
    new = fake.add_entry(env, "article", article(7))
    fake.unpublish(env, entries[2].id)
    fake.delete_entry(env, entries[3].id)

    delta = await source.fetch(spec)

    assert keys(delta) == [entries[0].id, new.id]
    assert delta[0].properties["title"] == "Edited"
    counts = source.pass_metadata(spec)
    assert counts["deletions"] == 2 and counts["entries"] == 2 and counts["mode"] == "delta"
    assert len(fake.sync_requests()) - synced == 2  # four changes, two items a page
    fake.publish(env, entries[1].id)
    assert keys(await source.fetch(spec)) == [entries[1].id]


async def test_deletions_become_records_with_the_deleted_property_when_configured(
    make_source: MakeSource, fake: FakeContentful, env: FakeEnvironment
):
    entries = [fake.add_entry(env, "article", article(i)) for i in range(3)]
    source = make_source(deleted_property="Deleted")
    spec = source.specs()[0]
    assert all(r.properties["Deleted"] is False for r in await source.fetch(spec))

    fake.unpublish(env, entries[1].id)
    (gone,) = await source.fetch(spec)

    assert gone == Record(entries[1].id, {"Deleted": True})


async def test_a_content_type_spec_sees_its_changes_but_no_deletions(
    make_source: MakeSource, fake: FakeContentful, env: FakeEnvironment
):
    entries = [fake.add_entry(env, "article", article(i)) for i in range(3)]
    author = fake.add_entry(env, "author", {"name": "Ada"})
    source = make_source(content_types=["article"])
    spec = source.specs()[0]
    await source.fetch(spec)

    fake.edit_entry(env, entries[0].id, {"views": 100}, publish=True)
    fake.edit_entry(env, author.id, {"name": "Grace"}, publish=True)
    fake.unpublish(env, entries[2].id)
    delta = await source.fetch(spec)

    assert keys(delta) == [entries[0].id] and delta[0].properties["views"] == 100
    assert source.pass_metadata(spec)["deletions"] == 0  # a type=Entry sync carries none (README)


async def test_reset_makes_the_next_pass_an_initial_sync(make_source: MakeSource, fake: FakeContentful, env):
    for i in range(3):
        fake.add_entry(env, "article", article(i))
    source = make_source()
    spec = source.specs()[0]
    await source.fetch(spec)
    assert await source.fetch(spec) == []
    source.reset(spec.key)
    assert len(await source.fetch(spec)) == 3
    assert "initial=true" in fake.sync_requests()[-1].query


async def test_a_stored_token_of_another_filter_is_not_reused(make_source: MakeSource, fake: FakeContentful, env):
    fake.add_entry(env, "article", article(1))
    watermarks: dict[str, str] = {}
    await make_source(watermarks=watermarks).fetch(SourceSpec("all"))
    watermarks["type:article"] = watermarks.pop("all")  # say the route was reconfigured

    source = make_source(content_types=["article"], watermarks=watermarks)
    assert len(await source.fetch(source.specs()[0])) == 1
    assert "initial=true" in fake.sync_requests()[-1].query


async def test_a_refused_sync_token_falls_back_to_an_initial_sync(make_source: MakeSource, fake, env, caplog):
    for i in range(3):
        fake.add_entry(env, "article", article(i))
    watermarks: dict[str, str] = {}
    source = make_source(watermarks=watermarks)
    await source.fetch(SourceSpec("all"))
    state = json.loads(watermarks["all"])
    watermarks["all"] = json.dumps({**state, "token": "expired-or-foreign"})

    records = await source.fetch(SourceSpec("all"))

    assert len(records) == 3 and source.pass_metadata(SourceSpec("all"))["mode"] == "initial"
    assert json.loads(watermarks["all"])["token"] != "expired-or-foreign"
    assert "was refused (400)" in caplog.text


# --------------------------------------------------------------------------------------------------
# Crash safety, through the engine


async def test_a_crash_mid_initial_sync_resumes_without_losing_changes(
    make_source: MakeSource, fake: FakeContentful, env: FakeEnvironment, sqlite_store
):
    entries = [fake.add_entry(env, "article", article(i)) for i in range(8)]  # four pages of two
    watermarks: dict[str, str] = {}  # durable in production: it outlives the crashed process
    crashed: list[str] = []

    def crash_once(op: str, record: Record) -> Exception | None:
        if record.primary_key == entries[3].id and not crashed:
            crashed.append(record.primary_key)
            return TransientError("503 while writing page two")
        return None

    dest = MemoryDestination(rate_limit_key="memory", fail=crash_once)
    source = make_source(page_size=2, watermarks=watermarks)
    spec = source.specs()[0]
    partition = partition_key_for(spec.key)
    with pytest.raises(TransientError):
        await run_pass(Route(source, dest), partition, sqlite_store, PassOptions(), spec=spec)
    # Page three was read ahead while page two was written; the last page never was, so the sync
    # token of the unfinished pass is not stored.
    assert crashed and watermarks == {}

    # While the pipeline was down: an entry of the page already written is edited, one is added.
    fake.edit_entry(env, entries[0].id, {"title": "Edited while down"}, publish=True)
    added = fake.add_entry(env, "article", article(8))

    route = Route(make_source(page_size=2, watermarks=watermarks), dest)  # a new process
    resumed = await run_pass(route, partition, sqlite_store, PassOptions(), spec=spec)
    assert resumed.stats.resumed_from == 1 and watermarks
    after = await run_pass(route, partition, sqlite_store, PassOptions(), spec=spec)

    assert (after.stats.created, after.stats.updated) == (1, 1)  # the changes made while down
    rows = {row.key: row.properties for row in dest.rows.values()}
    assert sorted(rows) == sorted([e.id for e in entries] + [added.id]) and dest.duplicates() == {}
    assert rows[entries[0].id]["title"] == "Edited while down"


async def test_a_crash_while_writing_the_last_page_replays_it(
    make_source: MakeSource, fake: FakeContentful, env: FakeEnvironment, sqlite_store
):
    entries = [fake.add_entry(env, "article", article(i)) for i in range(5)]
    watermarks: dict[str, str] = {}
    crashed: list[str] = []

    def crash_once(op: str, record: Record) -> Exception | None:
        if record.primary_key == entries[4].id and not crashed:
            crashed.append(record.primary_key)
            return TransientError("503 while writing the last page")
        return None

    dest = MemoryDestination(rate_limit_key="memory", fail=crash_once)
    spec = SourceSpec("all")
    with pytest.raises(TransientError):
        await run_pass(Route(make_source(page_size=2, watermarks=watermarks), dest), "all", sqlite_store, spec=spec)
    # The last page was read (and the token stored) before its write failed; the checkpoint replays it.
    resumed = await run_pass(
        Route(make_source(page_size=2, watermarks=watermarks), dest), "all", sqlite_store, spec=spec
    )
    assert resumed.stats.resumed_from == 2 and len(dest.rows) == 5 and dest.duplicates() == {}
    assert len(fake.requests("cda", path="/sync$")) == 4  # three pages, the last one read twice


# --------------------------------------------------------------------------------------------------
# Records


async def test_every_field_type_is_decoded_to_a_neutral_value(make_source: MakeSource, fake: FakeContentful, env):
    author = fake.add_entry(env, "author", {"name": "Ada"})
    entry = fake.add_entry(
        env,
        "article",
        {
            "title": {"en-US": "Hello", "de-DE": "Hallo"},
            "slug": "hello",
            "body": "Line one\nline two",
            "views": 42,
            "score": 3,
            "featured": True,
            "published": "2024-05-01T10:00:00+02:00",
            "tags": ["x", "y"],
            "author": {"sys": {"type": "Link", "linkType": "Entry", "id": author.id}},
            "related": [{"sys": {"type": "Link", "linkType": "Entry", "id": author.id}}],
            "summary": {"de-DE": "Nur deutsch"},
            "content": {
                "nodeType": "document",
                "data": {},
                "content": [
                    {
                        "nodeType": "paragraph",
                        "data": {},
                        "content": [{"nodeType": "text", "value": "One", "marks": []}],
                    },
                    {
                        "nodeType": "paragraph",
                        "data": {},
                        "content": [{"nodeType": "text", "value": "Two", "marks": []}],
                    },
                ],
            },
            "place": {"en-US": {"lat": 52.5, "lon": 13.4}},
        },
    )
    day = fake.add_entry(env, "article", {"title": "Day", "published": "2024-05-02", "score": 1.5})
    source = make_source(content_types=["article"], url_prefixes={"article": "https://example.com/a/"})

    records = {r.primary_key: r.properties for r in await source.fetch(source.specs()[0])}

    got = records[entry.id]
    assert got["title"] == "Hello" and got["summary"] == "Nur deutsch"  # first locale present as fallback
    assert got["views"] == 42 and type(got["views"]) is int
    assert got["score"] == 3.0 and type(got["score"]) is float
    assert got["featured"] is True
    assert got["published"] == dt.datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    assert got["published"].utcoffset() == dt.timedelta(hours=2)
    assert got["tags"] == ["x", "y"] and got["author"] == author.id and got["related"] == [author.id]
    assert got["content"] == "One\n\nTwo" and got["body"] == "Line one\nline two"
    assert got["place"] == "52.5,13.4" and got["key"] is None
    assert got["Name"] == "Hello" and got["Content type"] == "article"
    assert got["URL"] == "https://example.com/a/hello"
    assert got["Created"] == dt.datetime.fromtimestamp(FakeTime().now, UTC) == got["Updated"]
    assert "Status" not in got
    assert records[day.id]["published"] == dt.date(2024, 5, 2) and records[day.id]["URL"] is None

    german = make_source(content_types=["article"], default_locale="de-DE")
    deutsch = {r.primary_key: r.properties for r in await german.fetch(german.specs()[0])}
    assert deutsch[entry.id]["title"] == "Hallo" and deutsch[entry.id]["body"] == "Line one\nline two"


async def test_only_items_reads_those_entries_and_skips_missing_and_draft_ones(
    make_source: MakeSource, fake: FakeContentful, env
):
    entries = [fake.add_entry(env, "article", article(i)) for i in range(4)]
    draft = fake.add_entry(env, "article", article(5), publish=False)
    source = make_source(content_types=["article"])
    spec = source.specs()[0]
    full = {r.primary_key: r for r in await source.fetch(spec)}
    watermark = dict(source.watermarks)

    wanted = [entries[3].id, entries[1].id, "no-such-entry", draft.id]
    targeted = await source.fetch(spec, wanted)

    assert sorted(keys(targeted)) == sorted([entries[1].id, entries[3].id])
    assert all(r == full[r.primary_key] for r in targeted)  # the same record a pass reads
    assert source.watermarks == watermark
    assert "locale=%2A" in fake.requests("cda", path=r"/entries$")[-1].query


# --------------------------------------------------------------------------------------------------
# CMA mode (drafts)


async def test_cma_mode_reads_drafts_with_their_status_each_entry_once(
    make_source: MakeSource, fake: FakeContentful, env: FakeEnvironment
):
    published = [fake.add_entry(env, "article", article(i)) for i in range(4)]  # all at the same instant
    draft = fake.add_entry(env, "article", article(4), publish=False)
    fake.edit_entry(env, published[0].id, {"title": "Changed"})  # published, with newer draft edits
    source = make_source(api="cma", content_types=["article"], page_size=2)
    spec = source.specs()[0]

    pages = await pages_of(source, spec)
    records = [r for page, _ in pages for r in page]
    by_key = {r.primary_key: r.properties for r in records}

    # Five entries updated in the same millisecond, two a page: keyset paging reads each exactly once.
    assert len(pages) == 3 and sorted(keys(records)) == sorted([e.id for e in published] + [draft.id])
    assert by_key[draft.id]["Status"] == "Draft" and by_key[published[1].id]["Status"] == "Published"
    assert by_key[published[0].id]["Status"] == "Changed" and by_key[published[0].id]["title"] == "Changed"
    assert "sys.id%5Bnin%5D" in fake.requests("cma", path="/entries$")[-1].query
    assert fake.sync_requests() == []


async def test_cma_mode_then_reads_only_what_changed_since_the_last_pass(
    make_source: MakeSource, fake: FakeContentful, env: FakeEnvironment, time: FakeTime
):
    entries = []
    for i in range(5):
        entries.append(fake.add_entry(env, "article", article(i), publish=False))
        time.advance(600)  # ten minutes apart: more than the lookback
    source = make_source(api="cma", page_size=2)
    spec = source.specs()[0]
    assert len(await source.fetch(spec)) == 5

    time.advance(3600)
    fake.edit_entry(env, entries[1].id, {"views": 99})
    delta = await source.fetch(spec)

    # The edit, plus what was updated within cma_lookback of the last pass's newest update.
    assert keys(delta) == [entries[4].id, entries[1].id] and delta[1].properties["views"] == 99
    assert source.pass_metadata(spec)["mode"] == "cma"


async def test_cma_mode_is_chosen_when_only_a_management_token_is_set(make_source: MakeSource, fake, env):
    fake.add_entry(env, "article", article(1), publish=False)
    source = make_source(delivery_token=None)
    assert source.mode() == "cma" and source.credential_key.startswith("contentful-cma:")
    assert len(await source.fetch(source.specs()[0])) == 1


async def test_a_cursor_of_the_other_api_is_a_config_error(make_source: MakeSource, fake, env):
    for i in range(3):
        fake.add_entry(env, "article", article(i))
    _, cursor = await make_source(page_size=2).fetch_page(SourceSpec("all"), None, None)
    with pytest.raises(ConfigError, match="full refresh"):
        await make_source(api="cma").fetch_page(SourceSpec("all"), None, cursor)


# --------------------------------------------------------------------------------------------------
# Failures


async def test_a_revoked_token_is_an_auth_error_and_not_retried(make_source: MakeSource, fake, env, time: FakeTime):
    fake.revoke_token(fake.delivery_token)
    with pytest.raises(AuthError) as raised:
        await make_source().fetch(SourceSpec("all"))
    assert auth_error_in_chain(raised.value) and time.sleeps == []
    assert fake.served(401) == 1


async def test_rate_limits_are_waited_out_as_the_server_says(make_source: MakeSource, fake, env, time: FakeTime):
    for i in range(6):
        fake.add_entry(env, "article", article(i))
    fake.set_rate("cda", 2)  # two requests a second: a pass of four pages meets the limit
    records = await make_source(page_size=2, content_types=["article"]).fetch(SourceSpec("type:article"))

    assert len(records) == 6 and fake.served(429) >= 1
    assert time.sleeps and all(s == 1 for s in time.sleeps)  # X-Contentful-RateLimit-Reset, not a backoff


async def test_the_token_never_appears_in_errors_or_logs(make_source: MakeSource, fake, env, caplog):
    caplog.set_level(logging.DEBUG)
    fake.add_entry(env, "article", article(1))
    fake.fail_next(10, 503)
    with pytest.raises(TransientError) as raised:
        await make_source(retry=None).fetch(SourceSpec("all"))
    fake.revoke_token(fake.delivery_token)
    with pytest.raises(AuthError) as revoked:
        await make_source().fetch(SourceSpec("all"))
    for text in (str(raised.value), str(revoked.value), caplog.text):
        assert fake.delivery_token not in text and fake.cma_token not in text


def test_the_source_pages_a_loopback_server_end_to_end(fake: FakeContentful, env: FakeEnvironment):
    import asyncio

    for i in range(3):
        fake.add_entry(env, "article", article(i))
    with serve(fake) as base:
        source = ContentfulSource(
            SPACE,
            delivery_token=fake.delivery_token,
            delivery_token_env=None,
            cda_base_url=f"{base}/cda",
            page_size=2,
            http=HttpSettings(transport=httpx.AsyncHTTPTransport()),
        )
        records = asyncio.run(source.fetch(SourceSpec("all")))
        fake.edit_entry(env, records[0].primary_key, {"views": 7}, publish=True)
        delta = asyncio.run(source.fetch(SourceSpec("all")))
    assert len(records) == 3 and [r.properties["views"] for r in delta] == [7]

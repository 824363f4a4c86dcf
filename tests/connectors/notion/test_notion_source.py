"""NotionSource against the fake: paging, the incremental filter, cursors, targeted reads, auth."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from connectors.core import AuthError, ConfigError, Record, SourceSpec

HOUR = 3600.0


def seed(fake, ds_id, n: int) -> list[str]:
    return [fake.add_page(ds_id, {"Name": f"repo {i}", "Key": str(i), "Stars": i}).id for i in range(n)]


async def drain(source, spec: SourceSpec, cursor: str | None = None) -> tuple[list[Record], list[str | None]]:
    records: list[Record] = []
    cursors: list[str | None] = []
    while True:
        page, cursor = await source.fetch_page(spec, None, cursor)
        records += page
        cursors.append(cursor)
        if cursor is None:
            source.commit(spec.key)  # as the engine does after a complete pass that is no dry run
            return records, cursors


async def test_a_pass_pages_100_at_a_time_with_opaque_json_cursors(make_source, fake, ds_id):
    ids = seed(fake, ds_id, 250)
    source = make_source()
    (spec,) = source.specs()
    assert spec.key == f"ds:{ds_id}"

    records, cursors = await drain(source, spec)

    assert sorted(r.primary_key for r in records) == sorted(ids)
    assert len(fake.requests("POST", r"/query$")) == 3
    assert cursors[-1] is None
    state = json.loads(cursors[0] or "")
    assert set(state) == {"v", "start_cursor", "since", "high"} and state["since"] is None
    first = fake.requests("POST", r"/query$")[0].body
    assert first["page_size"] == 100 and first["sorts"] == [{"timestamp": "last_edited_time", "direction": "ascending"}]
    assert "filter" not in first
    assert {type(r.properties["Stars"]) for r in records} == {int}


async def test_a_pass_reads_past_the_query_result_cap_from_the_newest_edit_time(make_source, fake, ds_id, time):
    # Notion stops one query at 10,000 pages (here 25) with has_more false and request_status incomplete.
    fake.query_limit = 25
    ids = []
    for i in range(70):
        ids.append(fake.add_page(ds_id, {"Key": str(i)}).id)
        if i % 3 == 2:
            time.advance(60)  # edit times have minute resolution: three pages a minute
    source = make_source()
    (spec,) = source.specs()

    records, cursors = await drain(source, spec)

    assert set(r.primary_key for r in records) == set(ids)  # a few twice: the minute at the cap is re-read
    windows = [json.loads(c) for c in cursors if c and json.loads(c)["start_cursor"] == ""]
    assert windows and all(w["since"] is None and w["after"] == w["high"] for w in windows)
    newest = dt.datetime.fromtimestamp(fake.page(ids[-1]).last_edited_time, dt.UTC).replace(second=0)
    assert source.watermark() == newest


async def test_a_stored_cursor_replays_the_same_page(make_source, fake, ds_id):
    seed(fake, ds_id, 150)
    source = make_source()
    (spec,) = source.specs()
    _, cursor = await source.fetch_page(spec, None, None)
    again, _ = await make_source().fetch_page(spec, None, cursor)  # a new process resuming the pass
    once_more, _ = await source.fetch_page(spec, None, cursor)
    assert [r.primary_key for r in again] == [r.primary_key for r in once_more]
    assert len(again) == 50


async def test_the_second_pass_reads_only_pages_edited_since_the_first(make_source, fake, ds_id, time):
    ids = seed(fake, ds_id, 250)
    time.advance(HOUR)
    fake.edit_page(ids[10], {"Stars": 1000})  # the newest edit the first pass sees
    time.advance(HOUR)
    source = make_source()
    (spec,) = source.specs()
    first, _ = await drain(source, spec)
    assert len(first) == 250
    assert source.watermark() == dt.datetime.fromtimestamp(fake.page(ids[10]).last_edited_time, dt.UTC).replace(
        second=0
    )

    time.advance(HOUR)
    fake.edit_page(ids[20], {"Stars": 2000})
    fake.edit_page(ids[30], {"Name": "renamed"})
    before = len(fake.requests("POST", r"/query$"))
    second, cursors = await drain(source, spec)

    queries = fake.requests("POST", r"/query$")[before:]
    assert len(queries) == 1 and cursors == [None]
    assert set(queries[0].body["filter"]) == {"timestamp", "last_edited_time"}
    assert "on_or_after" in queries[0].body["filter"]["last_edited_time"]
    # The 5-minute lookback re-reads the previous newest edit; nothing older comes back.
    assert {r.primary_key for r in second} == {ids[10], ids[20], ids[30]}
    assert {r.primary_key: r.properties["Stars"] for r in second}[ids[20]] == 2000


async def test_a_full_pass_happens_at_least_every_full_scan_every(make_source, fake, ds_id, time):
    seed(fake, ds_id, 5)
    source = make_source(full_scan_every=dt.timedelta(hours=6))
    (spec,) = source.specs()
    await drain(source, spec)
    time.advance(7 * HOUR)
    records, _ = await drain(source, spec)
    assert len(records) == 5
    assert "filter" not in fake.requests("POST", r"/query$")[-1].body


async def test_reset_forces_a_full_pass_and_watermarks_can_be_durable(make_source, fake, ds_id, time):
    seed(fake, ds_id, 5)
    store: dict[str, str] = {}
    source = make_source(watermarks=store)
    (spec,) = source.specs()
    await drain(source, spec)
    assert json.loads(store[spec.key])["high"]
    time.advance(HOUR)
    restarted = make_source(watermarks=store)  # another process, same store
    await drain(restarted, spec)
    assert "filter" in fake.requests("POST", r"/query$")[-1].body
    restarted.reset()
    assert store == {}
    assert len((await drain(restarted, spec))[0]) == 5
    assert "filter" not in fake.requests("POST", r"/query$")[-1].body


async def test_incremental_off_always_reads_everything(make_source, fake, ds_id, time):
    seed(fake, ds_id, 3)
    source = make_source(incremental=False)
    (spec,) = source.specs()
    await drain(source, spec)
    time.advance(HOUR)
    assert len((await drain(source, spec))[0]) == 3


async def test_only_items_reads_those_pages_by_id(make_source, fake, ds_id, github_schema):
    ids = seed(fake, ds_id, 3)
    fake.trash_page(ids[1])
    other = fake.add_database(github_schema, title="Other")
    foreign = fake.add_page(other.data_source_ids[0], {"Key": "x"}).id
    source = make_source()
    (spec,) = source.specs()
    missing = "0123456789abcdef0123456789abcdef"
    records, cursor = await source.fetch_page(spec, [ids[0], ids[1], ids[2].replace("-", ""), missing, foreign], None)
    assert [r.primary_key for r in records] == [ids[0], ids[2]]
    assert cursor is None
    assert len(fake.requests("GET", r"^/v1/pages/")) == 5
    assert source.watermark() is None  # targeted reads never move the watermark


async def test_pages_in_the_trash_are_not_read(make_source, fake, ds_id):
    ids = seed(fake, ds_id, 3)
    fake.trash_page(ids[0])
    source = make_source()
    records = await source.fetch(source.specs()[0])
    assert sorted(r.primary_key for r in records) == sorted(ids[1:])


async def test_a_database_id_is_resolved_to_its_data_source(make_source, fake, db, ds_id):
    seed(fake, ds_id, 2)
    source = make_source(db.id)
    assert len(await source.fetch(source.specs()[0])) == 2


async def test_a_revoked_token_is_an_auth_error(make_source, fake, ds_id):
    seed(fake, ds_id, 1)
    source = make_source()
    fake.revoke_token(fake.token)
    with pytest.raises(AuthError) as raised:
        await source.fetch(source.specs()[0])
    assert source.is_auth_error(raised.value)
    assert fake.token not in str(raised.value)


async def test_a_cursor_that_is_not_ours_is_a_config_error(make_source, fake, ds_id):
    source = make_source()
    with pytest.raises(ConfigError, match="not one of ours"):
        await source.fetch_page(source.specs()[0], None, "42")


def test_the_source_needs_a_token(monkeypatch, ds_id):
    from connectors.notion import NotionSource

    monkeypatch.delenv("NOTION_TOKEN", raising=False)
    source = NotionSource(ds_id)
    assert source.rate_limit_key == "notion" and source.credential_fingerprint() is None
    with pytest.raises(ConfigError, match="NOTION_TOKEN"):
        source._client()


async def test_a_resumed_incremental_pass_keeps_its_filter(make_source, fake, ds_id, time):
    ids = seed(fake, ds_id, 10)
    time.advance(HOUR)
    fake.edit_page(ids[9], {"Stars": 9})  # the first pass's newest edit
    source = make_source(page_size=2, lookback=dt.timedelta(0))
    (spec,) = source.specs()
    await drain(source, spec)
    time.advance(HOUR)
    for page_id in ids[:3]:
        fake.edit_page(page_id, {"Stars": 0})
    first, cursor = await source.fetch_page(spec, None, None)
    since = json.loads(cursor or "")["since"]
    assert since == fake.requests("POST", r"/query$")[-1].body["filter"]["last_edited_time"]["on_or_after"]

    resumed = make_source(page_size=2)  # a new process, no watermark: the cursor alone carries the filter
    rest, end = await resumed.fetch_page(spec, None, cursor)
    assert end is None
    assert fake.requests("POST", r"/query$")[-1].body["filter"]["last_edited_time"]["on_or_after"] == since
    assert [r.primary_key for r in first + rest] == [ids[9], *ids[:3]]  # ascending last_edited_time

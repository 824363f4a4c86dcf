"""The engine, driven directly (no Dagster), on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from connectors.core import AuthError, ConfigError, Record, RecordError, TransientError
from connectors.memory import MemoryDestination, MemorySource
from sync_assets.engine import PassOptions, Paused, content_hash, run_pass
from sync_assets.routes import Route

UTC = dt.UTC


def recs(n: int, *, version: int = 0, **extra) -> list[Record]:
    return [
        Record(
            f"k{i:05d}",
            {"Name": f"item {i} v{version}", "Rank": i, **extra},
            body=f"body {i}",
        )
        for i in range(n)
    ]


def make_route(records, dest=None, *, page_size=100, **kw) -> Route:
    src = MemorySource({"all": records}, page_size=page_size)
    return Route(src, dest or MemoryDestination(), **kw)


async def sync(route, store, **opts):
    return await run_pass(route, "all", store, PassOptions(**opts))


async def test_first_pass_creates_each_record_once(store):
    route = make_route(recs(250))
    result = await sync(route, store)
    assert (result.stats.created, result.stats.pages) == (250, 3)
    assert len(route.destination.rows) == 250
    assert route.destination.duplicates() == {}
    assert store.link_count(route.name, "all") == 250


async def test_second_pass_over_unchanged_records_writes_nothing(store):
    route = make_route(recs(250))
    await sync(route, store)
    writes = route.destination.counters.writes
    result = await sync(route, store)
    assert result.stats.unchanged == 250
    assert (result.stats.created, result.stats.updated) == (0, 0)
    assert route.destination.counters.writes == writes
    assert route.destination.duplicates() == {}


async def test_one_changed_record_is_exactly_one_update(store):
    records = recs(250)
    route = make_route(records)
    await sync(route, store)
    records[137] = Record("k00137", {"Name": "renamed", "Rank": 137}, body="body 137")
    route.source.records["all"] = records
    result = await sync(route, store)
    assert (result.stats.updated, result.stats.unchanged, result.stats.created) == (1, 249, 0)
    assert route.destination.row("k00137").properties["Name"] == "renamed"


async def test_create_only_properties_survive_updates(store):
    dest = MemoryDestination(create_only_properties={"Owner"})
    records = [Record("a", {"Name": "A", "Owner": "alice"})]
    route = make_route(records, dest)
    await sync(route, store)
    dest.row("a").properties["Owner"] = "edited by a human"
    route.source.records["all"] = [Record("a", {"Name": "A2", "Owner": "bob"})]
    result = await sync(route, store)
    assert result.stats.updated == 1
    assert dest.row("a").properties == {"Name": "A2", "Owner": "edited by a human"}
    # A change to a create-only property alone is not a change.
    route.source.records["all"] = [Record("a", {"Name": "A2", "Owner": "carol"})]
    assert (await sync(route, store)).stats.unchanged == 1


async def test_transform_drops_and_derives_and_owns_restricts(store):
    def transform(r: Record) -> Record | None:
        if r.properties["Rank"] % 2:
            return None
        return Record(r.primary_key, {**r.properties, "Even": True, "Secret": "x"}, r.body)

    route = make_route(recs(10), transform=transform, owns={"Name", "Even"})
    result = await sync(route, store)
    assert (result.stats.created, result.stats.skipped) == (5, 5)
    assert route.destination.row("k00002").properties == {"Name": "item 2 v0", "Even": True}


async def test_async_transform_is_awaited(store):
    async def transform(r: Record) -> Record:
        return Record(r.primary_key, {"Name": r.properties["Name"].upper()})

    route = make_route(recs(3), transform=transform)
    await sync(route, store)
    assert route.destination.row("k00001").properties == {"Name": "ITEM 1 V0"}


async def test_empty_and_duplicate_keys(store):
    records = [
        Record("", {"Name": "no key"}),
        Record("   ", {"Name": "blank key"}),
        Record("a", {"Name": "first"}),
        Record("b", {"Name": "b"}),
        Record("a", {"Name": "last wins"}),
    ]
    route = make_route(records)
    result = await sync(route, store)
    assert result.stats.created == 2
    assert result.stats.failed == 2
    assert result.stats.deduplicated == 1
    assert route.destination.row("a").properties["Name"] == "last wins"
    assert all("empty primary_key" in err for _, err in result.failures)


async def test_neutral_types_arrive_typed(store):
    values = {
        "Date": dt.date(2024, 2, 29),
        "When": dt.datetime(2024, 2, 29, 12, 30, tzinfo=UTC),
        "Tags": ["a", "b"],
        "Done": True,
        "Count": 3,
        "Ratio": 0.5,
        "Empty": None,
        "Text": "héllo",
    }
    route = make_route([Record("x", dict(values))])
    await sync(route, store)
    got = route.destination.row("x").properties
    assert got == values
    assert type(got["Date"]) is dt.date and isinstance(got["When"], dt.datetime)
    assert got["When"].tzinfo is not None and type(got["Done"]) is bool


@pytest.mark.parametrize(
    ("props", "needle"),
    [
        ({"Bad": {"nested": 1}}, "unsupported type dict"),
        ({"Bad": math.nan}, "not a finite number"),
        ({"Bad": math.inf}, "not a finite number"),
        ({"Bad": object()}, "unsupported type object"),
        ({"Bad": [1, 2]}, "list items must be strings"),
        ({"Bad": dt.datetime(2024, 1, 1)}, "has no timezone"),
        ({"Bad": "x" * 101}, "over the destination's limit of 100"),
        ({"": "empty name"}, "property names must be non-empty"),
    ],
)
async def test_bad_record_is_a_per_record_error_and_nothing_else_is_lost(store, props, needle):
    dest = MemoryDestination(max_value_length=100)
    records = [*recs(5), Record("bad", props)]
    route = make_route(records, dest)
    result = await sync(route, store)
    assert result.stats.created == 5
    assert result.failures == [("bad", pytest.approx(result.failures[0][1]))]
    assert needle in result.failures[0][1]
    (outcome,) = store.failed_records(route.name, "all")
    assert outcome.primary_key == "bad" and needle in outcome.error


async def test_failed_write_is_reported_and_retried_next_pass(store):
    broken = {"k00003"}

    def fail(op, record):
        if record.primary_key in broken:
            return RecordError("Memory POST /rows -> 400: validation_error: title too long")
        return None

    dest = MemoryDestination(fail=fail)
    route = make_route(recs(10), dest)
    result = await sync(route, store)
    assert (result.stats.created, result.stats.failed) == (9, 1)
    (outcome,) = store.failed_records(route.name, "all")
    assert (outcome.primary_key, outcome.attempts) == ("k00003", 1)
    assert "validation_error" in outcome.error

    result = await sync(route, store)  # still broken: attempts counted, nothing else rewritten
    assert (result.stats.failed, result.stats.unchanged, result.stats.created) == (1, 9, 0)
    assert store.failed_records(route.name, "all")[0].attempts == 2

    broken.clear()
    result = await sync(route, store)
    assert (result.stats.created, result.stats.unchanged) == (1, 9)
    assert store.failed_records(route.name, "all") == []
    assert dest.duplicates() == {}


async def test_failure_after_page_k_resumes_at_page_k_plus_one(store):
    route = make_route(recs(500), page_size=100)
    route.source.fail_at_page = {3: TransientError("GET /items -> 503")}
    with pytest.raises(TransientError):
        await sync(route, store)
    assert len(route.destination.rows) == 300
    cp = store.get_checkpoint(route.name, "all")
    assert cp is not None and cp.cursor == "300"

    result = await sync(route, store)
    assert result.stats.resumed_from == 3
    assert result.stats.created == 500  # cumulative over the pass
    assert route.source.pages_fetched == 5  # pages 0-2, then 3-4: nothing re-read
    assert len(route.destination.rows) == 500 and route.destination.duplicates() == {}
    assert store.get_checkpoint(route.name, "all") is None


async def test_crash_between_create_and_link_is_adopted_not_duplicated(store):
    """Writes of a page landed, the process died before the link commit: the redo adopts them."""
    dest = MemoryDestination()
    route = make_route(recs(150), dest, page_size=100)
    await sync(route, store)
    # Simulate the crash: forget the links of page 2 but leave intents, as a kill would.
    store.forget_route(route.name)
    store.record_intents(route.name, "all", [f"k{i:05d}" for i in range(100, 150)])
    route.source.records["all"] = recs(150)
    result = await sync(route, store)
    assert result.stats.reconciled and result.stats.adopted == 150
    assert result.stats.created == 0
    assert dest.duplicates() == {}
    assert len(dest.rows) == 150


async def test_row_deleted_by_hand_is_recreated_after_reconcile(store):
    dest = MemoryDestination()
    route = make_route(recs(5), dest)
    await sync(route, store)
    victim = dest.row("k00002").id
    del dest.rows[victim]
    result = await sync(route, store, reconcile=True)
    assert result.stats.gone == 0  # reconciled within the last 10 minutes: skipped
    result = await sync(route, store, full_refresh=True)
    assert result.stats.gone == 1 and result.stats.created == 1
    assert len(dest.rows) == 5 and dest.duplicates() == {}


async def test_reconcile_reports_duplicate_rows(store):
    dest = MemoryDestination()
    route = make_route(recs(3), dest)
    await sync(route, store)
    async with dest.connect() as s:  # a second row for k00001, made outside the sync
        await s.create(Record("k00001", {"Name": "dup"}), dt.datetime.now(UTC))
    result = await sync(route, store, full_refresh=True)
    assert result.stats.duplicates == 1
    assert result.duplicate_keys[0][0] == "k00001" and len(result.duplicate_keys[0][1]) == 2


async def test_plan_writes_nothing(store):
    route = make_route(recs(20))
    await sync(route, store)
    route.source.records["all"] = recs(20, version=1)[:10] + recs(25)[10:]
    before = (route.destination.counters.writes, store.link_count(route.name))
    passes_before = len(store.last_passes(route.name, "all", limit=10))
    result = await sync(route, store, plan=True)
    assert (result.stats.updated, result.stats.created, result.stats.unchanged) == (10, 5, 10)
    assert result.planned["create"] == [f"k{i:05d}" for i in range(20, 25)]
    assert (route.destination.counters.writes, store.link_count(route.name)) == before
    assert len(store.last_passes(route.name, "all", limit=10)) == passes_before


async def test_targeted_sync_touches_only_those_items_and_keeps_the_checkpoint(store):
    route = make_route(recs(300), page_size=100)
    route.source.fail_at_page = {2: TransientError("boom")}
    with pytest.raises(TransientError):
        await sync(route, store)
    cp = store.get_checkpoint(route.name, "all")
    route.source.records["all"] = recs(300, version=2)
    result = await sync(route, store, only_items=("k00005", "k00250"))
    assert (result.stats.updated, result.stats.created) == (1, 1)
    assert store.get_checkpoint(route.name, "all") == cp


async def test_full_refresh_updates_everything_linked(store):
    route = make_route(recs(30))
    await sync(route, store)
    result = await sync(route, store, full_refresh=True)
    assert result.stats.updated == 30 and result.stats.unchanged == 0


async def test_auth_error_pauses_the_credential_and_stops_the_pass(store):
    dest = MemoryDestination(rate_limit_key="memory-acct")
    route = make_route(recs(50), dest, page_size=10)
    await sync(route, store)
    dest.credential = None  # revoked
    route.source.records["all"] = recs(50, version=1)
    with pytest.raises(AuthError):
        await sync(route, store)
    pause = store.pauses()["credential:memory-acct"]
    assert pause.source == "auth" and "revoked" in pause.reason
    assert pause.fingerprint is None or "token" not in pause.fingerprint
    calls = dest.counters.calls
    with pytest.raises(Paused):
        await sync(route, store)
    assert dest.counters.calls == calls  # nothing reached the destination while paused


async def test_source_auth_error_pauses_the_source_credential(store):
    route = make_route(recs(5))
    route.source.fail_at_page = {0: RuntimeError("GitHub GET /orgs/x/repos -> 401: Bad credentials")}
    with pytest.raises(AuthError):
        await sync(route, store)
    assert "credential:memory" in store.pauses()


async def test_systemic_write_error_stops_the_pass_and_keeps_finished_links(store):
    calls = {"n": 0}

    def fail(op, record):
        calls["n"] += 1
        return TransientError("503 service unavailable") if calls["n"] == 15 else None

    dest = MemoryDestination(fail=fail, max_concurrency=1)
    route = make_route(recs(30), dest, page_size=10)
    with pytest.raises(TransientError):
        await sync(route, store)
    assert store.link_count(route.name) == 14  # page 1 plus the 4 writes of page 2 that landed
    result = await sync(route, store)
    assert result.stats.resumed_from == 1
    assert len(dest.rows) == 30 and dest.duplicates() == {}


async def test_content_hash_is_stable_and_ignores_create_only():
    a = Record("k", {"x": 1, "d": dt.date(2024, 1, 1), "y": ["a"]}, "b")
    b = Record("k", {"y": ["a"], "d": dt.date(2024, 1, 1), "x": 1}, "b")
    assert content_hash(a) == content_hash(b)
    c = Record("k", {**a.properties, "Owner": "z"}, "b")
    assert content_hash(c, frozenset({"Owner"})) == content_hash(a)
    # The same instant in two time zones is the same content.
    t1 = Record("k", {"t": dt.datetime(2024, 1, 1, 12, tzinfo=UTC)})
    t2 = Record("k", {"t": dt.datetime(2024, 1, 1, 13, tzinfo=dt.timezone(dt.timedelta(hours=1)))})
    assert content_hash(t1) == content_hash(t2)


async def test_two_specs_yielding_one_key_map_to_one_row(store):
    dest = MemoryDestination()
    src = MemorySource({"org": recs(3), "named": recs(2)}, page_size=10)
    route = Route(src, dest)
    await run_pass(route, "org", store)
    await run_pass(route, "named", store)
    assert len(dest.rows) == 3 and dest.duplicates() == {}


class IncrementalMemorySource(MemorySource):
    """Returns only records changed since the last complete pass, like NotionSource."""

    incremental = True

    def __init__(self, records, **kw):
        super().__init__(records, **kw)
        self.seen: dict[str, object] = {}
        self.resets = 0

    def reset(self, spec_key):
        self.resets += 1
        self.seen.clear()

    async def fetch_page(self, spec, only_items, cursor):
        rows = self.records[spec.key]
        if only_items is not None:
            wanted = set(only_items)
            return [r for r in rows if r.primary_key in wanted], None
        changed = [r for r in rows if self.seen.get(r.primary_key) != r.properties]
        for r in changed:
            self.seen[r.primary_key] = dict(r.properties)
        return changed, None


async def test_incremental_source_failures_are_retried_by_key_not_forgotten(store):
    broken = {"k00002"}
    dest = MemoryDestination(fail=lambda op, r: RecordError("400") if r.primary_key in broken else None)
    route = Route(IncrementalMemorySource({"all": recs(5)}), dest)
    result = await sync(route, store)
    assert (result.stats.created, result.stats.failed) == (4, 1)
    result = await sync(route, store)  # nothing changed at the source: only the failure is re-fetched
    assert result.stats.failed == 1 and store.failed_records(route.name, "all")[0].attempts == 2
    broken.clear()
    result = await sync(route, store)
    assert result.stats.created == 1 and store.failed_records(route.name, "all") == []
    assert dest.duplicates() == {} and len(dest.rows) == 5


async def test_full_refresh_resets_an_incremental_source(store):
    route = Route(IncrementalMemorySource({"all": recs(3)}), MemoryDestination())
    await sync(route, store)
    result = await sync(route, store, full_refresh=True)
    assert route.source.resets == 1 and result.stats.updated == 3


async def test_a_destination_without_keys_links_each_create_at_once(store):
    """Luma cannot hold our key: each created row is linked before the next write goes out."""
    seen_links: list[int] = []
    dest = MemoryDestination()
    dest.stores_keys = False
    route = make_route(recs(5), dest)

    def fail(op, record):
        seen_links.append(store.link_count(route.name))
        return None

    dest.fail = fail
    dest.max_concurrency = 1
    await sync(route, store)
    assert seen_links == [0, 1, 2, 3, 4]


async def test_connectors_pass_metadata_reaches_the_result(store):
    route = make_route(recs(3))
    route.source.pass_metadata = lambda spec: {"quota_units": 7, "ignored": {"nested": 1}}
    result = await sync(route, store)
    assert result.extra == {"memory_quota_units": 7}


async def test_a_source_repeating_a_cursor_is_stopped_not_looped(store):
    class Stuck(MemorySource):
        async def fetch_page(self, spec, only_items, cursor):
            page, _ = await super().fetch_page(spec, only_items, cursor)
            return page, "100"  # always the same next page

    route = Route(Stuck({"all": recs(300)}), MemoryDestination())
    with pytest.raises(ConfigError, match="returned cursor '100' twice"):
        await sync(route, store)


async def test_a_plan_never_commits_an_incremental_sources_watermark(store):
    class Committing(IncrementalMemorySource):
        commits: list[str] = []

        def commit(self, spec_key):
            self.commits.append(spec_key)

    route = Route(Committing({"all": recs(3)}), MemoryDestination())
    await sync(route, store, plan=True)
    assert route.source.commits == []
    await sync(route, store)
    assert route.source.commits == ["all"]

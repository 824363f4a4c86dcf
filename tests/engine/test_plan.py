"""The planning step of a page (sync_assets._plan) and its writing step (sync_assets._write), without a pass.

Planning does no I/O: these tests hand it records, hashes and link map entries and read the plan.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from connectors.core import AuthError, Record, RecordError
from sync_assets._plan import PreparedPage, classify_page, hash_page, prepare_page
from sync_assets._records import is_systemic
from sync_assets._write import PageWriter
from sync_assets.engine import PassStats, content_hash
from sync_assets.state import Link


def _rec(key: str, **props: object) -> Record:
    return Record(key, dict(props))


def _linked(key: str, h: str | None, destination_id: str = "d-1") -> Link:
    return Link(key, destination_id, h, "linked", "p")


async def _prepare(raw, **kw) -> PreparedPage:
    page = PreparedPage()
    kw.setdefault("transform", None)
    kw.setdefault("max_value_length", None)
    kw.setdefault("page_number", 3)
    await prepare_page(page, raw, **kw)
    return page


async def test_prepare_validates_dedupes_and_names_rows_without_a_key():
    raw = [_rec("a", n=1), _rec("b", n=1), _rec(" ", n=1), _rec("a", n=2), _rec("c", s="x" * 11)]
    page = await _prepare(raw, max_value_length=10)
    assert list(page.records) == ["b", "a"]  # the last "a" wins, at its own position
    assert page.records["a"].properties == {"n": 2}
    assert page.deduplicated == 1
    assert page.seen == 5
    assert [k for k, _ in page.failures] == ["(empty key: page 3 row 3)", "c"]
    assert "over the destination's limit of 10" in page.failures[1][1]


async def test_prepare_runs_the_transform_and_counts_what_it_drops():
    async def transform(record: Record) -> Record | None:
        if record.primary_key == "drop":
            return None
        if record.primary_key == "boom":
            raise ValueError("no good")
        return Record(record.primary_key, {"t": True})

    asked = {"keep", "drop", "never"}
    page = await _prepare([_rec("keep"), _rec("drop"), _rec("boom")], transform=transform, asked=asked)
    assert page.records == {"keep": Record("keep", {"t": True})}
    assert page.skipped == 1
    assert page.failures == [("boom", "transform failed: ValueError: no good")]
    assert asked == {"never"}  # a targeted pass's keys the source returned are crossed off


async def test_prepare_keeps_its_counts_when_a_transform_is_cancelled():
    async def transform(record: Record) -> Record | None:
        if record.primary_key == "b":
            raise asyncio.CancelledError
        return None

    page = PreparedPage()
    with pytest.raises(asyncio.CancelledError):
        await prepare_page(
            page, [_rec("a"), _rec("b"), _rec("c")], transform=transform, max_value_length=None, page_number=1
        )
    assert (page.seen, page.skipped) == (2, 1)


def test_hash_page_leaves_create_only_properties_out():
    records = {"a": _rec("a", title="x", created="2020")}
    hashes = hash_page(records, frozenset({"created"}))
    assert hashes["a"] == content_hash(_rec("a", title="x"))
    assert hashes["a"] != content_hash(records["a"])


def test_classify_sorts_every_record_into_one_bucket():
    records = {k: _rec(k, v=k) for k in ("new", "same", "changed", "intent", "adopted", "no_id")}
    hashes = hash_page(records, frozenset())
    links = {
        "same": _linked("same", hashes["same"]),
        "changed": _linked("changed", "old-hash", "d-9"),
        "intent": Link("intent", None, hashes["intent"], "intent", "p"),
        "adopted": _linked("adopted", hashes["adopted"]),
        "no_id": Link("no_id", None, hashes["no_id"], "linked", "p"),
    }
    adopted_keys = {"adopted", "elsewhere"}
    plan = classify_page(records, hashes, links, adopted_keys=adopted_keys)
    assert [r.primary_key for r, _ in plan.creates] == ["new", "intent", "no_id"]
    assert [(r.primary_key, did) for r, did, _ in plan.updates] == [("changed", "d-9")]
    assert plan.unchanged == ["same"]
    assert plan.adopted == ["adopted"]
    assert adopted_keys == {"adopted", "elsewhere"}  # nothing mutated: the engine crosses them off
    assert all(h == hashes[r.primary_key] for r, h in plan.creates)


def test_classify_full_refresh_updates_unchanged_rows_and_a_plan_uses_its_listing():
    records = {"same": _rec("same"), "listed": _rec("listed")}
    hashes = hash_page(records, frozenset())
    links = {"same": _linked("same", hashes["same"])}
    plan = classify_page(records, hashes, links, full_refresh=True, listing={"listed": "d-7"})
    assert [(r.primary_key, did) for r, did, _ in plan.updates] == [("same", "d-1"), ("listed", "d-7")]
    assert plan.creates == [] and plan.unchanged == []


def test_classify_defers_claimed_creates_up_to_the_limit_and_fails_the_rest():
    records = {k: _rec(k) for k in ("a", "b", "c", "d")}
    hashes = hash_page(records, frozenset())
    deferred = {"a": "claimed by p2", "b": "claimed by p2", "c": "claimed by p3"}
    # Two keys are held already, one of them "a" (kept again, it takes no second place): room for one more.
    plan = classify_page(records, hashes, {}, deferred=deferred, deferred_held={"a", "x"}, deferred_limit=3)
    assert list(plan.deferred) == ["a", "b"]
    assert plan.deferred["a"] == (records["a"], "claimed by p2")
    assert plan.failures == [("c", "claimed by p3; retried on the next pass")]
    assert [r.primary_key for r, _ in plan.creates] == ["d"]


class _Session:
    def __init__(self, fail: dict[str, BaseException] | None = None, ids: dict[str, object] | None = None) -> None:
        self.fail = fail or {}
        self.ids = ids or {}
        self.calls: list[tuple[str, str]] = []

    async def query_existing_ids(self) -> dict[str, str]:
        return {}

    async def create(self, record: Record, synced_at: dt.datetime) -> object:
        self.calls.append(("create", record.primary_key))
        if record.primary_key in self.fail:
            raise self.fail[record.primary_key]
        return self.ids.get(record.primary_key, f"id-{record.primary_key}")

    async def update(self, existing_id: str, record: Record, synced_at: dt.datetime) -> bool:
        self.calls.append(("update", record.primary_key))
        assert "created" not in record.properties  # create-only properties are never updated
        return record.primary_key != "skip"


def _writer(session: _Session, stats: PassStats, failures: list, **kw) -> PageWriter:
    kw.setdefault("create_only", frozenset({"created"}))
    kw.setdefault("concurrency", 1)
    return PageWriter(
        session,
        dt.datetime.now(dt.UTC),
        stats,
        failures,
        is_fatal=lambda e: isinstance(e, AuthError) or is_systemic(e),
        **kw,
    )


async def test_writer_isolates_record_errors_and_counts_every_outcome():
    session = _Session(fail={"bad": RecordError("too long")}, ids={"maybe": True, "no": False})
    stats, failures = PassStats(), [("earlier", "invalid")]
    creates = [(_rec(k), f"h-{k}") for k in ("ok", "bad", "maybe", "no")]
    updates = [(_rec("up", created="x"), "d-1", "h-up"), (_rec("skip"), "d-2", "h-skip")]
    result = await _writer(session, stats, failures, concurrency=3).write(creates, updates)
    assert result.fatal is None
    assert result.failures is failures and failures == [("earlier", "invalid"), ("bad", "too long")]
    assert sorted(result.linked) == [("ok", "id-ok", "h-ok"), ("up", "d-1", "h-up")]
    assert result.unlinked == [("maybe", "h-maybe")]
    assert sorted(result.dropped) == ["bad", "no"]
    assert (stats.created, stats.updated, stats.skipped, stats.destination_calls) == (2, 1, 2, 6)


async def test_writer_stops_at_a_fatal_error_and_hands_it_back():
    session = _Session(fail={"b": AuthError("revoked")})
    stats, failures = PassStats(), []
    creates = [(_rec(k), "h") for k in ("a", "b", "c", "d")]
    result = await _writer(session, stats, failures).write(creates, [])
    assert isinstance(result.fatal, AuthError)
    assert session.calls == [("create", "a"), ("create", "b")]  # nothing after the fatal error
    assert failures == [] and result.linked == [("a", "id-a", "h")]


async def test_writer_commits_each_link_at_once_for_a_destination_that_cannot_hold_keys():
    committed: list[tuple[str, str, str]] = []
    session = _Session()
    stats = PassStats()
    result = await _writer(session, stats, [], commit_link=lambda *link: committed.append(link)).write(
        [(_rec("a"), "h-a")], []
    )
    assert committed == [("a", "id-a", "h-a")]
    assert result.linked == [] and stats.created == 1

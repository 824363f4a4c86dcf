"""Contentful through the real engine (no Dagster): idempotent passes, lost answers, per-record errors, deltas."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from connectors.contentful import ContentfulDestination, ContentfulSource
from connectors.core import Record, TransientError
from connectors.http import RetryPolicy
from connectors.memory import MemoryDestination, MemorySource
from sync_assets.engine import PassOptions, run_pass
from sync_assets.routes import Route
from sync_assets.state import StateStore
from tests.fakes.contentful import FakeContentful, FakeEnvironment

MakeDest = Callable[..., ContentfulDestination]
MakeSource = Callable[..., ContentfulSource]


def records(n: int, *, views: int = 1) -> list[Record]:
    return [
        Record(
            str(1000 + i),
            {
                "Title": f"Post {i}",
                "Views": views + i,
                "Tags": ["news"],
                "Published": dt.datetime(2024, 5, 1, 12, i, tzinfo=dt.UTC),
            },
        )
        for i in range(n)
    ]


@pytest.fixture
def store(tmp_path) -> StateStore:
    return StateStore(f"sqlite:///{tmp_path}/s.db")


def writes(fake: FakeContentful) -> int:
    return len(fake.requests("cma", "PUT"))


async def test_first_second_and_changed_passes_write_exactly_what_changed(
    make_dest: MakeDest, fake, env: FakeEnvironment, store
):
    source = MemorySource({"all": records(5)}, page_size=2)
    route = Route(source, make_dest())

    first = await run_pass(route, "all", store, PassOptions())
    assert (first.stats.created, first.stats.failed) == (5, 0)
    assert sorted(e.id for e in fake.live_entries(env, "article")) == [f"ds-{1000 + i}" for i in range(5)]

    before = writes(fake)
    second = await run_pass(route, "all", store, PassOptions())
    assert second.stats.unchanged == 5 and second.stats.destination_calls == 0 and writes(fake) == before

    source.records["all"][2] = records(5, views=100)[2]
    third = await run_pass(route, "all", store, PassOptions())
    assert third.stats.updated == 1 and writes(fake) == before + 1
    assert sorted(fake.values(env, e.id)["views"] for e in fake.live_entries(env, "article")) == [1, 2, 4, 5, 102]


async def test_a_create_whose_answer_was_lost_is_not_duplicated(make_dest: MakeDest, fake, env, store):
    route = Route(MemorySource({"all": records(3)}), make_dest())
    # The create lands, the answer is lost (502); the toolkit sends it again and meets a 409.
    fake.fail_next(1, 502, after=True, api="cma", method="PUT", path=r"/entries/ds-1001$")

    result = await run_pass(route, "all", store, PassOptions())

    assert (result.stats.created, result.stats.failed) == (3, 0)
    assert len(fake.live_entries(env, "article")) == 3
    # The resent create met the entry (409); it was read back, found as written, and left alone.
    assert [r.status for r in fake.requests("cma", "PUT", r"/entries/ds-1001$")] == [502, 409]
    assert fake.values(env, "ds-1001")["title"] == "Post 1"


async def test_a_pass_that_died_after_a_create_landed_adopts_the_entry_next_time(make_dest: MakeDest, fake, env, store):
    route = Route(MemorySource({"all": records(3)}), make_dest(retry=RetryPolicy(max_attempts=1)))
    fake.fail_next(1, 502, after=True, api="cma", method="PUT", path=r"/entries/ds-1001$")
    with pytest.raises(TransientError):
        await run_pass(route, "all", store, PassOptions())

    again = await run_pass(route, "all", store, PassOptions())

    assert again.stats.failed == 0 and store.link_count(route.name, "all") == 3
    assert sorted(e.id for e in fake.live_entries(env, "article")) == ["ds-1000", "ds-1001", "ds-1002"]


async def test_bad_records_fail_alone_and_the_rest_is_synced(make_dest: MakeDest, fake, env, store):
    good = records(4)
    bad = [
        Record("2001", {"Title": "Wrong type", "Views": "many"}),
        Record("2002", {"Title": "x" * 300}),
        Record("2003", {"Title": "Bad date", "Published": "someday"}),
    ]
    source = MemorySource({"all": [good[0], bad[0], good[1], bad[1], good[2], bad[2], good[3]]}, page_size=3)
    route = Route(source, make_dest())

    result = await run_pass(route, "all", store, PassOptions())

    assert (result.stats.created, result.stats.failed) == (4, 3)
    failed = dict(result.failures)
    assert sorted(failed) == ["2001", "2002", "2003"]
    assert "needs a whole number" in failed["2001"] and "over the limit of 256" in failed["2002"]
    assert "not a date" in failed["2003"]
    assert sorted(e.id for e in fake.live_entries(env, "article")) == [f"ds-{r.primary_key}" for r in good]

    source.records["all"][1] = dataclasses.replace(bad[0], properties={"Title": "Fixed", "Views": 3})
    fixed = await run_pass(route, "all", store, PassOptions())
    assert fixed.stats.created == 1 and fake.values(env, "ds-2001")["views"] == 3


async def test_fields_edited_by_hand_survive_the_updates_of_a_pass(make_dest: MakeDest, fake, env, store):
    source = MemorySource({"all": records(2)})
    route = Route(source, make_dest(publish=True))
    await run_pass(route, "all", store, PassOptions())
    fake.edit_entry(env, "ds-1000", {"body": "An editor's intro", "title": {"de-DE": "Beitrag 0"}}, publish=True)

    source.records["all"][0] = records(2, views=50)[0]
    result = await run_pass(route, "all", store, PassOptions())

    assert result.stats.updated == 1
    entry = fake.entry(env, "ds-1000")
    assert entry.published and entry.published_fields is not None
    assert entry.published_fields["body"] == {"en-US": "An editor's intro"}
    assert entry.published_fields["title"] == {"en-US": "Post 0", "de-DE": "Beitrag 0"}
    assert entry.published_fields["views"] == {"en-US": 50}


async def test_a_full_refresh_of_unchanged_records_reads_but_does_not_write(make_dest: MakeDest, fake, env, store):
    route = Route(MemorySource({"all": records(3)}), make_dest())
    await run_pass(route, "all", store, PassOptions())
    before = writes(fake)
    refreshed = await run_pass(route, "all", store, PassOptions(full_refresh=True))
    assert refreshed.stats.updated == 3 and writes(fake) == before  # merged fields equal: no PUT


async def test_a_contentful_source_route_fetches_only_changed_entries_after_the_first_pass(
    make_source: MakeSource, fake: FakeContentful, env: FakeEnvironment, store
):
    entries = [fake.add_entry(env, "article", {"title": f"A{i}", "views": i}) for i in range(7)]
    watermarks: dict[str, str] = {}
    source = make_source(content_types=["article"], page_size=3, watermarks=watermarks)
    dest = MemoryDestination(rate_limit_key="memory")
    route = Route(source, dest)
    partition = "type:article"  # ":" is allowed in partition keys

    def count() -> tuple[int, int]:
        return len(fake.sync_requests()), len(fake.log)

    first = await run_pass(route, partition, store, PassOptions())
    assert first.stats.created == 7 and count() == (3, 4)  # three sync pages + the content types, once
    assert first.extra["contentful_mode"] == "initial"

    second = await run_pass(route, partition, store, PassOptions())
    assert second.stats.records == 0 and count() == (4, 5)  # an unchanged space: one request
    assert second.extra["contentful_mode"] == "delta"

    fake.edit_entry(env, entries[4].id, {"views": 40}, publish=True)
    third = await run_pass(route, partition, store, PassOptions())
    assert (third.stats.records, third.stats.updated) == (1, 1) and count() == (5, 6)
    row: Any = next(r for r in dest.rows.values() if r.key == entries[4].id)
    assert row.properties["views"] == 40

    refreshed = await run_pass(route, partition, store, PassOptions(full_refresh=True))
    assert refreshed.stats.records == 7 and refreshed.extra["contentful_mode"] == "initial"  # reset() forgot the token

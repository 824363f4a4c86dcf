"""NotionDestination driven by the real engine (no Dagster): idempotent passes, no duplicates after a lost answer."""

from __future__ import annotations

import datetime as dt

import pytest

from connectors.core import Record, TransientError
from connectors.memory import MemorySource
from sync_assets.engine import PassOptions, run_pass
from sync_assets.routes import Route


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


async def test_a_second_pass_writes_nothing_and_a_change_is_one_update(make_dest, fake, ds_id, sqlite_store):
    source = MemorySource({"all": records(5)})
    route = Route(source, make_dest())
    first = await run_pass(route, "all", sqlite_store, PassOptions())
    assert first.stats.created == 5 and len(fake.pages(ds_id)) == 5

    writes = fake.counters.writes
    second = await run_pass(route, "all", sqlite_store, PassOptions())
    assert second.stats.unchanged == 5 and fake.counters.writes == writes

    source.records["all"][2] = records(5, stars=100)[2]
    third = await run_pass(route, "all", sqlite_store, PassOptions())
    assert third.stats.updated == 1 and fake.counters.writes == writes + 1
    assert sorted(fake.values(p.id)["Stars"] for p in fake.pages(ds_id)) == [1, 2, 4, 5, 102]


async def test_a_create_whose_answer_was_lost_is_adopted_not_duplicated(make_dest, fake, ds_id, sqlite_store):
    route = Route(MemorySource({"all": records(5)}), make_dest())
    fake.fail_next(1, 502, after=True, method="POST", path=r"^/v1/pages$")
    with pytest.raises(TransientError):
        await run_pass(route, "all", sqlite_store, PassOptions())
    await run_pass(route, "all", sqlite_store, PassOptions())

    keys = sorted(fake.values(p.id)["Key"] for p in fake.pages(ds_id))
    assert keys == [str(1000 + i) for i in range(5)]  # each key exactly once
    assert sqlite_store.link_count(route.name, "all") == 5

"""YouTubeSource driven by the real engine (no Dagster): idempotent passes, statistics refreshes as updates,
quota units on the pass result."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from connectors.memory import MemoryDestination
from sync_assets.engine import PassOptions, run_pass
from sync_assets.routes import Route, partition_key_for
from sync_assets.state import StateStore
from tests.connectors.youtube.helpers import SourceFactory
from tests.fakes.github import FakeClock
from tests.fakes.youtube import FakeChannel, FakeYouTube


@pytest.fixture
def store(tmp_path) -> Iterator[StateStore]:
    s = StateStore(f"sqlite:///{tmp_path}/s.db")
    yield s
    s.dispose()


async def test_passes_are_idempotent_and_a_full_refresh_updates_only_changed_statistics(
    make_source: SourceFactory, fake: FakeYouTube, channel: FakeChannel, fake_time: FakeClock, store: StateStore
) -> None:
    source = make_source(lookback=dt.timedelta(0))
    dest = MemoryDestination(rate_limit_key="memory-yt")
    route = Route(source, dest, name="youtube_to_memory")
    partition = partition_key_for(source.specs()[0].key)

    first = await run_pass(route, partition, store, PassOptions())
    assert (first.stats.created, first.stats.failed, first.stats.pages) == (120, 0, 3)
    assert first.extra["youtube_quota_units"] == 7
    assert first.extra["youtube_refresh"] == "full"

    fake_time.now += 6 * 3600
    second = await run_pass(route, partition, store, PassOptions())
    assert (second.stats.created, second.stats.updated, second.stats.unchanged) == (0, 0, 1)
    assert second.extra["youtube_quota_units"] == 2 and second.extra["youtube_refresh"] == "incremental"

    uploads = fake.uploads(channel)
    fake.set_stats(uploads[0].id, views=5_000)
    fake.set_stats(uploads[119].id, likes=None)  # the owner hid the likes of the oldest video
    fake_time.now += 18 * 3600  # the daily full refresh is due
    third = await run_pass(route, partition, store, PassOptions())

    assert (third.stats.created, third.stats.updated, third.stats.unchanged) == (0, 2, 118)
    assert dest.row(uploads[0].id).properties["Views"] == 5_000
    assert dest.row(uploads[119].id).properties["Likes"] is None
    assert len(dest.rows) == 120 and dest.duplicates() == {}
    # 3 pages x (playlistItems + videos): the resolved playlist is cached; a new Pacific day began.
    assert third.extra["youtube_quota_units"] == 6 == third.extra["youtube_quota_units_today"]
    assert store.pauses() == {}

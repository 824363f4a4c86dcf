"""ListenBrainzSource against the fake ListenBrainz + MusicBrainz: MBID -> ISRC keys, paging, the cache, limits."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable

import pytest

from connectors.core import ConfigError, TransientError, auth_error_in_chain, neutral_type_error
from connectors.listenbrainz import ListenBrainzSource
from tests.connectors.listenbrainz.helpers import USER_AGENT, add_recordings, love_all, options
from tests.fakes.common import FakeTime
from tests.fakes.listenbrainz import FakeListenBrainz

SourceFactory = Callable[..., ListenBrainzSource]


def drain(source: ListenBrainzSource) -> list:
    return asyncio.run(source.fetch(source.specs()[0]))


def test_loved_recordings_become_records_keyed_by_their_first_isrc(
    fake: FakeListenBrainz, fake_time: FakeTime, make_source: SourceFactory
) -> None:
    recordings = add_recordings(fake)
    love_all(fake, fake_time, recordings[:3])

    records = drain(make_source())

    assert [r.primary_key for r in records] == ["USSM19902991", "GBUM71029604", "GBAYE0601498"]  # newest first
    queen = records[1].properties
    assert queen["Name"] == "Bohemian Rhapsody" and queen["Artist"] == "Queen"
    assert queen["Album"] == "A Night at the Opera" and queen["Recording MBID"] == recordings[1].mbid
    assert queen["URL"] == f"https://musicbrainz.org/recording/{recordings[1].mbid}"
    assert queen["Loved"] == dt.datetime.fromtimestamp(int(fake_time.now) - 60, dt.UTC)
    for r in records:
        assert all(neutral_type_error(k, v) is None for k, v in r.properties.items())
    # The feedback is public: no token went to ListenBrainz; MusicBrainz got our User-Agent.
    assert all(c.token is None for c in fake.log if c.host == "listenbrainz")
    assert {c.user_agent for c in fake.log if c.host == "musicbrainz"} == {USER_AGENT}


def test_a_recording_without_an_isrc_is_left_out_and_counted(
    fake: FakeListenBrainz, fake_time: FakeTime, make_source: SourceFactory, caplog: pytest.LogCaptureFixture
) -> None:
    love_all(fake, fake_time, [*add_recordings(fake)[:2], fake.add_recording("Jam", "Us", isrcs=[])])

    with caplog.at_level(logging.WARNING, logger="connectors.listenbrainz"):
        records = drain(make_source())

    assert len(records) == 2
    assert "1 loved recording(s) without an MBID or an ISRC" in caplog.text


def test_pages_of_a_hundred_by_offset_until_total_count(
    fake: FakeListenBrainz, fake_time: FakeTime, make_source: SourceFactory
) -> None:
    recordings = [fake.add_recording(f"Song {i}", "Band", isrcs=[f"DEA12{i:07d}"]) for i in range(230)]
    love_all(fake, fake_time, recordings)
    source = make_source()
    spec = source.specs()[0]

    first, c1 = asyncio.run(source.fetch_page(spec, None, None))
    second, c2 = asyncio.run(make_source().fetch_page(spec, None, c1))  # a fresh process resumes
    third, c3 = asyncio.run(source.fetch_page(spec, None, c2))

    assert (len(first), c1, len(second), c2, len(third), c3) == (100, "100", 100, "200", 30, None)
    assert len({r.primary_key for r in first + second + third}) == 230
    pages = fake.log.matching("GET", r"get-feedback$")
    assert [(c.params["count"], c.params["offset"], c.params["score"]) for c in pages] == [
        ("100", "0", "1"),
        ("100", "100", "1"),
        ("100", "200", "1"),
    ]


def test_the_isrc_cache_spares_musicbrainz_on_later_passes(
    fake: FakeListenBrainz, fake_time: FakeTime, make_source: SourceFactory
) -> None:
    love_all(fake, fake_time, add_recordings(fake))
    cache: dict[str, str] = {}

    first = drain(make_source(isrc_cache=cache))
    asked, cached = fake.count(host="musicbrainz"), len(cache)
    fake_time.advance(60)
    fake.love(fake.add_recording("Levitating", "Dua Lipa", isrcs=["GBAHT2000942"]))
    second = drain(make_source(isrc_cache=cache))  # a new process with the same (durable) cache

    assert asked == cached == 8 and len(cache) == 9
    assert fake.count(host="musicbrainz") == asked + 1  # only the new love was looked up
    assert [r.primary_key for r in second[1:]] == [r.primary_key for r in first]


def test_only_items_selects_loved_recordings_by_isrc(
    fake: FakeListenBrainz, fake_time: FakeTime, make_source: SourceFactory
) -> None:
    love_all(fake, fake_time, add_recordings(fake))
    source = make_source()

    records = asyncio.run(source.fetch(source.specs()[0], only_items=["usee10001993", "ZZXXX0000001"]))

    assert [r.primary_key for r in records] == ["USEE10001993"]


def test_an_unknown_user_is_a_config_error(make_source: SourceFactory) -> None:
    with pytest.raises(ConfigError, match="no user 'nobody-here'"):
        drain(make_source(user="nobody-here"))


def test_no_user_is_not_configured_and_names_the_variable() -> None:
    source = ListenBrainzSource(None)
    assert source.configured is False and "LISTENBRAINZ_USER" in source.config_hint
    with pytest.raises(ConfigError, match="LISTENBRAINZ_USER"):
        drain(source)


def test_musicbrainz_503s_are_retried(fake: FakeListenBrainz, fake_time: FakeTime, make_source: SourceFactory) -> None:
    love_all(fake, fake_time, add_recordings(fake)[:2])
    fake.fail_next_mb(2, 503, message="Your requests are exceeding the allowable rate limit.")

    records = drain(make_source())

    assert len(records) == 2
    assert fake.count(host="musicbrainz", status=503) == 2 and len(fake_time.sleeps) >= 2


def test_a_blocked_user_agent_is_transient_not_an_auth_pause(
    fake: FakeListenBrainz, fake_time: FakeTime, make_source: SourceFactory
) -> None:
    love_all(fake, fake_time, add_recordings(fake)[:1])
    source = make_source(user_agent="python-httpx/0.28.1")

    with pytest.raises(TransientError, match=r"MusicBrainz GET /ws/2/recording/\S+ -> 403") as raised:
        drain(source)
    assert not auth_error_in_chain(raised.value) and not source.is_auth_error(raised.value)


def test_the_announced_window_is_waited_out_instead_of_spending_a_429(fake_time: FakeTime) -> None:
    fake = FakeListenBrainz(clock=fake_time.clock, rate_limit=2, window=10)
    recordings = [fake.add_recording(f"Song {i}", "Band", isrcs=[f"DEA12{i:07d}"]) for i in range(12)]
    love_all(fake, fake_time, recordings)
    source = ListenBrainzSource(fake.user, page_size=2, **options(fake, fake_time))

    records = drain(source)

    assert len(records) == 12
    assert fake.count(status=429) == 0
    assert fake.count(path=r"get-feedback$", status=200) == 6
    assert any(0 < s <= 10 for s in fake_time.sleeps)  # X-RateLimit-Reset-In, on the fake clock

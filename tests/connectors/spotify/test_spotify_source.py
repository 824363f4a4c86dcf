"""SpotifySource against the fake Spotify API: records keyed by ISRC, offset paging, auth and rate limits."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable

import pytest

from connectors.core import AuthError, ConfigError, neutral_type_error
from connectors.spotify import SpotifySource
from tests.connectors.spotify.helpers import SONGS, add_catalog, save_all
from tests.fakes.common import FakeTime
from tests.fakes.spotify import FakeSpotify

SourceFactory = Callable[..., SpotifySource]


def drain(source: SpotifySource) -> list:
    return asyncio.run(source.fetch(source.specs()[0]))


def test_saved_tracks_become_records_keyed_by_isrc_newest_first(
    fake: FakeSpotify, fake_time: FakeTime, make_source: SourceFactory
) -> None:
    tracks = add_catalog(fake)
    save_all(fake, fake_time, tracks[:3])

    records = drain(make_source())

    assert [r.primary_key for r in records] == [t.isrc for t in reversed(tracks[:3])]
    billie = records[0].properties
    assert billie["Name"] == "Billie Jean" and billie["Artist"] == "Michael Jackson"
    assert billie["Album"] == "Thriller" and billie["Spotify ID"] == tracks[2].id
    assert billie["URL"] == f"https://open.spotify.com/track/{tracks[2].id}"
    added = billie["Added"]
    assert isinstance(added, dt.datetime) and added == fake_time.utcnow().replace(microsecond=0)
    for record in records:
        assert all(neutral_type_error(k, v) is None for k, v in record.properties.items())


def test_several_artists_are_a_list_and_a_joined_name(
    fake: FakeSpotify, fake_time: FakeTime, make_source: SourceFactory
) -> None:
    get_lucky = add_catalog(fake)[5]
    save_all(fake, fake_time, [get_lucky])

    (record,) = drain(make_source())

    assert record.properties["Artists"] == ["Daft Punk", "Pharrell Williams", "Nile Rodgers"]
    assert record.properties["Artist"] == "Daft Punk, Pharrell Williams, Nile Rodgers"


def test_a_lowercase_hyphenated_isrc_is_keyed_in_canonical_form(
    fake: FakeSpotify, fake_time: FakeTime, make_source: SourceFactory
) -> None:
    track = fake.add_track("Yesterday", "The Beatles", "Help!", isrc="gb-aye-65-00160")
    save_all(fake, fake_time, [track])

    (record,) = drain(make_source())

    assert record.primary_key == "GBAYE6500160" and record.properties["ISRC"] == "GBAYE6500160"


def test_a_local_file_without_an_isrc_is_left_out_and_counted(
    fake: FakeSpotify, fake_time: FakeTime, make_source: SourceFactory, caplog: pytest.LogCaptureFixture
) -> None:
    save_all(fake, fake_time, add_catalog(fake)[:2])
    fake.save_local_file("demo take 3", "Me")

    with caplog.at_level(logging.WARNING, logger="connectors.spotify"):
        records = drain(make_source())

    assert len(records) == 2
    assert "1 saved track(s) without an ISRC" in caplog.text


def test_pages_of_fifty_by_offset_with_resumable_cursors(
    fake: FakeSpotify, fake_time: FakeTime, make_source: SourceFactory
) -> None:
    tracks = [fake.add_track(f"Song {i}", "Band", isrc=f"USABC24{i:05d}") for i in range(120)]
    save_all(fake, fake_time, tracks)
    source = make_source()
    spec = source.specs()[0]

    first, cursor1 = asyncio.run(source.fetch_page(spec, None, None))
    second, cursor2 = asyncio.run(make_source().fetch_page(spec, None, cursor1))  # a fresh process
    third, cursor3 = asyncio.run(source.fetch_page(spec, None, cursor2))

    assert (len(first), cursor1, len(second), cursor2, len(third), cursor3) == (50, "50", 50, "100", 20, None)
    keys = [r.primary_key for r in first + second + third]
    assert len(set(keys)) == 120
    assert [c.params["limit"] for c in fake.log] == ["50", "50", "50"]
    assert [c.params["offset"] for c in fake.log] == ["0", "50", "100"]


def test_only_items_selects_saved_tracks_by_isrc(
    fake: FakeSpotify, fake_time: FakeTime, make_source: SourceFactory
) -> None:
    tracks = add_catalog(fake)
    save_all(fake, fake_time, tracks)
    source = make_source()

    records = asyncio.run(source.fetch(source.specs()[0], only_items=["gbum71029604", "ZZXXX0000001"]))

    assert [r.primary_key for r in records] == ["GBUM71029604"]


def test_an_expired_token_is_an_auth_error_that_names_the_call_not_the_token(
    fake: FakeSpotify, make_source: SourceFactory
) -> None:
    fake.expire_token()
    source = make_source()

    with pytest.raises(AuthError) as raised:
        drain(source)

    assert "Spotify GET /v1/me/tracks -> 401" in str(raised.value)
    assert "The access token expired" in str(raised.value)
    assert fake.token not in str(raised.value)
    assert fake.count(status=401) == 1  # never retried


def test_a_token_without_the_read_scope_is_an_auth_error(
    fake: FakeSpotify, fake_time: FakeTime, make_source: SourceFactory
) -> None:
    token = fake.add_token(scopes={"user-library-modify"})

    with pytest.raises(AuthError, match="Insufficient client scope"):
        drain(make_source(token=token))


def test_a_429_waits_out_retry_after_and_a_rolling_window_is_respected(fake_time: FakeTime) -> None:
    from tests.connectors.spotify.helpers import options

    fake = FakeSpotify(clock=fake_time.clock, rate_limit=2, window=30)
    save_all(fake, fake_time, add_catalog(fake))
    source = SpotifySource(page_size=2, **options(fake, fake_time))

    records = drain(source)

    assert len(records) == len(SONGS)
    assert fake.count(status=429) >= 1
    assert any(s >= 1 for s in fake_time.sleeps)  # the Retry-After Spotify named, on the fake clock
    assert fake.count(status=200) == 4


def test_no_token_is_a_config_error_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPOTIFY_ACCESS_TOKEN", raising=False)
    monkeypatch.delenv("SPOTIFY_ACCESS_TOKEN_FILE", raising=False)
    source = SpotifySource()

    assert source.configured is False
    assert "SPOTIFY_ACCESS_TOKEN" in source.config_hint
    with pytest.raises(ConfigError, match="SPOTIFY_ACCESS_TOKEN"):
        drain(source)


def test_a_cursor_that_is_not_an_offset_is_refused(make_source: SourceFactory) -> None:
    source = make_source()
    with pytest.raises(ConfigError, match="not an offset"):
        asyncio.run(source.fetch_page(source.specs()[0], None, "https://api.spotify.com/v1/me/tracks?offset=50"))

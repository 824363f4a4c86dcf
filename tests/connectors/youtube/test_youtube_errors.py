"""YouTube failures: a spent daily quota defers (never pauses), a bad key is an auth failure, the key never leaks."""

from __future__ import annotations

import datetime as dt
import logging

import httpx
import pytest

from connectors.core import AuthError, RateLimited, TransientError, auth_error_in_chain, describe_error
from connectors.http import HttpSettings, Rate, RetryPolicy, make_client, raise_for_status
from connectors.memory import MemoryDestination
from connectors.youtube import YouTubeClient, YouTubeQuotaExceeded, next_quota_reset, quota_day
from sync_assets.engine import PassOptions, run_pass
from sync_assets.routes import Route, partition_key_for
from sync_assets.state import StateStore
from tests.connectors.youtube.helpers import FAST, SourceFactory
from tests.fakes.github import FakeClock
from tests.fakes.youtube import FakeChannel, FakeYouTube

UTC = dt.UTC
PACIFIC_MIDNIGHT = dt.datetime(2024, 6, 4, 7, 0, tzinfo=UTC)  # 2024-06-04T00:00-07:00 (PDT)
MARGIN = 60.0


# --------------------------------------------------------------------------------------------------
# The quota day


def test_the_quota_day_follows_pacific_time_across_daylight_saving() -> None:
    # 2024-03-10 01:30 PST: the clocks jump to 03:00 PDT that night; midnight is then at -07:00.
    before_dst = dt.datetime(2024, 3, 10, 9, 30, tzinfo=UTC).timestamp()
    assert quota_day(before_dst) == dt.date(2024, 3, 10)
    assert next_quota_reset(before_dst).isoformat() == "2024-03-11T00:00:00-07:00"
    # 23:30 PST on 2024-11-02 is 07:30 UTC on the 3rd: still the 2nd's quota in California.
    late = dt.datetime(2024, 11, 3, 6, 30, tzinfo=UTC).timestamp()
    assert quota_day(late) == dt.date(2024, 11, 2)
    assert next_quota_reset(late).isoformat() == "2024-11-03T00:00:00-07:00"


# --------------------------------------------------------------------------------------------------
# Quota exhausted: RateLimited until midnight Pacific, never AuthError


async def test_a_spent_quota_raises_rate_limited_until_midnight_pacific(
    make_source: SourceFactory, fake: FakeYouTube, channel: FakeChannel, fake_time: FakeClock
) -> None:
    source = make_source()
    spec = source.specs()[0]
    fake.exhaust_quota()

    with pytest.raises(RateLimited) as raised:
        await source.fetch_page(spec, None, None)

    err = raised.value
    assert isinstance(err, YouTubeQuotaExceeded)
    assert not isinstance(err, AuthError) and not auth_error_in_chain(err)
    assert not source.is_auth_error(err)
    assert err.retry_after == pytest.approx(PACIFIC_MIDNIGHT.timestamp() - fake_time.now + MARGIN)
    assert err.reset_at.isoformat() == "2024-06-04T00:00:00-07:00"
    assert "quota" in str(err) and "midnight Pacific" in str(err)
    assert fake.statuses()[403] == 1 and fake_time.sleeps == []  # not retried in-process


async def test_after_a_quota_answer_the_source_fails_fast_until_the_reset_then_works_again(
    make_source: SourceFactory, fake: FakeYouTube, channel: FakeChannel, fake_time: FakeClock
) -> None:
    spec = make_source().specs()[0]
    fake.exhaust_quota()
    with pytest.raises(YouTubeQuotaExceeded):
        await make_source().fetch_page(spec, None, None)
    sent = len(fake.calls)

    # Later the same day, a new process: the durable meter knows; not one request (or unit) is spent.
    fake_time.now += 3 * 3600
    with pytest.raises(YouTubeQuotaExceeded, match="earlier today") as raised:
        await make_source().fetch_page(spec, None, None)
    assert len(fake.calls) == sent
    assert raised.value.retry_after == pytest.approx(PACIFIC_MIDNIGHT.timestamp() - fake_time.now + MARGIN)

    fake_time.now = PACIFIC_MIDNIGHT.timestamp() + MARGIN  # the reset (the fake's quota resets too)
    records = await make_source().fetch(spec)
    assert len(records) == 120


async def test_a_quota_answer_mid_pass_keeps_the_cursor_for_after_the_reset(
    make_source: SourceFactory, fake: FakeYouTube, channel: FakeChannel, fake_time: FakeClock
) -> None:
    source = make_source()
    spec = source.specs()[0]
    _, cursor = await source.fetch_page(spec, None, None)
    fake.exhaust_quota()
    with pytest.raises(YouTubeQuotaExceeded):
        await source.fetch_page(spec, None, cursor)

    fake_time.now = PACIFIC_MIDNIGHT.timestamp() + MARGIN
    records, _ = await make_source().fetch_page(spec, None, cursor)
    assert len(records) == 50


async def test_through_the_engine_a_spent_quota_defers_the_partition_and_pauses_nothing(
    make_source: SourceFactory, fake: FakeYouTube, channel: FakeChannel, fake_time: FakeClock, tmp_path
) -> None:
    store = StateStore(f"sqlite:///{tmp_path}/s.db")
    source = make_source(token=None)  # the key from YOUTUBE_API_KEY, as deployed
    route = Route(source, MemoryDestination(rate_limit_key="memory-yt"), name="youtube_to_memory")
    partition = partition_key_for(source.specs()[0].key)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("YOUTUBE_API_KEY", fake.key)
        first = await run_pass(route, partition, store, PassOptions())
        assert first.stats.created == 120

        fake.exhaust_quota()
        fake_time.now += 24 * 3600  # a full refresh is due, and the quota is gone
        fake.exhaust_quota()
        with pytest.raises(RateLimited) as raised:
            await run_pass(route, partition, store, PassOptions())

    assert isinstance(raised.value, YouTubeQuotaExceeded) and raised.value.retry_after > 3600
    assert store.pauses() == {}  # a quota is a wait, not a dead credential
    (last,) = store.last_passes(route.name, partition)
    assert last.status == "failed" and "quota" in (last.error or "")
    store.dispose()


# --------------------------------------------------------------------------------------------------
# The key: invalid → AuthError; never in a URL, an error or a log line


async def test_an_invalid_key_is_an_auth_error_and_is_not_retried(
    make_source: SourceFactory, fake: FakeYouTube, channel: FakeChannel, fake_time: FakeClock
) -> None:
    fake.revoke_key()
    source = make_source()

    with pytest.raises(AuthError) as raised:
        await source.fetch_page(source.specs()[0], None, None)

    assert auth_error_in_chain(raised.value)
    assert fake.statuses() == {400: 1}  # Google answers a bad key with 400 "API key not valid", once
    assert fake_time.sleeps == []


async def test_an_invalid_key_through_the_engine_pauses_the_credential_slot(
    make_source: SourceFactory, fake: FakeYouTube, channel: FakeChannel, tmp_path
) -> None:
    store = StateStore(f"sqlite:///{tmp_path}/s.db")
    source = make_source(token=None)
    route = Route(source, MemoryDestination(rate_limit_key="memory-yt"), name="youtube_to_memory")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("YOUTUBE_API_KEY", "AIza" + "x" * 35)
        with pytest.raises(AuthError):
            await run_pass(route, partition_key_for(source.specs()[0].key), store, PassOptions())

    assert list(store.pauses()) == ["credential:youtube:YOUTUBE_API_KEY"]
    store.dispose()


async def test_server_errors_are_retried_inside_the_toolkit(
    make_source: SourceFactory, fake: FakeYouTube, channel: FakeChannel, fake_time: FakeClock
) -> None:
    fake.fail_next(2, 503, resource="videos")
    source = make_source()

    records = await source.fetch(source.specs()[0])

    assert len(records) == 120
    assert fake.statuses()[503] == 2 and len(fake_time.sleeps) == 2


async def test_the_key_travels_in_a_header_never_in_a_url(
    make_source: SourceFactory, fake: FakeYouTube, channel: FakeChannel
) -> None:
    source = make_source()
    await source.fetch(source.specs()[0])

    assert fake.calls and all(c.key_via == "header" for c in fake.calls)
    assert all(fake.key not in c.url for c in fake.calls)


async def test_the_key_never_reaches_an_error_or_a_log_line(
    fake: FakeYouTube, fake_time: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    # W12: durable-sync's key rode in ?key= and httpx put the whole URL in its error text. Here it
    # rides in X-Goog-Api-Key, and every error and log line (httpx's own included) is checked.
    caplog.set_level(logging.DEBUG)
    fake.add_channel("@acme")
    errors: list[BaseException] = []

    async def attempt(client_key: str) -> None:
        async with YouTubeClient(
            client_key,
            http=HttpSettings(
                transport=httpx.ASGITransport(app=fake.app),
                retry=RetryPolicy(max_attempts=2, jitter=0),
                sleep=fake_time.sleep,
                clock=fake_time.clock,
            ),
            rate=FAST,
        ) as client:
            try:
                await client.channel("@acme")
            except Exception as err:
                errors.append(err)

    bad_key = "AIza" + "B" * 35
    await attempt(bad_key)  # 400 keyInvalid
    fake.fail_next(5, 503)
    await attempt(fake.key)  # 503 twice, then TransientError
    fake.exhaust_quota()
    await attempt(fake.key)  # 403 quotaExceeded

    assert isinstance(errors[0], AuthError) and "API key not valid" in str(errors[0])
    assert isinstance(errors[1], TransientError)
    assert isinstance(errors[2], YouTubeQuotaExceeded)
    assert {c.key_via for c in fake.calls} == {"header"}
    texts = [str(e) for e in errors] + [repr(e) for e in errors] + [describe_error(e) for e in errors]
    texts += [getattr(e, "url", "") for e in errors] + [getattr(e, "body", "") for e in errors]
    texts += [r.getMessage() for r in caplog.records]
    assert any("503" in r.getMessage() for r in caplog.records)  # the retries were logged
    for secret in (bad_key, fake.key):
        assert not any(secret in text for text in texts), secret


async def test_a_key_in_a_query_string_is_masked_in_the_toolkits_errors(
    fake: FakeYouTube, fake_time: FakeClock
) -> None:
    # For callers that put the key in ?key= anyway: the toolkit's errors never quote a query value.
    client = make_client(
        service="YouTube",
        base_url="https://www.googleapis.com/youtube/v3",
        transport=httpx.ASGITransport(app=fake.app),
        retry=RetryPolicy(max_attempts=1, jitter=0),
        sleep=fake_time.sleep,
        clock=fake_time.clock,
    )
    bad_key = "AIza" + "C" * 35
    async with client:
        response = await client.get("channels", params={"part": "id", "forHandle": "@x", "key": bad_key})
        await response.aread()
        with pytest.raises(Exception) as raised:
            raise_for_status(response)

    assert fake.calls[-1].key_via == "query"
    err = raised.value
    for text in (str(err), repr(err), getattr(err, "url", ""), getattr(err, "body", "")):
        assert bad_key not in text


async def test_the_source_names_its_credential_without_the_key(make_source: SourceFactory, fake: FakeYouTube) -> None:
    source = make_source(token=None)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("YOUTUBE_API_KEY", fake.key)
        assert source.credential_key == "youtube:YOUTUBE_API_KEY"
        assert source.rate_limit_key.startswith("youtube:") and fake.key not in source.rate_limit_key
        assert source.credential_fingerprint() and fake.key not in (source.credential_fingerprint() or "")
        assert fake.key not in repr(source)
        assert source.configured
    env_less = make_source(token=None)
    assert not env_less.configured and "YOUTUBE_API_KEY" in env_less.config_hint


async def test_a_per_minute_rate_limit_is_a_short_wait_not_an_auth_failure(
    make_source: SourceFactory, fake: FakeYouTube, channel: FakeChannel, fake_time: FakeClock
) -> None:
    fake.fail_next(1, 403, resource="videos", reason="rateLimitExceeded")
    source = make_source(retry=RetryPolicy(jitter=0, max_attempts=1))

    with pytest.raises(RateLimited) as raised:
        await source.fetch_page(source.specs()[0], None, None)

    assert not auth_error_in_chain(raised.value)
    assert raised.value.retry_after == 60


def test_rate_is_configurable(make_source: SourceFactory) -> None:
    assert make_source(rate=Rate(1, 1)).rate == Rate(1, 1)

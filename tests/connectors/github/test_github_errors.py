"""Failures: auth, rate limits, 5xx, enrichment errors that must not pass for empty data, missing tokens, secrets."""

from __future__ import annotations

import logging

import httpx
import pytest

from connectors.core import AuthError, ConfigError, RateLimited, SourceSpec, TransientError, auth_error_in_chain
from connectors.github import GitHubSource, rate_limit_key_for
from tests.connectors.github.helpers import SourceFactory
from tests.fakes.github import FakeClock, FakeGitHub

ORG = SourceSpec("org:acme", params={"kind": "org", "org": "acme"})


async def test_a_revoked_token_is_an_auth_error_without_retries(fake: FakeGitHub, make_source: SourceFactory) -> None:
    fake.add_repos("acme", 3)
    source = make_source(orgs=["acme"])
    fake.revoke_token()
    with pytest.raises(AuthError) as raised:
        await source.fetch_page(ORG, None, None)
    assert auth_error_in_chain(raised.value)
    assert raised.value.credential == source.rate_limit_key
    assert "Bad credentials" in str(raised.value)
    assert fake.statuses() == {401: 1}


async def test_a_plain_403_is_an_auth_error(fake: FakeGitHub, make_source: SourceFactory) -> None:
    fake.add_repos("acme", 1)
    fake.fail_next(1, status=403, path="/orgs/acme/repos")
    with pytest.raises(AuthError) as raised:
        await make_source(orgs=["acme"]).fetch_page(ORG, None, None)
    assert auth_error_in_chain(raised.value)
    assert "Resource not accessible" in str(raised.value)


async def test_an_auth_failure_during_enrichment_wins_over_sibling_errors(
    fake: FakeGitHub, make_source: SourceFactory
) -> None:
    fake.add_repos("acme", 5)
    fake.fail_next(100, status=503, path="/repos/*/languages")
    fake.fail_next(1, status=401, path="/repos/*/contributors")
    with pytest.raises(AuthError):
        await make_source(orgs=["acme"]).fetch_page(ORG, None, None)


async def test_primary_limit_resetting_in_30_s_is_waited_out(
    fake: FakeGitHub, make_source: SourceFactory, fake_time: FakeClock
) -> None:
    fake.add_repos("acme", 3)
    fake.exhaust_rate_limit(reset_in=30)
    records, _ = await make_source(orgs=["acme"]).fetch_page(ORG, None, None)
    assert len(records) == 3
    assert fake_time.sleeps[0] == pytest.approx(30)
    assert fake.count("/orgs/acme/repos", status=403) == 1
    assert fake.count("/orgs/acme/repos", status=200) == 1


async def test_primary_limit_resetting_in_an_hour_raises_rate_limited_at_once(
    fake: FakeGitHub, make_source: SourceFactory, fake_time: FakeClock
) -> None:
    fake.add_repos("acme", 3)
    fake.exhaust_rate_limit(reset_in=3600)
    with pytest.raises(RateLimited) as raised:
        await make_source(orgs=["acme"]).fetch_page(ORG, None, None)
    assert raised.value.retry_after == pytest.approx(3600, abs=1)
    assert not auth_error_in_chain(raised.value)  # a rate-limited 403 never pauses the credential
    assert fake_time.sleeps == []
    assert fake.count(status=403) == 1


@pytest.mark.parametrize("status", [403, 429])
async def test_secondary_limit_retry_after_is_honoured(
    fake: FakeGitHub, make_source: SourceFactory, fake_time: FakeClock, status: int
) -> None:
    fake.add_repos("acme", 2)
    fake.secondary_rate_limit(1, status=status, retry_after=60, path="/orgs/acme/repos")
    records, _ = await make_source(orgs=["acme"]).fetch_page(ORG, None, None)
    assert len(records) == 2
    assert fake_time.sleeps == [60]


async def test_a_502_on_a_listing_page_is_retried(
    fake: FakeGitHub, make_source: SourceFactory, fake_time: FakeClock
) -> None:
    fake.add_repos("acme", 2)
    fake.fail_next(2, status=502, path="/orgs/acme/repos")
    records, _ = await make_source(orgs=["acme"]).fetch_page(ORG, None, None)
    assert len(records) == 2
    assert fake.count("/orgs/acme/repos", status=502) == 2
    assert fake_time.sleeps == [1.0, 2.0]  # exponential backoff (no jitter in tests)


async def test_an_enrichment_5xx_that_persists_fails_the_page_instead_of_an_empty_readme(
    fake: FakeGitHub, make_source: SourceFactory
) -> None:
    fake.add_repos("acme", 3)
    fake.fail_next(1000, status=502, path="/repos/acme/repo-001/readme")
    with pytest.raises(TransientError) as raised:
        await make_source(orgs=["acme"]).fetch_page(ORG, None, None)
    assert "/repos/acme/repo-001/readme -> 502" in str(raised.value)
    assert fake.count("/repos/acme/repo-001/readme", status=502) == 6  # RetryPolicy.max_attempts


async def test_an_enrichment_rate_limit_propagates_instead_of_empty_languages(
    fake: FakeGitHub, make_source: SourceFactory
) -> None:
    fake.add_repos("acme", 3)
    fake.secondary_rate_limit(1, status=403, retry_after=900, path="/repos/*/languages")
    with pytest.raises(RateLimited) as raised:
        await make_source(orgs=["acme"]).fetch_page(ORG, None, None)
    assert raised.value.retry_after == pytest.approx(900)


async def test_the_token_never_appears_in_errors_or_logs(
    fake_time: FakeClock, make_source: SourceFactory, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "SECRET-TOKEN-not-a-known-shape-0123456789"
    fake = FakeGitHub(token=secret, clock=fake_time.clock)
    fake.add_repos("acme", 2)
    caplog.set_level(logging.DEBUG)

    def source() -> GitHubSource:
        return make_source(orgs=["acme"], token=secret, transport=httpx.ASGITransport(app=fake.app))

    errors: list[BaseException] = []
    fake.fail_next(1000, status=503, path="/repos/*/readme")
    with pytest.raises(TransientError) as transient:
        await source().fetch_page(ORG, None, None)
    errors.append(transient.value)
    fake.clear_faults()
    fake.fail_next(1, status=403, path="/orgs/acme/repos")
    with pytest.raises(AuthError) as forbidden:
        await source().fetch_page(ORG, None, None)
    errors.append(forbidden.value)
    fake.exhaust_rate_limit(reset_in=3600)
    with pytest.raises(RateLimited) as limited:
        await source().fetch_page(ORG, None, None)
    errors.append(limited.value)
    fake.revoke_token(secret)
    fake_time.now += 7200  # past the block, so the request goes out and meets the 401
    with pytest.raises(AuthError) as revoked:
        await source().fetch_page(ORG, None, None)
    errors.append(revoked.value)

    texts = [caplog.text, repr(source()), source().rate_limit_key, str(source().credential_fingerprint())]
    for err in errors:
        texts += [str(err), repr(err), getattr(err, "body", ""), getattr(err, "url", "")]
    assert caplog.records, "retries are logged"
    for text in texts:
        assert secret not in text
        assert secret[:20] not in text


async def test_missing_token_is_unconfigured_and_a_config_error_naming_the_env_var(
    fake: FakeGitHub, make_source: SourceFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.add_repos("acme", 2)
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    source = make_source(orgs=["acme"], token=None)
    assert not source.configured
    assert source.rate_limit_key == "github:anonymous"
    assert source.credential_fingerprint() is None
    assert "GITHUB_TOKEN" in source.config_hint
    with pytest.raises(ConfigError, match="GITHUB_TOKEN"):
        await source.fetch_page(ORG, None, None)
    assert fake.requests == []

    # The token is read when it is used, not when the source is built.
    monkeypatch.setenv("GITHUB_TOKEN", fake.token)
    assert source.configured
    records, _ = await source.fetch_page(ORG, None, None)
    assert len(records) == 2


async def test_unauthenticated_access_can_be_allowed_and_sees_public_repos_only(
    fake: FakeGitHub, make_source: SourceFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.add_repo("acme", "open")
    fake.add_repo("acme", "secret-sauce", visibility="private")
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    source = make_source(orgs=["acme"], token=None, token_required=False)
    assert source.configured
    records, _ = await source.fetch_page(ORG, None, None)
    assert [r.properties["Name"] for r in records] == ["open"]
    assert fake.rate_used == 0  # the anonymous bucket is another one


async def test_rate_limit_key_and_fingerprint_follow_the_token_in_the_env(
    fake: FakeGitHub, make_source: SourceFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.add_repos("acme", 1)
    monkeypatch.setenv("GH_SYNC_TOKEN", fake.token)
    source = make_source(orgs=["acme"], token=None, token_env="GH_SYNC_TOKEN")
    key, fingerprint = source.rate_limit_key, source.credential_fingerprint()
    assert key == rate_limit_key_for(fake.token) and key.startswith("github:") and len(key) == len("github:") + 12
    assert fingerprint is not None and len(fingerprint) == 64 and fake.token not in fingerprint

    fake.revoke_token()
    with pytest.raises(AuthError):
        await source.fetch_page(ORG, None, None)
    new = fake.rotate_token()
    monkeypatch.setenv("GH_SYNC_TOKEN", new)
    assert source.credential_fingerprint() != fingerprint  # lets the auth pause clear itself
    assert source.rate_limit_key != key  # another token is another credential
    records, _ = await source.fetch_page(ORG, None, None)
    assert len(records) == 1

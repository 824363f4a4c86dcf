"""Conditional requests: an unchanged repo costs no rate limit on the next pass; a changed one is re-read."""

from __future__ import annotations

import pytest

from connectors.core import ConfigError, Record, SourceSpec
from connectors.github import ETagCache, ETagStore, GitHubSource
from connectors.github.client import CachedBody
from tests.connectors.github.helpers import SourceFactory
from tests.fakes.github import FakeGitHub

ORG = SourceSpec("org:acme", params={"kind": "org", "org": "acme"})


async def full_pass(source: GitHubSource, spec: SourceSpec = ORG) -> dict[str, Record]:
    return {r.primary_key: r for r in await source.fetch(spec)}


async def test_second_pass_over_unchanged_repos_is_all_304_and_costs_no_rate_limit(
    fake: FakeGitHub, make_source: SourceFactory
) -> None:
    fake.add_repos("acme", 250)
    first = await full_pass(make_source(orgs=["acme"]))
    used_after_first = fake.rate_used
    assert used_after_first == 3 + 3 * 250
    fake.clear_requests()

    # A new source instance in the same process (the next Dagster pass): the cache is process-wide.
    second_source = make_source(orgs=["acme"])
    second = await full_pass(second_source)

    assert second == first
    assert fake.statuses() == {304: 3 + 3 * 250}  # every listing page and every enrichment call
    assert fake.rate_used == used_after_first  # a 304 does not count against the primary limit
    assert second_source.not_modified == second_source.requests_sent == 753


async def test_a_modified_repo_gets_a_new_etag_and_its_new_data_appears(
    fake: FakeGitHub, make_source: SourceFactory
) -> None:
    fake.add_repos("acme", 150)
    cache = ETagCache()
    first = await full_pass(make_source(orgs=["acme"], etag_cache=cache))
    before = {key[2]: entry for key, entry in cache.snapshot()}
    fake.modify_repo("acme/repo-005", stargazers_count=999)  # on listing page 1
    fake.modify_repo("acme/repo-120", readme="# New README\n")  # listed on page 2, README changed
    fake.clear_requests()
    used = fake.rate_used

    second = await full_pass(make_source(orgs=["acme"], etag_cache=cache))

    target = fake.get_repo("acme/repo-005")
    readme_repo = fake.get_repo("acme/repo-120")
    assert second[str(target.id)].properties["Stars"] == 999
    assert second[str(readme_repo.id)].body == "# New README\n"
    changed = {k: v for k, v in second.items() if first[k] != v}
    assert set(changed) == {str(target.id), str(readme_repo.id)}
    # Exactly what changed was re-sent in full: both listing pages (a README change moves the repo's
    # updated_at, which the listing shows) and the one README. Everything else was a free 304.
    assert fake.count(status=200) == 3
    assert fake.count("/orgs/acme/repos", status=200) == 1
    assert fake.count("/organizations/*/repos", status=200) == 1
    assert fake.count("/repos/acme/repo-120/readme", status=200) == 1
    assert fake.count(status=304) == 2 + 3 * 150 - 3
    assert fake.rate_used == used + 3
    after = {key[2]: entry for key, entry in cache.snapshot()}
    changed_etags = {url.split("/", 3)[3] for url in before if before[url].etag != after[url].etag}
    page2 = f"organizations/{fake.orgs['acme'].id}/repos?type=public&sort=full_name&per_page=100&page=2"
    assert changed_etags == {
        "orgs/acme/repos?type=public&sort=full_name&per_page=100",
        page2,
        "repos/acme/repo-120/readme",
    }


async def test_named_repos_are_conditional_too(fake: FakeGitHub, make_source: SourceFactory) -> None:
    fake.add_repos("octo", 3)
    spec = SourceSpec("repos", params={"kind": "repos", "repos": ["octo/repo-000", "octo/repo-002"]})
    source = make_source(repos=["octo/repo-000", "octo/repo-002"])
    first = await full_pass(source, spec)
    fake.clear_requests()
    assert await full_pass(source, spec) == first
    assert fake.statuses() == {304: 2 * 4}


async def test_two_tokens_never_share_cached_bodies(fake: FakeGitHub, make_source: SourceFactory) -> None:
    fake.add_repos("acme", 2)
    await full_pass(make_source(orgs=["acme"]))
    other = "ghp_" + "b" * 36
    fake.add_token(other)
    fake.clear_requests()
    await full_pass(make_source(orgs=["acme"], token=other))
    assert fake.statuses() == {200: 1 + 3 * 2}


async def test_the_cache_can_be_disabled(fake: FakeGitHub, make_source: SourceFactory) -> None:
    fake.add_repos("acme", 2)
    source = make_source(orgs=["acme"], etag_cache=None)
    await full_pass(source)
    await full_pass(source)
    assert fake.statuses() == {200: 2 * (1 + 3 * 2)}


def test_etag_cache_is_a_bounded_lru_by_entries_and_bytes() -> None:
    cache = ETagCache(max_entries=3, max_bytes=1000)
    keys = [("github:x", "a", f"https://api.github.com/{i}") for i in range(5)]
    for key in keys[:3]:
        cache.put(key, CachedBody('"e"', b"x" * 10))
    assert cache.get(keys[0]) is not None  # now the most recently used
    cache.put(keys[3], CachedBody('"e"', b"x" * 10))
    assert cache.get(keys[1]) is None and cache.get(keys[0]) is not None and len(cache) == 3
    cache.put(keys[4], CachedBody('"e"', b"x" * 990))  # the bytes bound evicts the other two
    assert len(cache) == 1 and cache.get(keys[4]) is not None
    assert cache.size_bytes == 990 + len('"e"')
    cache.put(keys[0], CachedBody('"e"', b"x" * 2000))  # bigger than the whole cache: not kept
    assert cache.get(keys[0]) is None
    with pytest.raises(ConfigError):
        ETagCache(max_entries=0)


def test_the_in_memory_cache_is_an_etag_store() -> None:
    assert isinstance(ETagCache(), ETagStore)


async def test_etags_kept_in_the_state_store_survive_a_new_process(
    fake: FakeGitHub, make_source: SourceFactory, store
) -> None:
    """Each Dagster run is a new process: the ETag bodies must live in the state store."""
    from connectors.github import BlobETagStore

    fake.add_repos("acme", 120)
    first = await full_pass(make_source(orgs=["acme"], etag_cache=BlobETagStore(store)))
    used = fake.rate_used
    fake.clear_requests()
    # A fresh BlobETagStore has an empty memory: every hit below comes from the database.
    second = await full_pass(make_source(orgs=["acme"], etag_cache=BlobETagStore(store)))
    assert second == first
    assert fake.statuses() == {304: 2 + 3 * 120}
    assert fake.rate_used == used

"""GitHubSource against the stateful fake: paging, cursors, record types, filters, named and targeted repos."""

from __future__ import annotations

import datetime as dt
import logging

import httpx
import pytest

from connectors.core import ConfigError, Record, SourceSpec, neutral_type_error
from connectors.github import ETagCache, GitHubSource, RepoContext
from tests.connectors.github.helpers import SourceFactory
from tests.fakes.github import FakeClock, FakeGitHub


async def drain(source: GitHubSource, spec: SourceSpec) -> list[tuple[list[Record], str | None]]:
    pages = []
    cursor: str | None = None
    while True:
        records, cursor = await source.fetch_page(spec, None, cursor)
        pages.append((records, cursor))
        if cursor is None:
            return pages


def spec_of(source: GitHubSource, key: str) -> SourceSpec:
    return next(s for s in source.specs() if s.key == key)


# --------------------------------------------------------------------------------------------------
# Specs and paging


def test_specs_are_one_per_org_and_one_for_the_named_repos(make_source: SourceFactory) -> None:
    source = make_source(orgs=["acme", "globex"], repos=["octo/one", "octo/two"], interval_minutes=15)
    specs = source.specs()
    assert [s.key for s in specs] == ["org:acme", "org:globex", "repos"]
    assert specs[0].params == {"kind": "org", "org": "acme"}
    assert specs[2].params == {"kind": "repos", "repos": ["octo/one", "octo/two"]}
    assert {s.interval_minutes for s in specs} == {15}


async def test_org_of_250_repos_pages_in_three_pages_through_the_link_header(
    fake: FakeGitHub, make_source: SourceFactory
) -> None:
    fake.add_repos("acme", 250)
    source = make_source(orgs=["acme"])
    pages = await drain(source, spec_of(source, "org:acme"))

    assert [len(records) for records, _ in pages] == [100, 100, 50]
    org_id = fake.orgs["acme"].id
    # The cursor is GitHub's next link relative to the API root (GitHub pages on by org id).
    assert pages[0][1] == f"/organizations/{org_id}/repos?type=public&sort=full_name&per_page=100&page=2"
    assert pages[1][1] == f"/organizations/{org_id}/repos?type=public&sort=full_name&per_page=100&page=3"
    keys = [r.primary_key for records, _ in pages for r in records]
    assert len(keys) == len(set(keys)) == 250
    assert set(keys) == {str(r.id) for r in fake.repos.values()}
    # One listing call per page, then README, languages and contributors per repo.
    assert fake.count("/orgs/acme/repos") == 1
    assert fake.count(f"/organizations/{org_id}/repos") == 2
    assert fake.count("/repos/acme/*/readme") == fake.count("/repos/acme/*/languages") == 250
    assert fake.count("/repos/acme/*/contributors") == 250


async def test_a_stored_cursor_resumes_in_a_fresh_source_instance(fake: FakeGitHub, make_source: SourceFactory) -> None:
    fake.add_repos("acme", 250)
    first = make_source(orgs=["acme"])
    spec = spec_of(first, "org:acme")
    page1, cursor = await first.fetch_page(spec, None, None)
    page2, _ = await first.fetch_page(spec, None, cursor)

    # A new process: a new source, an empty ETag cache, only the stored cursor string.
    fresh = make_source(orgs=["acme"], etag_cache=ETagCache())
    resumed, next_cursor = await fresh.fetch_page(spec, None, cursor)
    assert [r.primary_key for r in resumed] == [r.primary_key for r in page2]
    assert next_cursor is not None and next_cursor.endswith("page=3")
    assert not {r.primary_key for r in resumed} & {r.primary_key for r in page1}

    # durable-sync stored the bare page number; it resumes at the same page.
    legacy, _ = await fresh.fetch_page(spec, None, "2")
    assert [r.primary_key for r in legacy] == [r.primary_key for r in page2]


async def test_a_cursor_this_source_did_not_issue_is_a_config_error(
    fake: FakeGitHub, make_source: SourceFactory
) -> None:
    fake.add_repos("acme", 3)
    source = make_source(orgs=["acme"], repos=["acme/repo-000"])
    for bad in ("https://evil.example/orgs/acme/repos?page=2", "/user/repos?page=2", "/orgs/globex/repos?page=2"):
        with pytest.raises(ConfigError):
            await source.fetch_page(spec_of(source, "org:acme"), None, bad)
    with pytest.raises(ConfigError):
        await source.fetch_page(spec_of(source, "repos"), None, "page=2")


# --------------------------------------------------------------------------------------------------
# The record


async def test_record_properties_have_exactly_the_documented_types(
    fake: FakeGitHub, make_source: SourceFactory
) -> None:
    repo = fake.add_repo(
        "acme",
        "widget",
        description="Widgets for everyone",
        stargazers_count=42,
        forks_count=7,
        open_issues_count=3,
        language="Go",
        topics=["cli", "tools"],
        license="Apache-2.0",
        pushed_at="2024-06-02T23:15:00Z",
        created_at="2019-12-31T23:59:59Z",
        readme="# Widget\n",
        languages={"Shell": 200, "Go": 5000, "Makefile": 200},
        contributors=[
            {"login": "renovate[bot]", "contributions": 900, "type": "Bot"},
            {"login": "carol", "contributions": 300, "type": "User"},
            {"login": "github-actions[bot]", "contributions": 250, "type": "User"},
            {"login": "dave", "contributions": 100, "type": "User"},
            {"login": "erin", "contributions": 10, "type": "User"},
        ],
    )
    source = make_source(orgs=["acme"], contributor_limit=2)
    [record], cursor = await source.fetch_page(spec_of(source, "org:acme"), None, None)
    assert cursor is None
    assert record.primary_key == str(repo.id)
    assert record.body == "# Widget\n"
    p = record.properties
    assert p == {
        "Name": "widget",
        "Full name": "acme/widget",
        "Description": "Widgets for everyone",
        "URL": "https://github.com/acme/widget",
        "Stars": 42,
        "Forks": 7,
        "Open issues": 3,
        "Language": "Go",
        "Languages": ["Go", "Makefile", "Shell"],  # most bytes first, ties by name
        "Topics": ["cli", "tools"],
        "Archived": False,
        "Fork": False,
        "License": "Apache-2.0",
        "Contributors": ["carol", "dave"],  # bots dropped (by type or [bot] suffix), first 2 kept
        "Pushed at": dt.datetime(2024, 6, 2, 23, 15, tzinfo=dt.UTC),
        "Created": dt.date(2019, 12, 31),
        "Repo ID": str(repo.id),
    }
    for name, value in p.items():
        assert neutral_type_error(name, value) is None
    assert type(p["Stars"]) is int and type(p["Archived"]) is bool
    assert type(p["Created"]) is dt.date  # a date, not a datetime
    assert isinstance(p["Pushed at"], dt.datetime) and p["Pushed at"].utcoffset() == dt.timedelta(0)
    assert all(type(x) is str for x in p["Languages"] + p["Topics"] + p["Contributors"])


async def test_missing_values_map_to_none_and_noassertion_is_no_license(
    fake: FakeGitHub, make_source: SourceFactory
) -> None:
    fake.add_repo("acme", "bare", description="", language=None, license="NOASSERTION", readme=None)
    fake.add_repo("acme", "nolicense", license=None, readme="")
    source = make_source(orgs=["acme"])
    records, _ = await source.fetch_page(spec_of(source, "org:acme"), None, None)
    by_name = {r.properties["Name"]: r for r in records}
    assert by_name["bare"].properties["Description"] is None
    assert by_name["bare"].properties["Language"] is None
    assert by_name["bare"].properties["License"] is None
    assert by_name["bare"].body is None  # no README (404) is a legit empty
    assert by_name["nolicense"].properties["License"] is None
    assert by_name["nolicense"].body is None  # an empty README is no body


async def test_an_empty_repo_has_no_readme_languages_or_contributors(
    fake: FakeGitHub, make_source: SourceFactory
) -> None:
    fake.add_repo("acme", "empty", empty=True, readme=None, languages={}, contributors=[], language=None)
    source = make_source(orgs=["acme"])
    [record], _ = await source.fetch_page(spec_of(source, "org:acme"), None, None)
    assert record.body is None
    assert record.properties["Languages"] == []
    assert record.properties["Contributors"] == []
    assert fake.count("/repos/acme/empty/contributors", status=204) == 1


async def test_a_repo_too_large_to_list_contributors_is_not_an_auth_failure(
    fake: FakeGitHub, make_source: SourceFactory
) -> None:
    fake.add_repo("acme", "linux", contributors_too_large=True, readme="# Linux\n")
    source = make_source(orgs=["acme"])
    [record], _ = await source.fetch_page(spec_of(source, "org:acme"), None, None)
    assert record.properties["Contributors"] == []
    assert record.body == "# Linux\n"


async def test_disabled_enrichment_leaves_those_properties_out(fake: FakeGitHub, make_source: SourceFactory) -> None:
    fake.add_repos("acme", 2)
    source = make_source(orgs=["acme"], fetch_readme=False, fetch_languages=False, fetch_contributors=False)
    records, _ = await source.fetch_page(spec_of(source, "org:acme"), None, None)
    assert all(r.body is None for r in records)
    assert all("Languages" not in r.properties and "Contributors" not in r.properties for r in records)
    assert fake.count("/repos/*") == 0  # the listing was the only call


# --------------------------------------------------------------------------------------------------
# Filters


async def test_exclude_list_matches_full_or_bare_names_case_insensitively(
    fake: FakeGitHub, make_source: SourceFactory
) -> None:
    fake.add_repos("acme", 5)
    source = make_source(orgs=["acme"], exclude=["ACME/repo-001", "Repo-003", "other/repo-004"])
    records, _ = await source.fetch_page(spec_of(source, "org:acme"), None, None)
    assert sorted(r.properties["Name"] for r in records) == ["repo-000", "repo-002", "repo-004"]
    assert fake.count("/repos/acme/repo-001/*") == 0  # excluded before enrichment: no calls spent


async def test_archived_repos_are_dropped_unless_asked_for_and_forks_on_request(
    fake: FakeGitHub, make_source: SourceFactory
) -> None:
    fake.add_repo("acme", "live")
    fake.add_repo("acme", "old", archived=True)
    fake.add_repo("acme", "copy", fork=True)
    spec = SourceSpec("org:acme", params={"kind": "org", "org": "acme"})

    async def names(**kwargs: object) -> list[str]:
        records, _ = await make_source(orgs=["acme"], **kwargs).fetch_page(spec, None, None)
        return sorted(r.properties["Name"] for r in records)

    assert await names() == ["copy", "live"]
    assert await names(include_archived=True) == ["copy", "live", "old"]
    assert await names(include_forks=False) == ["live"]
    assert await names(include_archived=True, include_forks=False) == ["live", "old"]


async def test_private_repos_are_listed_only_when_asked_for(fake: FakeGitHub, make_source: SourceFactory) -> None:
    fake.add_repo("acme", "open")
    fake.add_repo("acme", "inner", visibility="private")
    default = make_source(orgs=["acme"], repos=["acme/inner"])
    records, _ = await default.fetch_page(spec_of(default, "org:acme"), None, None)
    assert [r.properties["Name"] for r in records] == ["open"]
    named, _ = await default.fetch_page(spec_of(default, "repos"), None, None)
    assert [r.properties["Name"] for r in named] == ["inner"]  # named explicitly: fetched
    everything = make_source(orgs=["acme"], repo_type="all")
    records, _ = await everything.fetch_page(spec_of(everything, "org:acme"), None, None)
    assert sorted(r.properties["Name"] for r in records) == ["inner", "open"]


async def test_topics_filter_keeps_repos_with_any_topic(fake: FakeGitHub, make_source: SourceFactory) -> None:
    fake.add_repo("acme", "a", topics=["durable", "sync"])
    fake.add_repo("acme", "b", topics=["web"])
    fake.add_repo("acme", "c", topics=[])
    source = make_source(orgs=["acme"], repos=["acme/b"], topics=["SYNC", "cli"])
    records, _ = await source.fetch_page(spec_of(source, "org:acme"), None, None)
    assert [r.properties["Name"] for r in records] == ["a"]
    named, _ = await source.fetch_page(spec_of(source, "repos"), None, None)
    assert [r.properties["Name"] for r in named] == ["b"]  # named repos bypass the topic gate


# --------------------------------------------------------------------------------------------------
# Named repos


async def test_named_repos_page_in_twenties_skip_missing_ones_and_honour_exclude(
    fake: FakeGitHub, make_source: SourceFactory, caplog: pytest.LogCaptureFixture
) -> None:
    repos = fake.add_repos("octo", 45)
    fake.modify_repo("octo/repo-007", archived=True)
    names = [r.full_name for r in repos] + ["octo/vanished", "OCTO/REPO-000"]  # the last is a duplicate
    source = make_source(repos=names, exclude=["repo-010"])
    caplog.set_level(logging.WARNING, logger="connectors.github")
    pages = await drain(source, spec_of(source, "repos"))

    assert [cursor for _, cursor in pages] == ["20", "40", None]
    got = [r.properties["Full name"] for records, _ in pages for r in records]
    assert len(got) == 44  # 45 - the excluded one; the archived named repo is kept; vanished skipped
    assert "octo/repo-010" not in got and "octo/repo-007" in got
    assert fake.count("/repos/octo/vanished", status=404) == 1
    assert "octo/vanished not found" in caplog.text


async def test_renamed_repo_keeps_its_primary_key(fake: FakeGitHub, make_source: SourceFactory) -> None:
    repo = fake.add_repo("acme", "old-name", readme="# Old\n")
    source = make_source(orgs=["acme"], repos=["acme/old-name"])
    [before], _ = await source.fetch_page(spec_of(source, "repos"), None, None)

    fake.rename_repo("acme/old-name", "new-name")
    [after], _ = await source.fetch_page(spec_of(source, "repos"), None, None)
    assert after.primary_key == before.primary_key == str(repo.id)
    assert after.properties["Full name"] == "acme/new-name"
    assert after.body == "# Old\n"
    assert fake.count("/repos/acme/old-name", status=301) == 1  # GitHub's redirect, followed
    [listed], _ = await source.fetch_page(spec_of(source, "org:acme"), None, None)
    assert listed.primary_key == str(repo.id) and listed.properties["Name"] == "new-name"


# --------------------------------------------------------------------------------------------------
# Targeted fetches


async def test_only_items_fetches_just_those_repos_of_the_org(fake: FakeGitHub, make_source: SourceFactory) -> None:
    fake.add_repos("acme", 30)
    other = fake.add_repo("globex", "repo-001")
    target_by_id = fake.get_repo("acme/repo-020")
    source = make_source(orgs=["acme"])
    items = ["ACME/Repo-003", "repo-005", "globex/repo-001", "acme/vanished", str(target_by_id.id), str(other.id)]
    records, cursor = await source.fetch_page(spec_of(source, "org:acme"), items, None)

    assert cursor is None
    assert sorted(r.properties["Full name"] for r in records) == ["acme/repo-003", "acme/repo-005", "acme/repo-020"]
    assert fake.count("/orgs/*") == 0  # no listing
    assert fake.count("/repos/globex/*") == 0  # another org's name is not even fetched
    assert fake.count("/repos/acme/vanished", status=404) == 1


async def test_only_items_on_the_named_spec_ignores_repos_not_on_the_list(
    fake: FakeGitHub, make_source: SourceFactory
) -> None:
    fake.add_repos("octo", 5)
    source = make_source(repos=["octo/repo-001", "octo/repo-002"])
    spec = spec_of(source, "repos")
    records, cursor = await source.fetch_page(spec, ["octo/REPO-002", "octo/repo-003", "repo-001"], None)
    assert cursor is None
    assert sorted(r.properties["Name"] for r in records) == ["repo-001", "repo-002"]
    assert await source.fetch_page(spec, [], None) == ([], None)


async def test_targeted_fetch_on_an_org_spec_applies_the_org_gates(
    fake: FakeGitHub, make_source: SourceFactory
) -> None:
    fake.add_repo("acme", "live")
    fake.add_repo("acme", "old", archived=True)
    source = make_source(orgs=["acme"], exclude=["live"])
    records, _ = await source.fetch_page(spec_of(source, "org:acme"), ["acme/live", "acme/old"], None)
    assert records == []


# --------------------------------------------------------------------------------------------------
# Enrich hook and concurrency


async def test_enrich_hook_sees_the_context_and_may_drop_a_repo(fake: FakeGitHub, make_source: SourceFactory) -> None:
    fake.add_repos("acme", 3)
    seen: list[RepoContext] = []

    async def enrich(record: Record, ctx: RepoContext) -> Record | None:
        seen.append(ctx)
        if ctx.raw_repo["name"] == "repo-001":
            return None
        extra = await ctx.client.get_languages(ctx.raw_repo["full_name"])  # the hook may call the API too
        return Record(record.primary_key, {**record.properties, "Top language": max(extra, key=extra.__getitem__)})

    source = make_source(orgs=["acme"], enrich=enrich)
    records, _ = await source.fetch_page(spec_of(source, "org:acme"), None, None)
    assert sorted(r.properties["Name"] for r in records) == ["repo-000", "repo-002"]
    assert {r.properties["Top language"] for r in records} == {"Python"}
    ctx = next(c for c in seen if c.raw_repo["name"] == "repo-000")
    assert ctx.readme and ctx.languages["Python"] == 1000
    assert [c["login"] for c in ctx.contributors] == ["alice", "dependabot[bot]", "bob"]  # raw, bots included


async def test_a_sync_enrich_hook_works_and_its_result_is_validated(
    fake: FakeGitHub, make_source: SourceFactory
) -> None:
    fake.add_repos("acme", 1)
    tagged = make_source(orgs=["acme"], enrich=lambda record, ctx: Record(record.primary_key, {"Tag": "x"}))
    [record], _ = await tagged.fetch_page(spec_of(tagged, "org:acme"), None, None)
    assert record.properties == {"Tag": "x"}
    broken = make_source(orgs=["acme"], enrich=lambda record, ctx: {"not": "a record"})
    with pytest.raises(ConfigError, match="enrich returned dict"):
        await broken.fetch_page(spec_of(broken, "org:acme"), None, None)


async def test_enrichment_runs_concurrently_but_bounded(fake: FakeGitHub, make_source: SourceFactory) -> None:
    fake.add_repos("acme", 60)
    source = make_source(orgs=["acme"], enrich_concurrency=4)
    records, _ = await source.fetch_page(spec_of(source, "org:acme"), None, None)
    assert len(records) == 60
    assert 1 < fake.max_in_flight <= 10  # MAX_CONCURRENT per token, GitHub asks for far below 100


async def test_duplicate_repo_ids_within_a_page_are_collapsed(fake: FakeGitHub, make_source: SourceFactory) -> None:
    repo = fake.add_repo("octo", "one")
    source = make_source(repos=["octo/one"], named_page_size=5)
    fake.rename_repo("octo/one", "uno")
    spec = SourceSpec("repos", params={"kind": "repos", "repos": ["octo/one", "octo/uno"]})
    records, _ = await source.fetch_page(spec, None, None)  # two names, one repo (a rename)
    assert [r.primary_key for r in records] == [str(repo.id)]


# --------------------------------------------------------------------------------------------------
# Configuration


@pytest.mark.parametrize(
    "kwargs",
    [
        {"orgs": "acme"},
        {"orgs": ["acme/x"]},
        {"repos": ["no-slash"]},
        {"repos": ["a/../b"]},
        {"orgs": ["acme"], "contributor_limit": 0},
        {"orgs": ["acme"], "repo_type": "everything"},
        {"orgs": ["acme"], "token": ""},
        {"orgs": ["acme"], "enrich": "not callable"},
    ],
)
def test_bad_configuration_is_a_config_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        GitHubSource(**kwargs)  # type: ignore[arg-type]


def test_nothing_to_read_is_not_configured_and_says_what_to_set() -> None:
    source = GitHubSource(token="t")
    assert not source.configured and "GITHUB_ORGS" in source.config_hint and source.specs() == []


async def test_fetch_drains_every_page(fake: FakeGitHub, make_source: SourceFactory, fake_time: FakeClock) -> None:
    fake.add_repos("acme", 130)
    source = make_source(orgs=["acme"])
    records = await source.fetch(spec_of(source, "org:acme"))
    assert len({r.primary_key for r in records}) == 130
    assert fake_time.sleeps == []  # nothing waited


async def test_client_is_closed_after_each_page_but_an_injected_transport_is_not(
    fake: FakeGitHub, make_source: SourceFactory
) -> None:
    fake.add_repos("acme", 1)
    transport = httpx.ASGITransport(app=fake.app)
    source = make_source(orgs=["acme"], transport=transport)
    await source.fetch_page(spec_of(source, "org:acme"), None, None)
    await source.fetch_page(spec_of(source, "org:acme"), None, None)  # the same transport still serves
    assert fake.count("/orgs/acme/repos") == 2

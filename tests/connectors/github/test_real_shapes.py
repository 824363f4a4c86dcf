"""GitHub as it really answers: int64 ids, ``R_kgDO…`` node ids, real Link/rate-limit headers and error bodies.

The payloads here are written from GitHub's REST documentation examples ("Get a repository", "List
organization repositories", the rate-limit pages) and from what SDK suites and issue threads record
(PyGithub, octokit, ossf/allstar#36, PyGithub#1015, github/rest-api-description#3314), not from this
connector. They go through the connector the way production traffic does: record building, Link-header
paging and cursors, error mapping.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging

import httpx
import pytest

from connectors.core import AuthError, ConfigError, RateLimited, RecordError, SourceSpec, auth_error_in_chain
from connectors.github import GitHubClient, LinkHeaderPagination, RepositoryBlocked, parse_link_header, repo_record
from connectors.http import HttpSettings, RetryPolicy
from tests.connectors.github.helpers import SourceFactory
from tests.fakes.github import REPO_ID_START, FakeClock, FakeGitHub, node_id

ORG = SourceSpec("org:acme", params={"kind": "org", "org": "acme"})


def org_spec(name: str) -> SourceSpec:
    return SourceSpec(f"org:{name}", params={"kind": "org", "org": name})


def documented_repo(**changes: object) -> dict[str, object]:
    """A repo shaped like the docs' "Get a repository" example, with an id beyond 2**32."""
    repo_id = 1_234_567_890_123
    owner = {
        "login": "acme-corp",
        "id": 2_345_678_901,
        "node_id": "O_kgDOi8LxNQ",
        "avatar_url": "https://avatars.githubusercontent.com/u/2345678901?v=4",
        "gravatar_id": "",
        "url": "https://api.github.com/users/acme-corp",
        "html_url": "https://github.com/acme-corp",
        "type": "Organization",
        "user_view_type": "public",
        "site_admin": False,
    }
    repo: dict[str, object] = {
        "id": repo_id,
        "node_id": "R_kgDPAAABH3GgRMs",
        "name": "Hello-World",
        "full_name": "acme-corp/Hello-World",
        "private": False,
        "owner": owner,
        "html_url": "https://github.com/acme-corp/Hello-World",
        "description": "This your first repo!",
        "fork": False,
        "url": "https://api.github.com/repos/acme-corp/Hello-World",
        "homepage": "https://github.com",
        "language": None,
        "forks_count": 9,
        "stargazers_count": 80,
        "watchers_count": 80,
        "size": 108,
        "default_branch": "master",
        "open_issues_count": 0,
        "is_template": False,
        "topics": ["octocat", "atom", "electron", "api"],
        "has_issues": True,
        "archived": False,
        "disabled": False,
        "visibility": "public",
        "pushed_at": "2011-01-26T19:06:43Z",
        "created_at": "2011-01-26T19:01:12Z",
        "updated_at": "2011-01-26T19:14:43Z",
        "license": {
            "key": "mit",
            "name": "MIT License",
            "url": "https://api.github.com/licenses/mit",
            "spdx_id": "MIT",
            "node_id": "MDc6TGljZW5zZW1pdA==",
        },
        "forks": 1,
        "open_issues": 1,
        "watchers": 1,
    }
    repo.update(changes)
    return repo


# --------------------------------------------------------------------------------------------------
# Ids and payloads


def test_a_repo_id_beyond_two_to_the_32_stays_exact_in_the_key_and_property() -> None:
    record = repo_record(documented_repo())
    assert record.primary_key == "1234567890123"
    assert record.properties["Repo ID"] == "1234567890123"
    # Through a float (a JSON parser in double mode, a spreadsheet) it would not survive past 2**53;
    # through int32 not past 2**31. The key is built from the exact integer.
    big = 2**53 + 1
    assert repo_record(documented_repo(id=big)).primary_key == str(big)
    assert float(big) != big


def test_documented_nulls_become_none_and_the_rest_keeps_its_type() -> None:
    empty = documented_repo(pushed_at=None, license=None, language=None, description="", topics=[])
    props = repo_record(empty).properties
    assert props["Pushed at"] is None
    assert props["License"] is None
    assert props["Language"] is None
    assert props["Description"] is None
    assert props["Topics"] == []
    assert props["Created"] == dt.date(2011, 1, 26)
    full = repo_record(documented_repo()).properties
    assert full["Pushed at"] == dt.datetime(2011, 1, 26, 19, 6, 43, tzinfo=dt.UTC)
    assert full["License"] == "MIT"
    assert full["Topics"] == ["octocat", "atom", "electron", "api"]
    other = {"key": "other", "name": "Other", "spdx_id": "NOASSERTION", "url": None, "node_id": "MDc6TGljZW5zZTA="}
    assert repo_record(documented_repo(license=other)).properties["License"] is None


def test_the_fake_makes_node_ids_in_githubs_current_format() -> None:
    # A real one decodes to MessagePack [0, id]: "R_kgDOGq0qXw" is repo 447556191.
    assert node_id("R", 447_556_191) == "R_kgDOGq0qXw"
    big = node_id("R", REPO_ID_START)
    assert big.startswith("R_kgDP")  # uint64 once the id passes 2**32
    packed = base64.urlsafe_b64decode(big[2:] + "=" * (-len(big[2:]) % 4))
    assert int.from_bytes(packed[3:], "big") == REPO_ID_START


async def test_an_org_of_int64_ids_pages_through_real_link_headers_with_exact_keys(
    fake: FakeGitHub, make_source: SourceFactory
) -> None:
    repos = fake.add_repos("acme", 205)
    org_id = fake.orgs["acme"].id
    assert org_id > 2**31 and repos[0].id > 2**32
    source = make_source(orgs=["acme"])
    keys: list[str] = []
    cursors: list[str | None] = []
    cursor: str | None = None
    while True:
        records, cursor = await source.fetch_page(ORG, None, cursor)
        keys += [r.primary_key for r in records]
        cursors.append(cursor)
        if cursor is None:
            break
    assert sorted(keys) == sorted(str(r.id) for r in repos)
    assert all(int(k) > 2**32 for k in keys)
    # GitHub's next links name the numeric org, not the name asked for.
    assert cursors[0] == f"/organizations/{org_id}/repos?type=public&sort=full_name&per_page=100&page=2"
    assert fake.count(f"/organizations/{org_id}/repos") == 2


def test_a_middle_page_link_header_as_github_orders_it() -> None:
    # prev, next, last, first: GitHub's order on a middle page of /organizations/{id}/repos.
    api = "https://api.github.com/organizations/2200000001/repos"
    header = (
        f'<{api}?per_page=100&page=1>; rel="prev", <{api}?per_page=100&page=3>; rel="next", '
        f'<{api}?per_page=100&page=5>; rel="last", <{api}?per_page=100&page=1>; rel="first"'
    )
    links = parse_link_header(header)
    assert LinkHeaderPagination().next_url(links) == f"{api}?per_page=100&page=3"
    assert links["last"].endswith("page=5") and links["first"] == links["prev"]


async def test_the_fakes_middle_page_uses_githubs_link_order(fake: FakeGitHub) -> None:
    fake.add_repos("acme", 7)
    org_id = fake.orgs["acme"].id
    async with httpx.AsyncClient(
        base_url="https://api.github.com",
        transport=httpx.ASGITransport(app=fake.app),
        headers={"Authorization": f"Bearer {fake.token}"},
    ) as http:
        response = await http.get(f"/organizations/{org_id}/repos", params={"per_page": 3, "page": 2})
    rels = [part.split('rel="')[1].rstrip('"') for part in response.headers["link"].split(", ")]
    assert rels == ["prev", "next", "last", "first"]
    request_id = response.headers["x-github-request-id"]
    assert len(request_id.split(":")) == 5 and request_id == request_id.upper()
    assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-used", "x-ratelimit-reset"} <= set(
        response.headers
    )
    assert response.headers["x-ratelimit-resource"] == "core"
    repo = response.json()[0]
    assert repo["node_id"].startswith("R_kgDP") and repo["owner"]["node_id"].startswith("O_")
    assert repo["owner"]["type"] == "Organization" and repo["visibility"] == "public"


async def test_an_empty_repo_with_null_pushed_at_and_204_contributors(
    fake: FakeGitHub, make_source: SourceFactory
) -> None:
    fake.add_repo("acme", "blank", empty=True, license=None)
    records, _ = await make_source(orgs=["acme"]).fetch_page(ORG, None, None)
    (record,) = records
    assert record.properties["Pushed at"] is None
    assert record.properties["Language"] is None and record.properties["License"] is None
    assert record.properties["Contributors"] == [] and record.properties["Languages"] == []
    assert record.body is None


# --------------------------------------------------------------------------------------------------
# User accounts: /orgs/{user}/repos is a 404; /users/{user}/repos pages on as /user/{id}/repos


async def test_a_user_account_is_listed_through_users_repos_and_pages_on_user_id(
    fake: FakeGitHub, make_source: SourceFactory
) -> None:
    user = fake.add_user("octocat")
    mine = fake.add_repos("octocat", 150, prefix="spoon")
    source = make_source(orgs=["octocat"])
    spec = org_spec("octocat")
    first, cursor = await source.fetch_page(spec, None, None)
    assert len(first) == 100
    assert cursor == f"/user/{user.id}/repos?type=owner&sort=full_name&per_page=100&page=2"
    # A stored cursor resumes in a new process (a fresh source), straight on the user endpoint.
    second, end = await make_source(orgs=["octocat"]).fetch_page(spec, None, cursor)
    assert end is None
    assert sorted(r.primary_key for r in first + second) == sorted(str(r.id) for r in mine)
    assert fake.count("/orgs/octocat/repos", status=404) == 1
    # The same source remembers it is a user: the next pass does not ask /orgs/ again.
    await source.fetch_page(spec, None, None)
    assert fake.count("/orgs/octocat/repos") == 1
    assert fake.count("/users/octocat/repos") == 2


async def test_a_user_listing_maps_the_org_repo_type_and_filters_the_rest(
    fake: FakeGitHub, make_source: SourceFactory
) -> None:
    fake.add_user("octocat")
    fake.add_repo("octocat", "mine")
    fake.add_repo("octocat", "forked", fork=True)
    records, _ = await make_source(orgs=["octocat"], repo_type="sources").fetch_page(org_spec("octocat"), None, None)
    assert [r.properties["Name"] for r in records] == ["mine"]
    # /users/{name}/repos knows only owner/member/all; the fake answers anything else with GitHub's 422.
    assert fake.count("/users/octocat/repos", status=422) == 0


async def test_a_name_that_is_neither_org_nor_user_is_a_config_error(
    fake: FakeGitHub, make_source: SourceFactory
) -> None:
    with pytest.raises(ConfigError, match="no organization or user named 'ghost'"):
        await make_source(orgs=["ghost"]).fetch_page(org_spec("ghost"), None, None)


# --------------------------------------------------------------------------------------------------
# Rate limits and error bodies


@pytest.mark.parametrize("status", [403, 429])
async def test_a_secondary_limit_without_retry_after_waits_a_minute_not_the_primary_reset(
    fake: FakeGitHub, make_source: SourceFactory, fake_time: FakeClock, status: int
) -> None:
    fake.add_repos("acme", 2)
    await make_source(orgs=["acme"]).fetch_page(ORG, None, None)  # the primary window starts (an hour)
    fake_time.now += 300
    assert fake.rate_reset - fake_time.now > 3000 and fake.rate_remaining > 4000
    fake.secondary_rate_limit(1, status=status, retry_after=None, path="/orgs/acme/repos")
    records, _ = await make_source(orgs=["acme"]).fetch_page(ORG, None, None)
    assert len(records) == 2
    assert fake_time.sleeps == [60]  # GitHub: "wait for at least one minute"


async def test_the_exhausted_primary_limit_still_waits_for_its_reset(
    fake: FakeGitHub, make_source: SourceFactory, fake_time: FakeClock
) -> None:
    fake.add_repos("acme", 1)
    fake.exhaust_rate_limit(reset_in=45)
    records, _ = await make_source(orgs=["acme"]).fetch_page(ORG, None, None)
    assert len(records) == 1 and fake_time.sleeps == [pytest.approx(45)]


async def test_a_secondary_limit_that_persists_is_rate_limited_never_an_auth_failure(
    fake: FakeGitHub, make_source: SourceFactory
) -> None:
    fake.add_repos("acme", 1)
    fake.secondary_rate_limit(100, status=403, retry_after=None, path="/orgs/acme/repos")
    with pytest.raises(RateLimited) as raised:
        await make_source(orgs=["acme"], retry=RetryPolicy(jitter=0, max_attempts=2)).fetch_page(ORG, None, None)
    assert not auth_error_in_chain(raised.value)
    assert raised.value.retry_after == pytest.approx(60)
    assert "secondary rate limit" in str(raised.value)


async def test_a_403_error_body_with_string_status_is_an_auth_error_quoting_github(
    fake: FakeGitHub, make_source: SourceFactory
) -> None:
    fake.add_repos("acme", 1)
    fake.fail_next(1, status=403, path="/orgs/acme/repos")
    with pytest.raises(AuthError) as raised:
        await make_source(orgs=["acme"]).fetch_page(ORG, None, None)
    body = json.loads(str(raised.value).split(" -> 403: ", 1)[1])
    assert body == {
        "message": "Resource not accessible by personal access token",
        "documentation_url": "https://docs.github.com/rest",
        "status": "403",
    }
    assert fake.token not in str(raised.value)


async def test_an_unchanged_org_costs_only_304s_on_the_next_pass(fake: FakeGitHub, make_source: SourceFactory) -> None:
    fake.add_repos("acme", 3)
    source = make_source(orgs=["acme"])
    first, _ = await source.fetch_page(ORG, None, None)
    used = fake.rate_used
    again, _ = await source.fetch_page(ORG, None, None)
    assert [r.primary_key for r in again] == [r.primary_key for r in first]
    assert fake.rate_used == used
    assert fake.count(status=304) == 1 + 3 * 3


# --------------------------------------------------------------------------------------------------
# Blocked repositories: listed, but every read refused (DMCA 451, terms of service 403)


@pytest.mark.parametrize(("reason", "status"), [("dmca", 451), ("tos", 403)])
async def test_a_blocked_repo_in_the_listing_is_skipped_and_the_page_goes_on(
    fake: FakeGitHub,
    make_source: SourceFactory,
    caplog: pytest.LogCaptureFixture,
    reason: str,
    status: int,
) -> None:
    fake.add_repos("acme", 3)
    fake.modify_repo("acme/repo-001", blocked=reason)
    source = make_source(orgs=["acme"])
    caplog.set_level(logging.WARNING)
    records, _ = await source.fetch_page(ORG, None, None)
    assert [r.properties["Name"] for r in records] == ["repo-000", "repo-002"]
    assert fake.count("/repos/acme/repo-001/readme", status=status) == 1
    assert "Repository access blocked" in caplog.text


async def test_a_tos_blocked_403_is_a_record_error_not_a_credential_failure(fake: FakeGitHub) -> None:
    fake.add_repo("acme", "gone", blocked="tos")
    async with GitHubClient(
        token=fake.token,
        http=HttpSettings(transport=httpx.ASGITransport(app=fake.app), retry=RetryPolicy(jitter=0)),
        etag_cache=None,
    ) as client:
        with pytest.raises(RepositoryBlocked) as raised:
            await client.get("/repos/acme/gone/languages")
        assert await client.get_repo("acme/gone") is None  # a named repo: skipped with a warning
    assert isinstance(raised.value, RecordError) and not auth_error_in_chain(raised.value)
    assert raised.value.http_status == 403 and raised.value.reason == "tos"

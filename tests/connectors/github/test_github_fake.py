"""The fake GitHub API behaves as GitHub does where the connector depends on it; and it serves on a real port."""

from __future__ import annotations

import base64
import threading

import httpx
import pytest

from connectors.core import SourceSpec
from connectors.github import GitHubSource
from tests.fakes.github import USER_ID, FakeClock, FakeGitHub, serve

API = "https://api.github.com"


def client(fake: FakeGitHub, token: str | None = None, **headers: str) -> httpx.AsyncClient:
    auth = {"Authorization": f"Bearer {token or fake.token}"} if token != "" else {}
    return httpx.AsyncClient(
        base_url=API,
        transport=httpx.ASGITransport(app=fake.app),
        headers={**auth, "Accept": "application/vnd.github+json", **headers},
    )


async def test_org_listing_pages_with_absolute_link_headers(fake: FakeGitHub) -> None:
    fake.add_repos("acme", 7)
    org_id = fake.orgs["acme"].id
    async with client(fake) as http:
        first = await http.get("/orgs/acme/repos", params={"per_page": 3, "sort": "full_name"})
        assert [r["name"] for r in first.json()] == ["repo-000", "repo-001", "repo-002"]
        assert first.headers["link"] == (
            f'<{API}/organizations/{org_id}/repos?per_page=3&sort=full_name&page=2>; rel="next", '
            f'<{API}/organizations/{org_id}/repos?per_page=3&sort=full_name&page=3>; rel="last"'
        )
        last = await http.get(f"{API}/organizations/{org_id}/repos?per_page=3&sort=full_name&page=3")
        assert [r["name"] for r in last.json()] == ["repo-006"]
        assert 'rel="next"' not in last.headers["link"] and 'rel="prev"' in last.headers["link"]
        assert (await http.get("/orgs/nobody/repos")).json()["message"] == "Not Found"
        assert first.headers["x-github-request-id"] != last.headers["x-github-request-id"]


async def test_etag_and_304_do_not_count_against_the_limit(fake: FakeGitHub) -> None:
    fake.add_repo("acme", "one")
    async with client(fake) as http:
        fresh = await http.get("/repos/acme/one")
        etag = fresh.headers["etag"]
        assert etag.startswith('W/"') and fresh.headers["x-ratelimit-used"] == "1"
        cached = await http.get("/repos/acme/one", headers={"If-None-Match": etag})
        assert cached.status_code == 304 and cached.content == b""
        assert cached.headers["x-ratelimit-used"] == "1" and cached.headers["etag"] == etag
        fake.modify_repo("acme/one", stargazers_count=5)
        changed = await http.get("/repos/acme/one", headers={"If-None-Match": etag})
        assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert fake.rate_used == 2
    assert [c.status for c in fake.requests] == [200, 304, 200]


async def test_auth_bad_credentials_and_anonymous_access(fake: FakeGitHub) -> None:
    fake.add_repo("acme", "one")
    async with client(fake, token="ghp_wrong") as http:
        response = await http.get("/repos/acme/one")
        assert response.status_code == 401
        assert response.json()["message"] == "Bad credentials"
    async with client(fake, token="") as http:
        response = await http.get("/repos/acme/one")
        assert response.status_code == 200 and response.headers["x-ratelimit-limit"] == "60"
    new = fake.rotate_token()
    async with client(fake, token=new) as http:
        assert (await http.get("/repos/acme/one")).status_code == 200
    async with client(fake, token="") as http:
        fake.allow_anonymous = False
        assert (await http.get("/repos/acme/one")).status_code == 401
    async with client(fake, **{"User-Agent": ""}) as http:
        assert (await http.get("/repos/acme/one")).status_code == 403


async def test_primary_rate_limit_blocks_until_the_reset(fake_time: FakeClock) -> None:
    fake = FakeGitHub(clock=fake_time.clock, rate_limit=2, rate_window=60)
    fake.add_repo("acme", "one")
    async with client(fake) as http:
        assert [(await http.get("/repos/acme/one")).status_code for _ in range(2)] == [200, 200]
        blocked = await http.get("/repos/acme/one")
        assert blocked.status_code == 403
        assert blocked.headers["x-ratelimit-remaining"] == "0"
        request_id = blocked.headers["x-github-request-id"]
        assert blocked.json()["message"] == (
            f"API rate limit exceeded for user ID {USER_ID}. If you reach out to GitHub Support for help, "
            f"please include the request ID {request_id}."
        )
        assert float(blocked.headers["x-ratelimit-reset"]) == pytest.approx(fake_time.now + 60, abs=1)
        assert (await http.get("/rate_limit")).status_code == 200  # free, as on GitHub
        fake_time.now += 61
        assert (await http.get("/repos/acme/one")).status_code == 200


async def test_faults_and_secondary_limits_are_injectable(fake: FakeGitHub) -> None:
    fake.add_repo("acme", "one", readme="hi")
    fake.fail_next(2, status=502, path="/repos/*/readme")
    fake.secondary_rate_limit(1, status=429, retry_after=30, path="/repos/acme/one")
    async with client(fake) as http:
        assert (await http.get("/repos/acme/one/readme")).status_code == 502
        limited = await http.get("/repos/acme/one")
        assert limited.status_code == 429 and limited.headers["retry-after"] == "30"
        assert "secondary rate limit" in limited.json()["message"]
        assert (await http.get("/repos/acme/one/readme")).status_code == 502
        assert (await http.get("/repos/acme/one/readme")).status_code == 200
    assert fake.count("/repos/*/readme", status=502) == 2


async def test_readme_raw_and_json_and_renamed_repos_redirect(fake: FakeGitHub) -> None:
    repo = fake.add_repo("acme", "one", readme="# One\n")
    fake.rename_repo("acme/one", "uno")
    async with client(fake) as http:
        moved = await http.get("/repos/acme/one/readme")
        assert moved.status_code == 301
        assert moved.headers["location"] == f"{API}/repositories/{repo.id}/readme"
        raw = await http.get(moved.headers["location"], headers={"Accept": "application/vnd.github.raw"})
        assert raw.text == "# One\n" and raw.headers["etag"].startswith('"')
        as_json = (await http.get("/repos/ACME/UNO/readme")).json()  # names are case-insensitive
        assert base64.b64decode(as_json["content"]).decode() == "# One\n"
        fake.delete_repo("acme/uno")
        assert (await http.get("/repos/acme/uno")).status_code == 404
        assert (await http.get("/repos/acme/one")).status_code == 404


async def test_contributors_page_and_empty_repos_answer_204(fake: FakeGitHub) -> None:
    fake.add_repo("acme", "one", contributors=[{"login": f"u{i}", "contributions": i} for i in range(5)])
    fake.add_repo("acme", "empty", empty=True)
    async with client(fake) as http:
        page = await http.get("/repos/acme/one/contributors", params={"per_page": 2})
        assert [c["login"] for c in page.json()] == ["u4", "u3"]
        assert 'rel="next"' in page.headers["link"]
        empty = await http.get("/repos/acme/empty/contributors")
        assert empty.status_code == 204 and empty.content == b""
        assert (await http.get("/repos/acme/empty/languages")).json() == {}


def test_serve_runs_the_fake_on_a_loopback_port_and_stops_cleanly(fake: FakeGitHub) -> None:
    import asyncio

    fake.add_repos("acme", 3)
    threads_before = {t.name for t in threading.enumerate()}
    with serve(fake) as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        source = GitHubSource(orgs=["acme"], token=fake.token, base_url=base_url)
        spec = SourceSpec("org:acme", params={"kind": "org", "org": "acme"})
        records, cursor = asyncio.run(source.fetch_page(spec, None, None))
        assert cursor is None and len(records) == 3
        assert records[0].body is not None and records[0].body.startswith("# repo-")
        response = httpx.get(f"{base_url}/orgs/acme/repos", params={"per_page": 1}, headers={"User-Agent": "t"})
        assert response.headers["link"].startswith(f"<{base_url}/organizations/")  # absolute, on the real port
    assert fake.count("/orgs/acme/repos") == 2
    assert {t.name for t in threading.enumerate()} - threads_before == set()

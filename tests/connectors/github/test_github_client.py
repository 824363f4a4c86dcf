"""GitHubClient pieces: the Link-header strategy, cursors relative to the API root, and the public surface."""

from __future__ import annotations

import httpx
import pytest

import connectors.github as github
from connectors.core import ConfigError
from connectors.github import GitHubClient, LinkHeaderPagination, parse_link_header
from connectors.http import HttpSettings
from tests.fakes.github import FakeClock, FakeGitHub


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            '<https://api.github.com/organizations/1/repos?page=2>; rel="next", '
            '<https://api.github.com/organizations/1/repos?page=5>; rel="last"',
            {
                "next": "https://api.github.com/organizations/1/repos?page=2",
                "last": "https://api.github.com/organizations/1/repos?page=5",
            },
        ),
        ("<https://x/a?b=1,2>;rel=next", {"next": "https://x/a?b=1,2"}),  # comma inside the URL, bare rel
        ('<https://x/p2> ; title="a, b" ; REL = "Next Last"', {"next": "https://x/p2", "last": "https://x/p2"}),
        ('<https://x/1>; rel="next", <https://x/2>; rel="next"', {"next": "https://x/1"}),  # first wins
        ("", {}),
        (None, {}),
        ("garbage without brackets", {}),
    ],
)
def test_parse_link_header_is_robust(header: str | None, expected: dict[str, str]) -> None:
    assert parse_link_header(header) == expected


def test_link_header_pagination_strategy() -> None:
    strategy = LinkHeaderPagination()
    assert strategy.next_url({"next": "https://x/2", "last": "https://x/3"}) == "https://x/2"
    assert not strategy.has_more({"last": "https://x/3", "prev": "https://x/1"})


@pytest.mark.parametrize(
    ("base_url", "link", "cursor"),
    [
        (
            "https://api.github.com",
            "https://api.github.com/organizations/7/repos?page=2",
            "/organizations/7/repos?page=2",
        ),
        (
            "https://ghe.example.com/api/v3",
            "https://ghe.example.com/api/v3/organizations/7/repos?per_page=100&page=3",
            "/organizations/7/repos?per_page=100&page=3",
        ),
    ],
)
async def test_next_links_become_cursors_relative_to_the_api_root(base_url: str, link: str, cursor: str) -> None:
    async with GitHubClient(token="t", base_url=base_url) as client:
        assert client.cursor_for(link) == cursor
        url, params = client.org_repos_url("acme", cursor)
        assert (url, params) == (cursor, {})
        assert str(client._http.build_request("GET", url).url) == link  # replays to the same page


@pytest.mark.parametrize(
    "link",
    ["https://evil.example/organizations/7/repos?page=2", "http://api.github.com/x", "https://api.github.com:444/x"],
)
async def test_a_link_off_the_api_root_is_refused(link: str) -> None:
    async with GitHubClient(token="t") as client:
        with pytest.raises(ConfigError):
            client.cursor_for(link)
    async with GitHubClient(token="t", base_url="https://ghe.example.com/api/v3") as client:
        with pytest.raises(ConfigError):
            client.cursor_for("https://ghe.example.com/other/organizations/7/repos")


async def test_paginate_follows_next_links_to_the_end(fake: FakeGitHub, fake_time: FakeClock) -> None:
    fake.add_repo("acme", "one", contributors=[{"login": f"u{i:02d}", "contributions": 100 - i} for i in range(23)])
    transport = httpx.ASGITransport(app=fake.app)
    async with GitHubClient(
        token=fake.token,
        http=HttpSettings(transport=transport, sleep=fake_time.sleep, clock=fake_time.clock),
    ) as c:
        pages = [p async for p in c.paginate("/repos/acme/one/contributors", params={"per_page": 10})]
    assert [len(p) for p in pages] == [10, 10, 3]
    assert [u["login"] for p in pages for u in p] == [f"u{i:02d}" for i in range(23)]


async def test_the_client_sends_githubs_headers(fake: FakeGitHub, fake_time: FakeClock) -> None:
    seen: list[httpx.Request] = []

    async def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    async with GitHubClient(
        token="tok-123",
        http=HttpSettings(transport=httpx.MockTransport(record), clock=fake_time.clock),
    ) as client:
        await client.get("/repos/a/b/languages")
        await client.get_readme("a/b")
    headers = seen[0].headers
    assert headers["authorization"] == "Bearer tok-123"
    assert headers["accept"] == "application/vnd.github+json"
    assert headers["x-github-api-version"] == "2022-11-28"
    assert headers["user-agent"]
    assert seen[1].headers["accept"] == "application/vnd.github.raw"


def test_public_surface_is_explicit() -> None:
    assert set(github.__all__) == {name for name in dir(github) if not name.startswith("_")} - {
        "client",
        "settings",
        "source",
    }

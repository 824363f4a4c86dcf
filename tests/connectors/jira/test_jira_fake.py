"""The fake Jira itself: the behaviours the connector tests rely on, checked over raw HTTP."""

from __future__ import annotations

import httpx
import pytest

from tests.fakes.jira import SITE, FakeJira


@pytest.fixture
async def http(fake: FakeJira):
    async with httpx.AsyncClient(
        base_url=SITE, transport=httpx.ASGITransport(app=fake.app), auth=httpx.BasicAuth(fake.email, fake.token)
    ) as client:
        yield client


async def search(http: httpx.AsyncClient, **body) -> httpx.Response:
    return await http.post("/rest/api/3/search/jql", json=body)


async def test_the_old_search_is_gone(http):
    for method, path in (("GET", "/rest/api/3/search"), ("POST", "/rest/api/3/search"), ("GET", "/rest/api/2/search")):
        response = await http.request(method, path, params={"jql": "project = ENG"})
        assert response.status_code == 410 and "CHANGE-2046" in response.json()["errorMessages"][0]


async def test_search_pages_with_tokens_returns_ids_only_by_default_and_caps_pages(fake, http):
    for i in range(120):
        fake.add_issue("ENG", f"s{i}")
    first = (await search(http, jql="project = ENG ORDER BY created ASC", maxResults=500)).json()
    assert len(first["issues"]) == 120 and first["isLast"] and set(first["issues"][0]) == {"id"}
    page = (await search(http, jql="project = ENG ORDER BY created ASC", maxResults=500, fields=["summary"])).json()
    assert len(page["issues"]) == 100 and page["isLast"] is False
    assert page["issues"][0]["key"] == "ENG-1" and page["issues"][0]["fields"] == {"summary": "s0"}
    rest = (
        await search(
            http, jql="project = ENG ORDER BY created ASC", fields=["summary"], nextPageToken=page["nextPageToken"]
        )
    ).json()
    assert len(rest["issues"]) == 20 and rest["isLast"] and "nextPageToken" not in rest
    # A token belongs to its query.
    other = await search(http, jql="project = OPS", nextPageToken=page["nextPageToken"])
    assert other.status_code == 400


async def test_search_rejects_unbounded_queries_unknown_keys_and_too_many_reconciles(fake, http):
    assert (await search(http, jql="ORDER BY created")).status_code == 400
    missing = await search(http, jql='id in ("ENG-404")')
    assert missing.status_code == 400
    assert missing.json()["errorMessages"] == ["An issue with key 'ENG-404' does not exist for field 'id'."]
    assert (await search(http, jql="project = ENG", reconcileIssues=list(range(51)))).status_code == 400
    assert (await search(http, jql="project = NOPE")).status_code == 400


async def test_new_issues_are_invisible_to_search_until_indexed_unless_reconciled(fake, http, clock):
    fake.set_index_delay(30)
    created = await http.post(
        "/rest/api/3/issue",
        json={"fields": {"project": {"key": "ENG"}, "issuetype": {"name": "Task"}, "summary": "new"}},
    )
    issue_id = created.json()["id"]
    assert (await search(http, jql="project = ENG")).json()["issues"] == []
    assert (await http.get(f"/rest/api/3/issue/{issue_id}")).status_code == 200  # reads are consistent
    seen = (await search(http, jql="project = ENG", reconcileIssues=[int(issue_id)])).json()["issues"]
    assert seen == [{"id": issue_id}]
    clock.now += 31
    assert (await search(http, jql="project = ENG")).json()["issues"] == [{"id": issue_id}]


async def test_entity_properties_come_inline_but_are_not_searchable(fake, http):
    fake.add_issue("ENG", "ours", properties={"durable-sync": {"pk": "k"}})
    found = (await search(http, jql="project = ENG", properties=["durable-sync"])).json()["issues"]
    assert found[0]["properties"] == {"durable-sync": {"pk": "k"}}
    by_property = await search(http, jql="project = ENG AND issue.property[durable-sync].pk IS NOT EMPTY")
    assert by_property.json()["issues"] == []  # set over REST: not indexed without an app module


async def test_create_validates_in_jiras_shape(fake, http):
    team = fake.add_custom_field("Team", "select", options=["Platform"])
    response = await http.post(
        "/rest/api/3/issue",
        json={
            "fields": {
                "project": {"key": "ENG"},
                "issuetype": {"name": "Task"},
                "summary": "a\nb",
                "description": "plain text",
                "labels": ["has space"],
                "priority": {"name": "Urgent"},
                "assignee": {"accountId": "nobody"},
                "components": [{"name": "Nope"}],
                "duedate": "tomorrow",
                "customfield_424242": "x",
                team: {"value": "Data"},
            },
            "properties": [{"key": "durable-sync", "value": {"pk": "k"}}],
        },
    )
    assert response.status_code == 400
    body = response.json()
    assert body["errorMessages"] == []
    assert set(body["errors"]) == {
        "summary",
        "description",
        "labels",
        "priority",
        "assignee",
        "components",
        "duedate",
        "customfield_424242",
        team,
    }
    assert body["errors"]["customfield_424242"] == (
        "Field 'customfield_424242' cannot be set. It is not on the appropriate screen, or unknown."
    )
    assert body["errors"][team] == "Option value 'Data' is not valid"
    assert fake.issues() == []


async def test_create_sets_properties_in_the_same_request_and_moves_keep_ids(fake, http):
    created = await http.post(
        "/rest/api/3/issue",
        json={
            "fields": {"project": {"key": "ENG"}, "issuetype": {"name": "Task"}, "summary": "s"},
            "properties": [{"key": "durable-sync", "value": {"pk": "k"}}],
        },
    )
    assert created.status_code == 201 and created.json()["key"] == "ENG-1"
    issue_id = created.json()["id"]
    prop = await http.get(f"/rest/api/3/issue/{issue_id}/properties/durable-sync")
    assert prop.json() == {"key": "durable-sync", "value": {"pk": "k"}}
    fake.move_issue(issue_id, "OPS")
    moved = (await http.get("/rest/api/3/issue/ENG-1", params={"fields": "project"})).json()
    assert (moved["id"], moved["key"], moved["fields"]["project"]["key"]) == (issue_id, "OPS-1", "OPS")


async def test_bad_credentials_and_the_burst_limit(fake, clock):
    transport = httpx.ASGITransport(app=fake.app)
    async with httpx.AsyncClient(base_url=SITE, transport=transport, auth=httpx.BasicAuth(fake.email, "wrong")) as bad:
        assert (await bad.get("/rest/api/3/myself")).status_code == 401
    fake.set_rate(2)
    async with httpx.AsyncClient(
        base_url=SITE, transport=transport, auth=httpx.BasicAuth(fake.email, fake.token)
    ) as ok:
        statuses = [(await ok.get("/rest/api/3/field")).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        limited = [r for r in fake.log if r.status == 429]
        assert len(limited) == 1
        response = await ok.get("/rest/api/3/field")
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "1"
        assert response.headers["RateLimit-Reason"] == "jira-burst-based"
        assert response.headers["X-RateLimit-Reset"].endswith("Z")
        assert (await ok.get("/rest/api/3/myself")).status_code == 200  # another endpoint, another bucket
        clock.now += 1
        assert (await ok.get("/rest/api/3/field")).status_code == 200


async def test_a_dropped_answer_still_creates(fake, http):
    fake.drop_next(method="POST", path=r"/issue$")
    with pytest.raises(httpx.RemoteProtocolError):
        await http.post(
            "/rest/api/3/issue",
            json={"fields": {"project": {"key": "ENG"}, "issuetype": {"name": "Task"}, "summary": "s"}},
        )
    assert [i.key for i in fake.issues()] == ["ENG-1"]

"""The fake Asana API on its own, through raw httpx: it behaves as Asana's docs say (so the
connector tests exercise something real)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.connectors.asana.conftest import API, FakeTime
from tests.fakes.asana import EXPIRED_OFFSET_MESSAGE, MAX_NOTES, FakeAsana, FakeProject, serve


def raw(fake: FakeAsana, token: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token or fake.token}"}
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app), base_url=API, headers=headers)


def error(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"errors"} and "help" in body["errors"][0]
    return body["errors"][0]["message"]


async def test_a_missing_or_revoked_token_is_401_not_authorized(fake: FakeAsana, project: FakeProject) -> None:
    async with raw(fake, "nope") as client:
        response = await client.get(f"/projects/{project.gid}")
    assert response.status_code == 401 and error(response) == "Not Authorized"
    fake.revoke_token(fake.token)
    async with raw(fake) as client:
        assert (await client.get(f"/projects/{project.gid}")).status_code == 401


async def test_listings_page_by_offset_and_compact_objects_unless_fields_are_asked(
    fake: FakeAsana, project: FakeProject
) -> None:
    for i in range(5):
        fake.add_task(project.gid, f"task {i}", custom={"Source ID": str(i)})
    async with raw(fake) as client:
        first = (await client.get(f"/projects/{project.gid}/tasks", params={"limit": 2})).json()
        assert [t["name"] for t in first["data"]] == ["task 0", "task 1"]
        assert set(first["data"][0]) == {"gid", "resource_type", "name", "resource_subtype"}
        nxt = first["next_page"]
        assert set(nxt) == {"offset", "path", "uri"} and nxt["uri"].endswith(nxt["path"])
        second = (await client.get(nxt["path"])).json()
        assert [t["name"] for t in second["data"]] == ["task 2", "task 3"]
        narrowed = (
            await client.get(
                f"/projects/{project.gid}/tasks",
                params={"limit": 100, "opt_fields": "custom_fields.text_value"},
            )
        ).json()
        assert narrowed["next_page"] is None
        assert set(narrowed["data"][0]) == {"gid", "resource_type", "custom_fields"}
        for bad in (0, 101):
            response = await client.get(f"/projects/{project.gid}/tasks", params={"limit": bad})
            assert response.status_code == 400 and "limit" in error(response)


async def test_offset_tokens_expire_with_time_with_writes_and_on_demand(
    fake: FakeAsana, project: FakeProject, time: FakeTime
) -> None:
    for i in range(3):
        fake.add_task(project.gid, f"task {i}")
    async with raw(fake) as client:
        path = f"/projects/{project.gid}/tasks"

        async def offset() -> str:
            return (await client.get(path, params={"limit": 1})).json()["next_page"]["offset"]

        token = await offset()
        time.advance(fake.offset_ttl + 1)
        response = await client.get(path, params={"limit": 1, "offset": token})
        assert response.status_code == 400 and error(response) == EXPIRED_OFFSET_MESSAGE

        token = await offset()
        fake.expire_offsets()
        assert (await client.get(path, params={"limit": 1, "offset": token})).status_code == 400

        fake.offset_max_writes = 1
        token = await offset()
        await client.post("/tasks", json={"data": {"name": "new", "projects": [project.gid]}})
        assert (await client.get(path, params={"limit": 1, "offset": token})).status_code == 400


async def test_the_per_minute_budget_answers_429_with_retry_after_to_the_next_window(
    fake: FakeAsana, project: FakeProject, time: FakeTime
) -> None:
    fake.set_rate(150)
    time.advance(15)  # a quarter into the window
    async with raw(fake) as client:
        statuses = [(await client.get(f"/projects/{project.gid}")).status_code for _ in range(151)]
        assert statuses.count(200) == 150 and statuses[-1] == 429
        response = await client.get(f"/projects/{project.gid}")
        assert response.status_code == 429 and response.headers["Retry-After"] == "45"
        assert "rate limit" in error(response)
        time.advance(45)
        assert (await client.get(f"/projects/{project.gid}")).status_code == 200
    assert max(fake.requests_per_minute().values()) == 150


async def test_more_than_15_writes_in_flight_answer_429(fake: FakeAsana, project: FakeProject) -> None:
    fake.latency = 20
    async with raw(fake) as client:
        responses = await asyncio.gather(
            *(client.post("/tasks", json={"data": {"name": f"t{i}", "projects": [project.gid]}}) for i in range(20))
        )
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 15 and statuses.count(429) == 5
    assert fake.max_in_flight_writes == 15 and fake.counters.concurrency_limited == 5


async def test_writes_are_validated_like_asana(fake: FakeAsana, project: FakeProject) -> None:
    priority = fake.field(project.gid, "Priority")
    urgent = priority.option_named("Urgent").gid
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"notes": "x" * (MAX_NOTES + 1)}, 400, "notes"),
        ({"html_notes": "<p>not a body</p>"}, 400, "body"),
        ({"html_notes": "<body>a < b</body>"}, 400, "XML"),
        ({"notes": "a", "html_notes": "<body>a</body>"}, 400, "one of notes or html_notes"),
        ({"due_on": "2024-05-01", "due_at": "2024-05-01T10:00:00Z"}, 400, "one of due_on or due_at"),
        ({"assignee": "nobody@example.com"}, 400, "assignee"),
        ({"completed": "yes"}, 400, "completed"),
        ({"custom_fields": {"999": "x"}}, 400, "not on given object"),
        ({"custom_fields": {priority.gid: "123"}}, 400, "enum option"),
        ({"custom_fields": {priority.gid: urgent}}, 400, "disabled"),
        ({"custom_fields": {fake.field(project.gid, "Audit").gid: "x"}}, 403, "locked"),
        ({"custom_fields": {fake.field(project.gid, "Score").gid: 3}}, 400, "read only"),
        ({"custom_fields": {fake.field(project.gid, "Stars").gid: "3"}}, 400, "Number"),
        ({"external": {"gid": "k"}}, 400, "OAuth"),
        ({"color": "red"}, 400, "Unknown property"),
    ]
    async with raw(fake) as client:
        for data, status, needle in cases:
            response = await client.post("/tasks", json={"data": {"name": "t", "projects": [project.gid], **data}})
            assert response.status_code == status, data
            assert needle in error(response), (data, error(response))
        created = await client.post("/tasks", json={"data": {"name": "ok", "projects": [project.gid]}})
        assert created.status_code == 201
        gid = created.json()["data"]["gid"]
        moved = await client.put(f"/tasks/{gid}", json={"data": {"projects": []}})
        assert moved.status_code == 400
    assert [t.name for t in fake.tasks(project.gid)] == ["ok"]


async def test_fail_next_after_carries_the_write_out_and_loses_the_answer(
    fake: FakeAsana, project: FakeProject
) -> None:
    fake.fail_next(1, 502, after=True, method="POST", path=r"^/tasks$")
    async with raw(fake) as client:
        response = await client.post("/tasks", json={"data": {"name": "t", "projects": [project.gid]}})
    assert response.status_code == 502 and len(fake.tasks(project.gid)) == 1


def test_the_fake_serves_on_a_loopback_port(fake: FakeAsana, project: FakeProject) -> None:
    with serve(fake) as base:
        response = httpx.get(f"{base}/projects/{project.gid}", headers={"Authorization": f"Bearer {fake.token}"})
    assert response.status_code == 200 and response.json()["data"]["name"] == "Repositories"

"""The fake Notion API answers as the real one does (raw HTTP, no connector code involved)."""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.fakes.notion import ARCHIVED_MESSAGE, NOTION_VERSION, FakeNotion, encode_property_id, serve


@pytest.fixture
async def http(fake: FakeNotion) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {fake.token}", "Notion-Version": NOTION_VERSION}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=fake.app), base_url="https://api.notion.com", headers=headers
    ) as client:
        yield client


def text(content: str) -> dict[str, Any]:
    return {"type": "text", "text": {"content": content}}


def new_page(ds_id: str, **properties: Any) -> dict[str, Any]:
    return {"parent": {"type": "data_source_id", "data_source_id": ds_id}, "properties": properties}


def error(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    assert body["object"] == "error" and body["status"] == response.status_code
    return response.status_code, body["code"], body["message"]


async def test_tokens_are_checked_and_can_be_revoked_and_rotated(fake, http, db):
    assert (await http.get(f"/v1/databases/{db.id}")).status_code == 200
    bad = await http.get(f"/v1/databases/{db.id}", headers={"Authorization": "Bearer nope"})
    assert error(bad) == (401, "unauthorized", "API token is invalid.")
    new = fake.rotate_token(fake.token)
    assert error(await http.get(f"/v1/databases/{db.id}"))[0] == 401
    assert (await http.get(f"/v1/databases/{db.id}", headers={"Authorization": f"Bearer {new}"})).status_code == 200


async def test_the_version_header_is_required(http, db):
    response = await http.get(f"/v1/databases/{db.id}", headers={"Notion-Version": ""})
    assert error(response)[:2] == (400, "missing_version")
    http.headers.pop("Notion-Version")
    assert error(await http.get(f"/v1/databases/{db.id}"))[:2] == (400, "missing_version")


async def test_database_and_data_source_ids_are_not_interchangeable(http, db, ds_id):
    database = (await http.get(f"/v1/databases/{db.id}")).json()
    assert database["data_sources"] == [{"id": ds_id, "name": "Repositories"}]
    status, code, message = error(await http.get(f"/v1/data_sources/{db.id}"))
    assert (status, code) == (404, "object_not_found") and message.startswith(
        f"Could not find data_source with ID: {db.id}"
    )
    assert error(await http.get(f"/v1/databases/{ds_id}"))[:2] == (404, "object_not_found")
    assert error(await http.post(f"/v1/data_sources/{db.id}/query", json={}))[0] == 404
    schema = (await http.get(f"/v1/data_sources/{ds_id}")).json()
    assert schema["parent"] == {"type": "database_id", "database_id": db.id}
    assert schema["properties"]["Stars"]["type"] == "number"


async def test_other_workspaces_objects_are_not_found(fake, http, github_schema):
    elsewhere = fake.add_database(github_schema, workspace="other")
    assert error(await http.get(f"/v1/databases/{elsewhere.id}"))[0] == 404


async def test_rate_limit_answers_429_with_an_integer_retry_after(fake, http, db, time):
    fake.set_rate(3, burst=2)
    statuses = [(await http.get(f"/v1/databases/{db.id}")).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    limited = await http.get(f"/v1/databases/{db.id}")
    assert error(limited)[:2] == (429, "rate_limited") and limited.headers["Retry-After"] == "1"
    time.advance(1)
    assert (await http.get(f"/v1/databases/{db.id}")).status_code == 200
    assert fake.counters.rate_limited == 2


async def test_size_limits_are_validation_errors(http, ds_id):
    cases: list[dict[str, Any]] = [
        {"Name": {"title": [text("x" * 2001)]}},
        {"Description": {"rich_text": [text("x")] * 101}},
        {"Description": {"rich_text": [text("🚀" * 1001)]}},  # 2002 UTF-16 units
        {"Topics": {"multi_select": [{"name": f"t{i}"} for i in range(101)]}},
        {"URL": {"url": "https://x/" + "a" * 2000}},
        {"Email": {"email": "a" * 201}},
        {"Topics": {"multi_select": [{"name": "a,b"}]}},
    ]
    for properties in cases:
        assert error(await http.post("/v1/pages", json=new_page(ds_id, **properties)))[:2] == (400, "validation_error")
    too_many = {**new_page(ds_id), "children": [{"paragraph": {"rich_text": [text("p")]}}] * 101}
    assert "body.children.length should be ≤ `100`" in error(await http.post("/v1/pages", json=too_many))[2]
    huge = {**new_page(ds_id), "children": [{"paragraph": {"rich_text": [text("é" * 2000)] * 100}}] * 2}
    assert "too large" in error(await http.post("/v1/pages", json=huge))[2]


async def test_properties_are_validated_against_the_schema(http, ds_id):
    unknown = await http.post("/v1/pages", json=new_page(ds_id, Nope={"number": 1}))
    assert error(unknown) == (400, "validation_error", "Nope is not a property that exists.")
    for properties in (
        {"Stars": {"number": "12"}},
        {"Stars": {"rich_text": [text("12")]}},
        {"Archived": {"checkbox": None}},
        {"Created": {"date": {"start": "soon"}}},
        {"Edited": {"last_edited_time": "2024-01-01"}},
        {"Status": {"status": {"name": "Someday"}}},
    ):
        assert error(await http.post("/v1/pages", json=new_page(ds_id, **properties)))[0] == 400, properties


async def test_missing_select_options_are_created_by_a_write(fake, http, ds_id):
    response = await http.post("/v1/pages", json=new_page(ds_id, Language={"select": {"name": "Zig"}}))
    assert response.status_code == 200
    assert response.json()["properties"]["Language"]["select"]["name"] == "Zig"
    assert "Zig" in fake.options(ds_id, "Language")


async def test_pages_in_the_trash_cannot_be_edited_until_restored(fake, http, ds_id):
    page = fake.add_page(ds_id, {"Key": "1"})
    fake.trash_page(page.id)
    edit = await http.patch(f"/v1/pages/{page.id}", json={"properties": {"Stars": {"number": 1}}})
    assert error(edit) == (400, "validation_error", ARCHIVED_MESSAGE)
    assert error(await http.patch(f"/v1/blocks/{page.id}/children", json={"children": []}))[2] == ARCHIVED_MESSAGE
    restore = await http.patch(f"/v1/pages/{page.id}", json={"in_trash": False, "properties": {"Stars": {"number": 1}}})
    assert restore.status_code == 200 and restore.json()["in_trash"] is False
    assert (await http.get(f"/v1/pages/{page.id}")).json()["properties"]["Stars"]["number"] == 1


async def test_query_filters_sorts_and_pages(fake, http, ds_id, time):
    pages = [fake.add_page(ds_id, {"Key": f"k{i % 7}", "Stars": i}) for i in range(12)]
    time.advance(120)
    fake.edit_page(pages[3].id, {"Stars": 100})
    edited = await http.post(
        f"/v1/data_sources/{ds_id}/query",
        json={"filter": {"timestamp": "last_edited_time", "last_edited_time": {"on_or_after": "2023-11-14T22:15:00Z"}}},
    )
    assert [p["id"] for p in edited.json()["results"]] == [pages[3].id]
    equal = await http.post(
        f"/v1/data_sources/{ds_id}/query", json={"filter": {"property": "Key", "rich_text": {"equals": "k2"}}}
    )
    assert {p["id"] for p in equal.json()["results"]} == {pages[2].id, pages[9].id}
    number = await http.post(
        f"/v1/data_sources/{ds_id}/query", json={"filter": {"property": "Stars", "number": {"equals": 100}}}
    )
    assert [p["id"] for p in number.json()["results"]] == [pages[3].id]

    seen: list[int] = []
    cursor = None
    while True:
        body: dict[str, Any] = {"page_size": 5, "sorts": [{"property": "Stars", "direction": "descending"}]}
        if cursor:
            body["start_cursor"] = cursor
        answer = (await http.post(f"/v1/data_sources/{ds_id}/query", json=body)).json()
        seen += [p["properties"]["Stars"]["number"] for p in answer["results"]]
        cursor = answer["next_cursor"]
        if not answer["has_more"]:
            break
    assert seen == sorted([i for i in range(12) if i != 3] + [100], reverse=True)
    too_big = await http.post(f"/v1/data_sources/{ds_id}/query", json={"page_size": 101})
    assert error(too_big)[:2] == (400, "validation_error")


async def test_filter_properties_narrows_the_returned_properties(fake, http, ds_id):
    fake.add_page(ds_id, {"Key": "1", "Stars": 3})
    key_id = fake.data_sources[ds_id].properties["Key"]["id"]
    # The id as listed is already encoded: on the wire it must stay encoded once (httpx encodes params).
    wire = f"/v1/data_sources/{ds_id}/query?filter_properties={key_id}&filter_properties=title"
    answer = await http.post(wire, json={})
    assert answer.status_code == 200
    assert set(answer.json()["results"][0]["properties"]) == {"Key", "Name"}


async def test_property_ids_are_listed_url_encoded_and_distinct(fake, ds_id):
    ids = [p["id"] for p in fake.data_sources[ds_id].properties.values()]
    assert len(set(ids)) == len(ids)
    assert fake.data_sources[ds_id].properties["Name"]["id"] == "title"
    others = [i for i in ids if i != "title"]
    assert all(3 <= len(urllib.parse.unquote(i)) <= 4 for i in others)
    assert all(encode_property_id(urllib.parse.unquote(i)) == i for i in others)  # encodeURIComponent form
    assert sum("%" in i for i in others) > len(others) / 2  # most carry encoded punctuation, as in Notion


async def test_a_property_id_encoded_twice_is_a_validation_error(fake, http, ds_id):
    fake.data_sources[ds_id].properties["Key"]["id"] = "swq%5C"
    ok = await http.post(f"/v1/data_sources/{ds_id}/query?filter_properties=swq%5C", json={})
    assert ok.status_code == 200
    twice = await http.post(f"/v1/data_sources/{ds_id}/query", params={"filter_properties": "swq%5C"}, json={})
    assert twice.request.url.query == b"filter_properties=swq%255C"
    assert error(twice) == (400, "validation_error", "swq%5C is not a property that exists.")
    body = twice.json()
    assert list(body) == ["object", "status", "code", "message", "request_id"]
    assert twice.headers["x-notion-request-id"] == body["request_id"]


async def test_timestamps_are_rounded_to_the_minute(fake, http, ds_id):
    page = fake.add_page(ds_id, {"Key": "1"})
    body = (await http.get(f"/v1/pages/{page.id}")).json()
    assert body["last_edited_time"] == "2023-11-14T22:13:00.000Z"


async def test_injected_faults_fail_before_or_after_acting(fake, http, ds_id):
    fake.fail_next(1, 409, path=r"^/v1/pages$")
    assert error(await http.post("/v1/pages", json=new_page(ds_id)))[:2] == (409, "conflict_error")
    assert fake.pages(ds_id) == []
    fake.fail_next(1, 502, after=True)
    assert error(await http.post("/v1/pages", json=new_page(ds_id)))[:2] == (502, "bad_gateway")
    assert len(fake.pages(ds_id)) == 1
    assert fake.counters.writes == 1 and fake.counters.requests == 2


async def test_databases_are_created_under_a_page_with_an_initial_data_source(fake, http):
    parent = fake.add_parent_page()
    created = await http.post(
        "/v1/databases",
        json={
            "parent": {"type": "page_id", "page_id": parent},
            "title": [text("Made by API")],
            "initial_data_source": {"properties": {"Title": {"title": {}}, "N": {"number": {}}}},
        },
    )
    assert created.status_code == 200
    (source,) = created.json()["data_sources"]
    schema = (await http.get(f"/v1/data_sources/{source['id']}")).json()["properties"]
    assert {name: p["type"] for name, p in schema.items()} == {"Title": "title", "N": "number"}
    no_title = {"parent": {"page_id": parent}, "initial_data_source": {"properties": {"N": {"number": {}}}}}
    assert error(await http.post("/v1/databases", json=no_title))[0] == 400


def test_the_fake_serves_on_a_loopback_port():
    fake = FakeNotion()
    db = fake.add_database({"Name": "title"})
    with serve(fake) as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        response = httpx.get(
            f"{base_url}/v1/databases/{db.id}",
            headers={"Authorization": f"Bearer {fake.token}", "Notion-Version": NOTION_VERSION},
        )
    assert response.status_code == 200 and response.json()["id"] == db.id
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base_url}/v1/databases/{db.id}", timeout=2)

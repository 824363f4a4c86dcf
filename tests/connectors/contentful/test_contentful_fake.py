"""The fake Contentful answers as the real APIs do (raw HTTP, no connector code involved)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.connectors.contentful.conftest import SPACE, FakeTime
from tests.fakes.contentful import CDA_HOST, CMA_HOST, FakeContentful, FakeEnvironment, serve

BASE = f"/spaces/{SPACE}/environments/master"


@pytest.fixture
async def cda(fake: FakeContentful) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=fake.app),
        base_url=f"https://{CDA_HOST}{BASE}",
        headers={"Authorization": f"Bearer {fake.delivery_token}"},
    ) as client:
        yield client


@pytest.fixture
async def cma(fake: FakeContentful) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=fake.app),
        base_url=f"https://{CMA_HOST}{BASE}",
        headers={"Authorization": f"Bearer {fake.cma_token}"},
    ) as client:
        yield client


def error(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert body["sys"]["type"] == "Error" and body["message"]
    return response.status_code, body["sys"]["id"]


def token_of(url: str) -> str:
    return httpx.URL(url).params["sync_token"]


async def drain_sync(
    cda: httpx.AsyncClient, token: str | None = None, **params: Any
) -> tuple[list[dict[str, Any]], str, int]:
    """Every item of one sync (initial, or from ``token``), the next sync token, and the page count."""
    items: list[dict[str, Any]] = []
    first = {"sync_token": token} if token else {"initial": "true", **params}
    response = await cda.get("/sync", params=first)
    pages = 1
    while True:
        body = response.json()
        items += body["items"]
        if "nextSyncUrl" in body:
            return items, token_of(body["nextSyncUrl"]), pages
        response = await cda.get("/sync", params={"sync_token": token_of(body["nextPageUrl"])})
        pages += 1


async def test_tokens_are_per_api_and_revocable(fake, env, cda, cma):
    assert (await cda.get("/content_types")).status_code == 200
    assert error(await cda.get("/content_types", headers={"Authorization": f"Bearer {fake.cma_token}"})) == (
        401,
        "AccessTokenInvalid",
    )
    assert error(await cma.get("/content_types", headers={"Authorization": f"Bearer {fake.delivery_token}"}))[0] == 401
    fake.revoke_token(fake.cma_token)
    assert error(await cma.get("/entries")) == (401, "AccessTokenInvalid")


async def test_unknown_spaces_and_environments_are_not_found(fake, env, cda):
    response = await cda.get(f"https://{CDA_HOST}/spaces/nope/environments/master/entries")
    assert error(response) == (404, "NotFound") and response.json()["details"]["type"] == "Space"
    response = await cda.get(f"https://{CDA_HOST}/spaces/{SPACE}/environments/staging/entries")
    assert error(response) == (404, "NotFound")


async def test_initial_sync_pages_by_limit_and_ends_with_a_sync_token(fake, env, cda):
    for i in range(5):
        fake.add_entry(env, "article", {"title": f"A{i}"})
    fake.add_entry(env, "article", {"title": "draft"}, publish=False)
    fake.add_asset(env)

    items, _, pages = await drain_sync(cda, type="Entry", content_type="article", limit=2)
    assert pages == 3 and [i["fields"]["title"]["en-US"] for i in items] == [f"A{i}" for i in range(5)]
    everything, _, _ = await drain_sync(cda)
    assert sorted(i["sys"]["type"] for i in everything) == ["Asset"] + ["Entry"] * 5
    bad = await cda.get("/sync", params={"initial": "true", "content_type": "article"})
    assert error(bad) == (400, "InvalidQuery")
    assert error(await cda.get("/sync", params={"initial": "true", "limit": 1001}))[0] == 400


async def test_a_page_token_replays_and_a_delta_holds_only_changes_and_deletions(fake, env, cda):
    entries = [fake.add_entry(env, "article", {"title": f"A{i}"}) for i in range(4)]
    first = (await cda.get("/sync", params={"initial": "true", "limit": 2})).json()
    page_token = token_of(first["nextPageUrl"])
    again = [(await cda.get("/sync", params={"sync_token": page_token})).json() for _ in range(2)]
    assert again[0] == again[1]
    _, sync_token, _ = await drain_sync(cda, limit=2)

    fake.edit_entry(env, entries[0].id, {"title": "edited"}, publish=True)
    fake.edit_entry(env, entries[1].id, {"title": "draft only"})  # not published: invisible to the CDA
    fake.unpublish(env, entries[2].id)
    fake.delete_entry(env, entries[3].id)
    delta, next_token, pages = await drain_sync(cda, sync_token)
    kinds = {i["sys"]["id"]: i["sys"]["type"] for i in delta}
    assert kinds == {entries[0].id: "Entry", entries[2].id: "DeletedEntry", entries[3].id: "DeletedEntry"}
    assert pages == 2  # the limit of the initial sync (2) is baked into its tokens
    assert await drain_sync(cda, next_token) == ([], next_token, 1)


async def test_cda_entries_are_published_only_with_every_locale_on_request(fake, env, cda):
    entry = fake.add_entry(env, "article", {"title": {"en-US": "Hello", "de-DE": "Hallo"}, "views": 3})
    fake.add_entry(env, "article", {"title": "draft"}, publish=False)
    body = (await cda.get("/entries", params={"locale": "*"})).json()
    assert body["total"] == 1 and body["items"][0]["fields"]["title"] == {"en-US": "Hello", "de-DE": "Hallo"}
    flat = (await cda.get(f"/entries/{entry.id}", params={"locale": "de-DE"})).json()
    assert flat["fields"] == {"title": "Hallo", "views": 3}  # views falls back to en-US


async def test_put_creates_with_the_given_id_and_a_second_create_is_a_version_mismatch(fake, env, cma):
    headers = {"X-Contentful-Content-Type": "article"}
    body = {"fields": {"title": {"en-US": "Hello"}}}
    created = await cma.put("/entries/ds-1", json=body, headers=headers)
    assert created.status_code == 201 and created.json()["sys"]["version"] == 1
    assert error(await cma.put("/entries/ds-1", json=body, headers=headers)) == (409, "VersionMismatch")
    assert error(await cma.put("/entries/ds-1", json=body, headers={"X-Contentful-Version": "7"}))[0] == 409
    updated = await cma.put("/entries/ds-1", json={"fields": {}}, headers={"X-Contentful-Version": "1"})
    assert updated.json()["sys"]["version"] == 2 and updated.json()["fields"] == {}  # no merge: PUT replaces
    assert len(fake.live_entries(env, "article")) == 1


async def test_publish_checks_the_version_and_required_fields(fake, env, cma):
    await cma.put(
        "/entries/e1", json={"fields": {"slug": {"en-US": "x"}}}, headers={"X-Contentful-Content-Type": "article"}
    )
    assert error(await cma.put("/entries/e1/published", headers={"X-Contentful-Version": "5"}))[0] == 409
    missing = await cma.put("/entries/e1/published", headers={"X-Contentful-Version": "1"})
    assert error(missing) == (422, "ValidationFailed")
    assert missing.json()["details"]["errors"][0]["name"] == "required"
    await cma.put(
        "/entries/e1",
        json={"fields": {"title": {"en-US": "T"}}},
        headers={"X-Contentful-Version": "1"},
    )
    published = (await cma.put("/entries/e1/published", headers={"X-Contentful-Version": "2"})).json()
    assert published["sys"]["publishedVersion"] == 2 and published["sys"]["version"] == 3
    assert fake.entry(env, "e1").published


@pytest.mark.parametrize(
    ("fields", "name", "path"),
    [
        ({"nope": {"en-US": "x"}}, "unknown", ["fields", "nope"]),
        ({"title": {"fr-FR": "x"}}, "unknown", ["fields", "title", "fr-FR"]),
        ({"body": {"de-DE": "x"}}, "unknown", ["fields", "body", "de-DE"]),  # not localized
        ({"views": {"en-US": "12"}}, "type", ["fields", "views", "en-US"]),
        ({"views": {"en-US": 2**53 + 1}}, "type", ["fields", "views", "en-US"]),
        ({"featured": {"en-US": 1}}, "type", ["fields", "featured", "en-US"]),
        ({"title": {"en-US": "x" * 257}}, "size", ["fields", "title", "en-US"]),
        ({"body": {"en-US": "x" * 50_001}}, "size", ["fields", "body", "en-US"]),
        ({"published": {"en-US": "yesterday"}}, "type", ["fields", "published", "en-US"]),
        ({"tags": {"en-US": ["ok", 3]}}, "type", ["fields", "tags", "en-US", 1]),
        ({"author": {"en-US": "abc"}}, "type", ["fields", "author", "en-US"]),
    ],
)
async def test_invalid_fields_answer_422_with_details(env, cma, fields, name, path):
    response = await cma.put("/entries/bad", json={"fields": fields}, headers={"X-Contentful-Content-Type": "article"})
    assert error(response) == (422, "InvalidEntry")
    (problem,) = response.json()["details"]["errors"]
    assert problem["name"] == name and problem["path"] == path


async def test_the_rate_limit_answers_429_with_the_reset_header(fake, env, cma, time: FakeTime):
    fake.set_rate("cma", 2)
    assert [(await cma.get("/entries")).status_code for _ in range(3)] == [200, 200, 429]
    limited = await cma.get("/entries")
    assert error(limited) == (429, "RateLimitExceeded")
    assert limited.headers["X-Contentful-RateLimit-Reset"] == "1"
    time.advance(1)
    assert (await cma.get("/entries")).status_code == 200


async def test_cma_lists_drafts_with_keyset_filters(fake, env, cma, time: FakeTime):
    a = fake.add_entry(env, "article", {"title": "a"}, publish=False)
    time.advance(1)
    b = fake.add_entry(env, "article", {"title": "b"})
    body = (
        await cma.get(
            "/entries",
            params={
                "order": "sys.updatedAt,sys.id",
                "sys.updatedAt[gte]": "2023-11-14T22:13:21.000Z",
                "select": "sys.id",
            },
        )
    ).json()
    assert [i["sys"]["id"] for i in body["items"]] == [b.id] and "fields" not in body["items"][0]
    nin = (await cma.get("/entries", params={"sys.id[nin]": b.id})).json()
    assert [i["sys"]["id"] for i in nin["items"]] == [a.id]


def test_the_loopback_server_serves_both_apis_by_prefix(fake: FakeContentful, env: FakeEnvironment):
    fake.add_entry(env, "article", {"title": "hello"})
    with serve(fake) as base:
        cda = httpx.get(
            f"{base}/cda{BASE}/sync?initial=true", headers={"Authorization": f"Bearer {fake.delivery_token}"}
        )
        cma = httpx.get(f"{base}/cma{BASE}/entries", headers={"Authorization": f"Bearer {fake.cma_token}"})
    assert cda.json()["nextSyncUrl"].startswith(f"{base}/cda/spaces/{SPACE}/sync?sync_token=")  # as Contentful's
    assert cma.json()["total"] == 1

"""ContentfulSource, ContentfulClient and ContentfulDestination fed Contentful's real response shapes.

The fixtures are written by hand from Contentful's documented examples and from the traffic recorded in
its own SDKs' test suites (the VCR cassettes of contentful.py and contentful-management.py): entries whose
``sys`` holds ``space`` / ``environment`` / ``contentType`` links, a ``revision`` (CDA) or a ``version``
(CMA), ``createdAt`` / ``updatedAt`` with milliseconds and ``Z``; localized fields ``{"name": {"en-US":
…}}``; Sync API pages whose ``nextPageUrl`` / ``nextSyncUrl`` name the space but NOT the environment and
carry a long opaque token (base64url characters, ``-`` and ``_`` included); an older entry without an
``environment`` link; ``Asset`` / ``DeletedEntry`` / ``DeletedAsset`` items; and error bodies
``{"sys": {"type": "Error", "id": …}, "message", "details"?, "requestId"}`` with the headers Contentful
sends (``X-Contentful-Request-Id``, ``X-Contentful-RateLimit-*``). A small replay transport serves them;
nothing here goes through the project's fake.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import httpx
import pytest

from connectors.contentful import ContentfulClient, ContentfulDestination, ContentfulSource, InvalidEntry
from connectors.contentful.client import is_version_mismatch
from connectors.core import AuthError, Record, RecordError, SourceSpec, TransientError
from connectors.http import HttpSettings, Rate, RetryPolicy
from tests.connectors.contentful.conftest import FakeTime
from tests.fakes.replay import Replay

SPACE = "ex4mpl3sp4ce"
CITY = "2PqfXUJwE8qSYKuM0U6w8M"  # content type ids made in the web app are base62 like entry ids
LONDON = "5ETMRzkl9KM4omyMwKAOki"
BERLIN = "4MU1s3potiUEM2G4okYOqw"
PARIS = "7qVBlCjpWE86Oseo40gAEY"
FAST = Rate(10_000, 1, burst=10_000)
NO_JITTER = RetryPolicy(jitter=0)
CDA = "https://cdn.contentful.com"
CMA = "https://api.contentful.com"
ENV_PATH = f"/spaces/{SPACE}/environments/master"


def opaque_token(seed: str) -> str:
    """A sync token of the real kind: long, opaque, base64url characters (built at run time)."""
    raw = (seed * 12).encode() + bytes(range(240, 256))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


TOKEN_PAGE_2 = opaque_token("page-2;")
TOKEN_NEXT = opaque_token("next-sync;")
TOKEN_AFTER = opaque_token("after-delta;")


def link(link_type: str, object_id: str) -> dict[str, Any]:
    return {"sys": {"type": "Link", "linkType": link_type, "id": object_id}}


def cda_entry(entry_id: str, fields: dict[str, Any], *, revision: int, updated: str, environment: bool = True) -> dict:
    sys: dict[str, Any] = {
        "space": link("Space", SPACE),
        "id": entry_id,
        "type": "Entry",
        "createdAt": "2014-02-21T13:42:57.752Z",
        "updatedAt": updated,
        "revision": revision,
        "contentType": link("ContentType", CITY),
    }
    if environment:  # entries recorded before environments existed have no link
        sys["environment"] = {"sys": {"id": "master", "type": "Link", "linkType": "Environment"}}
    return {"metadata": {"tags": [], "concepts": []}, "sys": sys, "fields": fields}


CITY_TYPE = {
    "sys": {
        "space": link("Space", SPACE),
        "id": CITY,
        "type": "ContentType",
        "createdAt": "2014-02-21T13:42:33.009Z",
        "updatedAt": "2023-04-11T09:12:45.328Z",
        "environment": {"sys": {"id": "master", "type": "Link", "linkType": "Environment"}},
        "revision": 4,
    },
    "displayField": "name",
    "name": "City",
    "description": "",
    "fields": [
        {"id": "name", "name": "Name", "type": "Symbol", "localized": True, "required": True, "disabled": False,
         "omitted": False},
        {"id": "center", "name": "Center", "type": "Location", "localized": False, "required": False,
         "disabled": False, "omitted": False},
        {"id": "founded", "name": "Founded", "type": "Date", "localized": False, "required": False,
         "disabled": False, "omitted": False},
        {"id": "population", "name": "Population", "type": "Integer", "localized": False, "required": False,
         "disabled": False, "omitted": False},
    ],
}  # fmt: skip

LOCALES = [
    {"code": "en-US", "name": "English (United States)", "default": True, "fallbackCode": None,
     "sys": {"id": "1uSOQjcfXhvlKAr1Li9Rmt", "type": "Locale", "version": 1}},
    {"code": "de-DE", "name": "German (Germany)", "default": False, "fallbackCode": "en-US",
     "sys": {"id": "3Vf4xUQkSKbRMSWoRd5SbP", "type": "Locale", "version": 2}},
]  # fmt: skip


def array(items: list[Any], **extra: Any) -> dict[str, Any]:
    return {"sys": {"type": "Array"}, "total": len(items), "skip": 0, "limit": 1000, "items": items, **extra}


def sync_url(token: str) -> str:
    # Contentful's own form: the space, no environment (the token carries it).
    return f"{CDA}/spaces/{SPACE}/sync?sync_token={token}"


PAGE_1 = {
    "sys": {"type": "Array"},
    "items": [
        cda_entry(
            LONDON,
            {
                "name": {"en-US": "London", "de-DE": "London"},
                "center": {"en-US": {"lon": -0.1254872, "lat": 51.508515}},
            },
            revision=3,
            updated="2014-08-23T14:42:35.207Z",
            environment=False,
        ),
        {
            "sys": {
                "space": link("Space", SPACE),
                "id": "nyancat",
                "type": "Asset",
                "createdAt": "2013-09-02T14:56:34.240Z",
                "updatedAt": "2013-09-02T14:56:34.240Z",
                "revision": 1,
            },
            "fields": {"title": {"en-US": "Nyan Cat"}},
        },
    ],
    "nextPageUrl": sync_url(TOKEN_PAGE_2),
}
PAGE_2 = {
    "sys": {"type": "Array"},
    "items": [
        cda_entry(
            BERLIN,
            {"name": {"en-US": "Berlin", "de-DE": "Berlin"}, "founded": {"en-US": "1237-10-28"},
             "population": {"en-US": 3850809}},
            revision=1,
            updated="2014-02-21T13:42:45.926Z",
        ),
    ],
    "nextSyncUrl": sync_url(TOKEN_NEXT),
}  # fmt: skip
DELTA = {
    "sys": {"type": "Array"},
    "items": [
        cda_entry(
            LONDON,
            {"name": {"en-US": "Greater London"}, "center": {"en-US": {"lon": -0.1254872, "lat": 51.508515}}},
            revision=4,
            updated="2024-05-02T08:00:01.120Z",
        ),
        {
            "sys": {
                "type": "DeletedEntry",
                "id": PARIS,
                "space": link("Space", SPACE),
                "environment": {"sys": {"id": "master", "type": "Link", "linkType": "Environment"}},
                "revision": 2,
                "createdAt": "2024-05-02T07:59:10.003Z",
                "updatedAt": "2024-05-02T07:59:10.003Z",
                "deletedAt": "2024-05-02T07:59:10.003Z",
            }
        },
        {
            "sys": {
                "type": "DeletedAsset",
                "id": "happycat",
                "space": link("Space", SPACE),
                "revision": 1,
                "createdAt": "2024-05-02T07:58:00.000Z",
                "updatedAt": "2024-05-02T07:58:00.000Z",
                "deletedAt": "2024-05-02T07:58:00.000Z",
            }
        },
    ],
    "nextSyncUrl": sync_url(TOKEN_AFTER),
}


def contentful_json(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status,
        json=body,
        headers={
            "Content-Type": "application/vnd.contentful.delivery.v1+json",
            "X-Contentful-Request-Id": "e0bcec9c97b7a21272886bf68e5da0fb",
            **(headers or {}),
        },
    )


def error_body(error_id: str, message: str, details: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"sys": {"type": "Error", "id": error_id}, "message": message}
    if details is not None:
        body["details"] = details
    body["requestId"] = "316f091b3750f300817feb0c1bd892ac"
    return body


def space_routes(request: httpx.Request) -> httpx.Response:
    path, params = request.url.path, request.url.params
    if path == f"{ENV_PATH}/content_types":
        return contentful_json(200, array([CITY_TYPE]))
    if path == f"{ENV_PATH}/locales":
        return contentful_json(200, array(LOCALES))
    if path == f"{ENV_PATH}/sync":
        if params.get("initial") == "true":
            return contentful_json(200, PAGE_1)
        pages = {TOKEN_PAGE_2: PAGE_2, TOKEN_NEXT: DELTA}
        if params.get("sync_token") in pages:
            return contentful_json(200, pages[params["sync_token"]])
    return contentful_json(404, error_body("NotFound", "The resource could not be found."))


def make_source(replay: Replay, time: FakeTime, **kwargs: Any) -> ContentfulSource:
    options: dict[str, Any] = {
        "delivery_token": "cda-" + "x" * 20,
        "delivery_token_env": None,
        "cma_token_env": None,
        "http": HttpSettings(transport=replay.transport(), retry=NO_JITTER, sleep=time.sleep, clock=time.clock),
        "rate": FAST,
        **kwargs,
    }
    return ContentfulSource(SPACE, **options)


async def drain(source: ContentfulSource, spec: SourceSpec) -> list[Record]:
    records: list[Record] = []
    cursor: str | None = None
    while True:
        page, cursor = await source.fetch_page(spec, None, cursor)
        records.extend(page)
        if cursor is None:
            return records


async def test_an_initial_sync_of_real_pages_follows_the_token_and_types_the_fields(time: FakeTime) -> None:
    replay = Replay(space_routes)
    watermarks: dict[str, str] = {}
    source = make_source(replay, time, watermarks=watermarks)
    spec = source.specs()[0]

    records = {r.primary_key: r for r in await drain(source, spec)}
    source.commit(spec.key)

    assert sorted(records) == sorted([LONDON, BERLIN])  # the asset is skipped
    london, berlin = records[LONDON].properties, records[BERLIN].properties
    assert london["Name"] == "London" and london["name"] == "London"
    assert london["center"] == "51.508515,-0.1254872"
    assert london["Created"] == dt.datetime(2014, 2, 21, 13, 42, 57, 752000, tzinfo=dt.UTC)
    assert london["Updated"] == dt.datetime(2014, 8, 23, 14, 42, 35, 207000, tzinfo=dt.UTC)
    assert berlin["founded"] == dt.date(1237, 10, 28) and berlin["population"] == 3850809
    assert berlin["center"] is None  # no value: None, not missing
    sync_calls = [r for r in replay.seen if r.url.path.endswith("/sync")]
    # The page token is sent, exactly, to OUR environment path, never to the URL Contentful gave.
    assert [r.url.path for r in sync_calls] == [f"{ENV_PATH}/sync"] * 2
    assert sync_calls[1].url.params["sync_token"] == TOKEN_PAGE_2
    assert json.loads(watermarks[spec.key])["token"] == TOKEN_NEXT
    assert source.pass_metadata(spec)["skipped"] == 1


async def test_a_delta_sync_carries_the_change_and_the_deletions(time: FakeTime) -> None:
    replay = Replay(space_routes)
    watermarks: dict[str, str] = {}
    source = make_source(replay, time, watermarks=watermarks, deleted_property="Deleted")
    spec = source.specs()[0]
    await drain(source, spec)
    source.commit(spec.key)
    replay.seen.clear()

    records = {r.primary_key: r for r in await drain(source, spec)}
    source.commit(spec.key)

    assert records[LONDON].properties["Name"] == "Greater London"
    assert records[LONDON].properties["Deleted"] is False
    assert records[PARIS] == Record(PARIS, {"Deleted": True})
    assert "happycat" not in records  # a deleted asset is not an entry
    assert source.pass_metadata(spec)["deletions"] == 1 and source.pass_metadata(spec)["mode"] == "delta"
    assert [r.url.params["sync_token"] for r in replay.seen if r.url.path.endswith("/sync")] == [TOKEN_NEXT]
    assert json.loads(watermarks[spec.key])["token"] == TOKEN_AFTER


# --------------------------------------------------------------------------------------------------
# Errors as Contentful sends them


def client_for(replay: Replay, time: FakeTime, api: str = "cma") -> ContentfulClient:
    return ContentfulClient(
        "CFPAT-" + "y" * 30,
        api=api,  # type: ignore[arg-type]
        space_id=SPACE,
        environment="master",
        base_url=CMA if api == "cma" else CDA,
        http=HttpSettings(transport=replay.transport(), retry=NO_JITTER, sleep=time.sleep, clock=time.clock),
        rate=FAST,
    )


async def test_a_not_found_body_means_no_entry(time: FakeTime) -> None:
    def route(request: httpx.Request) -> httpx.Response:
        details = {"type": "Entry", "space": SPACE, "id": "4RToqNcBfW6MAK0UGU0qWc"}
        return contentful_json(404, error_body("NotFound", "The resource could not be found.", details))

    async with client_for(Replay(route), time) as client:
        assert await client.get_entry("4RToqNcBfW6MAK0UGU0qWc") is None


async def test_an_invalid_token_is_an_auth_error_that_never_quotes_the_token(time: FakeTime) -> None:
    token = "CFPAT-" + "y" * 30

    def route(request: httpx.Request) -> httpx.Response:
        message = "The access token you sent could not be found or is invalid."
        return contentful_json(401, error_body("AccessTokenInvalid", message))

    async with client_for(Replay(route), time) as client:
        with pytest.raises(AuthError) as raised:
            await client.entries({"limit": 1})
    assert "AccessTokenInvalid" in str(raised.value) and token not in str(raised.value)


async def test_a_version_mismatch_is_told_apart(time: FakeTime) -> None:
    def route(request: httpx.Request) -> httpx.Response:
        message = (
            "Version mismatch error. The version you specified was incorrect. This may be due to someone else "
            "editing the content."
        )
        return contentful_json(409, error_body("VersionMismatch", message))

    async with client_for(Replay(route), time) as client:
        with pytest.raises(TransientError) as raised:  # a 409 is retried by the caller, never a pause
            await client.put_entry("4RToqNcBfW6MAK0UGU0qWc", {}, version=3)
    assert is_version_mismatch(raised.value)


@pytest.mark.parametrize(
    ("error_id", "problem", "expected"),
    [
        # a save: the value is too long in one locale
        (
            "InvalidEntry",
            {"name": "size", "path": ["fields", "name", "en-US"], "max": 256, "value": "x" * 100,
             "details": "Size must be at most 256"},
            "422 InvalidEntry: fields.name.en-US: size (max 256)",
        ),
        # a publish: a required field is missing
        (
            "ValidationFailed",
            {"name": "required", "path": ["fields", "name"], "details": 'The property "name" is required here'},
            "422 ValidationFailed: fields.name: required (The property \"name\" is required here)",
        ),
        # a publish: a link to a missing entry
        (
            "UnresolvedLinks",
            {"name": "notResolvable", "link": {"type": "Link", "linkType": "Entry", "id": "6A92b5kjyou6u2aGiS8e6U"},
             "path": ["fields", "capital", "en-US"]},
            "422 UnresolvedLinks: fields.capital.en-US: notResolvable",
        ),
    ],
)  # fmt: skip
async def test_a_validation_error_is_a_record_error_naming_the_path(
    time: FakeTime, error_id: str, problem: dict[str, Any], expected: str
) -> None:
    def route(request: httpx.Request) -> httpx.Response:
        return contentful_json(422, error_body(error_id, "Validation error", {"errors": [problem]}))

    async with client_for(Replay(route), time) as client:
        with pytest.raises(InvalidEntry) as raised:
            await client.publish("4RToqNcBfW6MAK0UGU0qWc", 3)
    assert isinstance(raised.value, RecordError) and expected in str(raised.value)


async def test_a_rate_limit_waits_the_reset_header_then_goes_on(time: FakeTime) -> None:
    answers = [
        contentful_json(
            429,
            error_body(
                "RateLimitExceeded",
                "You have exceeded the rate limit of the Organization this Space belongs to by making too many API "
                "requests within a short timespan. Please wait a moment before trying the request again.",
            ),
            {
                "X-Contentful-RateLimit-Reset": "2",
                "X-Contentful-RateLimit-Second-Limit": "7",
                "X-Contentful-RateLimit-Second-Remaining": "0",
            },
        ),
        contentful_json(200, array([]), {"X-Contentful-RateLimit-Second-Remaining": "6"}),
    ]
    replay = Replay(lambda request: answers.pop(0))

    async with client_for(replay, time) as client:
        body = await client.entries({"limit": 1})

    assert body["items"] == [] and len(replay.seen) == 2
    assert 2.0 in time.sleeps  # the reset header's seconds, not a guess


# --------------------------------------------------------------------------------------------------
# The destination on CMA entries as the CMA records them


async def test_an_update_reads_the_version_of_a_recorded_cma_entry(time: FakeTime) -> None:
    """The CMA's own key order (``sys.id`` first, ``createdBy`` before ``space``) and ``version``."""
    entry_id = "ds-berlin"
    stored: dict[str, Any] = {
        "fields": {"name": {"en-US": "Berlin", "de-DE": "Berlin"}, "population": {"en-US": 3_600_000}},
        "sys": {
            "id": entry_id,
            "type": "Entry",
            "version": 5,
            "createdAt": "2017-03-10T15:31:12.041Z",
            "createdBy": link("User", "4SejVrWT96dvL9IV4Nb7sQ"),
            "space": link("Space", SPACE),
            "contentType": link("ContentType", CITY),
            "updatedAt": "2017-03-10T15:31:12.041Z",
            "updatedBy": link("User", "4SejVrWT96dvL9IV4Nb7sQ"),
            "publishedVersion": 4,
        },
    }
    puts: list[httpx.Request] = []

    def route(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == f"{ENV_PATH}/content_types/{CITY}":
            return contentful_json(200, CITY_TYPE)
        if path == f"{ENV_PATH}/locales":
            return contentful_json(200, array(LOCALES))
        if path == f"{ENV_PATH}/entries/{entry_id}" and request.method == "GET":
            return contentful_json(200, stored)
        if path == f"{ENV_PATH}/entries/{entry_id}" and request.method == "PUT":
            puts.append(request)
            body = json.loads(request.content)
            return contentful_json(200, {**stored, "fields": body["fields"], "sys": {**stored["sys"], "version": 6}})
        return contentful_json(404, error_body("NotFound", "The resource could not be found."))

    replay = Replay(route)
    destination = ContentfulDestination(
        SPACE,
        CITY,
        {"Population": "population"},
        cma_token="CFPAT-" + "z" * 30,
        cma_token_env=None,
        base_url=CMA,
        http=HttpSettings(transport=replay.transport(), retry=NO_JITTER, sleep=time.sleep, clock=time.clock),
        rate=FAST,
        id_prefix="ds-",
    )
    async with destination.connect() as session:
        await session.update(entry_id, Record("berlin", {"Population": 3_850_809}), dt.datetime.now(dt.UTC))

    (put,) = puts
    assert put.headers["X-Contentful-Version"] == "5"
    assert json.loads(put.content)["fields"] == {
        "name": {"en-US": "Berlin", "de-DE": "Berlin"},  # kept: read, merged, written back whole
        "population": {"en-US": 3850809},
    }

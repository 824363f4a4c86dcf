"""Notion payloads as the real API sends them, through the connector's parsing, listing and error mapping.

The fixtures below are written for these tests from Notion's documented examples and recorded traffic
(API version 2025-09-03), not copied:

- property ids as Notion lists them, URL-encoded: ``f%5C%5C%3Ap``, ``ZI%40W``, ``M%3BBw``, ``Z%3ClH``
  (developers.notion.com "Page properties" and "Page" examples), ``swq%5C``, ``%3DqI%3B``; the title's
  id is ``title``;
- page objects: ``object: "page"``, ``parent: {type: "data_source_id", data_source_id, database_id}``,
  ``created_by`` / ``last_edited_by`` user objects, ``in_trash``, ``is_locked``, the deprecated
  ``archived``, ``url`` (``https://www.notion.so/Bug-bash-<id>``), ``public_url``, and the
  ``request_id`` the API puts in every body (notion-sdk-py cassettes of 2025-09-03);
- data source objects (``properties`` with ``description: null``, ``parent`` / ``database_parent``),
  database objects with ``data_sources``;
- query answers: ``object: "list"``, ``type: "page_or_data_source"``, ``page_or_data_source: {}``,
  ``next_cursor``, ``has_more``, ``request_id``; a wiki's query may list data sources among the pages
  (notion-sdk-js ``QueryDataSourceResponse``);
- error bodies ``{"object": "error", "status", "code", "message", "request_id"}``, with
  ``additional_data.integration_id`` on a 404, and the ``x-notion-request-id`` / ``Retry-After`` headers.

They are served by a replay transport (a list of answers per route) rather than the stateful fake, so
what reaches the connector is exactly the recorded shape. The replay reads query strings as a server
does (percent-decoded once).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import uuid
from typing import Any

import httpx
import pytest

from connectors.core import AuthError, ConfigError, RateLimited, Record, RecordError
from connectors.http import HttpSettings, NotFound, RetryPolicy
from connectors.notion import NotionClient, NotionDestination, NotionSource
from tests.connectors.notion.conftest import FAST, FakeTime
from tests.fakes.replay import Answer
from tests.fakes.replay import Replay as RecordedReplay

Json = dict[str, Any]

DATABASE_ID = "a1d8501e-1ac1-43e9-a6bd-ea9fe6c8822b"
DATA_SOURCE_ID = "2f26ee68-df30-4251-aad4-8ddc420cba3d"
PARENT_PAGE_ID = "af5f89b5-a8ff-4c56-a5e8-69797d11b9f8"
BOT_ID = "7775f3a3-893f-43fa-b625-460c61094c78"
EDITOR_ID = "9188c6a5-7381-452f-b3dc-d4865aa89bdf"
PAGE_1 = "be633bf1-dfa0-436d-b259-571129a590e5"
PAGE_2 = "59833787-2cf9-4fdf-8782-e53db20768a5"
PAGE_3 = "ea29285f-7282-4b00-b80c-32bdbab50261"
RELATED = "7d50a184-5bbe-4d90-8f29-6bec57ed817b"

KEY_ID = "swq%5C"  # raw id: swq\


def request_id() -> str:
    return str(uuid.uuid4())


def user(user_id: str = BOT_ID) -> Json:
    return {"object": "user", "id": user_id}


def rich(text: str) -> list[Json]:
    return [
        {
            "type": "text",
            "text": {"content": text, "link": None},
            "annotations": {
                "bold": False,
                "italic": False,
                "strikethrough": False,
                "underline": False,
                "code": False,
                "color": "default",
            },
            "plain_text": text,
            "href": None,
        }
    ]


def schema_entry(prop_id: str, name: str, kind: str, config: Json | None = None) -> Json:
    return {"id": prop_id, "name": name, "description": None, "type": kind, kind: config or {}}


DATABASE: Json = {
    "object": "database",
    "id": DATABASE_ID,
    "title": rich("Repositories"),
    "description": [],
    "parent": {"type": "page_id", "page_id": PARENT_PAGE_ID},
    "is_inline": False,
    "in_trash": False,
    "is_locked": False,
    "created_time": "2025-09-10T08:01:13.207+00:00",
    "last_edited_time": "2025-09-10T08:01:13.207+00:00",
    "data_sources": [{"id": DATA_SOURCE_ID, "name": "Repositories"}],
    "icon": None,
    "cover": None,
    "url": f"https://www.notion.so/{DATABASE_ID.replace('-', '')}",
    "public_url": None,
    "archived": False,
}

STATUS_OPTIONS = [
    {"id": "86ddb6ec-0627-47f8-800d-b65afd28be13", "name": "Not started", "color": "default", "description": None},
    {"id": "2c9b4d6f-3f0e-4b53-9d9f-5b0a2b0e8c11", "name": "Done", "color": "green", "description": None},
]

DATA_SOURCE: Json = {
    "object": "data_source",
    "id": DATA_SOURCE_ID,
    "cover": None,
    "icon": None,
    "created_time": "2025-09-10T08:01:00.000Z",
    "created_by": user(),
    "last_edited_by": user(),
    "last_edited_time": "2025-09-12T17:45:00.000Z",
    "title": rich("Repositories"),
    "description": [],
    "is_inline": False,
    "properties": {
        "Name": schema_entry("title", "Name", "title"),
        "Key": schema_entry(KEY_ID, "Key", "rich_text"),
        "Stars": schema_entry("%3DqI%3B", "Stars", "number", {"format": "number"}),
        "Done": schema_entry("ZI%40W", "Done", "checkbox"),
        "Due date": schema_entry("M%3BBw", "Due date", "date"),
        "Status": schema_entry("Z%3ClH", "Status", "status", {"options": STATUS_OPTIONS, "groups": []}),
        "Topics": schema_entry(
            "U%3AC%3C",
            "Topics",
            "multi_select",
            {"options": [{"id": "c0ffee00-aaaa-4bbb-8ccc-000000000001", "name": "sync", "color": "blue"}]},
        ),
        "Owner": schema_entry("f%5C%5C%3Ap", "Owner", "people"),
        "Related": schema_entry(
            "h%3A%7BD", "Related", "relation", {"data_source_id": DATA_SOURCE_ID, "type": "single_property"}
        ),
        "Task ID": schema_entry("%3AUPp", "Task ID", "unique_id", {"prefix": "TASK"}),
        "Created": schema_entry("eP%5B*", "Created", "created_time"),
        "Score": schema_entry("%3Cr1%40", "Score", "formula", {"expression": 'prop("Stars") * 2'}),
        "Last synced": schema_entry("b%7Dd%25", "Last synced", "date"),
    },
    "parent": {"type": "database_id", "database_id": DATABASE_ID},
    "database_parent": {"type": "page_id", "page_id": PARENT_PAGE_ID},
    "url": f"https://www.notion.so/{DATABASE_ID.replace('-', '')}",
    "public_url": None,
    "in_trash": False,
    "archived": False,
}


def page(page_id: str, title: str, key: str | None, *, edited: str, **values: Json) -> Json:
    """A page of the data source as ``GET /v1/pages/{id}`` and queries return it."""
    properties: Json = {
        "Name": {"id": "title", "type": "title", "title": rich(title)},
        "Key": {"id": KEY_ID, "type": "rich_text", "rich_text": rich(key) if key else []},
        "Stars": {"id": "%3DqI%3B", "type": "number", "number": None},
        "Done": {"id": "ZI%40W", "type": "checkbox", "checkbox": False},
        "Due date": {"id": "M%3BBw", "type": "date", "date": None},
        "Status": {"id": "Z%3ClH", "type": "status", "status": STATUS_OPTIONS[0] | {"description": None}},
        "Topics": {"id": "U%3AC%3C", "type": "multi_select", "multi_select": []},
        "Owner": {"id": "f%5C%5C%3Ap", "type": "people", "people": []},
        "Related": {"id": "h%3A%7BD", "type": "relation", "relation": [], "has_more": False},
        "Task ID": {"id": "%3AUPp", "type": "unique_id", "unique_id": {"prefix": "TASK", "number": 7}},
        "Created": {"id": "eP%5B*", "type": "created_time", "created_time": "2025-09-10T08:02:00.000Z"},
        "Score": {"id": "%3Cr1%40", "type": "formula", "formula": {"type": "number", "number": None}},
        "Last synced": {"id": "b%7Dd%25", "type": "date", "date": None},
    }
    for name, value in values.items():
        properties[name] = {**properties[name], **value}
    return {
        "object": "page",
        "id": page_id,
        "created_time": "2025-09-10T08:02:00.000Z",
        "last_edited_time": edited,
        "created_by": user(),
        "last_edited_by": user(EDITOR_ID),
        "cover": None,
        "icon": {"type": "emoji", "emoji": "🐞"},
        "parent": {"type": "data_source_id", "data_source_id": DATA_SOURCE_ID, "database_id": DATABASE_ID},
        "in_trash": False,
        "is_locked": False,
        "properties": properties,
        "url": f"https://www.notion.so/{title.replace(' ', '-')}-{page_id.replace('-', '')}",
        "public_url": None,
        "archived": False,
    }


BUG_BASH = page(
    PAGE_1,
    "Bug bash",
    "101",
    edited="2025-09-12T17:45:00.000Z",
    Stars={"number": 1234},
    Done={"checkbox": True},
    **{
        "Due date": {"date": {"start": "2023-02-23", "end": None, "time_zone": None}},
        "Last synced": {"date": {"start": "2025-09-12T19:45:30.000+02:00", "end": None, "time_zone": None}},
    },
    Status={"status": STATUS_OPTIONS[1] | {"description": None}},
    Topics={"multi_select": [{"id": "c0ffee00-aaaa-4bbb-8ccc-000000000001", "name": "sync", "color": "blue"}]},
    Owner={
        "people": [
            {
                "object": "user",
                "id": EDITOR_ID,
                "name": "Avocado Lovelace",
                "avatar_url": None,
                "type": "person",
                "person": {"email": "avo@example.org"},
            }
        ]
    },
    Related={"relation": [{"id": RELATED}]},
    Score={"formula": {"type": "number", "number": 2468}},
)
RELEASE = page(PAGE_2, "Release", "102", edited="2025-09-12T18:00:00.000Z", Stars={"number": 1.5})
HAND_MADE = page(PAGE_3, "Added by hand", None, edited="2025-09-12T18:10:00.000Z")


def listing(results: list[Json], *, next_cursor: str | None = None, **extra: Any) -> Json:
    return {
        "object": "list",
        "results": results,
        "next_cursor": next_cursor,
        "has_more": next_cursor is not None,
        "type": "page_or_data_source",
        "page_or_data_source": {},
        **extra,
        "request_id": request_id(),
    }


def error_body(status: int, code: str, message: str, **extra: Any) -> Json:
    return {"object": "error", "status": status, "code": code, "message": message, **extra, "request_id": request_id()}


# --------------------------------------------------------------------------------------------------
# The replay transport


class Replay(RecordedReplay):
    """Answers per (method, path); a request id in every answer, Notion's 400 for a path it has no route for."""

    def miss(self, request: httpx.Request) -> httpx.Response:
        return self.respond(request, Answer(400, error_body(400, "invalid_request_url", "Invalid request URL.")))

    def respond(self, request: httpx.Request, answer: Answer) -> httpx.Response:
        rid = str(answer.body.get("request_id") or request_id())
        headers = {"content-type": "application/json; charset=utf-8", "x-notion-request-id": rid, **answer.headers}
        return httpx.Response(answer.status, headers=headers, content=json.dumps(answer.body).encode())


def ok(body: Json) -> Answer:
    return Answer(200, copy.deepcopy(body) | {"request_id": request_id()})


def resolvable(replay: Replay) -> None:
    replay.add("GET", f"/v1/databases/{DATABASE_ID}", ok(DATABASE))
    replay.add("GET", f"/v1/data_sources/{DATA_SOURCE_ID}", ok(DATA_SOURCE))


def options(replay: Replay, time: FakeTime) -> dict[str, Any]:
    return {
        "token": new_token(),
        "token_env": None,
        "http": HttpSettings(transport=replay.transport(), sleep=time.sleep, clock=time.clock),
        "rate": FAST,
    }


# --------------------------------------------------------------------------------------------------
# Source: record building


async def test_the_source_builds_neutral_records_from_real_query_pages(time):
    replay = Replay()
    resolvable(replay)
    replay.add(
        "POST",
        f"/v1/data_sources/{DATA_SOURCE_ID}/query",
        ok(listing([BUG_BASH], next_cursor="5a4d9c1e-2b3f-4e5d-8c7b-6a5f4e3d2c1b")),
        ok(listing([RELEASE, HAND_MADE])),
    )
    source = NotionSource(DATA_SOURCE_ID, now=time.utcnow, **options(replay, time))

    records = await source.fetch(source.specs()[0])

    assert [r.primary_key for r in records] == [PAGE_1, PAGE_2, PAGE_3]
    bug = records[0].properties
    assert bug["Name"] == "Bug bash" and bug["Key"] == "101"
    assert bug["Stars"] == 1234 and type(bug["Stars"]) is int
    assert records[1].properties["Stars"] == 1.5
    assert bug["Done"] is True and bug["Status"] == "Done" and bug["Topics"] == ["sync"]
    assert bug["Due date"] == dt.date(2023, 2, 23)
    assert bug["Last synced"] == dt.datetime(2025, 9, 12, 17, 45, 30, tzinfo=dt.UTC)
    assert bug["Last synced"].utcoffset() == dt.timedelta(hours=2)
    assert bug["Owner"] == ["Avocado Lovelace"] and bug["Related"] == [RELATED]
    assert bug["Task ID"] == "TASK-7" and bug["Score"] == 2468
    assert bug["Created"] == dt.datetime(2025, 9, 10, 8, 2, tzinfo=dt.UTC)
    assert records[2].properties["Key"] is None
    first, second = replay.requests("POST", "/query")
    assert "start_cursor" not in json.loads(first.content)
    assert json.loads(second.content)["start_cursor"] == "5a4d9c1e-2b3f-4e5d-8c7b-6a5f4e3d2c1b"
    assert source.watermark() == dt.datetime(2025, 9, 12, 18, 10, tzinfo=dt.UTC)


async def test_a_wikis_data_sources_among_the_results_are_not_records(time):
    # A wiki's query lists its child data sources next to its pages; they are no rows.
    child = copy.deepcopy(DATA_SOURCE) | {
        "id": RELATED,
        "parent": {"type": "data_source_id", "data_source_id": DATA_SOURCE_ID},
    }
    replay = Replay()
    resolvable(replay)
    replay.add("POST", f"/v1/data_sources/{DATA_SOURCE_ID}/query", ok(listing([child, BUG_BASH])))
    source = NotionSource(DATA_SOURCE_ID, now=time.utcnow, **options(replay, time))

    records = await source.fetch(source.specs()[0])

    assert [r.primary_key for r in records] == [PAGE_1]


async def test_only_items_reads_real_pages_and_leaves_out_trashed_and_foreign_ones(time):
    trashed = copy.deepcopy(RELEASE) | {"in_trash": True, "archived": True}
    foreign = copy.deepcopy(HAND_MADE)
    foreign["parent"] = {"type": "data_source_id", "data_source_id": RELATED, "database_id": DATABASE_ID}
    replay = Replay()
    resolvable(replay)
    replay.add("GET", f"/v1/pages/{PAGE_1}", ok(BUG_BASH))
    replay.add("GET", f"/v1/pages/{PAGE_2}", ok(trashed))
    replay.add("GET", f"/v1/pages/{PAGE_3}", ok(foreign))
    source = NotionSource(DATA_SOURCE_ID, now=time.utcnow, **options(replay, time))

    records = await source.fetch(source.specs()[0], only_items=[PAGE_1, PAGE_2, PAGE_3])

    assert [r.primary_key for r in records] == [PAGE_1]


# --------------------------------------------------------------------------------------------------
# Destination: the listing


def narrowed(request: httpx.Request) -> Answer:
    """The query as Notion answers it: ``filter_properties`` read percent-decoded once."""
    wanted = request.url.params.get_list("filter_properties")
    known = {"swq\\": "Key", "title": "Name"}
    for value in wanted:
        if value not in known:
            return Answer(400, error_body(400, "validation_error", f"{value} is not a property that exists."))
    results = copy.deepcopy([BUG_BASH, RELEASE, HAND_MADE])
    if wanted:
        for row in results:
            row["properties"] = {n: v for n, v in row["properties"].items() if n in {known[w] for w in wanted}}
    return Answer(200, listing(results))


async def test_the_destination_lists_keys_with_the_real_encoded_key_id(time):
    replay = Replay()
    resolvable(replay)
    replay.add("POST", f"/v1/data_sources/{DATA_SOURCE_ID}/query", narrowed)
    dest = NotionDestination(DATABASE_ID, database_id_env=None, **options(replay, time))

    async with dest.connect() as session:
        rows = [pair async for pair in session.query_existing_rows()]

    assert rows == [("101", PAGE_1), ("102", PAGE_2)]  # the page without a key is not ours
    (query,) = replay.requests("POST", "/query")
    assert query.url.query == b"filter_properties=swq%5C"
    assert json.loads(query.content)["sorts"] == [{"property": "Key", "direction": "ascending"}]


async def test_a_listing_rejected_with_a_real_validation_error_lists_whole_pages(time, caplog):
    replay = Replay()
    resolvable(replay)
    replay.add(
        "POST",
        f"/v1/data_sources/{DATA_SOURCE_ID}/query",
        Answer(400, error_body(400, "validation_error", "swq%5C is not a property that exists.")),
        narrowed,
    )
    dest = NotionDestination(DATABASE_ID, database_id_env=None, **options(replay, time))
    caplog.set_level("INFO", logger="connectors.notion.destination")

    async with dest.connect() as session:
        assert await session.query_existing_ids() == {"101": PAGE_1, "102": PAGE_2}

    assert [bool(q.url.query) for q in replay.requests("POST", "/query")] == [True, False]
    assert any("swq%5C is not a property that exists." in r.getMessage() for r in caplog.records)


# --------------------------------------------------------------------------------------------------
# Writes: real page answers


async def test_a_create_reads_the_id_of_a_real_page_answer(time, synced_at):
    created = copy.deepcopy(BUG_BASH) | {"id": PAGE_3}
    replay = Replay()
    resolvable(replay)
    replay.add("POST", "/v1/pages", ok(created))
    dest = NotionDestination(DATABASE_ID, database_id_env=None, **options(replay, time))

    async with dest.connect() as session:
        page_id = await session.create(Record("103", {"Name": "New", "Stars": 3, "Topics": ["sync"]}), synced_at)

    assert page_id == PAGE_3
    (sent,) = replay.requests("POST", "/v1/pages")
    body = json.loads(sent.content)
    assert body["parent"] == {"type": "data_source_id", "data_source_id": DATA_SOURCE_ID}
    assert body["properties"]["Key"] == {"rich_text": [{"type": "text", "text": {"content": "103"}}]}
    assert body["properties"]["Last synced"] == {"date": {"start": "2024-05-01T12:00:00+00:00"}}


@pytest.mark.parametrize(
    "message",
    [
        "Can't edit block that is archived. You must unarchive the block before editing.",
        "Can't update a page that is archived. You must unarchive the page before updating.",
    ],
)
async def test_updating_a_trashed_page_maps_the_real_400_to_a_record_error(time, synced_at, message):
    replay = Replay()
    resolvable(replay)
    replay.add("PATCH", f"/v1/pages/{PAGE_1}", Answer(400, error_body(400, "validation_error", message)))
    dest = NotionDestination(DATABASE_ID, database_id_env=None, **options(replay, time))

    async with dest.connect() as session:
        with pytest.raises(RecordError, match="in the trash") as raised:
            await session.update(PAGE_1, Record("101", {"Name": "Bug bash"}), synced_at)

    assert raised.value.primary_key == "101"


# --------------------------------------------------------------------------------------------------
# Error bodies and headers -> the error tree


def new_token() -> str:
    # One per test: the toolkit keeps a credential's rate-limit block for the whole process.
    return "ntn_" + uuid.uuid4().hex


def client(replay: Replay, time: FakeTime, token: str, retry: RetryPolicy | None = None) -> NotionClient:
    return NotionClient(
        token,
        http=HttpSettings(transport=replay.transport(), sleep=time.sleep, clock=time.clock, retry=retry),
        rate=FAST,
    )


UNAUTHORIZED = Answer(401, error_body(401, "unauthorized", "API token is invalid."))
RESTRICTED = Answer(403, error_body(403, "restricted_resource", "API token does not have access to this resource."))
NOT_FOUND = Answer(
    404,
    error_body(
        404,
        "object_not_found",
        f"Could not find page with ID: {PAGE_1}. Make sure the relevant pages and databases are shared with "
        'your integration "durable-sync".',
        additional_data={"integration_id": BOT_ID},
    ),
)
INVALID = Answer(400, error_body(400, "validation_error", "body failed validation: body.properties should be defined."))


@pytest.mark.parametrize(
    ("answer", "error"),
    [(UNAUTHORIZED, AuthError), (RESTRICTED, AuthError), (NOT_FOUND, NotFound), (INVALID, RecordError)],
    ids=["401-unauthorized", "403-restricted_resource", "404-object_not_found", "400-validation_error"],
)
async def test_real_error_bodies_map_onto_the_error_tree(time, answer, error):
    replay = Replay()
    replay.add("GET", f"/v1/pages/{PAGE_1}", answer)
    token = new_token()
    async with client(replay, time, token) as notion:
        with pytest.raises(error) as raised:
            await notion.retrieve_page(PAGE_1)
    assert answer.body["code"] in str(raised.value) and answer.body["request_id"] in str(raised.value)
    assert token not in str(raised.value) and token[4:] not in str(raised.value)
    if error is NotFound:
        assert not isinstance(raised.value, AuthError)


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (409, "conflict_error", "Conflict occurred while saving. Please try again."),
        (
            503,
            "service_unavailable",
            "Notion is unavailable. This can occur when the time to respond to a request takes longer than 60 seconds. Please try again later.",
        ),
        (529, "service_overload", "Notion is overloaded. Please try again later."),
    ],
)
async def test_retryable_real_errors_are_retried(time, status, code, message):
    replay = Replay()
    replay.add("GET", f"/v1/pages/{PAGE_1}", Answer(status, error_body(status, code, message)), ok(BUG_BASH))
    async with client(replay, time, new_token()) as notion:
        assert (await notion.retrieve_page(PAGE_1))["id"] == PAGE_1
    assert len(replay.seen) == 2


async def test_a_real_429_waits_its_retry_after_then_succeeds(time):
    limited = Answer(
        429,
        error_body(429, "rate_limited", "You have been rate limited. Please try again in a few minutes."),
        {"Retry-After": "7"},
    )
    replay = Replay()
    replay.add("GET", f"/v1/pages/{PAGE_1}", limited, ok(BUG_BASH))
    async with client(replay, time, new_token()) as notion:
        assert (await notion.retrieve_page(PAGE_1))["object"] == "page"
    assert 7.0 in time.sleeps


async def test_a_real_429_asking_too_long_a_wait_is_rate_limited_with_it(time):
    limited = Answer(
        429,
        error_body(429, "rate_limited", "You have been rate limited. Please try again in a few minutes."),
        {"Retry-After": "3600"},
    )
    replay = Replay()
    replay.add("GET", f"/v1/pages/{PAGE_1}", limited)
    async with client(replay, time, new_token(), retry=RetryPolicy(max_wait=60)) as notion:
        with pytest.raises(RateLimited) as raised:
            await notion.retrieve_page(PAGE_1)
    assert raised.value.retry_after == 3600


async def test_an_id_shared_with_nobody_answers_two_real_404s_and_is_a_config_error(time):
    replay = Replay()
    replay.add("GET", f"/v1/databases/{DATABASE_ID}", NOT_FOUND)
    replay.add("GET", f"/v1/data_sources/{DATABASE_ID}", NOT_FOUND)
    async with client(replay, time, new_token()) as notion:
        with pytest.raises(ConfigError, match="share the database with the integration"):
            await notion.resolve(DATABASE_ID)

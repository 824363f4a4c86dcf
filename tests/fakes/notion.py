"""A stateful fake of the Notion REST API (``Notion-Version: 2025-09-03``), as a Starlette app.

Use it in-process through ``httpx.ASGITransport(app=fake.app)``, or on a loopback port with
``with serve(fake) as base_url: ...`` (uvicorn in a thread). It is written from Notion's documentation,
independently of ``connectors.notion``, so a connector bug is not mirrored here::

    workspace ──< token (Bearer; revocable, rotatable)
        └──< database ──< data source (schema: typed properties, select options) ──< page
                                                                         ├── properties (typed values)
                                                                         ├── children (blocks)
                                                                         └── in_trash

What it enforces, as the real API does:

- ``Authorization: Bearer <token>`` (401 ``unauthorized`` "API token is invalid." otherwise) and a
  ``Notion-Version`` header (400 ``missing_version``); objects of another workspace are not found.
- A token bucket per token (``rate`` requests/s on average, ``burst`` at once; 429 ``rate_limited`` with
  an integer ``Retry-After``), on an injectable ``clock`` (epoch seconds; real time by default).
- 2025-09-03 ids: a data-source endpoint given a database id answers 404 ``object_not_found``
  ("Could not find data_source with ID: ..."), and vice versa.
- Size limits (400 ``validation_error``): rich text content <= 2000 characters (counted in UTF-16 code
  units, as JavaScript does), rich-text arrays and multi-selects <= 100 elements, <= 100 children per
  request, URLs <= 2000, emails and phone numbers <= 200, option names <= 100 characters and without
  commas, request bodies <= 500,000 bytes, ``page_size`` <= 100.
- Property values are validated against the data source's schema: a name not in it answers
  "X is not a property that exists."; a value of the wrong shape answers a ``validation_error``
  naming the path. A select or multi-select option that does not exist yet is CREATED in the schema,
  as Notion does for integrations with write access; a status option must exist.
- Pages in trash are not returned by queries; editing one answers 400 "Can't edit block that is
  archived. You must unarchive the block before editing." unless the same request restores it.
- ``created_time`` / ``last_edited_time`` are rounded down to the minute, as Notion reports them.
- Property ids as Notion makes them: 3-4 random letters, digits and punctuation, listed URL-encoded
  the way encodeURIComponent does (``swq%5C``, ``%3DqI%3B``; the title's id is ``title``).
  ``?filter_properties=`` is percent-decoded once, like any server reads a query string, and must then
  name a property (raw id or name): an id encoded twice by a client (``swq%255C``) answers 400 ``validation_error``
  "swq%5C is not a property that exists.".
- One query reaches at most ``query_limit`` (10,000) pages; past that pagination stops and every page
  of the answer says ``request_status: {"type": "incomplete", ...}``.
- Every answer carries a ``request_id`` in its body and the ``x-notion-request-id`` header; error
  bodies are ``{"object": "error", "status", "code", "message", ["additional_data",] "request_id"}``
  (a 404 names the integration and gives its id in ``additional_data``), a 429 has ``Retry-After``.

Test-facing helpers: ``add_token`` / ``revoke_token`` / ``rotate_token``, ``add_parent_page``,
``add_database`` / ``add_data_source``, ``add_page`` / ``edit_page`` / ``trash_page`` / ``restore_page``
/ ``delete_page``, inspection (``page``, ``pages``, ``values``, ``body_text``, ``options``), injected
faults (``fail_next``), the request ``log`` and ``counters``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import itertools
import json
import math
import random
import re
import string
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Unpack

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.common import (
    Fault,
    FaultOptions,
    FaultQueue,
    RequestCounters,
    RequestLog,
    TokenBuckets,
    TokenRegistry,
    bearer_token,
)
from tests.fakes.loopback import serve_app

__all__ = [
    "NOTION_VERSION",
    "Counters",
    "FakeDataSource",
    "FakeDatabase",
    "FakeNotion",
    "FakePage",
    "LoggedRequest",
    "serve",
]

NOTION_VERSION = "2025-09-03"

MAX_TEXT = 2000
MAX_EQUATION = 1000
MAX_ARRAY = 100
MAX_CHILDREN = 100
MAX_PAYLOAD_BYTES = 500_000
MAX_BLOCK_ELEMENTS = 1000
MAX_URL = 2000
MAX_EMAIL = 200
MAX_PHONE = 200
MAX_OPTION_NAME = 100
MAX_PAGE_SIZE = 100
QUERY_RESULT_LIMIT = 10_000
"""Results one data source query can reach: past it pagination stops (``has_more`` false) and every page
says ``request_status: {"type": "incomplete", "incomplete_reason": "query_result_limit_reached"}``
(developers.notion.com/guides/data-apis/query-large-data-sources)."""

TEXT_TYPES = frozenset({"title", "rich_text"})
READ_ONLY_TYPES = frozenset(
    {
        "formula",
        "rollup",
        "created_time",
        "created_by",
        "last_edited_time",
        "last_edited_by",
        "unique_id",
        "button",
        "verification",
    }
)
PROPERTY_TYPES = frozenset(
    {
        "title",
        "rich_text",
        "number",
        "checkbox",
        "select",
        "multi_select",
        "status",
        "date",
        "url",
        "email",
        "phone_number",
        "people",
        "relation",
        "files",
        *READ_ONLY_TYPES,
    }
)
BLOCK_TYPES = frozenset(
    {
        "paragraph",
        "heading_1",
        "heading_2",
        "heading_3",
        "bulleted_list_item",
        "numbered_list_item",
        "to_do",
        "quote",
        "callout",
        "toggle",
        "code",
    }
)
DEFAULT_STATUS_OPTIONS = ("Not started", "In progress", "Done")
DEFAULT_ANNOTATIONS = {
    "bold": False,
    "italic": False,
    "strikethrough": False,
    "underline": False,
    "code": False,
    "color": "default",
}
ERROR_CODES = {
    400: "validation_error",
    401: "unauthorized",
    403: "restricted_resource",
    404: "object_not_found",
    409: "conflict_error",
    429: "rate_limited",
    500: "internal_server_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
    529: "service_overload",
}
ERROR_MESSAGES = {
    "unauthorized": "API token is invalid.",
    "restricted_resource": "API token does not have access to this resource.",
    "conflict_error": "Conflict occurred while saving. Please try again.",
    "rate_limited": "You have been rate limited. Please try again in a few minutes.",
    "internal_server_error": "Unexpected error occurred.",
    "bad_gateway": "Notion encountered an issue while attempting to complete this request. Please try again.",
    "service_unavailable": "Notion is unavailable. This can occur when the time to respond to a request takes longer than 60 seconds. Please try again later.",
    "gateway_timeout": "Notion timed out while attempting to complete this request. Please try again later.",
    "service_overload": "Notion is overloaded. Please try again later.",
}
ARCHIVED_MESSAGE = "Can't edit block that is archived. You must unarchive the block before editing."

Json = dict[str, Any]


def utf16_len(text: str) -> int:
    """Length as JavaScript counts it (UTF-16 code units): Notion's limits are counted this way."""
    return len(text.encode("utf-16-le")) // 2


def _iso(epoch: float, *, round_to_minute: bool) -> str:
    when = dt.datetime.fromtimestamp(epoch, dt.UTC)
    when = when.replace(second=0, microsecond=0) if round_to_minute else when.replace(microsecond=0)
    return when.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _parse_when(text: Any) -> dt.datetime | None:
    """A date or date-time as an aware datetime (dates at midnight UTC, naive times as UTC)."""
    if not isinstance(text, str):
        return None
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = dt.date.fromisoformat(text)
            return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def _new_id() -> str:
    return str(uuid.uuid4())


def _rich(content: str, *, link: str | None = None) -> Json:
    return {
        "type": "text",
        "text": {"content": content, "link": {"url": link} if link else None},
        "annotations": dict(DEFAULT_ANNOTATIONS),
        "plain_text": content,
        "href": link,
    }


def _rich_list(text: str) -> list[Json]:
    """Plain text as rich text, split at Notion's element limit (for the test helpers only)."""
    out: list[Json] = []
    piece = ""
    for ch in text:
        if utf16_len(piece) + utf16_len(ch) > MAX_TEXT:
            out.append(_rich(piece))
            piece = ""
        piece += ch
    if piece:
        out.append(_rich(piece))
    return out


def _plain(rich: Sequence[Json]) -> str:
    return "".join(str(el.get("plain_text", "")) for el in rich)


class _Fail(Exception):
    """An error answer in Notion's shape."""

    def __init__(
        self,
        status: int,
        message: str | None = None,
        *,
        code: str | None = None,
        retry_after: int | None = None,
        additional_data: Json | None = None,
    ):
        self.status = status
        self.code = code or ERROR_CODES.get(status, "internal_server_error")
        self.message = message or ERROR_MESSAGES.get(self.code, "Error.")
        self.retry_after = retry_after
        self.additional_data = additional_data
        super().__init__(self.message)

    def response(self, request_id: str) -> JSONResponse:
        headers = {"x-notion-request-id": request_id}
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        body: Json = {"object": "error", "status": self.status, "code": self.code, "message": self.message}
        if self.additional_data is not None:
            body["additional_data"] = self.additional_data
        body["request_id"] = request_id
        return JSONResponse(body, status_code=self.status, headers=headers)


def _fault_error(fault: Fault) -> _Fail:
    retry_after = int(fault.retry_after) if fault.retry_after is not None else None
    return _Fail(fault.status, fault.message, code=fault.code, retry_after=retry_after)


def _new_token() -> str:
    return f"ntn_fake{uuid.uuid4().hex}"


def _invalid(message: str) -> _Fail:
    return _Fail(400, message, code="validation_error")


INTEGRATION_NAME = "durable-sync"
"""The integration's name, which Notion quotes in 404 messages."""


def _not_found(kind: str, object_id: str, integration_id: str | None = None) -> _Fail:
    # As recorded (notion-sdk-py cassettes, 2025-09-03): the integration's name in the message, its id
    # in additional_data.
    return _Fail(
        404,
        f"Could not find {kind} with ID: {object_id}. Make sure the relevant pages and databases are shared "
        f'with your integration "{INTEGRATION_NAME}".',
        code="object_not_found",
        additional_data={"integration_id": integration_id} if integration_id else None,
    )


# --------------------------------------------------------------------------------------------------
# State


@dataclass
class FakeDataSource:
    """A data source: its schema (typed properties by name) and its database."""

    id: str
    database_id: str
    name: str
    properties: dict[str, Json]  # name -> {"id", "name", "type", <type>: config}
    created_time: float
    last_edited_time: float

    def by_key(self, key: str) -> Json | None:
        """The property schema named ``key``, or whose id is ``key`` (requests may use either)."""
        if key in self.properties:
            return self.properties[key]
        for prop in self.properties.values():
            if prop["id"] == key:
                return prop
        return None

    @property
    def title_name(self) -> str:
        """The name of the title property."""
        return next(name for name, prop in self.properties.items() if prop["type"] == "title")


@dataclass
class FakeDatabase:
    """A database: its workspace, parent and data sources."""

    id: str
    workspace: str
    title: str
    parent_page_id: str | None
    data_source_ids: list[str]
    created_time: float
    in_trash: bool = False


@dataclass
class FakePage:
    """A page as stored: parent, property values, children and trash state."""

    id: str
    workspace: str
    parent: Json  # {"type": "data_source_id", ...} or {"type": "page_id", ...} or {"type": "workspace", ...}
    properties: dict[str, Any]  # property name -> stored value (the value under the type key)
    children: list[Json]
    created_time: float
    last_edited_time: float
    seq: int
    in_trash: bool = False

    @property
    def data_source_id(self) -> str | None:
        """The data source the page belongs to, if any."""
        return self.parent.get("data_source_id")


@dataclass(frozen=True)
class LoggedRequest:
    """One request the fake answered (the token is kept for leak checks, never printed)."""

    method: str
    path: str
    status: int
    body: Any = None
    size: int = 0
    token: str | None = field(default=None, repr=False)
    query: str = ""
    """The raw query string as it came over the wire (still percent-encoded)."""


Counters = RequestCounters
"""What the fake counts: requests, 429s, writes, errors."""


# --------------------------------------------------------------------------------------------------
# The fake


class FakeNotion:
    """The fake API. See the module docstring for what it enforces.

    Args:
        rate: Average requests per second per token; None disables rate limiting.
        burst: Requests a token may send at once after an idle spell.
        clock: Epoch seconds; inject a fake clock for tests, real time (default) for a loopback server.
        round_times: Round page timestamps down to the minute, as Notion does.
        seed: Seed of the random property ids (None: a fresh one); a failing test names its ids.
    """

    def __init__(
        self,
        *,
        rate: float | None = 3.0,
        burst: int = 10,
        clock: Callable[[], float] = time.time,
        round_times: bool = True,
        seed: int | None = None,
    ) -> None:
        """An empty fake with one integration token (``self.token``) for the workspace "default"."""
        self.rate = rate
        self.burst = burst
        self.query_limit = QUERY_RESULT_LIMIT
        self.clock = clock
        self.round_times = round_times
        self._tokens = TokenRegistry()
        self.tokens = self._tokens.owners  # token -> workspace
        self.revoked = self._tokens.revoked
        self.databases: dict[str, FakeDatabase] = {}
        self.data_sources: dict[str, FakeDataSource] = {}
        self.pages_by_id: dict[str, FakePage] = {}
        self.log: RequestLog[LoggedRequest] = RequestLog()
        self.counters = Counters()
        self._buckets = TokenBuckets()
        self._faults = FaultQueue()
        self._cursors: dict[str, tuple[str, list[Any]]] = {}
        self._seq = itertools.count(1)
        self._lock = threading.RLock()
        self._property_ids = property_id_factory(random.Random(seed))
        self.bot_id = _new_id()
        self.token = self.add_token()
        self.app = self._build_app()

    # -- tokens --------------------------------------------------------------------------------

    def add_token(self, workspace: str = "default", token: str | None = None) -> str:
        """Register an integration token for ``workspace`` and return it."""
        return self._tokens.add(token or _new_token(), workspace)

    def revoke_token(self, token: str) -> None:
        """Revoke a token: every later request with it answers 401 ``unauthorized``."""
        self._tokens.revoke(token)

    def rotate_token(self, token: str) -> str:
        """Revoke ``token`` and return a new one for the same workspace."""
        return self._tokens.rotate(token, _new_token(), default_owner="default")

    # -- rate limit and faults -----------------------------------------------------------------

    def set_rate(self, rate: float | None, burst: int | None = None) -> None:
        """Change the rate limit (buckets start full again)."""
        self.rate = rate
        if burst is not None:
            self.burst = burst
        self._buckets.reset()

    def fail_next(
        self, n: int = 1, status: int = 502, *, code: str | None = None, **options: Unpack[FaultOptions]
    ) -> None:
        """Answer the next ``n`` matching requests with a Notion error (409 means ``conflict_error``).

        Args:
            n: How many requests fail.
            status: HTTP status (502, 503, 409, 429, ...).
            code: Notion error code; defaults to the status's (and the message to the code's).
            **options: ``message``, ``retry_after``, ``after``, ``method``, ``path``: see ``FaultOptions``.
        """
        self._faults.add(Fault.on(status, code=code, **options), n)

    def requests(self, method: str | None = None, path: str | None = None) -> list[LoggedRequest]:
        """Logged requests, optionally only those with this verb and a path matching this regex."""
        return self.log.matching(method, path)

    # -- building state ------------------------------------------------------------------------

    def add_parent_page(self, title: str = "Parent", *, workspace: str = "default", page_id: str | None = None) -> str:
        """A standalone page (the parent under which ``POST /v1/databases`` may create databases)."""
        page_id = page_id or _new_id()
        now = self.clock()
        self.pages_by_id[page_id] = FakePage(
            page_id,
            workspace,
            {"type": "workspace", "workspace": True},
            {"title": _rich_list(title)},
            [],
            now,
            now,
            next(self._seq),
        )
        return page_id

    def add_database(
        self,
        properties: Mapping[str, Any],
        *,
        title: str = "Database",
        workspace: str = "default",
        database_id: str | None = None,
        data_source_id: str | None = None,
        data_source_name: str | None = None,
        parent_page_id: str | None = None,
    ) -> FakeDatabase:
        """A database with one data source whose schema is ``properties``.

        A property spec is a type name (``"rich_text"``), ``{"type": "select", "options": ["A", "B"]}``,
        or Notion's own shape (``{"select": {"options": [{"name": "A"}]}}``). Exactly one must be a title.
        """
        now = self.clock()
        db = FakeDatabase(database_id or _new_id(), workspace, title, parent_page_id, [], now)
        self.databases[db.id] = db
        self.add_data_source(db.id, properties, name=data_source_name or title, data_source_id=data_source_id)
        return db

    def add_data_source(
        self,
        database_id: str,
        properties: Mapping[str, Any],
        *,
        name: str = "Data source",
        data_source_id: str | None = None,
    ) -> FakeDataSource:
        """Another data source of an existing database (2025-09-03: a database may hold several)."""
        schema = _schema(properties, self._property_ids)
        now = self.clock()
        ds = FakeDataSource(data_source_id or _new_id(), database_id, name, schema, now, now)
        self.data_sources[ds.id] = ds
        self.databases[database_id].data_source_ids.append(ds.id)
        return ds

    def add_page(
        self, data_source_id: str, values: Mapping[str, Any] | None = None, *, body: str | None = None
    ) -> FakePage:
        """A page as if a human had created it: simple Python values by property name."""
        ds = self.data_sources[data_source_id]
        db = self.databases[ds.database_id]
        now = self.clock()
        page = FakePage(
            _new_id(),
            db.workspace,
            {"type": "data_source_id", "data_source_id": ds.id, "database_id": db.id},
            {},
            [],
            now,
            now,
            next(self._seq),
        )
        for name, value in (values or {}).items():
            page.properties[name] = _simple_value(ds, name, value)
        if body:
            page.children = [_paragraph(chunk) for chunk in body.split("\n\n")]
        self.pages_by_id[page.id] = page
        return page

    def edit_page(self, page_id: str, values: Mapping[str, Any]) -> FakePage:
        """Change properties as a human would (bumps ``last_edited_time``)."""
        page = self.pages_by_id[page_id]
        ds = self.data_sources[page.data_source_id or ""]
        for name, value in values.items():
            page.properties[name] = _simple_value(ds, name, value)
        page.last_edited_time = self.clock()
        return page

    def trash_page(self, page_id: str) -> None:
        """Move a page to the trash as a user would."""
        page = self.pages_by_id[page_id]
        page.in_trash = True
        page.last_edited_time = self.clock()

    def restore_page(self, page_id: str) -> None:
        """Take a page out of the trash as a user would."""
        page = self.pages_by_id[page_id]
        page.in_trash = False
        page.last_edited_time = self.clock()

    def delete_page(self, page_id: str) -> None:
        """Delete a page for good (empty the trash): it answers 404 from then on."""
        del self.pages_by_id[page_id]

    def remove_property(self, data_source_id: str, name: str) -> None:
        """A human deleted a column in the Notion UI."""
        del self.data_sources[data_source_id].properties[name]

    # -- inspection ----------------------------------------------------------------------------

    def page(self, page_id: str) -> FakePage:
        """The stored page with this id."""
        return self.pages_by_id[page_id]

    def pages(self, data_source_id: str, *, include_trash: bool = True) -> list[FakePage]:
        """The pages of a data source in creation order."""
        return [
            p
            for p in self.pages_by_id.values()
            if p.data_source_id == data_source_id and (include_trash or not p.in_trash)
        ]

    def values(self, page_id: str) -> dict[str, Any]:
        """A page's properties as simple Python values (text as plain text, options as names)."""
        page = self.pages_by_id[page_id]
        ds = self.data_sources[page.data_source_id or ""]
        out: dict[str, Any] = {}
        for name, prop in ds.properties.items():
            value = self._property_value(page, prop)
            kind = prop["type"]
            if kind in TEXT_TYPES:
                out[name] = _plain(value)
            elif kind in ("select", "status"):
                out[name] = value["name"] if value else None
            elif kind == "multi_select":
                out[name] = [o["name"] for o in value]
            elif kind == "date":
                out[name] = value["start"] if value else None
            else:
                out[name] = value
        return out

    def rich_text(self, page_id: str, name: str) -> list[Json]:
        """The stored rich-text elements of a text property."""
        return list(self.pages_by_id[page_id].properties.get(name) or [])

    def body_text(self, page_id: str) -> str:
        """The page's blocks as text: each block's plain text, blocks separated by a blank line."""
        page = self.pages_by_id[page_id]
        return "\n\n".join(_plain(block[block["type"]].get("rich_text", [])) for block in page.children)

    def options(self, data_source_id: str, name: str) -> list[str]:
        """The option names of a select, multi-select or status property."""
        prop = self.data_sources[data_source_id].properties[name]
        return [o["name"] for o in prop[prop["type"]].get("options", [])]

    # -- the app -------------------------------------------------------------------------------

    def _build_app(self) -> Starlette:
        def route(path: str, handler: Callable[..., Any], method: str) -> Route:
            async def endpoint(request: Request) -> JSONResponse:
                return await self._serve(request, handler)

            return Route(path, endpoint, methods=[method])

        return Starlette(
            routes=[
                route("/v1/databases", self._create_database, "POST"),
                route("/v1/databases/{id}", self._get_database, "GET"),
                route("/v1/data_sources/{id}", self._get_data_source, "GET"),
                route("/v1/data_sources/{id}", self._update_data_source, "PATCH"),
                route("/v1/data_sources/{id}/query", self._query, "POST"),
                route("/v1/pages", self._create_page, "POST"),
                route("/v1/pages/{id}", self._get_page, "GET"),
                route("/v1/pages/{id}", self._update_page, "PATCH"),
                route("/v1/blocks/{id}/children", self._append_children, "PATCH"),
                route("/v1/blocks/{id}/children", self._list_children, "GET"),
            ]
        )

    async def _serve(self, request: Request, handler: Callable[..., Any]) -> JSONResponse:
        raw = await request.body()
        method, path = request.method, request.url.path
        body: Any = None
        token: str | None = None
        request_id = _new_id()
        with self._lock:
            self.counters.requests += 1
            try:
                token, workspace = self._authenticate(request)
                self._take_token(token)
                fault = self._faults.take(method, path)
                if fault is not None and not fault.after:
                    raise _fault_error(fault)
                if len(raw) > MAX_PAYLOAD_BYTES:
                    raise _invalid(f"Request body too large: {len(raw)} bytes; the limit is {MAX_PAYLOAD_BYTES}.")
                if raw:
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        raise _Fail(400, "Error parsing JSON body.", code="invalid_json") from None
                    if not isinstance(body, dict):
                        raise _Fail(400, "Error parsing JSON body: expected an object.", code="invalid_json")
                kwargs = dict(request.path_params)
                if "id" in kwargs:
                    kwargs["object_id"] = _check_uuid(kwargs.pop("id"))
                result, wrote = handler(workspace, body if body is not None else {}, request, **kwargs)
                if wrote:
                    self.counters.writes += 1
                if fault is not None:  # after=True: the request took effect, the answer is lost
                    raise _fault_error(fault)
                if isinstance(result, dict) and result.get("object") != "error":
                    result = {**result, "request_id": request_id}  # every body carries it, as recorded
                status = 200
                response = JSONResponse(result, headers={"x-notion-request-id": request_id})
            except _Fail as fail:
                status, response = fail.status, fail.response(request_id)
                self.counters.errors += 1
                if fail.status == 429:
                    self.counters.rate_limited += 1
            query = request.scope.get("query_string", b"").decode("latin-1")
            self.log.append(LoggedRequest(method, path, status, body, len(raw), token, query))
            return response

    def _authenticate(self, request: Request) -> tuple[str, str]:
        token = bearer_token(request.headers.get("authorization"))
        if token is None or token not in self._tokens:
            raise _Fail(401, code="unauthorized")
        version = request.headers.get("notion-version")
        if version is None:
            raise _Fail(
                400,
                "Notion-Version header failed validation: Notion-Version header should be defined, instead was "
                "`undefined`.",
                code="missing_version",
            )
        if version != NOTION_VERSION:
            raise _Fail(
                400,
                f"Notion-Version header failed validation: this fake speaks {NOTION_VERSION}, got `{version}`.",
                code="missing_version",
            )
        return token, self.tokens[token]

    def _take_token(self, token: str) -> None:
        if self.rate is None:
            return
        wait = self._buckets.take(token, rate=self.rate, burst=self.burst, now=self.clock())
        if wait is not None:
            raise _Fail(429, code="rate_limited", retry_after=wait)

    # -- lookups -------------------------------------------------------------------------------

    def _database(self, workspace: str, object_id: str) -> FakeDatabase:
        db = self.databases.get(object_id)
        if db is None or db.workspace != workspace:
            raise _not_found("database", object_id, self.bot_id)
        return db

    def _data_source(self, workspace: str, object_id: str) -> FakeDataSource:
        ds = self.data_sources.get(object_id)
        if ds is None or self.databases[ds.database_id].workspace != workspace:
            raise _not_found("data_source", object_id, self.bot_id)
        return ds

    def _page(self, workspace: str, object_id: str) -> FakePage:
        page = self.pages_by_id.get(object_id)
        if page is None or page.workspace != workspace:
            raise _not_found("page", object_id, self.bot_id)
        return page

    # -- JSON views ----------------------------------------------------------------------------

    def _ts(self, epoch: float) -> str:
        return _iso(epoch, round_to_minute=self.round_times)

    def _database_json(self, db: FakeDatabase) -> Json:
        return {
            "object": "database",
            "id": db.id,
            "created_time": self._ts(db.created_time),
            "last_edited_time": self._ts(db.created_time),
            "title": _rich_list(db.title),
            "description": [],
            "parent": {"type": "page_id", "page_id": db.parent_page_id}
            if db.parent_page_id
            else {"type": "workspace", "workspace": True},
            "is_inline": False,
            "in_trash": db.in_trash,
            "archived": db.in_trash,
            "is_locked": False,
            "icon": None,
            "cover": None,
            "data_sources": [{"id": i, "name": self.data_sources[i].name} for i in db.data_source_ids],
            "url": f"https://www.notion.so/{db.id.replace('-', '')}",
            "public_url": None,
        }

    def _data_source_json(self, ds: FakeDataSource) -> Json:
        db = self.databases[ds.database_id]
        return {
            "object": "data_source",
            "id": ds.id,
            "created_time": self._ts(ds.created_time),
            "created_by": {"object": "user", "id": self.bot_id},
            "last_edited_by": {"object": "user", "id": self.bot_id},
            "last_edited_time": self._ts(ds.last_edited_time),
            "title": _rich_list(ds.name),
            "description": [],
            "properties": json.loads(json.dumps(ds.properties)),
            "parent": {"type": "database_id", "database_id": ds.database_id},
            "database_parent": self._database_json(db)["parent"],
            "archived": False,
            "in_trash": False,
            "is_inline": False,
            "icon": None,
            "cover": None,
            "url": f"https://www.notion.so/{ds.id.replace('-', '')}",
            "public_url": None,
        }

    def _property_value(self, page: FakePage, prop: Json) -> Any:
        kind, name = prop["type"], prop["name"]
        if kind == "created_time":
            return self._ts(page.created_time)
        if kind == "last_edited_time":
            return self._ts(page.last_edited_time)
        if kind in ("created_by", "last_edited_by"):
            return {"object": "user", "id": self.bot_id}
        if kind == "formula":
            return {"type": "string", "string": None}
        if kind == "rollup":
            return {"type": "array", "array": [], "function": "show_original"}
        if kind == "unique_id":
            return {"prefix": None, "number": page.seq}
        if name in page.properties:
            return page.properties[name]
        return _empty_value(kind)

    def _page_url(self, page: FakePage) -> str:
        """``https://www.notion.so/<Title-slug>-<id without dashes>``, as Notion builds page URLs."""
        title: list[Json] = []
        if page.data_source_id is not None:
            title = page.properties.get(self.data_sources[page.data_source_id].title_name) or []
        else:
            title = page.properties.get("title") or []
        slug = re.sub(r"[^0-9A-Za-z]+", "-", _plain(title)).strip("-")
        hex_id = page.id.replace("-", "")
        return f"https://www.notion.so/{slug}-{hex_id}" if slug else f"https://www.notion.so/{hex_id}"

    def _page_json(self, page: FakePage, only: set[str] | None = None) -> Json:
        props: Json = {}
        if page.data_source_id is not None:
            ds = self.data_sources[page.data_source_id]
            for name, prop in ds.properties.items():
                if only is not None and prop["id"] not in only:
                    continue
                props[name] = {"id": prop["id"], "type": prop["type"], prop["type"]: self._property_value(page, prop)}
        else:
            props["title"] = {"id": "title", "type": "title", "title": page.properties.get("title", [])}
        return {
            "object": "page",
            "id": page.id,
            "created_time": self._ts(page.created_time),
            "last_edited_time": self._ts(page.last_edited_time),
            "created_by": {"object": "user", "id": self.bot_id},
            "last_edited_by": {"object": "user", "id": self.bot_id},
            "cover": None,
            "icon": None,
            "parent": dict(page.parent),
            "archived": page.in_trash,
            "in_trash": page.in_trash,
            "is_locked": False,
            "properties": props,
            "url": self._page_url(page),
            "public_url": None,
        }

    # -- endpoints (each returns (json, wrote)) ------------------------------------------------

    def _get_database(self, workspace: str, body: Json, request: Request, object_id: str) -> tuple[Json, bool]:
        return self._database_json(self._database(workspace, object_id)), False

    def _get_data_source(self, workspace: str, body: Json, request: Request, object_id: str) -> tuple[Json, bool]:
        return self._data_source_json(self._data_source(workspace, object_id)), False

    def _update_data_source(self, workspace: str, body: Json, request: Request, object_id: str) -> tuple[Json, bool]:
        """``PATCH /v1/data_sources/{id}``: each named property is added, replaced, or removed (``null``)."""
        ds = self._data_source(workspace, object_id)
        specs = body.get("properties") or {}
        if not isinstance(specs, dict):
            raise _invalid("body.properties should be an object.")
        for name, spec in specs.items():
            if spec is None:
                if ds.properties.get(name, {}).get("type") == "title":
                    raise _invalid("Cannot delete the title property.")
                ds.properties.pop(name, None)
                continue
            kind = _spec_type(spec)
            if kind is None:
                raise _invalid(f"body.properties.{name} should have a property type.")
            if kind == "status":
                raise _invalid("Creating new status database properties is currently not supported.")
            used = frozenset(str(p["id"]) for p in ds.properties.values())
            (built,) = _schema({name: spec}, lambda taken, used=used: self._property_ids(used | set(taken))).values()
            old = ds.properties.get(name)
            if old is not None:
                built["id"] = old["id"]  # Notion keeps a property's id when its type changes
            ds.properties[name] = built
        ds.last_edited_time = self.clock()
        return self._data_source_json(ds), True

    def _create_database(self, workspace: str, body: Json, request: Request) -> tuple[Json, bool]:
        parent = body.get("parent")
        if not isinstance(parent, dict) or not isinstance(parent.get("page_id"), str):
            raise _invalid("body.parent.page_id should be defined, instead was `undefined`.")
        parent_id = _check_uuid(parent["page_id"])
        self._page(workspace, parent_id)
        title_rich = body.get("title") or []
        _check_rich_text(title_rich, "body.title")
        initial = body.get("initial_data_source") or {}
        if not isinstance(initial, dict):
            raise _invalid("body.initial_data_source should be an object.")
        specs = initial.get("properties") or {"Name": {"title": {}}}
        if not isinstance(specs, dict):
            raise _invalid("body.initial_data_source.properties should be an object.")
        for name, spec in specs.items():
            kind = _spec_type(spec)
            if kind == "status":
                raise _invalid("Creating new status database properties is currently not supported.")
            if kind is None:
                raise _invalid(f"body.initial_data_source.properties.{name} should have a property type.")
        schema = _schema(specs, self._property_ids)
        titles = [n for n, p in schema.items() if p["type"] == "title"]
        if len(titles) != 1:
            raise _invalid("Exactly one title property is required.")
        now = self.clock()
        db = FakeDatabase(_new_id(), workspace, _plain(_stored_rich(title_rich)), parent_id, [], now)
        self.databases[db.id] = db
        ds = FakeDataSource(_new_id(), db.id, db.title or "Untitled", schema, now, now)
        self.data_sources[ds.id] = ds
        db.data_source_ids.append(ds.id)
        return self._database_json(db), True

    def _query(self, workspace: str, body: Json, request: Request, object_id: str) -> tuple[Json, bool]:
        ds = self._data_source(workspace, object_id)
        page_size = body.get("page_size", MAX_PAGE_SIZE)
        if not isinstance(page_size, int) or isinstance(page_size, bool) or page_size < 1:
            raise _invalid(f"body.page_size should be a positive integer, instead was `{json.dumps(page_size)}`.")
        if page_size > MAX_PAGE_SIZE:
            raise _invalid(f"body.page_size should be ≤ `{MAX_PAGE_SIZE}`, instead was `{page_size}`.")
        sorts = body.get("sorts") or []
        if not isinstance(sorts, list):
            raise _invalid("body.sorts should be an array.")
        filt = body.get("filter")
        rows = [p for p in self.pages_by_id.values() if p.data_source_id == ds.id and not p.in_trash]
        if filt is not None:
            rows = [p for p in rows if self._matches(ds, p, filt)]
        keyed: list[tuple[list[Any], FakePage]] = [(self._sort_vector(ds, p, sorts), p) for p in rows]
        directions = [s.get("direction") == "descending" for s in sorts] + [False]
        compare = functools.partial(_compare_vectors, directions=directions)
        keyed.sort(key=functools.cmp_to_key(lambda a, b: compare(a[0], b[0])))  # type: ignore[index]
        capped = len(keyed) > self.query_limit
        keyed = keyed[: self.query_limit]
        start = 0
        cursor = body.get("start_cursor")
        if cursor is not None:
            saved = self._cursors.get(cursor)
            if saved is None or saved[0] != ds.id:
                raise _invalid(f"The start_cursor provided is invalid: {cursor}")
            start = next((i for i, (vec, _) in enumerate(keyed) if compare(vec, saved[1]) >= 0), len(keyed))
        page_rows = keyed[start : start + page_size]
        has_more = start + page_size < len(keyed)
        next_cursor = None
        if has_more:
            next_cursor = _new_id()
            self._cursors[next_cursor] = (ds.id, keyed[start + page_size][0])
        only = self._filter_properties(ds, request)
        answer: Json = {
            "object": "list",
            "results": [self._page_json(p, only) for _, p in page_rows],
            "next_cursor": next_cursor,
            "has_more": has_more,
            "type": "page_or_data_source",
            "page_or_data_source": {},
        }
        if capped:
            answer["request_status"] = {"type": "incomplete", "incomplete_reason": "query_result_limit_reached"}
        return answer, False

    @staticmethod
    def _filter_properties(ds: FakeDataSource, request: Request) -> set[str] | None:
        r"""The property ids ``?filter_properties=`` asks for (None: all), as the API reads them.

        The query string is percent-decoded ONCE (Starlette does, as any server does), and what remains
        must name a property: its raw id, or its name (Notion's CLI guide: "it accepts property IDs or
        names"). ``swq%5C`` on the wire names the property the API lists as ``swq%5C`` (raw ``swq\``);
        the id as listed, encoded again by a client (``swq%255C``), decodes to ``swq%5C``, which names
        nothing: 400 ``validation_error`` (notion-sdk-js PR #402; the message as reported in
        seratch/notion-sdk-jvm#75).
        """
        wanted = request.query_params.getlist("filter_properties")
        if not wanted:
            return None
        known = {name: prop["id"] for name, prop in ds.properties.items()}
        known.update({urllib.parse.unquote(prop["id"]): prop["id"] for prop in ds.properties.values()})
        only: set[str] = set()
        for value in wanted:
            if value not in known:
                raise _invalid(f"{value} is not a property that exists.")
            only.add(known[value])
        return only

    def _sort_vector(self, ds: FakeDataSource, page: FakePage, sorts: list[Any]) -> list[Any]:
        vector: list[Any] = []
        for i, sort in enumerate(sorts):
            if not isinstance(sort, dict):
                raise _invalid(f"body.sorts[{i}] should be an object.")
            if sort.get("direction", "ascending") not in ("ascending", "descending"):
                raise _invalid(f"body.sorts[{i}].direction should be `ascending` or `descending`.")
            if "timestamp" in sort:
                if sort["timestamp"] not in ("created_time", "last_edited_time"):
                    raise _invalid(f"body.sorts[{i}].timestamp should be `created_time` or `last_edited_time`.")
                epoch = page.created_time if sort["timestamp"] == "created_time" else page.last_edited_time
                vector.append(self._ts(epoch))
            elif "property" in sort:
                prop = ds.by_key(str(sort["property"]))
                if prop is None:
                    raise _invalid(f"Could not find sort property with name or id: {sort['property']}")
                vector.append(_sortable(prop["type"], self._property_value(page, prop)))
            else:
                raise _invalid(f"body.sorts[{i}] should have `property` or `timestamp`.")
        vector.append(page.seq)
        return vector

    def _matches(self, ds: FakeDataSource, page: FakePage, filt: Any) -> bool:
        if not isinstance(filt, dict):
            raise _invalid("body.filter should be an object.")
        if "and" in filt:
            return all(self._matches(ds, page, f) for f in filt["and"])
        if "or" in filt:
            return any(self._matches(ds, page, f) for f in filt["or"])
        if "timestamp" in filt:
            kind = filt["timestamp"]
            if kind not in ("created_time", "last_edited_time"):
                raise _invalid("body.filter.timestamp should be `created_time` or `last_edited_time`.")
            condition = filt.get(kind)
            epoch = page.created_time if kind == "created_time" else page.last_edited_time
            return _date_matches(self._ts(epoch), condition, f"body.filter.{kind}")
        if "property" in filt:
            prop = ds.by_key(str(filt["property"]))
            if prop is None:
                raise _invalid(f"Could not find property with name or id: {filt['property']}")
            kind = prop["type"]
            aliases = {kind} | (TEXT_TYPES if kind in TEXT_TYPES else set())
            if kind in ("created_time", "last_edited_time"):
                aliases.add("date")
            key = next((k for k in filt if k != "property" and k != "type"), None)
            if key not in aliases:
                raise _invalid(f"body.filter.{key} does not match the type of property {prop['name']} ({kind}).")
            return _value_matches(kind, self._property_value(page, prop), filt[key])
        raise _invalid("body.filter should have `property`, `timestamp`, `and` or `or`.")

    def _create_page(self, workspace: str, body: Json, request: Request) -> tuple[Json, bool]:
        parent = body.get("parent")
        if not isinstance(parent, dict):
            raise _invalid("body.parent should be defined, instead was `undefined`.")
        now = self.clock()
        properties = body.get("properties") or {}
        if not isinstance(properties, dict):
            raise _invalid("body.properties should be an object.")
        children = body.get("children") or []
        stored_children = _check_children(children, "body.children")
        if "data_source_id" in parent or "database_id" in parent:
            if "data_source_id" in parent:
                ds = self._data_source(workspace, _check_uuid(str(parent["data_source_id"])))
            else:
                db = self._database(workspace, _check_uuid(str(parent["database_id"])))
                if len(db.data_source_ids) != 1:
                    raise _invalid(
                        "Databases with multiple data sources are not supported in this API version; "
                        "use a data_source_id parent."
                    )
                ds = self.data_sources[db.data_source_ids[0]]
            values, new_options = self._check_properties(ds, properties)
            page = FakePage(
                _new_id(),
                workspace,
                {"type": "data_source_id", "data_source_id": ds.id, "database_id": ds.database_id},
                values,
                stored_children,
                now,
                now,
                next(self._seq),
            )
            self._add_options(ds, new_options)
        elif "page_id" in parent:
            self._page(workspace, _check_uuid(str(parent["page_id"])))
            extra = set(properties) - {"title"}
            if extra:
                raise _invalid(f"{sorted(extra)[0]} is not a property that exists.")
            title = properties.get("title", {}).get("title", [])
            _check_rich_text(title, "body.properties.title.title")
            page = FakePage(
                _new_id(),
                workspace,
                {"type": "page_id", "page_id": parent["page_id"]},
                {"title": _stored_rich(title)},
                stored_children,
                now,
                now,
                next(self._seq),
            )
        else:
            raise _invalid("body.parent should have `data_source_id`, `database_id` or `page_id`.")
        self.pages_by_id[page.id] = page
        return self._page_json(page), True

    def _get_page(self, workspace: str, body: Json, request: Request, object_id: str) -> tuple[Json, bool]:
        return self._page_json(self._page(workspace, object_id)), False

    def _update_page(self, workspace: str, body: Json, request: Request, object_id: str) -> tuple[Json, bool]:
        page = self._page(workspace, object_id)
        trash = body.get("in_trash", body.get("archived"))
        if trash is not None and not isinstance(trash, bool):
            raise _invalid("body.in_trash should be a boolean.")
        properties = body.get("properties") or {}
        if not isinstance(properties, dict):
            raise _invalid("body.properties should be an object.")
        if page.in_trash and trash is not False and (properties or "icon" in body or "cover" in body):
            raise _invalid(ARCHIVED_MESSAGE)
        if page.data_source_id is None:
            raise _invalid("Only pages in a data source can be edited by this fake.")
        ds = self.data_sources[page.data_source_id]
        values, new_options = self._check_properties(ds, properties)
        page.properties.update(values)
        self._add_options(ds, new_options)
        if trash is not None:
            page.in_trash = trash
        page.last_edited_time = self.clock()
        return self._page_json(page), True

    def _append_children(self, workspace: str, body: Json, request: Request, object_id: str) -> tuple[Json, bool]:
        page = self._page(workspace, object_id)
        if page.in_trash:
            raise _invalid(ARCHIVED_MESSAGE)
        children = body.get("children")
        if not isinstance(children, list):
            raise _invalid("body.children should be an array, instead was `undefined`.")
        stored = _check_children(children, "body.children")
        page.children.extend(stored)
        page.last_edited_time = self.clock()
        return {
            "object": "list",
            "results": stored,
            "next_cursor": None,
            "has_more": False,
            "type": "block",
            "block": {},
        }, True

    def _list_children(self, workspace: str, body: Json, request: Request, object_id: str) -> tuple[Json, bool]:
        page = self._page(workspace, object_id)
        size = int(request.query_params.get("page_size", MAX_PAGE_SIZE))
        if size > MAX_PAGE_SIZE:
            raise _invalid(f"query.page_size should be ≤ `{MAX_PAGE_SIZE}`, instead was `{size}`.")
        cursor = request.query_params.get("start_cursor")
        ids = [b["id"] for b in page.children]
        start = ids.index(cursor) if cursor in ids else 0
        chunk = page.children[start : start + size]
        more = start + size < len(ids)
        return {
            "object": "list",
            "results": chunk,
            "next_cursor": ids[start + size] if more else None,
            "has_more": more,
            "type": "block",
            "block": {},
        }, False

    # -- property validation -------------------------------------------------------------------

    def _check_properties(self, ds: FakeDataSource, properties: Json) -> tuple[dict[str, Any], list[tuple[str, Json]]]:
        """Validate every property before changing anything; return stored values and options to add."""
        values: dict[str, Any] = {}
        new_options: list[tuple[str, Json]] = []
        for key, payload in properties.items():
            prop = ds.by_key(key)
            if prop is None:
                raise _invalid(f"{key} is not a property that exists.")
            name, kind = prop["name"], prop["type"]
            path = f"body.properties.{name}"
            if kind in READ_ONLY_TYPES:
                raise _invalid(f"{name} is a {kind} property, which cannot be set through the API.")
            if not isinstance(payload, dict) or kind not in payload:
                raise _invalid(f"{path}.{kind} should be defined, instead was `undefined`.")
            value = payload[kind]
            values[name], options = _check_value(prop, value, f"{path}.{kind}")
            new_options += [(name, o) for o in options]
        return values, new_options

    def _add_options(self, ds: FakeDataSource, new_options: list[tuple[str, Json]]) -> None:
        for name, option in new_options:
            config = ds.properties[name][ds.properties[name]["type"]]
            options = config.setdefault("options", [])
            if all(o["name"] != option["name"] for o in options):
                options.append({**option, "description": None})
                ds.last_edited_time = self.clock()


# --------------------------------------------------------------------------------------------------
# Schema and value helpers


def _short_id() -> str:
    """A select/multi-select option id (four hex digits here; Notion's are opaque strings)."""
    return uuid.uuid4().hex[:4]


# What a property id is made of: Notion's internal ids are 3-4 characters of letters, digits and
# punctuation (``U:C<``, ``swq\``, ``=qI;``, ``h:{D``), and the API returns them URL-encoded as
# JavaScript's encodeURIComponent does (``U%3AC%3C``, ``swq%5C``, ``%3DqI%3B``, ``h%3A%7BD``). The title
# property's id is always ``title``.
_ID_LETTERS = string.ascii_letters + string.digits
_ID_PUNCTUATION = "!#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
_URI_COMPONENT_SAFE = "-_.!~*'()"
"""The characters encodeURIComponent leaves as they are (besides letters and digits)."""
_ENCODED_PUNCTUATION = "".join(c for c in _ID_PUNCTUATION if c not in _URI_COMPONENT_SAFE)


def encode_property_id(raw: str) -> str:
    """A raw property id as the API shows it (encodeURIComponent)."""
    return urllib.parse.quote(raw, safe=_URI_COMPONENT_SAFE)


def property_id_factory(rng: random.Random) -> Callable[[Collection[str]], str]:
    """``new(taken) -> id``: random encoded property ids, most with encoded punctuation, none in ``taken``."""

    def new(taken: Collection[str]) -> str:
        while True:
            size = rng.choice((3, 4, 4))
            chars = [rng.choice(_ID_LETTERS + _ID_PUNCTUATION) for _ in range(size)]
            if rng.random() < 0.9:  # most real ids carry at least one character that is encoded
                chars[rng.randrange(size)] = rng.choice(_ENCODED_PUNCTUATION)
            encoded = encode_property_id("".join(chars))
            if encoded not in taken and encoded != "title":
                return encoded

    return new


_default_ids = property_id_factory(random.Random())


def _check_uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise _invalid(f"path failed validation: `{value}` should be a valid uuid.") from None


def _spec_type(spec: Any) -> str | None:
    if isinstance(spec, str):
        return spec if spec in PROPERTY_TYPES else None
    if isinstance(spec, dict):
        if isinstance(spec.get("type"), str):
            return spec["type"] if spec["type"] in PROPERTY_TYPES else None
        return next((k for k in spec if k in PROPERTY_TYPES), None)
    return None


def _schema(specs: Mapping[str, Any], new_id: Callable[[Collection[str]], str] = _default_ids) -> dict[str, Json]:
    schema: dict[str, Json] = {}
    taken: set[str] = set()
    for name, spec in specs.items():
        kind = _spec_type(spec)
        if kind is None:
            raise ValueError(f"property {name!r}: unknown spec {spec!r}")
        config: Json = {}
        if isinstance(spec, dict):
            raw = spec.get(kind)
            config = dict(raw) if isinstance(raw, dict) else {}
            if "options" in spec:
                config["options"] = spec["options"]
        if kind in ("select", "multi_select", "status"):
            names = config.get("options")
            if names is None and kind == "status":
                names = list(DEFAULT_STATUS_OPTIONS)
            config["options"] = [
                {
                    "id": _short_id(),
                    "name": o if isinstance(o, str) else o["name"],
                    "color": "default" if isinstance(o, str) else o.get("color", "default"),
                    "description": None,
                }
                for o in (names or [])
            ]
        if kind == "number":
            config.setdefault("format", "number")
        prop_id = "title" if kind == "title" else new_id(taken)
        taken.add(prop_id)
        schema[name] = {"id": prop_id, "name": name, "description": None, "type": kind, kind: config}
    return schema


def _empty_value(kind: str) -> Any:
    if kind in TEXT_TYPES or kind in ("multi_select", "people", "relation", "files"):
        return []
    if kind == "checkbox":
        return False
    return None


def _simple_value(ds: FakeDataSource, name: str, value: Any) -> Any:
    """A stored value from a plain Python value (test helper; no validation beyond the type)."""
    prop = ds.properties[name]
    kind = prop["type"]
    if value is None:
        return _empty_value(kind)
    if kind in TEXT_TYPES:
        return _rich_list(str(value))
    if kind in ("select", "status"):
        return _option(prop, str(value))
    if kind == "multi_select":
        return [_option(prop, str(v)) for v in value]
    if kind == "date":
        text = value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else str(value)
        return {"start": text, "end": None, "time_zone": None}
    return value


def _option(prop: Json, name: str) -> Json:
    options = prop[prop["type"]].setdefault("options", [])
    found = next((o for o in options if o["name"] == name), None)
    if found is None:
        found = {"id": _short_id(), "name": name, "color": "default", "description": None}
        options.append(found)
    return {"id": found["id"], "name": found["name"], "color": found["color"]}


def _stored_rich(elements: Sequence[Json]) -> list[Json]:
    out: list[Json] = []
    for el in elements:
        kind = el.get("type", "text")
        if kind == "text":
            text = el["text"]
            link = (text.get("link") or {}).get("url")
            item = _rich(text["content"], link=link)
            if isinstance(el.get("annotations"), dict):
                item["annotations"] = {**DEFAULT_ANNOTATIONS, **el["annotations"]}
            out.append(item)
        elif kind == "equation":
            expression = el["equation"]["expression"]
            out.append(
                {
                    "type": "equation",
                    "equation": {"expression": expression},
                    "annotations": dict(DEFAULT_ANNOTATIONS),
                    "plain_text": expression,
                    "href": None,
                }
            )
        else:
            out.append({**el, "plain_text": el.get("plain_text", ""), "href": None})
    return out


def _check_rich_text(elements: Any, path: str) -> None:
    if not isinstance(elements, list):
        raise _invalid(f"{path} should be an array, instead was `{json.dumps(elements)[:100]}`.")
    if len(elements) > MAX_ARRAY:
        raise _invalid(f"{path}.length should be ≤ `{MAX_ARRAY}`, instead was `{len(elements)}`.")
    for i, el in enumerate(elements):
        if not isinstance(el, dict):
            raise _invalid(f"{path}[{i}] should be an object.")
        kind = el.get("type", "text" if "text" in el else None)
        if kind == "text":
            text = el.get("text")
            if not isinstance(text, dict) or not isinstance(text.get("content"), str):
                raise _invalid(f"{path}[{i}].text.content should be a string.")
            size = utf16_len(text["content"])
            if size > MAX_TEXT:
                raise _invalid(f"{path}[{i}].text.content.length should be ≤ `{MAX_TEXT}`, instead was `{size}`.")
            link = text.get("link")
            if link is not None:
                url = link.get("url") if isinstance(link, dict) else None
                if not isinstance(url, str) or utf16_len(url) > MAX_URL:
                    raise _invalid(f"{path}[{i}].text.link.url should be a string of ≤ `{MAX_URL}` characters.")
        elif kind == "equation":
            expression = (el.get("equation") or {}).get("expression")
            if not isinstance(expression, str) or utf16_len(expression) > MAX_EQUATION:
                raise _invalid(f"{path}[{i}].equation.expression.length should be ≤ `{MAX_EQUATION}`.")
        elif kind != "mention":
            raise _invalid(f"{path}[{i}].type should be `text`, `mention` or `equation`.")


def _check_option_name(name: Any, path: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise _invalid(f"{path}.name should be a non-empty string.")
    if "," in name:
        raise _invalid(f"{path}.name: commas are not valid in select option names, got `{name}`.")
    if utf16_len(name) > MAX_OPTION_NAME:
        raise _invalid(f"{path}.name.length should be ≤ `{MAX_OPTION_NAME}`, instead was `{utf16_len(name)}`.")
    return name


def _check_value(prop: Json, value: Any, path: str) -> tuple[Any, list[Json]]:
    """(stored value, options to create) for one property value, or a 400."""
    kind = prop["type"]

    def wrong(expected: str) -> _Fail:
        return _invalid(f"{path} should be {expected}, instead was `{json.dumps(value)[:100]}`.")

    if kind in TEXT_TYPES:
        _check_rich_text(value, path)
        return _stored_rich(value), []
    if kind == "number":
        if value is None:
            return None, []
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise wrong("a number or `null`")
        return value, []
    if kind == "checkbox":
        if not isinstance(value, bool):
            raise wrong("a boolean")
        return value, []
    if kind in ("select", "status"):
        if value is None:
            return None, []
        if not isinstance(value, dict) or not ("name" in value or "id" in value):
            raise wrong("an object with `name` or `id`, or `null`")
        return _resolve_option(prop, value, path, create=kind == "select")
    if kind == "multi_select":
        if not isinstance(value, list):
            raise wrong("an array")
        if len(value) > MAX_ARRAY:
            raise _invalid(f"{path}.length should be ≤ `{MAX_ARRAY}`, instead was `{len(value)}`.")
        stored: list[Json] = []
        created: list[Json] = []
        for i, item in enumerate(value):
            if not isinstance(item, dict) or not ("name" in item or "id" in item):
                raise _invalid(f"{path}[{i}] should be an object with `name` or `id`.")
            option, new = _resolve_option(prop, item, f"{path}[{i}]", create=True)
            if all(o["name"] != option["name"] for o in stored):
                stored.append(option)
                created += new
        return stored, created
    if kind == "date":
        if value is None:
            return None, []
        if not isinstance(value, dict) or _parse_when(value.get("start")) is None:
            raise wrong("an object with an ISO 8601 `start`, or `null`")
        end = value.get("end")
        if end is not None and _parse_when(end) is None:
            raise _invalid(f"{path}.end should be an ISO 8601 date or `null`, instead was `{end}`.")
        return {"start": value["start"], "end": end, "time_zone": value.get("time_zone")}, []
    if kind in ("url", "email", "phone_number"):
        if value is None:
            return None, []
        limit = {"url": MAX_URL, "email": MAX_EMAIL, "phone_number": MAX_PHONE}[kind]
        if not isinstance(value, str):
            raise wrong("a string or `null`")
        if utf16_len(value) > limit:
            raise _invalid(f"{path}.length should be ≤ `{limit}`, instead was `{utf16_len(value)}`.")
        return value, []
    if kind in ("people", "relation", "files"):
        if not isinstance(value, list):
            raise wrong("an array")
        if len(value) > MAX_ARRAY:
            raise _invalid(f"{path}.length should be ≤ `{MAX_ARRAY}`, instead was `{len(value)}`.")
        return value, []
    raise _invalid(f"{path}: properties of type {kind} cannot be set.")


def _resolve_option(prop: Json, value: Json, path: str, *, create: bool) -> tuple[Json, list[Json]]:
    options = prop[prop["type"]].get("options", [])
    if "id" in value and "name" not in value:
        found = next((o for o in options if o["id"] == value["id"]), None)
        if found is None:
            raise _invalid(f"{path}.id: no option with id `{value['id']}`.")
        return {"id": found["id"], "name": found["name"], "color": found["color"]}, []
    name = _check_option_name(value.get("name"), path)
    found = next((o for o in options if o["name"] == name), None)
    if found is not None:
        return {"id": found["id"], "name": found["name"], "color": found["color"]}, []
    if not create:
        raise _invalid(f'Invalid status option. Status option "{name}" does not exist.')
    # Notion adds a missing option to the schema (the integration has write access to the database).
    option = {"id": _short_id(), "name": name, "color": "default"}
    return option, [option]


def _paragraph(text: str) -> Json:
    return {
        "object": "block",
        "id": _new_id(),
        "type": "paragraph",
        "has_children": False,
        "archived": False,
        "in_trash": False,
        "paragraph": {"rich_text": _rich_list(text), "color": "default"},
    }


def _check_children(children: Any, path: str) -> list[Json]:
    if not isinstance(children, list):
        raise _invalid(f"{path} should be an array.")
    if len(children) > MAX_CHILDREN:
        raise _invalid(f"{path}.length should be ≤ `{MAX_CHILDREN}`, instead was `{len(children)}`.")
    stored: list[Json] = []
    elements = 0
    for i, block in enumerate(children):
        if not isinstance(block, dict):
            raise _invalid(f"{path}[{i}] should be an object.")
        kind = block.get("type") or next((k for k in block if k in BLOCK_TYPES), None)
        if kind not in BLOCK_TYPES or not isinstance(block.get(kind), dict):
            raise _invalid(f"{path}[{i}] should be a supported block (paragraph, heading, list item, ...).")
        rich = block[kind].get("rich_text", [])
        _check_rich_text(rich, f"{path}[{i}].{kind}.rich_text")
        elements += 1 + len(block[kind].get("children", []) or [])
        stored.append(
            {
                "object": "block",
                "id": _new_id(),
                "type": kind,
                "has_children": False,
                "archived": False,
                "in_trash": False,
                kind: {**block[kind], "rich_text": _stored_rich(rich)},
            }
        )
    if elements > MAX_BLOCK_ELEMENTS:
        raise _invalid(f"{path}: at most {MAX_BLOCK_ELEMENTS} block elements per request, got {elements}.")
    return stored


# --------------------------------------------------------------------------------------------------
# Filters and sorts


def _sortable(kind: str, value: Any) -> Any:
    if kind in TEXT_TYPES:
        return _plain(value) or None
    if kind in ("select", "status"):
        return value["name"] if value else None
    if kind == "multi_select":
        return ",".join(o["name"] for o in value) or None
    if kind == "date":
        return _parse_when(value["start"]) if value else None
    if kind in ("people", "relation", "files", "formula", "rollup", "created_by", "last_edited_by", "unique_id"):
        return json.dumps(value, sort_keys=True)
    return value


def _compare_vectors(a: list[Any], b: list[Any], *, directions: list[bool]) -> int:
    """Compare sort vectors; empty values sort last whatever the direction, as in Notion."""
    for x, y, descending in zip(a, b, directions, strict=False):
        if x == y:
            continue
        if x is None:
            return 1
        if y is None:
            return -1
        result = -1 if x < y else 1
        return -result if descending else result
    return 0


def _date_matches(text: str | None, condition: Any, path: str) -> bool:
    if not isinstance(condition, dict) or len(condition) != 1:
        raise _invalid(f"{path} should be an object with one condition.")
    (op, operand), when = next(iter(condition.items())), _parse_when(text) if text else None
    if op == "is_empty":
        return when is None
    if op == "is_not_empty":
        return when is not None
    target = _parse_when(operand)
    if target is None:
        raise _invalid(f"{path}.{op} should be an ISO 8601 date, instead was `{operand}`.")
    if when is None:
        return False
    ops: dict[str, Callable[[dt.datetime, dt.datetime], bool]] = {
        "equals": lambda a, b: a == b,
        "before": lambda a, b: a < b,
        "after": lambda a, b: a > b,
        "on_or_before": lambda a, b: a <= b,
        "on_or_after": lambda a, b: a >= b,
    }
    if op not in ops:
        raise _invalid(f"{path}.{op} is not a supported date condition.")
    return ops[op](when, target)


def _value_matches(kind: str, value: Any, condition: Any) -> bool:
    path = f"body.filter.{kind}"
    if not isinstance(condition, dict) or len(condition) != 1:
        raise _invalid(f"{path} should be an object with one condition.")
    op, operand = next(iter(condition.items()))
    if kind in ("date", "created_time", "last_edited_time"):
        text = value["start"] if isinstance(value, dict) else value
        return _date_matches(text, condition, path)
    if kind in TEXT_TYPES or kind in ("url", "email", "phone_number"):
        text = _plain(value) if kind in TEXT_TYPES else (value or "")
        text_ops: dict[str, Callable[[], bool]] = {
            "equals": lambda: text == operand,
            "does_not_equal": lambda: text != operand,
            "contains": lambda: str(operand) in text,
            "does_not_contain": lambda: str(operand) not in text,
            "starts_with": lambda: text.startswith(str(operand)),
            "ends_with": lambda: text.endswith(str(operand)),
            "is_empty": lambda: text == "",
            "is_not_empty": lambda: text != "",
        }
        if op not in text_ops:
            raise _invalid(f"{path}.{op} is not a supported text condition.")
        return text_ops[op]()
    if kind == "number":
        number_ops: dict[str, Callable[[], bool]] = {
            "equals": lambda: value is not None and value == operand,
            "does_not_equal": lambda: value != operand,
            "greater_than": lambda: value is not None and value > operand,
            "less_than": lambda: value is not None and value < operand,
            "greater_than_or_equal_to": lambda: value is not None and value >= operand,
            "less_than_or_equal_to": lambda: value is not None and value <= operand,
            "is_empty": lambda: value is None,
            "is_not_empty": lambda: value is not None,
        }
        if op not in number_ops:
            raise _invalid(f"{path}.{op} is not a supported number condition.")
        return number_ops[op]()
    if kind == "checkbox":
        if op not in ("equals", "does_not_equal"):
            raise _invalid(f"{path}.{op} is not a supported checkbox condition.")
        return (value == operand) == (op == "equals")
    if kind in ("select", "status"):
        name = value["name"] if value else None
        select_ops = {
            "equals": name == operand,
            "does_not_equal": name != operand,
            "is_empty": name is None,
            "is_not_empty": name is not None,
        }
        if op not in select_ops:
            raise _invalid(f"{path}.{op} is not a supported select condition.")
        return select_ops[op]
    if kind == "multi_select":
        names = [o["name"] for o in value]
        multi_ops = {
            "contains": operand in names,
            "does_not_contain": operand not in names,
            "is_empty": not names,
            "is_not_empty": bool(names),
        }
        if op not in multi_ops:
            raise _invalid(f"{path}.{op} is not a supported multi_select condition.")
        return multi_ops[op]
    raise _invalid(f"{path}: filtering on {kind} properties is not supported by this fake.")


# --------------------------------------------------------------------------------------------------
# Loopback server


@contextlib.contextmanager
def serve(fake: FakeNotion, *, host: str = "127.0.0.1") -> Iterator[str]:
    """Run the fake on a free loopback port in a thread; yields its base URL; stops cleanly on exit."""
    with serve_app(fake.app, name="notion", host=host) as url:
        yield url

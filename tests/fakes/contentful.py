"""A stateful fake of Contentful's Content Delivery API (with the Sync API) and Content Management API.

One Starlette app serves both APIs, chosen by host (``cdn.contentful.com`` is the CDA,
``api.contentful.com`` the CMA) or, on a loopback server, by a path prefix (``<base>/cda``,
``<base>/cma``)::

    with serve(fake) as base:
        source = ContentfulSource(..., cda_base_url=f"{base}/cda", cma_base_url=f"{base}/cma")

It is written from Contentful's documentation, independently of ``connectors.contentful``::

    space ──< environment ──< locale (one default)
                   ├──< content type (typed fields)
                   ├──< entry: draft fields + sys.version (CMA); published snapshot (CDA)
                   └──< asset (published; only so that a sync has something to skip)

What it enforces, as the real APIs do:

- ``Authorization: Bearer <token>``: delivery tokens work on the CDA only, management tokens on the
  CMA only; anything else answers 401 ``AccessTokenInvalid``. Errors are Contentful's shape, as its
  SDKs' recorded cassettes show it: ``{"sys": {"type": "Error", "id": "<code>"}, "message",
  "details"?, "requestId"}``; every answer carries ``X-Contentful-Request-Id`` (32 hex digits, the
  same as the error's ``requestId``). Ids the fake makes are 22 base62 characters, like Contentful's.
- Rate limits per token and API (CDA 55 req/s, CMA 7 req/s by default, on an injectable ``clock``):
  429 ``RateLimitExceeded`` with ``X-Contentful-RateLimit-Reset`` (seconds to wait) and
  ``X-Contentful-RateLimit-Second-Remaining: 0``; CMA answers carry ``X-Contentful-RateLimit-Second-Limit
  / -Remaining`` (and ``-Reset: 0``) as the CMA sends them.
- The Sync API (CDA): ``GET .../sync?initial=true`` (``type`` = all | Entry | Asset | Deletion |
  DeletedEntry | DeletedAsset; ``content_type`` only with ``type=Entry``; ``limit`` 1..1000, default 100)
  answers pages of at most ``limit`` items with ``nextPageUrl`` until the last page, which carries
  ``nextSyncUrl``. Both are Contentful's URL form, which names the space but not the environment
  (``https://cdn.contentful.com/spaces/{s}/sync?sync_token=…``; the token carries the environment, and
  the fake serves that path too). Both hold an opaque ``sync_token`` (the filter and limit are baked into it; a
  token may be replayed). A sync from a ``nextSyncUrl`` token returns only what changed since: every
  entry published since (its latest published state) and, where the type allows, a ``DeletedEntry``
  for every entry unpublished or deleted since. An initial sync never contains deletions. A pass is a
  snapshot: changes made while it pages show up in the next sync, not in this one.
- CDA ``GET .../entries`` returns published entries only (``locale=*`` for every locale, otherwise
  fields flattened to one locale with fallback); ``limit`` <= 1000, ``skip``, ``order``,
  ``content_type``, ``sys.id[in]``.
- CMA entries: ``GET .../entries`` (drafts too; ``order``, ``skip``, ``limit``, ``content_type``,
  ``sys.id[in]``, ``sys.id[nin]``, ``sys.updatedAt[gte|gt|lte]``, ``select``), ``GET/PUT/DELETE
  .../entries/{id}``. A PUT without ``X-Contentful-Version`` creates the entry with that id and the
  content type of ``X-Contentful-Content-Type``; on an existing id it answers 409 ``VersionMismatch``,
  as does a PUT whose version is not the current one. The body replaces every field (no merge).
  ``PUT/DELETE .../entries/{id}/published`` with the current version publish and unpublish; each
  increments ``sys.version`` by one, as every write does. CMA entries carry ``createdBy`` /
  ``updatedBy`` / ``publishedBy`` user links and ``automationTags``; entries of both APIs carry
  ``metadata: {"tags": [], "concepts": []}``.
- Validation (422 ``InvalidEntry`` with ``details.errors[]`` naming the path) on every save: unknown
  fields and locales (a non-localized field has only the default locale), values of the wrong type,
  Symbol > 256 and Text > 50,000 characters, Integer beyond +-2**53, malformed dates and links. Required
  fields are checked on publish only (drafts may be incomplete), as Contentful does; that 422 is
  ``ValidationFailed``.

Test-facing helpers: ``add_space`` / ``add_environment`` / ``add_content_type`` / ``add_entry`` /
``edit_entry`` / ``publish`` / ``unpublish`` / ``delete_entry`` / ``add_asset``; tokens
(``delivery_token``, ``cma_token``, ``add_token``, ``revoke_token``); inspection (``entry``,
``values``); injected faults (``fail_next``); the request ``log``, ``requests()`` and
``sync_requests()``.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import datetime as dt
import json
import math
import re
import secrets
import string
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Unpack

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tests.fakes.common import Fault, FaultOptions, FaultQueue, FixedWindows, RequestLog, TokenRegistry, bearer_token
from tests.fakes.loopback import serve_app

__all__ = [
    "CDA_HOST",
    "CMA_HOST",
    "MAX_SYMBOL",
    "MAX_TEXT",
    "FakeContentful",
    "FakeEntry",
    "FakeEnvironment",
    "LoggedRequest",
    "serve",
]

CDA_HOST = "cdn.contentful.com"
CMA_HOST = "api.contentful.com"
HOSTS = {CDA_HOST: "cda", CMA_HOST: "cma"}

MAX_SYMBOL = 256
MAX_TEXT = 50_000
MAX_INTEGER = 2**53
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$")
FIELD_TYPES = frozenset(
    {"Symbol", "Text", "RichText", "Integer", "Number", "Boolean", "Date", "Location", "Object", "Link", "Array"}
)
SYNC_TYPES = frozenset({"all", "Entry", "Asset", "Deletion", "DeletedEntry", "DeletedAsset"})

MESSAGES = {
    "AccessTokenInvalid": "The access token you sent could not be found or is invalid.",
    "AccessDenied": "Forbidden",
    "NotFound": "The resource could not be found.",
    "VersionMismatch": "Version mismatch error. The version you specified was incorrect. This may be due to "
    "someone else editing the content.",
    "RateLimitExceeded": "You have exceeded the rate limit of the Organization this Space belongs to by making too "
    "many API requests within a short timespan. Please wait a moment before trying the request again.",
    "InvalidEntry": "Validation error",
    "ValidationFailed": "Validation error",
    "BadRequest": "Bad request.",
    "InvalidQuery": "The query you sent was invalid. Probably a filter or ordering specification is not applicable "
    "to the type of a field.",
    "ServerError": "Internal server error.",
    "ServiceUnavailable": "Service unavailable.",
}
STATUS_IDS = {
    400: "BadRequest",
    401: "AccessTokenInvalid",
    403: "AccessDenied",
    404: "NotFound",
    409: "VersionMismatch",
    422: "InvalidEntry",
    429: "RateLimitExceeded",
    500: "ServerError",
    502: "ServerError",
    503: "ServiceUnavailable",
    504: "ServerError",
}

Json = dict[str, Any]


def _iso(epoch: float) -> str:
    when = dt.datetime.fromtimestamp(epoch, dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _link(link_type: str, object_id: str) -> Json:
    return {"sys": {"type": "Link", "linkType": link_type, "id": object_id}}


_BASE62 = string.ascii_letters + string.digits


def _new_id() -> str:
    """An id as Contentful makes them: 22 base62 characters (``5KsDBWseXY6QegucYAoacS``)."""
    return "".join(secrets.choice(_BASE62) for _ in range(22))


def _request_id() -> str:
    """A request id as Contentful sends it (``X-Contentful-Request-Id``, ``requestId``): 32 hex digits."""
    return uuid.uuid4().hex


class _Fail(Exception):
    """An error answer in Contentful's shape."""

    def __init__(
        self,
        status: int,
        error_id: str | None = None,
        message: str | None = None,
        *,
        details: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.error_id = error_id or STATUS_IDS.get(status, "ServerError")
        self.message = message or MESSAGES.get(self.error_id, "Error.")
        self.details = details
        self.headers = dict(headers or {})
        super().__init__(self.message)

    def response(self, request_id: str) -> JSONResponse:
        body: Json = {"sys": {"type": "Error", "id": self.error_id}, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        body["requestId"] = request_id
        return JSONResponse(body, status_code=self.status, headers=self.headers or None)


def _not_found(kind: str, object_id: str) -> _Fail:
    return _Fail(404, "NotFound", details={"type": kind, "id": object_id})


def _invalid_entry(errors: list[Json]) -> _Fail:
    return _Fail(422, "InvalidEntry", details={"errors": errors})


# --------------------------------------------------------------------------------------------------
# State


@dataclass
class FakeEntry:
    """One entry: the draft the CMA edits and the snapshot the CDA serves since the last publish."""

    id: str
    content_type: str
    fields: dict[str, dict[str, Any]]
    version: int
    created_at: float
    updated_at: float
    published_fields: dict[str, dict[str, Any]] | None = None
    published_version: int | None = None
    published_at: float | None = None
    first_published_at: float | None = None
    published_counter: int = 0
    cda_seq: int = 0  # when the entry's delivery state (published snapshot or absence) last changed
    deleted: bool = False
    deleted_at: float | None = None

    @property
    def published(self) -> bool:
        """Whether the entry has a published version and is not deleted."""
        return self.published_version is not None and not self.deleted


@dataclass
class FakeAsset:
    id: str
    title: str
    created_at: float
    cda_seq: int


@dataclass
class FakeEnvironment:
    """One environment of a space: locales, content types, entries, assets and the sync log."""

    space_id: str
    id: str
    locales: list[Json]
    content_types: dict[str, Json] = field(default_factory=dict)
    entries: dict[str, FakeEntry] = field(default_factory=dict)
    assets: dict[str, FakeAsset] = field(default_factory=dict)
    seq: int = 0

    @property
    def default_locale(self) -> str:
        """The code of the default locale."""
        return next(loc["code"] for loc in self.locales if loc.get("default"))

    @property
    def locale_codes(self) -> list[str]:
        """Every locale code, the default first as created."""
        return [loc["code"] for loc in self.locales]

    def next_seq(self) -> int:
        """The next sequence number of a change (sync tokens point into this order)."""
        self.seq += 1
        return self.seq


@dataclass(frozen=True)
class LoggedRequest:
    """One request the fake answered (the token is kept for leak checks, never printed)."""

    api: str
    method: str
    path: str
    query: str
    status: int
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    body: Any = None
    token: str | None = field(default=None, repr=False)


@dataclass
class _Ctx:
    """One request, as handlers see it."""

    api: str
    env: FakeEnvironment
    request: Request
    body: Any
    params: dict[str, str]
    base: str  # the external URL prefix of this API (for nextPageUrl / nextSyncUrl)

    def header(self, name: str) -> str | None:
        return self.request.headers.get(name)


# --------------------------------------------------------------------------------------------------
# The fake


class FakeContentful:
    """The fake CDA + CMA. See the module docstring for what it enforces.

    Args:
        cda_rate: CDA requests per second per token (None: unlimited).
        cma_rate: CMA requests per second per token (None: unlimited).
        clock: Epoch seconds; inject a fake clock for tests, real time (default) for a loopback server.
    """

    def __init__(
        self,
        *,
        cda_rate: int | None = 55,
        cma_rate: int | None = 7,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """An empty fake with one CDA token (``self.delivery_token``) and one CMA token (``self.cma_token``)."""
        self.rates: dict[str, int | None] = {"cda": cda_rate, "cma": cma_rate}
        self.clock = clock
        self.spaces: dict[str, dict[str, FakeEnvironment]] = {}
        self._tokens = TokenRegistry()
        self.tokens = self._tokens.owners  # token -> api
        self.revoked = self._tokens.revoked
        self.log: RequestLog[LoggedRequest] = RequestLog()
        self._windows = FixedWindows(1.0)  # per (api, token); a rejected request does not count
        self._faults = FaultQueue()
        self._lock = threading.RLock()
        self.user_id = _new_id()  # the CMA token's user: createdBy / updatedBy / publishedBy
        self.delivery_token = self.add_token("cda")
        self.cma_token = self.add_token("cma")
        self._starlette = self._build_app()

    # -- tokens, rates, faults -----------------------------------------------------------------

    def add_token(self, api: str, token: str | None = None) -> str:
        """Register a token for ``api`` ("cda" or "cma") and return it."""
        if api not in ("cda", "cma"):
            raise ValueError(api)
        token = token or (f"cda-{uuid.uuid4().hex}" if api == "cda" else f"CFPAT-{uuid.uuid4().hex}")
        return self._tokens.add(token, api)

    def revoke_token(self, token: str) -> None:
        """Every later request with ``token`` answers 401 ``AccessTokenInvalid``."""
        self._tokens.revoke(token)

    def set_rate(self, api: str, rate: int | None) -> None:
        """Change the per-second limit of ``api`` ("cda" or "cma"; None: unlimited); windows start afresh."""
        self.rates[api] = rate
        self._windows.reset()

    def fail_next(
        self,
        n: int = 1,
        status: int = 503,
        *,
        error_id: str | None = None,
        api: str | None = None,
        **options: Unpack[FaultOptions],
    ) -> None:
        """Answer the next ``n`` matching requests with a Contentful error.

        Args:
            n: How many requests fail.
            status: HTTP status (503, 429, 409, 500, ...).
            error_id: Contentful error id; defaults to the status's.
            api: Only requests to this API ("cda" or "cma").
            **options: ``message``, ``retry_after`` (with 429, the ``X-Contentful-RateLimit-Reset`` header),
                ``after``, ``method``, ``path``: see ``FaultOptions``.
        """
        scope = {"api": api} if api is not None else {}
        self._faults.add(Fault.on(status, code=error_id, scope=scope, **options), n)

    def requests(
        self, api: str | None = None, method: str | None = None, path: str | None = None
    ) -> list[LoggedRequest]:
        """Logged requests, optionally filtered by API, verb and a path regex."""
        return self.log.matching(method, path, api=api)

    def sync_requests(self) -> list[LoggedRequest]:
        """Every request to the Sync API."""
        return self.requests("cda", "GET", r"/sync$")

    def served(self, status: int) -> int:
        """How many requests were answered with ``status``."""
        return sum(1 for r in self.log if r.status == status)

    # -- building state ------------------------------------------------------------------------

    def add_space(
        self, space_id: str | None = None, *, locales: Sequence[str] = ("en-US",), environment: str = "master"
    ) -> FakeEnvironment:
        """A space with one environment; the first locale is the default. Returns the environment."""
        space_id = space_id or _new_id()
        self.spaces.setdefault(space_id, {})
        return self.add_environment(space_id, environment, locales=locales)

    def add_environment(
        self, space_id: str, environment: str, *, locales: Sequence[str] = ("en-US",)
    ) -> FakeEnvironment:
        """A further environment of a space with these locales (the first is the default)."""
        codes = list(locales)
        # Every other locale falls back to the default, as new locales do in the web app.
        locale_objects = [
            {
                "code": code,
                "name": code,
                "default": i == 0,
                "fallbackCode": None if i == 0 else codes[0],
                "sys": {"id": _new_id(), "type": "Locale", "version": 1},
            }
            for i, code in enumerate(codes)
        ]
        env = FakeEnvironment(space_id, environment, locale_objects)
        self.spaces.setdefault(space_id, {})[environment] = env
        return env

    def add_content_type(
        self,
        env: FakeEnvironment,
        content_type_id: str,
        fields: Mapping[str, Any],
        *,
        name: str | None = None,
        display_field: str | None = None,
        required: Sequence[str] = (),
        localized: Sequence[str] = (),
    ) -> Json:
        """Add a content type.

        Add a content type. ``fields`` maps field ids to a type: ``"Symbol"``, ``"Text"``, ``"Integer"``,
        ``"Number"``, ``"Boolean"``, ``"Date"``, ``"RichText"``, ``"Location"``, ``"Object"``,
        ``"Link:Entry"``, ``"Link:Asset"``, ``"Array:Symbol"``, ``"Array:Link:Entry"``, or a full field dict.
        """
        specs = []
        for field_id, spec in fields.items():
            if isinstance(spec, Mapping):
                item = {"id": field_id, "name": field_id, **spec}
            else:
                item = {"id": field_id, "name": field_id, **_field_type(str(spec))}
            item.setdefault("localized", field_id in localized)
            item.setdefault("required", field_id in required)
            item.setdefault("disabled", False)
            item.setdefault("omitted", False)
            item.setdefault("validations", [])
            if item["type"] not in FIELD_TYPES:
                raise ValueError(f"unknown field type {item['type']!r}")
            specs.append(item)
        now = _iso(self.clock())
        content_type = {
            "sys": {
                "id": content_type_id,
                "type": "ContentType",
                "version": 2,
                "publishedVersion": 1,
                "createdAt": now,
                "updatedAt": now,
                "space": _link("Space", env.space_id),
                "environment": _link("Environment", env.id),
            },
            "name": name or content_type_id,
            "description": "",
            "displayField": display_field or (specs[0]["id"] if specs else None),
            "fields": specs,
        }
        env.content_types[content_type_id] = content_type
        return content_type

    def add_entry(
        self,
        env: FakeEnvironment,
        content_type_id: str,
        fields: Mapping[str, Any],
        *,
        entry_id: str | None = None,
        publish: bool = True,
    ) -> FakeEntry:
        """Add an entry as an editor would.

        Add an entry as an editor would (no API call, no validation). A field value that is not a
        ``{locale: value}`` dict is stored under the default locale (pass ``{"en-US": {...}}`` to store
        an Object or Location value).
        """
        now = self.clock()
        entry = FakeEntry(
            id=entry_id or _new_id(),
            content_type=content_type_id,
            fields=self._wrap(env, fields),
            version=1,
            created_at=now,
            updated_at=now,
        )
        env.entries[entry.id] = entry
        if publish:
            self.publish(env, entry.id)
        return entry

    def edit_entry(
        self, env: FakeEnvironment, entry_id: str, fields: Mapping[str, Any], *, publish: bool = False
    ) -> FakeEntry:
        """Change some fields (None removes one) as an editor would; optionally publish."""
        entry = env.entries[entry_id]
        for field_id, value in self._wrap(env, fields, keep_none=True).items():
            if value is None:
                entry.fields.pop(field_id, None)
            else:
                entry.fields.setdefault(field_id, {}).update(value)
        self._touch(entry)
        if publish:
            self.publish(env, entry_id)
        return entry

    def publish(self, env: FakeEnvironment, entry_id: str) -> FakeEntry:
        """Publish an entry as an editor would (its published version becomes the current one)."""
        entry = env.entries[entry_id]
        now = self.clock()
        entry.published_fields = copy.deepcopy(entry.fields)
        entry.published_version = entry.version
        entry.published_at = now
        entry.first_published_at = entry.first_published_at or now
        entry.published_counter += 1
        entry.version += 1
        entry.updated_at = now
        entry.cda_seq = env.next_seq()
        return entry

    def unpublish(self, env: FakeEnvironment, entry_id: str) -> FakeEntry:
        """Unpublish an entry as an editor would."""
        entry = env.entries[entry_id]
        entry.published_fields = None
        entry.published_version = None
        entry.published_at = None
        entry.version += 1
        entry.updated_at = self.clock()
        entry.cda_seq = env.next_seq()
        return entry

    def delete_entry(self, env: FakeEnvironment, entry_id: str) -> None:
        """Delete for good (the web app unpublishes first; the delivery side sees a deletion)."""
        entry = env.entries[entry_id]
        was_published = entry.published
        entry.deleted = True
        entry.deleted_at = self.clock()
        if was_published:
            entry.cda_seq = env.next_seq()

    def add_asset(self, env: FakeEnvironment, title: str = "Asset") -> FakeAsset:
        """An asset with this title."""
        asset = FakeAsset(_new_id(), title, self.clock(), env.next_seq())
        env.assets[asset.id] = asset
        return asset

    def _wrap(self, env: FakeEnvironment, fields: Mapping[str, Any], *, keep_none: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for field_id, value in fields.items():
            if value is None:
                if keep_none:
                    out[field_id] = None
                continue
            if isinstance(value, Mapping) and value and set(value) <= set(env.locale_codes):
                out[field_id] = dict(value)
            else:
                out[field_id] = {env.default_locale: value}
        return out

    def _touch(self, entry: FakeEntry) -> None:
        entry.version += 1
        entry.updated_at = self.clock()

    # -- inspection ----------------------------------------------------------------------------

    def env(self, space_id: str, environment: str = "master") -> FakeEnvironment:
        """An environment of a space."""
        return self.spaces[space_id][environment]

    def entry(self, env: FakeEnvironment, entry_id: str) -> FakeEntry:
        """An entry of an environment (deleted ones too)."""
        return env.entries[entry_id]

    def live_entries(self, env: FakeEnvironment, content_type_id: str | None = None) -> list[FakeEntry]:
        """The entries not deleted, of one content type if given."""
        return [
            e
            for e in env.entries.values()
            if not e.deleted and (content_type_id is None or e.content_type == content_type_id)
        ]

    def values(self, env: FakeEnvironment, entry_id: str, locale: str | None = None) -> dict[str, Any]:
        """The draft's fields in one locale (default: the default locale)."""
        locale = locale or env.default_locale
        entry = env.entries[entry_id]
        return {fid: by_locale[locale] for fid, by_locale in entry.fields.items() if locale in by_locale}

    # -- the app -------------------------------------------------------------------------------

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI app: a request to a known host is routed to that API's prefix."""
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            host = headers.get(b"host", b"").decode("latin-1").split(":")[0]
            api = HOSTS.get(host)
            path: str = scope["path"]
            scope = dict(scope)
            if api is not None and not path.startswith(("/cda/", "/cma/")):
                scope["path"] = f"/{api}{path}"
                scope["raw_path"] = scope["path"].encode()
                scope["fake_prefix"] = ""
            else:
                scope["fake_prefix"] = "/" + path.split("/")[1] if path.count("/") > 1 else ""
        await self._starlette(scope, receive, send)

    def _build_app(self) -> Starlette:
        def route(api: str, path: str, handler: Callable[[_Ctx], tuple[int, Any]], method: str) -> Route:
            async def endpoint(request: Request) -> Response:
                return await self._serve(api, request, handler)

            return Route(f"/{api}/spaces/{{space}}/environments/{{environment}}{path}", endpoint, methods=[method])

        routes = []
        for api in ("cda", "cma"):
            routes += [
                route(api, "/entries", self._list_entries, "GET"),
                route(api, "/entries/{id}", self._get_entry, "GET"),
                route(api, "/content_types", self._list_content_types, "GET"),
                route(api, "/content_types/{id}", self._get_content_type, "GET"),
                route(api, "/locales", self._list_locales, "GET"),
            ]

        async def space_sync(request: Request) -> Response:
            return await self._serve("cda", request, self._sync)

        routes += [
            Route("/cda/spaces/{space}/sync", space_sync, methods=["GET"]),
            route("cda", "/sync", self._sync, "GET"),
            route("cma", "/entries/{id}", self._put_entry, "PUT"),
            route("cma", "/entries/{id}", self._delete_entry, "DELETE"),
            route("cma", "/entries/{id}/published", self._publish, "PUT"),
            route("cma", "/entries/{id}/published", self._unpublish, "DELETE"),
        ]
        return Starlette(routes=routes)

    async def _serve(self, api: str, request: Request, handler: Callable[[_Ctx], tuple[int, Any]]) -> Response:
        raw = await request.body()
        method = request.method
        path = request.url.path.removeprefix(f"/{api}")
        body: Any = None
        token: str | None = None
        request_id = _request_id()
        with self._lock:
            try:
                token = self._authenticate(api, request)
                self._take(api, token)
                fault = self._faults.take(method, path, api=api)
                if fault is not None and not fault.after:
                    raise self._fault_error(fault)
                if raw:
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        raise _Fail(400, "BadRequest", "The body you sent is not valid JSON.") from None
                env = self._environment(request.path_params["space"], self._environment_id(request))
                prefix = request.scope.get("fake_prefix", "")
                base = f"{request.url.scheme}://{request.url.netloc}{prefix}"
                ctx = _Ctx(api, env, request, body, dict(request.query_params), base)
                status, result = handler(ctx)
                if fault is not None:  # after=True: the request took effect, the answer is lost
                    raise self._fault_error(fault)
                response: Response = (
                    Response(status_code=status) if result is None else JSONResponse(result, status_code=status)
                )
                response.headers.update(self._rate_headers(api, token))
            except _Fail as fail:
                status, response = fail.status, fail.response(request_id)
            response.headers["X-Contentful-Request-Id"] = request_id
            headers = {k: v for k, v in request.headers.items() if k.lower().startswith("x-contentful")}
            self.log.append(LoggedRequest(api, method, path, request.url.query, status, headers, body, token))
            return response

    @staticmethod
    def _fault_error(fault: Fault) -> _Fail:
        headers: dict[str, str] = {}
        if fault.retry_after is not None:
            headers["X-Contentful-RateLimit-Reset"] = str(fault.retry_after)
        if fault.status == 429:
            headers["X-Contentful-RateLimit-Second-Remaining"] = "0"
        return _Fail(fault.status, fault.code, fault.message, headers=headers)

    @staticmethod
    def _environment_id(request: Request) -> str:
        """The environment a request is about.

        The path's environment; ``/spaces/{s}/sync`` (the URL form of Contentful's own ``nextSyncUrl``)
        names none: its token does, else ``master``.
        """
        environment = request.path_params.get("environment")
        if environment is not None:
            return str(environment)
        token = request.query_params.get("sync_token")
        if token:
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                state = json.loads(base64.urlsafe_b64decode((token + "=" * (-len(token) % 4)).encode()))
                return str(state["e"])
        return "master"

    def _rate_headers(self, api: str, token: str | None) -> dict[str, str]:
        """The CMA's rate headers on every answer (the CDA, CDN-cached, sends none)."""
        rate = self.rates.get(api)
        if api != "cma" or rate is None or token is None:
            return {}
        used = self._windows.used((api, token))
        return {
            "X-Contentful-RateLimit-Second-Limit": str(rate),
            "X-Contentful-RateLimit-Second-Remaining": str(max(0, rate - used)),
            "X-Contentful-RateLimit-Reset": "0",
        }

    def _authenticate(self, api: str, request: Request) -> str:
        token = bearer_token(request.headers.get("authorization"))
        if token is None or self._tokens.owner(token) != api:
            raise _Fail(401, "AccessTokenInvalid")
        return token

    def _take(self, api: str, token: str) -> None:
        rate = self.rates.get(api)
        if rate is None:
            return
        reset = self._windows.take((api, token), limit=rate, now=self.clock())
        if reset is not None:
            raise _Fail(
                429,
                "RateLimitExceeded",
                headers={
                    "X-Contentful-RateLimit-Reset": str(reset),
                    "X-Contentful-RateLimit-Second-Limit": str(rate),
                    "X-Contentful-RateLimit-Second-Remaining": "0",
                },
            )

    def _environment(self, space_id: str, environment: str) -> FakeEnvironment:
        envs = self.spaces.get(space_id)
        if envs is None:
            raise _not_found("Space", space_id)
        env = envs.get(environment)
        if env is None:
            raise _not_found("Environment", environment)
        return env

    # -- JSON views ----------------------------------------------------------------------------

    def _base_sys(self, env: FakeEnvironment, entry: FakeEntry) -> Json:
        return {
            "id": entry.id,
            "type": "Entry",
            "space": _link("Space", env.space_id),
            "environment": _link("Environment", env.id),
            "contentType": _link("ContentType", entry.content_type),
            "createdAt": _iso(entry.created_at),
        }

    def _cda_entry(self, env: FakeEnvironment, entry: FakeEntry, locale: str | None = "*") -> Json:
        sys = self._base_sys(env, entry)
        assert entry.published_at is not None and entry.published_fields is not None
        sys.update(updatedAt=_iso(entry.published_at), revision=entry.published_counter)
        fields: Json = copy.deepcopy(entry.published_fields)
        if locale != "*":
            code = locale or env.default_locale
            sys["locale"] = code
            fields = {
                fid: by_locale[pick]
                for fid, by_locale in fields.items()
                if (pick := self._pick_locale(env, by_locale, code)) is not None
            }
        return {"metadata": {"tags": [], "concepts": []}, "sys": sys, "fields": fields}

    def _pick_locale(self, env: FakeEnvironment, by_locale: Mapping[str, Any], code: str) -> str | None:
        seen: set[str] = set()
        current: str | None = code
        while current is not None and current not in seen:
            if current in by_locale:
                return current
            seen.add(current)
            current = next((loc["fallbackCode"] for loc in env.locales if loc["code"] == current), None)
        return None

    def _cma_entry(self, env: FakeEnvironment, entry: FakeEntry) -> Json:
        sys = self._base_sys(env, entry)
        user = _link("User", self.user_id)
        sys.update(
            createdBy=user,
            updatedAt=_iso(entry.updated_at),
            updatedBy=user,
            publishedCounter=entry.published_counter,
            version=entry.version,
            automationTags=[],
        )
        if entry.published_version is not None:
            sys["publishedVersion"] = entry.published_version
            sys["publishedAt"] = _iso(entry.published_at or entry.updated_at)
            sys["publishedBy"] = user
        if entry.first_published_at is not None:
            sys["firstPublishedAt"] = _iso(entry.first_published_at)
        return {"metadata": {"tags": [], "concepts": []}, "sys": sys, "fields": copy.deepcopy(entry.fields)}

    def _deleted_entry(self, env: FakeEnvironment, entry: FakeEntry) -> Json:
        when = _iso(entry.deleted_at if entry.deleted else entry.updated_at)
        return {
            "sys": {
                "id": entry.id,
                "type": "DeletedEntry",
                "space": _link("Space", env.space_id),
                "environment": _link("Environment", env.id),
                "revision": entry.published_counter,
                "createdAt": when,
                "updatedAt": when,
                "deletedAt": when,
            }
        }

    def _asset(self, env: FakeEnvironment, asset: FakeAsset) -> Json:
        return {
            "sys": {
                "id": asset.id,
                "type": "Asset",
                "space": _link("Space", env.space_id),
                "environment": _link("Environment", env.id),
                "createdAt": _iso(asset.created_at),
                "updatedAt": _iso(asset.created_at),
                "revision": 1,
            },
            "fields": {"title": {env.default_locale: asset.title}},
        }

    # -- reads ---------------------------------------------------------------------------------

    def _list_locales(self, ctx: _Ctx) -> tuple[int, Any]:
        items = copy.deepcopy(ctx.env.locales)
        return 200, {"sys": {"type": "Array"}, "total": len(items), "skip": 0, "limit": 1000, "items": items}

    def _list_content_types(self, ctx: _Ctx) -> tuple[int, Any]:
        items = [copy.deepcopy(ct) for ct in ctx.env.content_types.values()]
        return 200, {"sys": {"type": "Array"}, "total": len(items), "skip": 0, "limit": 1000, "items": items}

    def _get_content_type(self, ctx: _Ctx) -> tuple[int, Any]:
        object_id = ctx.request.path_params["id"]
        content_type = ctx.env.content_types.get(object_id)
        if content_type is None:
            raise _not_found("ContentType", object_id)
        return 200, copy.deepcopy(content_type)

    def _visible(self, ctx: _Ctx) -> list[FakeEntry]:
        entries = [e for e in ctx.env.entries.values() if not e.deleted]
        if ctx.api == "cda":
            entries = [e for e in entries if e.published]
        return entries

    def _get_entry(self, ctx: _Ctx) -> tuple[int, Any]:
        object_id = ctx.request.path_params["id"]
        entry = next((e for e in self._visible(ctx) if e.id == object_id), None)
        if entry is None:
            raise _not_found("Entry", object_id)
        if ctx.api == "cda":
            return 200, self._cda_entry(ctx.env, entry, ctx.params.get("locale"))
        return 200, self._cma_entry(ctx.env, entry)

    def _list_entries(self, ctx: _Ctx) -> tuple[int, Any]:
        params = ctx.params
        limit = _int_param(params, "limit", DEFAULT_LIMIT, 0, MAX_LIMIT)
        skip = _int_param(params, "skip", 0, 0, None)
        entries = self._visible(ctx)
        for name, value in params.items():
            entries = self._filter(ctx, entries, name, value)
        entries = self._order(ctx, entries, params.get("order", "sys.createdAt,sys.id"))
        page = entries[skip : skip + limit]
        if ctx.api == "cda":
            items = [self._cda_entry(ctx.env, e, params.get("locale")) for e in page]
        else:
            items = [self._cma_entry(ctx.env, e) for e in page]
        if "select" in params:
            items = [_select(item, params["select"]) for item in items]
        return 200, {"sys": {"type": "Array"}, "total": len(entries), "skip": skip, "limit": limit, "items": items}

    def _timestamp(self, ctx: _Ctx, entry: FakeEntry, name: str) -> float:
        if name == "createdAt":
            return entry.created_at
        if ctx.api == "cda":
            return entry.published_at or entry.updated_at
        return entry.updated_at

    def _filter(self, ctx: _Ctx, entries: list[FakeEntry], name: str, value: str) -> list[FakeEntry]:
        if name in ("limit", "skip", "order", "locale", "select", "include"):
            return entries
        if name == "content_type":
            if value not in ctx.env.content_types:
                raise _Fail(400, "InvalidQuery", f"Unknown content type: {value}")
            return [e for e in entries if e.content_type == value]
        if name in ("sys.id", "sys.id[in]", "sys.id[nin]"):
            ids = set(value.split(",")) if value else set()
            if name == "sys.id[nin]":
                return [e for e in entries if e.id not in ids]
            return [e for e in entries if e.id in ids]
        match = re.fullmatch(r"sys\.(updatedAt|createdAt)\[(gte|gt|lte|lt)\]", name)
        if match:
            bound = _parse_time(value)
            if bound is None:
                raise _Fail(400, "InvalidQuery", f"{name}: {value!r} is not a date")
            attr, op = match.groups()
            compare = {
                "gte": lambda a, b: a >= b,
                "gt": lambda a, b: a > b,
                "lte": lambda a, b: a <= b,
                "lt": lambda a, b: a < b,
            }[op]
            # Contentful compares at millisecond precision.
            return [e for e in entries if compare(round(self._timestamp(ctx, e, attr), 3), round(bound, 3))]
        raise _Fail(400, "InvalidQuery", f"The fake does not support the query parameter {name!r}")

    def _order(self, ctx: _Ctx, entries: list[FakeEntry], order: str) -> list[FakeEntry]:
        keys = [k.strip() for k in order.split(",") if k.strip()]
        for key in reversed(keys):
            descending = key.startswith("-")
            name = key.lstrip("-")
            if name == "sys.id":
                entries = sorted(entries, key=lambda e: e.id, reverse=descending)
            elif name in ("sys.updatedAt", "sys.createdAt"):
                attr = name.split(".")[1]
                entries = sorted(entries, key=lambda e: round(self._timestamp(ctx, e, attr), 3), reverse=descending)
            else:
                raise _Fail(400, "InvalidQuery", f"The fake cannot order by {name!r}")
        return entries

    # -- the Sync API --------------------------------------------------------------------------

    def _sync(self, ctx: _Ctx) -> tuple[int, Any]:
        params = ctx.params
        env = ctx.env
        if "sync_token" in params:
            if "initial" in params:
                raise _Fail(400, "BadRequest", "initial and sync_token cannot be combined.")
            state = self._read_token(env, params["sync_token"])
        elif params.get("initial") == "true":
            sync_type = params.get("type", "all")
            if sync_type not in SYNC_TYPES:
                raise _Fail(400, "InvalidQuery", f"Unknown sync type {sync_type!r}")
            content_type = params.get("content_type")
            if content_type is not None and sync_type != "Entry":
                raise _Fail(400, "InvalidQuery", "content_type can only be used with type=Entry.")
            if content_type is not None and content_type not in env.content_types:
                raise _Fail(400, "InvalidQuery", f"Unknown content type: {content_type}")
            limit = _int_param(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
            state = {
                "since": 0,
                "until": None,
                "after": 0,
                "initial": True,
                "type": sync_type,
                "ct": content_type,
                "limit": limit,
            }
        else:
            raise _Fail(400, "BadRequest", "Either initial=true or a sync_token is required.")
        # A pass is a snapshot: the first page fixes the newest change it covers.
        until = state["until"] if state["until"] is not None else env.seq
        candidates = self._sync_items(env, state, until)
        page = candidates[: state["limit"]]
        # Contentful's own URLs name the space only (the token carries the environment), e.g.
        # https://cdn.contentful.com/spaces/cfexampleapi/sync?sync_token=w5ZGw6JFwqZmVcKsE8Kow4grw45QdybCnV_Cg8…
        url = f"{ctx.base}/spaces/{env.space_id}/sync"
        body: Json = {"sys": {"type": "Array"}, "items": [item for _, item in page]}
        if len(candidates) > state["limit"]:
            token = self._token(env, {**state, "until": until, "after": page[-1][0]})
            body["nextPageUrl"] = f"{url}?sync_token={token}"
        else:
            token = self._token(env, {**state, "since": until, "until": None, "after": 0, "initial": False})
            body["nextSyncUrl"] = f"{url}?sync_token={token}"
        return 200, body

    def _sync_items(self, env: FakeEnvironment, state: Json, until: int) -> list[tuple[int, Json]]:
        sync_type, content_type, initial = state["type"], state["ct"], state["initial"]
        lower = max(state["since"], state["after"])
        out: list[tuple[int, Json]] = []
        wants_entries = sync_type in ("all", "Entry")
        wants_deletions = not initial and sync_type in ("all", "Deletion", "DeletedEntry")
        for entry in env.entries.values():
            if not (lower < entry.cda_seq <= until):
                continue
            if entry.published:
                if wants_entries and (content_type is None or entry.content_type == content_type):
                    out.append((entry.cda_seq, self._cda_entry(env, entry)))
            elif wants_deletions and entry.published_counter > 0:
                out.append((entry.cda_seq, self._deleted_entry(env, entry)))
        if sync_type in ("all", "Asset"):
            for asset in env.assets.values():
                if lower < asset.cda_seq <= until:
                    out.append((asset.cda_seq, self._asset(env, asset)))
        out.sort(key=lambda pair: pair[0])
        return out

    def _token(self, env: FakeEnvironment, state: Json) -> str:
        payload = json.dumps({"s": env.space_id, "e": env.id, **state}, sort_keys=True, separators=(",", ":"))
        return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")

    def _read_token(self, env: FakeEnvironment, token: str) -> Json:
        try:
            padded = token + "=" * (-len(token) % 4)
            state = json.loads(base64.urlsafe_b64decode(padded.encode()))
            if state.pop("s") != env.space_id or state.pop("e") != env.id:
                raise ValueError("another space")
        except (ValueError, KeyError, TypeError):
            raise _Fail(400, "BadRequest", "The sync token is invalid.") from None
        return dict(state)

    # -- writes (CMA) --------------------------------------------------------------------------

    def _version_header(self, ctx: _Ctx) -> int | None:
        raw = ctx.header("x-contentful-version")
        if raw is None:
            return None
        try:
            return int(raw)
        except ValueError:
            raise _Fail(400, "BadRequest", "X-Contentful-Version must be an integer.") from None

    def _put_entry(self, ctx: _Ctx) -> tuple[int, Any]:
        env = ctx.env
        entry_id = ctx.request.path_params["id"]
        if not ID_RE.match(entry_id):
            raise _Fail(400, "BadRequest", f"Invalid id {entry_id!r}: use 1-64 characters of [A-Za-z0-9._-].")
        body = ctx.body if isinstance(ctx.body, dict) else {}
        fields = body.get("fields", {})
        if not isinstance(fields, dict):
            raise _invalid_entry(
                [{"name": "type", "type": "Object", "path": ["fields"], "details": "fields must be an object"}]
            )
        version = self._version_header(ctx)
        existing = env.entries.get(entry_id)
        if existing is not None and existing.deleted:
            existing = None
        if existing is None:
            if version is not None:
                raise _not_found("Entry", entry_id)
            content_type = ctx.header("x-contentful-content-type")
            if not content_type:
                raise _Fail(400, "BadRequest", "Creating an entry needs the X-Contentful-Content-Type header.")
            if content_type not in env.content_types:
                raise _invalid_entry(
                    [
                        {
                            "name": "notResolvable",
                            "path": ["sys", "contentType"],
                            "details": f"Unknown content type {content_type}",
                        }
                    ]
                )
            self._validate(env, env.content_types[content_type], fields)
            now = self.clock()
            entry = FakeEntry(entry_id, content_type, copy.deepcopy(fields), 1, now, now)
            env.entries[entry_id] = entry
            return 201, self._cma_entry(env, entry)
        if version != existing.version:
            raise _Fail(409, "VersionMismatch")
        self._validate(env, env.content_types[existing.content_type], fields)
        existing.fields = copy.deepcopy(fields)
        self._touch(existing)
        return 200, self._cma_entry(env, existing)

    def _live(self, ctx: _Ctx) -> FakeEntry:
        entry_id = ctx.request.path_params["id"]
        entry = ctx.env.entries.get(entry_id)
        if entry is None or entry.deleted:
            raise _not_found("Entry", entry_id)
        return entry

    def _delete_entry(self, ctx: _Ctx) -> tuple[int, Any]:
        entry = self._live(ctx)
        if self._version_header(ctx) not in (None, entry.version):
            raise _Fail(409, "VersionMismatch")
        if entry.published:
            raise _Fail(400, "BadRequest", "Cannot delete a published entry; unpublish it first.")
        self.delete_entry(ctx.env, entry.id)
        return 204, None

    def _publish(self, ctx: _Ctx) -> tuple[int, Any]:
        entry = self._live(ctx)
        if self._version_header(ctx) != entry.version:
            raise _Fail(409, "VersionMismatch")
        content_type = ctx.env.content_types[entry.content_type]
        missing = [
            {
                "name": "required",
                "path": ["fields", f["id"]],
                "details": 'The property "{}" is required here'.format(f["id"]),
            }
            for f in content_type["fields"]
            if f.get("required")
            and not f.get("omitted")
            and ctx.env.default_locale not in entry.fields.get(f["id"], {})
        ]
        if missing:
            # Publishing checks what a save does not; Contentful names that failure ValidationFailed.
            raise _Fail(422, "ValidationFailed", "Validation error", details={"errors": missing})
        self.publish(ctx.env, entry.id)
        return 200, self._cma_entry(ctx.env, entry)

    def _unpublish(self, ctx: _Ctx) -> tuple[int, Any]:
        entry = self._live(ctx)
        if self._version_header(ctx) != entry.version:
            raise _Fail(409, "VersionMismatch")
        if not entry.published:
            raise _Fail(400, "BadRequest", "Not published.")
        self.unpublish(ctx.env, entry.id)
        return 200, self._cma_entry(ctx.env, entry)

    def _validate(self, env: FakeEnvironment, content_type: Json, fields: Mapping[str, Any]) -> None:
        errors: list[Json] = []
        specs = {f["id"]: f for f in content_type["fields"]}
        for field_id, by_locale in fields.items():
            spec = specs.get(field_id)
            path: list[Any] = ["fields", field_id]
            if spec is None:
                errors.append(
                    {"name": "unknown", "path": path, "details": f'The property "{field_id}" is not expected'}
                )
                continue
            if not isinstance(by_locale, dict):
                errors.append(
                    {"name": "type", "type": "Object", "path": path, "details": "Expected an object of locales"}
                )
                continue
            allowed = env.locale_codes if spec.get("localized") else [env.default_locale]
            for locale, value in by_locale.items():
                if locale not in allowed:
                    errors.append(
                        {
                            "name": "unknown",
                            "path": [*path, locale],
                            "details": f'The property "{locale}" is not expected',
                        }
                    )
                    continue
                problem = _check_value(spec, value, [*path, locale])
                if problem is not None:
                    errors.append(problem)
        if errors:
            raise _invalid_entry(errors)


# --------------------------------------------------------------------------------------------------
# Helpers


def _field_type(text: str) -> Json:
    parts = text.split(":")
    if parts[0] == "Link":
        return {"type": "Link", "linkType": parts[1]}
    if parts[0] == "Array":
        items = {"type": parts[1]} if parts[1] != "Link" else {"type": "Link", "linkType": parts[2]}
        return {"type": "Array", "items": items}
    return {"type": parts[0]}


def _int_param(params: Mapping[str, str], name: str, default: int, low: int, high: int | None) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _Fail(400, "InvalidQuery", f"{name} must be an integer") from None
    if value < low or (high is not None and value > high):
        raise _Fail(400, "InvalidQuery", f"{name} must be within {low}..{high}")
    return value


def _parse_time(text: str) -> float | None:
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def _select(item: Json, select: str) -> Json:
    out: Json = {}
    for path in (p.strip() for p in select.split(",") if p.strip()):
        parts = path.split(".")
        source: Any = item
        target = out
        for i, part in enumerate(parts):
            if not isinstance(source, dict) or part not in source:
                break
            if i == len(parts) - 1:
                target[part] = copy.deepcopy(source[part])
            else:
                target = target.setdefault(part, {})
                source = source[part]
    out.setdefault("sys", copy.deepcopy(item["sys"]))  # sys always comes back
    return out


def _type_error(expected: str, value: Any, path: list[Any]) -> Json:
    return {
        "name": "type",
        "type": expected,
        "value": value,
        "path": path,
        "details": f'The type of "value" is incorrect, expected type: {expected}',
    }


def _size_error(maximum: int, value: Any, path: list[Any]) -> Json:
    return {
        "name": "size",
        "max": maximum,
        "value": value[:100] if isinstance(value, str) else value,
        "path": path,
        "details": f"Size must be at most {maximum}",
    }


def _check_link(link_type: str, value: Any, path: list[Any]) -> Json | None:
    sys = value.get("sys") if isinstance(value, dict) else None
    if not (
        isinstance(sys, dict)
        and sys.get("type") == "Link"
        and sys.get("linkType") == link_type
        and isinstance(sys.get("id"), str)
        and ID_RE.match(sys["id"])
    ):
        return _type_error("Link", value, path)
    return None


def _check_scalar(kind: str, spec: Mapping[str, Any], value: Any, path: list[Any]) -> Json | None:
    if kind in ("Symbol", "Text"):
        if not isinstance(value, str):
            return _type_error(kind, value, path)
        maximum = MAX_SYMBOL if kind == "Symbol" else MAX_TEXT
        return _size_error(maximum, value, path) if len(value) > maximum else None
    if kind == "Integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return _type_error("Integer", value, path)
        return _type_error("Integer", value, path) if abs(value) > MAX_INTEGER else None
    if kind == "Number":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        return None if ok else _type_error("Number", value, path)
    if kind == "Boolean":
        return None if isinstance(value, bool) else _type_error("Boolean", value, path)
    if kind == "Date":
        if not isinstance(value, str) or not DATE_RE.match(value) or _parse_date(value) is None:
            return _type_error("Date", value, path)
        return None
    if kind == "Link":
        return _check_link(str(spec.get("linkType")), value, path)
    if kind == "Location":
        ok = isinstance(value, dict) and all(
            isinstance(value.get(k), (int, float)) and not isinstance(value.get(k), bool) for k in ("lat", "lon")
        )
        return None if ok else _type_error("Location", value, path)
    if kind == "RichText":
        ok = isinstance(value, dict) and value.get("nodeType") == "document" and isinstance(value.get("content"), list)
        return None if ok else _type_error("RichText", value, path)
    if kind == "Object":
        return None if isinstance(value, (dict, list)) else _type_error("Object", value, path)
    return _type_error(kind, value, path)


def _check_value(spec: Mapping[str, Any], value: Any, path: list[Any]) -> Json | None:
    kind = spec["type"]
    if kind != "Array":
        return _check_scalar(kind, spec, value, path)
    if not isinstance(value, list):
        return _type_error("Array", value, path)
    items = spec.get("items") or {}
    for i, item in enumerate(value):
        problem = _check_scalar(items.get("type", "Symbol"), items, item, [*path, i])
        if problem is not None:
            return problem
    return None


def _parse_date(text: str) -> dt.date | None:
    try:
        if len(text) == 10:
            return dt.date.fromisoformat(text)
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).date()
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------------
# Loopback server


@contextlib.contextmanager
def serve(fake: FakeContentful, *, host: str = "127.0.0.1") -> Iterator[str]:
    """Run the fake on a free loopback port in a thread.

    Run the fake on a free loopback port in a thread; yields its base URL (the CDA is ``<base>/cda``,
    the CMA ``<base>/cma``); stops cleanly on exit.
    """
    with serve_app(fake.app, name="contentful", host=host, interface="asgi3") as url:
        yield url

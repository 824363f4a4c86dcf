"""``NotionClient``: a typed client of the Notion REST API (2025-09-03) over ``connectors.http``.

Every request goes through the shared client base (``connectors.http.JsonApiClient``): one rate
limiter per token (3 req/s), retries with backoff on 429 (honouring ``Retry-After``), 409
``conflict_error``, 5xx and timeouts, typed errors and redaction of the token from every message
and log line.

Non-idempotent calls (create a page, append blocks, create a database) are sent with
``retry_options(retry_ambiguous=False)``: after a read timeout or a 500/502/504 the server may have
acted, and resending could create a second page, so the error surfaces instead (``TransientError``)
and the engine's reconcile adopts the page by its key. 409 and 429 are not ambiguous (nothing
happened) and are retried for every call.

Ids: Notion accepts ids with or without dashes; :func:`normalize_id` also takes a Notion URL. In
2025-09-03 a *database* holds one or more *data sources*; :meth:`NotionClient.resolve` turns either
kind of id into a :class:`DataSourceRef`, trying the other kind when the first answers 404. Property
ids come back URL-encoded (``swq%5C``); as query parameters they are decoded once before httpx encodes
them (:func:`query_property_id`), or Notion would receive them encoded twice.
"""

from __future__ import annotations

import logging
import re
import urllib.parse
import uuid
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Literal

from connectors.core import ConfigError
from connectors.http import (
    Json,
    NextCursorPagination,
    NotFound,
    RetryPolicy,
    TokenApiClient,
    TokenCredentials,
)
from connectors.notion.settings import (
    CREATE_TIMEOUT,
    DEFAULT_TIMEOUT,
    NOTION_API_BASE,
    NOTION_RATE,
    NOTION_RETRY_STATUSES,
    NOTION_VERSION,
    PAGE_SIZE,
    SERVICE,
)

__all__ = [
    "DataSourceRef",
    "NextCursorPagination",
    "NotionClient",
    "NotionCredentials",
    "normalize_id",
    "query_property_id",
]

logger = logging.getLogger(__name__)

_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")


def normalize_id(value: str, *, what: str = "id") -> str:
    """A Notion id in its dashed form, from an id with or without dashes or a Notion URL.

    In a URL the last 32-hex run of the path wins (``.../Tasks-1a2b...?v=<view id>`` names the
    database, not the view in the query string).

    Raises:
        ConfigError: No id can be found in ``value``.
    """
    text = str(value or "").strip()
    path = text.split("?", 1)[0].split("#", 1)[0]
    found = _UUID_RE.findall(path)
    if not found:
        raise ConfigError(f"Notion {what} {text!r} is not a Notion id (32 hex digits, dashes optional) or URL")
    return str(uuid.UUID(found[-1].replace("-", "")))


def query_property_id(property_id: str) -> str:
    """A property id as Notion lists it (``swq%5C``, ``%3DqI%3B``, ``title``), ready for httpx's ``params``.

    Notion returns property ids already URL-encoded. httpx encodes query values itself, so the id as
    listed would reach Notion encoded twice (``swq%255C``) and the query fail with 400
    ``validation_error``. Decoding it once first makes the wire carry it encoded once, which is what
    Notion reads back to the id; notion-sdk-js does the same (``decodeURIComponent`` before
    ``URLSearchParams.append``, PR #402). Ids without ``%`` (``title``) are unchanged.
    """
    return urllib.parse.unquote(property_id)


class NotionCredentials(TokenCredentials):
    """The integration token of a Notion source or destination (``NOTION_TOKEN`` unless told otherwise)."""

    system = "notion"
    what = "a Notion integration token"


@dataclass(frozen=True)
class DataSourceRef:
    """Where pages live: a data source (and its database), with the schema as last read.

    Attributes:
        data_source_id: The data source pages are created in and queried from.
        database_id: Its database (the container users share and see in the sidebar), when known.
        data_source: The data source object (``properties`` is the schema).
        siblings: Every data source id of the database, in Notion's order.
    """

    data_source_id: str
    database_id: str | None
    data_source: Json
    siblings: tuple[str, ...] = ()

    @property
    def properties(self) -> dict[str, Json]:
        """The data source's schema: property name to property object."""
        return dict(self.data_source.get("properties") or {})


class NotionClient(TokenApiClient):
    """A Notion REST client for one integration token (a :class:`~connectors.http.TokenApiClient`).

    Pages with :class:`~connectors.http.NextCursorPagination` (``start_cursor`` in, ``next_cursor`` out
    while ``has_more``). A non-object answer comes back as ``{"results": body}``.

    Args:
        token: The integration (or OAuth access) token; sent as ``Authorization: Bearer``.
        base_url: API base (a loopback fake in tests).
        rate: The token's request rate (shared by every client of the same token).
        timeout: Default per-request timeout (creates get ``CREATE_TIMEOUT``).
        http: Transport, sleep, clock and retry policy (:class:`~connectors.http.HttpSettings`); the
            default retry policy also retries 409 ``conflict_error``.
    """

    service = SERVICE
    envelope = "results"
    allow_empty = False
    create_timeout = CREATE_TIMEOUT
    pagination = NextCursorPagination()

    credentials_type = NotionCredentials
    default_base_url = NOTION_API_BASE
    default_rate = NOTION_RATE
    default_retry = RetryPolicy(retry_statuses=NOTION_RETRY_STATUSES)
    default_timeout = DEFAULT_TIMEOUT

    def headers_for(self, token: str) -> dict[str, str]:
        """The token, the API version every request must name, and JSON bodies."""
        return {
            "Authorization": f"Bearer {token}",
            "Notion-Version": NOTION_VERSION,
            "Content-Type": "application/json",
        }

    # -- objects ----------------------------------------------------------------------------------

    async def retrieve_database(self, database_id: str) -> Json:
        """``GET /v1/databases/{id}``."""
        return await self.request("GET", f"/v1/databases/{database_id}")

    async def retrieve_data_source(self, data_source_id: str) -> Json:
        """``GET /v1/data_sources/{id}``."""
        return await self.request("GET", f"/v1/data_sources/{data_source_id}")

    async def retrieve_page(self, page_id: str) -> Json:
        """``GET /v1/pages/{id}``."""
        return await self.request("GET", f"/v1/pages/{page_id}")

    async def create_page(self, body: Json) -> Json:
        """``POST /v1/pages`` (never resent after an ambiguous failure)."""
        return await self.request("POST", "/v1/pages", json=body, create=True)

    async def update_page(self, page_id: str, body: Json) -> Json:
        # Setting properties is idempotent: a retry after an ambiguous failure writes the same values.
        """``PATCH /v1/pages/{id}`` (setting properties is idempotent, so it is retried)."""
        return await self.request("PATCH", f"/v1/pages/{page_id}", json=body)

    async def append_block_children(self, block_id: str, children: Sequence[Json]) -> Json:
        # Appending is not idempotent: a resent append would duplicate the blocks.
        """``PATCH /v1/blocks/{id}/children`` (never resent: it would duplicate the blocks)."""
        return await self.request(
            "PATCH", f"/v1/blocks/{block_id}/children", json={"children": list(children)}, create=True
        )

    async def update_data_source(self, data_source_id: str, body: Json) -> Json:
        # Adding the same properties again changes nothing: a retry after an ambiguous failure is safe.
        """``PATCH /v1/data_sources/{id}`` (``properties`` adds or changes those named; others stay)."""
        return await self.request("PATCH", f"/v1/data_sources/{data_source_id}", json=body)

    async def create_database(self, body: Json) -> Json:
        """``POST /v1/databases`` (never resent after an ambiguous failure)."""
        return await self.request("POST", "/v1/databases", json=body, create=True)

    # -- queries ----------------------------------------------------------------------------------

    async def query_data_source(
        self,
        data_source_id: str,
        *,
        filter: Json | None = None,
        sorts: Sequence[Json] | None = None,
        start_cursor: str | None = None,
        page_size: int = PAGE_SIZE,
        filter_properties: Sequence[str] | None = None,
    ) -> Json:
        """One page of ``POST /v1/data_sources/{id}/query`` (pages in trash are never returned).

        Args:
            data_source_id: The data source.
            filter: Notion's filter object (None: every page).
            sorts: Notion's sort objects.
            start_cursor: The previous page's ``next_cursor`` (None: the first page).
            page_size: Pages per answer (at most 100).
            filter_properties: Property ids as Notion lists them (URL-encoded, e.g. ``swq%5C``); only
                these properties are returned. They are sent encoded once (see :func:`query_property_id`).
        """
        body: Json = {"page_size": page_size}
        if filter is not None:
            body["filter"] = filter
        if sorts:
            body["sorts"] = list(sorts)
        if start_cursor is not None:
            body["start_cursor"] = start_cursor
        params = {"filter_properties": [query_property_id(p) for p in filter_properties]} if filter_properties else None
        # A query only reads, so it is safe to resend.
        return await self.request("POST", f"/v1/data_sources/{data_source_id}/query", json=body, params=params)

    async def iter_query(
        self,
        data_source_id: str,
        *,
        filter: Json | None = None,
        sorts: Sequence[Json] | None = None,
        page_size: int = PAGE_SIZE,
        filter_properties: Sequence[str] | None = None,
    ) -> AsyncGenerator[Json, None]:
        """Every page (response body) of a query, lazily."""

        async def fetch(cursor: str | None) -> Json:
            return await self.query_data_source(
                data_source_id,
                filter=filter,
                sorts=sorts,
                start_cursor=cursor,
                page_size=page_size,
                filter_properties=filter_properties,
            )

        async for body in self.pagination.pages(fetch):
            yield body

    # -- id resolution ----------------------------------------------------------------------------

    async def resolve(
        self, object_id: str, *, expect: Literal["database", "data_source"] = "database"
    ) -> DataSourceRef:
        """The data source behind a database id or a data source id.

        The id is first read as ``expect``; if Notion answers 404 it is read as the other kind (a
        database id pasted where a data source id belongs, or the reverse, both work). A database with
        several data sources resolves to its first one (``siblings`` lists them all).

        Raises:
            ConfigError: Neither reading finds it (a wrong id, or not shared with the integration),
                or the database has no data source.
            AuthError: The token is invalid.
        """
        object_id = normalize_id(object_id)
        order: tuple[Literal["database", "data_source"], ...] = (
            ("database", "data_source") if expect == "database" else ("data_source", "database")
        )
        for kind in order:
            try:
                if kind == "database":
                    database = await self.retrieve_database(object_id)
                else:
                    data_source = await self.retrieve_data_source(object_id)
            except NotFound:
                continue
            if kind == "database":
                siblings = tuple(str(ds["id"]) for ds in database.get("data_sources") or [] if ds.get("id"))
                if not siblings:
                    raise ConfigError(f"Notion database {object_id} has no data source (is it a linked view?)")
                data_source = await self.retrieve_data_source(siblings[0])
                return DataSourceRef(siblings[0], object_id, data_source, siblings)
            parent = data_source.get("parent") or {}
            database_id = parent.get("database_id") if isinstance(parent, dict) else None
            if kind != expect:
                logger.info("Notion: %s is a data source id, not a database id; using it as one", object_id)
            return DataSourceRef(object_id, database_id, data_source, (object_id,))
        raise ConfigError(
            f"Notion: no database or data source with id {object_id} is visible to this integration "
            "(404 from both /v1/databases and /v1/data_sources). Check the id, and share the database "
            "with the integration (database menu ... -> Connections)."
        )

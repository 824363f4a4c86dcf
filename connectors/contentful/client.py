"""``ContentfulClient``: a typed client of Contentful's CDA (with the Sync API) and CMA over ``connectors.http``.

One client speaks to one API (``"cda"`` or ``"cma"``) of one space environment, with one token. Every
request goes through the shared toolkit (``make_client``): a limiter per token and API (CDA 55 req/s,
CMA 7 req/s), retries with backoff on 429 (honouring ``X-Contentful-RateLimit-Reset``), 5xx and
timeouts, typed errors and redaction of the token from every message and log line.

Errors beyond the toolkit's: a 422 becomes :class:`InvalidEntry` (a ``RecordError``) whose message
lists Contentful's validation details (``fields.title.en-US: size (max 256)``); a 409 stays the
toolkit's ``HTTPTransientError`` with ``status_code`` 409, which :func:`is_version_mismatch` tells apart.

Creates are ``PUT .../entries/{id}`` with an id derived from our key (see ``encode.entry_id_for``), so
they are idempotent: a create resent after a lost answer meets the entry it made (409) instead of
making a second one. That is why no request here opts out of the toolkit's retries.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal
from urllib.parse import quote

import httpx

from connectors.contentful.settings import (
    CDA_BASE,
    CDA_RATE,
    CMA_BASE,
    CMA_CONTENT_TYPE,
    CMA_RATE,
    DEFAULT_TIMEOUT,
    ITEMS_PAGE_SIZE,
    MAX_LIMIT,
    SERVICE,
)
from connectors.core import ConfigError, SyncError
from connectors.http import (
    HTTPErrorInfo,
    HTTPRecordError,
    HttpSettings,
    Json,
    JsonApiClient,
    NotFound,
    Rate,
    SyncTokenPagination,
    TokenCredentials,
    error_for_response,
)

__all__ = [
    "Api",
    "ContentfulClient",
    "ContentfulDeliveryCredentials",
    "ContentfulManagementCredentials",
    "InvalidEntry",
    "SyncTokenPagination",
    "is_version_mismatch",
]

logger = logging.getLogger(__name__)

Api = Literal["cda", "cma"]


class ContentfulDeliveryCredentials(TokenCredentials):
    """The Content Delivery API token of a Contentful source (limits are per token and API)."""

    system = "contentful"
    what = "a Content Delivery API token"
    limit_prefix = "contentful-cda"
    argument = "delivery_token"


class ContentfulManagementCredentials(TokenCredentials):
    """The Content Management API personal access token of a Contentful source or destination."""

    system = "contentful"
    what = "a Content Management API personal access token"
    limit_prefix = "contentful-cma"
    argument = "cma_token"


def is_version_mismatch(err: BaseException) -> bool:
    """Whether ``err`` is the CMA's 409 ``VersionMismatch`` (stale or missing ``X-Contentful-Version``)."""
    return isinstance(err, HTTPErrorInfo) and err.status_code == 409


class InvalidEntry(HTTPRecordError):
    """422: Contentful rejected the entry's fields (``InvalidEntry`` / ``ValidationFailed``).

    Attributes:
        errors: Contentful's ``details.errors`` (``name``, ``path``, ``details``, ...).
    """

    errors: list[Json]


def _describe_validation(errors: Sequence[Any]) -> str:
    parts: list[str] = []
    for error in errors[:10]:
        if not isinstance(error, Mapping):
            continue
        path = ".".join(str(p) for p in error.get("path") or []) or "entry"
        name = str(error.get("name") or "invalid")
        extra = ""
        if name == "size" and error.get("max") is not None:
            extra = f" (max {error['max']})"
        elif name == "type" and error.get("type"):
            extra = f" (expected {error['type']})"
        elif error.get("details"):
            extra = f" ({error['details']})"
        parts.append(f"{path}: {name}{extra}")
    if len(errors) > 10:
        parts.append(f"... {len(errors) - 10} more")
    return "; ".join(parts)


def _invalid_entry(response: httpx.Response, base: SyncError) -> SyncError:
    try:
        body = response.json()
    except ValueError:
        return base
    details = body.get("details") if isinstance(body, dict) else None
    errors = details.get("errors") if isinstance(details, dict) else None
    if not isinstance(errors, list) or not errors:
        return base
    request = response.request
    error_id = (body.get("sys") or {}).get("id", "InvalidEntry")
    summary = _describe_validation(errors)
    err = InvalidEntry(f"{SERVICE} {request.method} {request.url.path} -> 422 {error_id}: {summary}")
    err.errors = [e for e in errors if isinstance(e, dict)]
    if isinstance(base, HTTPErrorInfo):
        err.status_code, err.service, err.method = base.status_code, base.service, base.method
        err.url, err.body = base.url, base.body
    return err


class ContentfulClient(JsonApiClient):
    """A client of one Contentful API for one space environment and one token.

    A :class:`~connectors.http.JsonApiClient` whose paths are relative to the space environment;
    the Sync API pages with :class:`~connectors.http.SyncTokenPagination`.

    Args:
        token: A CDA delivery token (``api="cda"``) or a CMA personal access token (``api="cma"``).
        api: Which API.
        space_id: The space.
        environment: The environment (``master``).
        base_url: API base (default: Contentful's host for ``api``; a fake in tests).
        rate: The token's request rate (default: the API's documented limit).
        timeout: Per-request timeout.
        http: Transport, sleep, clock and retry policy (:class:`~connectors.http.HttpSettings`).
    """

    service = SERVICE
    envelope = "items"
    pagination = SyncTokenPagination()

    def __init__(
        self,
        token: str,
        *,
        api: Api,
        space_id: str,
        environment: str,
        base_url: str | None = None,
        rate: Rate | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        http: HttpSettings | None = None,
    ) -> None:
        """Check the token, API and space and build the client."""
        if not token:
            raise ConfigError(f"ContentfulClient ({api}) needs a token")
        if api not in ("cda", "cma"):
            raise ConfigError(f"ContentfulClient: api must be 'cda' or 'cma', got {api!r}")
        if not space_id:
            raise ConfigError("ContentfulClient needs a space_id")
        self.api: Api = api
        self.space_id = space_id
        self.environment = environment
        self._prefix = f"/spaces/{quote(space_id, safe='')}/environments/{quote(environment, safe='')}"
        headers = {"Authorization": f"Bearer {token}"}
        # limits are per token and API (contentful-cda:<digest>, contentful-cma:<digest>): their rates differ
        kind = ContentfulDeliveryCredentials if api == "cda" else ContentfulManagementCredentials
        if api == "cma":
            headers["Content-Type"] = CMA_CONTENT_TYPE
        super().__init__(
            base_url=(base_url or (CDA_BASE if api == "cda" else CMA_BASE)).rstrip("/"),
            headers=headers,
            credential=kind().limit_key(token),
            rate=rate if rate is not None else (CDA_RATE if api == "cda" else CMA_RATE),
            http=http,
            timeout=timeout,
        )

    def url_for(self, path: str) -> str:
        """``/spaces/{space}/environments/{env}{path}``: every path is relative to the space environment.

        Args:
            path: The path given to :meth:`request` (``/entries/{id}``).
        """
        return self._prefix + path

    def error_for(self, response: httpx.Response) -> SyncError:
        """The toolkit's typed error, except a 422 with validation details: :class:`InvalidEntry`.

        Args:
            response: A 4xx/5xx response whose body has been read.
        """
        err = error_for_response(response)
        return _invalid_entry(response, err) if response.status_code == 422 else err

    # -- space ------------------------------------------------------------------------------------

    async def locales(self) -> list[Json]:
        """The locales of the space environment."""
        body = await self.request("GET", "/locales", params={"limit": MAX_LIMIT})
        return [loc for loc in body.get("items") or [] if isinstance(loc, dict)]

    async def content_type(self, content_type_id: str) -> Json:
        """One content type (its fields, validations, display field)."""
        return await self.request("GET", f"/content_types/{quote(content_type_id, safe='')}")

    async def content_types(self) -> list[Json]:
        """Every content type of the space environment."""
        body = await self.request("GET", "/content_types", params={"limit": MAX_LIMIT})
        return [ct for ct in body.get("items") or [] if isinstance(ct, dict)]

    # -- the Sync API (CDA) -----------------------------------------------------------------------

    async def sync(
        self,
        token: str | None,
        *,
        content_type: str | None = None,
        sync_type: str | None = None,
        limit: int | None = None,
    ) -> Json:
        """One Sync API page: an initial sync, or the page or sync a token names.

        One Sync API page: an initial sync when ``token`` is None (filtered by ``sync_type`` /
        ``content_type``, ``limit`` items a page), else the page or sync the token names (its filter and
        limit are baked in, so none are sent).
        """
        if self.api != "cda":
            raise ConfigError("Contentful: the Sync API exists on the Content Delivery API only")
        params: dict[str, Any]
        if token is None:
            params = {"initial": "true"}
            if content_type is not None:
                params["type"] = "Entry"
                params["content_type"] = content_type
            elif sync_type is not None:
                params["type"] = sync_type
            if limit is not None:
                params["limit"] = limit
        else:
            params = {"sync_token": token}
        return await self.request("GET", "/sync", params=params)

    # -- entries ----------------------------------------------------------------------------------

    async def entries(self, params: Mapping[str, Any]) -> Json:
        """One page of ``GET .../entries`` (CDA: published only, add ``locale=*`` for every locale)."""
        return await self.request("GET", "/entries", params=params)

    async def entries_by_id(self, ids: Sequence[str], *, content_type: str | None = None) -> list[Json]:
        """The entries with these ids that exist (every locale), ``ITEMS_PAGE_SIZE`` ids a request."""
        out: list[Json] = []
        unique = list(dict.fromkeys(i for i in ids if i))
        for start in range(0, len(unique), ITEMS_PAGE_SIZE):
            chunk = unique[start : start + ITEMS_PAGE_SIZE]
            params: dict[str, Any] = {"sys.id[in]": ",".join(chunk), "limit": len(chunk)}
            if content_type is not None:
                params["content_type"] = content_type
            if self.api == "cda":
                params["locale"] = "*"
            body = await self.entries(params)
            out.extend(e for e in body.get("items") or [] if isinstance(e, dict))
        return out

    async def get_entry(self, entry_id: str) -> Json | None:
        """The entry (every locale), or None when it does not exist (or, on the CDA, is not published)."""
        params = {"locale": "*"} if self.api == "cda" else None
        try:
            return await self.request("GET", f"/entries/{quote(entry_id, safe='')}", params=params)
        except NotFound:
            return None

    async def put_entry(
        self,
        entry_id: str,
        fields: Mapping[str, Any],
        *,
        content_type: str | None = None,
        version: int | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Json:
        """Create (``content_type``, no ``version``) or replace (``version``) the entry with this id.

        The body replaces every field: the CMA never merges, so a caller updating an entry sends the
        fields it read plus its changes. A create on an id that exists, and a replace with a stale
        version, both answer 409 ``VersionMismatch``.
        """
        if (content_type is None) == (version is None):
            raise ConfigError("put_entry: pass content_type to create or version to update, not both")
        headers = (
            {"X-Contentful-Content-Type": content_type}
            if content_type is not None
            else {"X-Contentful-Version": str(version)}
        )
        body: Json = {"fields": dict(fields)}
        if metadata is not None:
            body["metadata"] = dict(metadata)
        return await self.request("PUT", f"/entries/{quote(entry_id, safe='')}", json=body, headers=headers)

    async def publish(self, entry_id: str, version: int) -> Json:
        """Publish the entry's current draft (``version`` must be its current version)."""
        return await self.request(
            "PUT",
            f"/entries/{quote(entry_id, safe='')}/published",
            headers={"X-Contentful-Version": str(version)},
        )

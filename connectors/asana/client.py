"""``AsanaClient``: a typed client of the Asana REST API (``/api/1.0``) over ``connectors.http``.

Every request goes through the shared client base (``connectors.http.JsonApiClient``) under one
credential key per token: one rate limiter (150 or 1,500 requests a minute), Asana's concurrent
request limits (50 reads and 15 writes in flight), retries with backoff on 429 (honouring
``Retry-After``), 5xx and timeouts, typed errors and redaction of the token from every message and
log line.

Asana wraps every body in an envelope: requests send ``{"data": {...}}``, answers carry ``{"data": ...}``
(and ``next_page`` on listings), errors ``{"errors": [{"message": ..., "help": ...}]}``.

Creating a task is not idempotent: it is sent with ``retry_options(retry_ambiguous=False)``, so after a
read timeout or a 500/502/504 the error surfaces instead of a second task; the engine's reconcile then
adopts the task by its key field. Updates (``PUT``) set values and are safe to resend.

:meth:`AsanaClient.batch` sends up to 10 actions in one ``POST /batch`` (developers.asana.com/docs/
batch-requests): Asana answers 200 with one ``{status_code, headers, body}`` per action, in order, and
each action's failure is returned as the typed error a single request would have raised. A batch
holding a create is not resent after an ambiguous failure either. A 429 fails the whole batch ("If
any of the actions ... would exceed any of the enforced limits, the entire request will fail"), so
the transport's retry of the batch is safe.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

import httpx

from connectors.asana.settings import (
    ASANA_API_BASE,
    ASANA_FREE_RATE,
    BATCH_PATH,
    CREATE_TIMEOUT,
    DEFAULT_TIMEOUT,
    MAX_BATCH_ACTIONS,
    MAX_CONCURRENT_READS,
    MAX_CONCURRENT_WRITES,
    PAGE_SIZE,
    SERVICE,
)
from connectors.core import ConfigError, SyncError, TransientError
from connectors.http import (
    HTTPRecordError,
    Json,
    TokenApiClient,
    TokenCredentials,
)
from connectors.http import OffsetPagination as _OffsetPagination

__all__ = [
    "AsanaClient",
    "AsanaCredentials",
    "OffsetExpired",
    "OffsetPagination",
    "is_offset_expired",
    "parse_project_gid",
]

_GID_RE = re.compile(r"^\d+$")
# https://app.asana.com/0/<project>/<task or list>  and  https://app.asana.com/1/<workspace>/project/<project>/...
_URL_PROJECT_RE = re.compile(r"/project/(\d+)|/0/(\d+)")


class AsanaCredentials(TokenCredentials):
    """The personal access token of an Asana connector (``ASANA_PAT`` unless told otherwise)."""

    system = "asana"
    what = "an Asana personal access token"


def parse_project_gid(value: str) -> str:
    """A project gid from a gid or an Asana project URL.

    A project gid from a gid or an Asana project URL (``https://app.asana.com/0/<gid>/list`` or
    ``https://app.asana.com/1/<workspace>/project/<gid>/list``).

    Raises:
        ConfigError: No project gid can be found in ``value``.
    """
    text = str(value or "").strip()
    if _GID_RE.match(text):
        return text
    found = _URL_PROJECT_RE.search(text.split("?", 1)[0])
    if found:
        return found.group(1) or found.group(2)
    raise ConfigError(f"Asana project {text!r} is not a project gid (digits) or an Asana project URL")


# Asana prefixes a parameter's error with its name ("offset: ..."), JSON-escaped inside the body.
_OFFSET_ERROR_RE = re.compile(r'"message"\s*:\s*"offset\b', re.IGNORECASE)


class OffsetExpired(TransientError):
    """Asana refused an ``offset`` it handed out (400): the listing must restart.

    Asana refused an ``offset`` token it handed out (400): expired (``offset: Your pagination token
    has expired.``) or no longer recognised (``offset: Not a valid offset for this query.``); the
    listing must restart.

    A ``TransientError``: whoever does not restart the listing has the pass retried later.
    """


def is_offset_expired(err: BaseException) -> bool:
    """Whether ``err`` is Asana refusing the ``offset`` of a paged request (expired or unrecognised).

    Any 400 whose message is about the ``offset`` parameter counts: the token came from Asana's own
    ``next_page`` unaltered, so a refusal means it is no longer usable, whatever the wording.
    """
    if not isinstance(err, HTTPRecordError) or err.status_code != 400:
        return False
    return "pagination token" in err.body.lower() or bool(_OFFSET_ERROR_RE.search(err.body))


class OffsetPagination(_OffsetPagination):
    """Asana's pagination strategy: send ``limit`` (1-100) and ``offset``; read ``next_page.offset``.

    Offset tokens expire ("after some time, as data may have changed"); an expired one answers 400
    and is raised here as :class:`OffsetExpired` so the caller can restart from the first page.
    """

    async def fetch_page(self, fetch: Callable[[str | None], Awaitable[Json]], token: str | None) -> Json:
        """One page; Asana refusing the offset (expired or unrecognised) raises :class:`OffsetExpired`.

        Args:
            fetch: Sends the request for the page ``token`` names.
            token: The offset (None: the first page).
        """
        try:
            return await fetch(token)
        except HTTPRecordError as err:
            if token is not None and is_offset_expired(err):
                raise OffsetExpired(str(err)) from None
            raise


class AsanaClient(TokenApiClient):
    """An Asana REST client for one personal access token (a :class:`~connectors.http.TokenApiClient`).

    :meth:`request` returns the whole answer (``data``, and ``next_page`` on listings); send a request
    object as ``json={"data": ...}`` (Asana's envelope).

    Args:
        token: The personal access token (or an OAuth access token); sent as ``Authorization: Bearer``.
        base_url: API base (a loopback fake in tests).
        rate: The token's request rate (shared by every client of the same token).
        max_concurrent: GETs in flight at once on the token (Asana: 50).
        max_concurrent_writes: Writes in flight at once on the token (Asana: 15).
        timeout: Default per-request timeout (creates get ``CREATE_TIMEOUT``).
        http: Transport, sleep, clock and retry policy (:class:`~connectors.http.HttpSettings`).
    """

    service = SERVICE
    envelope = "data"
    allow_empty = False
    create_timeout = CREATE_TIMEOUT
    pagination = OffsetPagination()

    credentials_type = AsanaCredentials
    default_base_url = ASANA_API_BASE
    default_rate = ASANA_FREE_RATE
    default_timeout = DEFAULT_TIMEOUT
    default_max_concurrent = MAX_CONCURRENT_READS
    default_max_concurrent_writes = MAX_CONCURRENT_WRITES

    # -- objects ----------------------------------------------------------------------------------

    async def get_project(self, project_gid: str, *, opt_fields: Iterable[str] = ()) -> Json:
        """``GET /projects/{gid}``: the project (``opt_fields`` only, when given)."""
        params = {"opt_fields": ",".join(opt_fields)} if opt_fields else None
        return dict((await self.request("GET", f"/projects/{project_gid}", params=params))["data"])

    async def get_user(self, user: str, *, opt_fields: Iterable[str] = ("name", "email", "workspaces")) -> Json:
        """A user by gid, email or ``me`` (Asana accepts all three in the path)."""
        params = {"opt_fields": ",".join(opt_fields)} if opt_fields else None
        return dict((await self.request("GET", f"/users/{user}", params=params))["data"])

    async def create_task(self, data: Json, *, opt_fields: Iterable[str] = ("gid",)) -> Json:
        """``POST /tasks`` (never resent after an ambiguous failure): the new task."""
        params = {"opt_fields": ",".join(opt_fields)} if opt_fields else None
        return dict((await self.request("POST", "/tasks", json={"data": data}, params=params, create=True))["data"])

    async def update_task(self, task_gid: str, data: Json, *, opt_fields: Iterable[str] = ("gid",)) -> Json:
        # Setting values is idempotent: a retry after an ambiguous failure writes the same values.
        """``PUT /tasks/{gid}`` (setting values is idempotent, so it is retried): the task."""
        params = {"opt_fields": ",".join(opt_fields)} if opt_fields else None
        return dict((await self.request("PUT", f"/tasks/{task_gid}", json={"data": data}, params=params))["data"])

    async def batch(self, actions: Sequence[Mapping[str, Any]]) -> list[Json | SyncError]:
        """``POST /batch``: up to 10 actions in one request; per action its ``data``, or its own error.

        Each action is ``{"method": "post"|"put"|..., "relative_path": "/tasks", "data": {...},
        "options": {"fields": [...]}}``. An action that failed is returned (not raised) as the error a
        single request would raise: ``HTTPRecordError`` (400, 402), ``NotFound``, ``HTTPAuthError``
        (401/403), ``HTTPTransientError`` (5xx).

        Raises:
            ConfigError: No actions, or more than 10.
            TransientError: The answer does not hold one result per action (the batch's outcome is
                unknown; a create in it may have happened).
            SyncError: The batch request itself failed (auth, a rate limit past the retries, a lost
                answer to a batch holding a create).
        """
        if not 1 <= len(actions) <= MAX_BATCH_ACTIONS:
            raise ConfigError(f"Asana batch: 1 to {MAX_BATCH_ACTIONS} actions, got {len(actions)}")
        create = any(str(action.get("method", "")).lower() == "post" for action in actions)
        # Asana counts every action of a batch against its limits, as a request of its own.
        body = await self.request(
            "POST", BATCH_PATH, json={"data": {"actions": list(actions)}}, create=create, cost=len(actions)
        )
        results = body.get("data") if isinstance(body, dict) else None
        if not isinstance(results, list) or len(results) != len(actions):
            got = len(results) if isinstance(results, list) else "no"
            raise TransientError(f"{SERVICE} POST {BATCH_PATH}: {got} results for {len(actions)} actions")
        out: list[Json | SyncError] = []
        for action, result in zip(actions, results, strict=True):
            result = result if isinstance(result, dict) else {}
            status = result.get("status_code")
            answer = result.get("body")
            if isinstance(status, int) and 200 <= status < 300 and isinstance(answer, dict):
                data = answer.get("data")
                if isinstance(data, dict):
                    out.append(dict(data))
                    continue
            out.append(self._action_error(action, status, answer, result.get("headers")))
        return out

    def _action_error(self, action: Mapping[str, Any], status: Any, answer: Any, headers: Any) -> SyncError:
        """The typed error of one failed action, as if it had been sent alone (same classes, redaction)."""
        request = self._http.build_request(str(action.get("method", "GET")).upper(), str(action.get("relative_path")))
        code = status if isinstance(status, int) and status >= 400 else 502  # a 2xx without data: unusable
        response = httpx.Response(
            code,
            json=answer if answer is not None else {},
            headers={str(k): str(v) for k, v in headers.items()} if isinstance(headers, dict) else None,
            request=request,
        )
        return self.error_for(response)

    async def get_task(self, task_gid: str, *, opt_fields: Iterable[str] = ()) -> Json:
        """``GET /tasks/{gid}``: the task (``opt_fields`` only, when given)."""
        params = {"opt_fields": ",".join(opt_fields)} if opt_fields else None
        return dict((await self.request("GET", f"/tasks/{task_gid}", params=params))["data"])

    # -- listings ---------------------------------------------------------------------------------

    async def iter_list(
        self, path: str, *, opt_fields: Iterable[str] = (), limit: int = PAGE_SIZE
    ) -> AsyncGenerator[Json, None]:
        """Every item of a paginated listing, lazily, ``limit`` per request.

        Raises:
            OffsetExpired: An offset token expired mid-listing (the caller decides whether to restart).
        """
        fields = ",".join(opt_fields)

        async def fetch(offset: str | None) -> Json:
            params: dict[str, Any] = {"limit": limit}
            if fields:
                params["opt_fields"] = fields
            if offset is not None:
                params["offset"] = offset
            return await self.request("GET", path, params=params)

        async for body in self.pagination.pages(fetch):
            for item in body.get("data") or []:
                if isinstance(item, dict):
                    yield item

    def custom_field_settings(self, project_gid: str) -> AsyncGenerator[Json, None]:
        """The project's custom field settings, each with its ``custom_field`` (type, enum options)."""
        return self.iter_list(
            f"/projects/{project_gid}/custom_field_settings",
            opt_fields=(
                "custom_field.name",
                "custom_field.resource_subtype",
                "custom_field.type",
                "custom_field.enum_options.name",
                "custom_field.enum_options.enabled",
                "custom_field.is_formula_field",
                "custom_field.is_value_read_only",
            ),
        )

    def project_tasks(self, project_gid: str, *, opt_fields: Iterable[str]) -> AsyncGenerator[Json, None]:
        """Every task of the project (completed ones included), 100 per request."""
        return self.iter_list(f"/projects/{project_gid}/tasks", opt_fields=opt_fields)

"""A stateful fake of the Asana REST API (``/api/1.0``), as a Starlette app.

Use it in-process through ``httpx.ASGITransport(app=fake.app)`` with base URL
``https://app.asana.com/api/1.0``, or on a loopback port with ``with serve(fake) as base_url: ...``
(uvicorn in a thread; the base URL ends in ``/api/1.0``). It is written from Asana's documentation,
independently of ``connectors.asana``, so a connector bug is not mirrored here::

    workspace ──< user (gid, name, email) ──< personal access token (Bearer; revocable)
        ├──< custom field (text, number, enum, multi_enum, date, people; enum options can be disabled,
        │                  never deleted; a field may be locked or a formula)
        └──< project ──< custom field setting (which fields its tasks carry)
                └──< task (name, notes/html_notes, due_on/due_at, start_on, completed, assignee,
                           projects, custom field values)

What it enforces, as the real API does (developers.asana.com/docs):

- Envelopes: requests ``{"data": {...}}``, answers ``{"data": ...}``; errors
  ``{"errors": [{"message": ..., "help": ...}]}``, plus a ``phrase`` on server errors only (Asana's
  docs: "In the event of a server error the response body will contain an error phrase").
  ``POST /tasks`` answers 201.
- Real shapes: gids are 16-digit numeric strings (``1204567890123456``; custom field settings too),
  every object has ``resource_type``, custom field values carry ``resource_subtype``,
  ``display_value``, ``enum_value`` / ``multi_enum_values`` / ``number_value`` / ``text_value`` /
  ``people_value`` and ``date_value: {date, date_time}``; offsets are JWT-shaped
  (``eyJ0eXAiOiJKV1Qi…``) with ``iat`` / ``exp`` 15 minutes apart.
- Premium features: a workspace made with ``premium=False`` (free plan) answers 402 "Custom Field
  Settings are not available for free users." to a project's custom field settings and "Custom Fields
  are not available for free users or guests." to a task write carrying ``custom_fields`` (wording as
  observed and quoted in public client code).
- ``Authorization: Bearer <PAT>``: missing, unknown or revoked answers 401 "Not Authorized"; objects of
  a workspace the token's user is not in answer 404.
- Rate limits per token on an injectable clock: ``rate_per_minute`` requests (150 free / 1,500 paid)
  in minute-long windows, 429 with ``Retry-After`` (seconds to the next window); rejected requests
  count against the quota, as Asana says. Concurrent requests per token: 50 GETs and 15 writes in
  flight; one more answers 429 with ``Retry-After: 1``.
- Pagination: ``limit`` 1-100 (400 otherwise) gives ``next_page: {offset, path, uri}`` or null. Offset
  tokens EXPIRE after ``offset_ttl`` seconds (15 minutes: Asana's offsets are JWTs whose ``exp`` is
  15 minutes after their ``iat``), after ``offset_max_writes`` writes when set, or when a test calls ``expire_offsets``;
  an expired one answers 400 "offset: Your pagination token has expired."; an offset the fake does not
  know (``invalidate_offsets``) answers 400 "offset: Not a valid offset for this query." (this wording
  is the fake's; Asana's for that case is not documented). Without ``limit`` a listing
  of more than 1,000 objects answers 400 "The result is too large. You should use pagination".
- The Batch API (/docs/batch-requests): ``POST /batch`` with ``{"data": {"actions": [{"method",
  "relative_path", "data", "options"}]}}``, 1 to 10 actions (none: 400; more: 400 — the fake's wording),
  answers 200 with ``{"data": [{"status_code", "headers", "body"}]}`` in action order, each action
  dispatched to its endpoint (``options.fields`` is its ``opt_fields``; a create's result carries a
  ``location`` header; an unknown route is a 404 "No matching route for request"; a nested batch 400).
  Every action counts against the rate limit and the concurrent-write limit as a request of its own,
  and if any would exceed a limit the whole batch answers 429. Faults (``fail_next``) match the batch
  request (``path=r"^/batch$"``), then each action by its own verb and path (``method="POST",
  path=r"^/tasks$"`` fails the first create action: its result carries the error; with ``after`` the
  action took effect first). ``counters.batches`` counts batch requests, ``counters.creates`` /
  ``updates`` the tasks written either way.
- ``opt_fields``: listings answer compact objects (gid, name, resource_type, resource_subtype) unless
  fields are asked for; then gid, resource_type and the asked fields, dotted paths narrowing nested
  objects (``custom_fields.text_value`` gives ``{"gid", "text_value"}`` per custom field).
- Task writes: unknown fields, a ``notes`` over 65,535 characters (Asana documents no limit; the
  fake models the connector's bound), ``html_notes`` that is not XML with a
  ``<body>`` root, both ``notes`` and ``html_notes``, both ``due_on`` and ``due_at``, a non-bool
  ``completed``, an assignee that is not a user of the workspace, a custom field not on the task's
  projects, an enum option that is not an option of the field (or is disabled), a value of the wrong
  type for its field answer 400; writing a LOCKED custom field answers 403; writing a formula field
  400. ``projects`` cannot be changed with PUT. ``external`` answers 400 for a personal access token
  (Asana: "You will need to authenticate with OAuth", /docs/custom-external-data) — modelled on that
  sentence, since every token of this fake is a PAT.

Test-facing helpers: ``add_workspace`` / ``add_user`` / ``add_token`` / ``revoke_token``,
``add_project`` / ``add_custom_field`` / ``disable_option`` / ``lock_field``, ``add_task`` /
``edit_task`` / ``delete_task``, inspection (``task``, ``tasks``, ``values``, ``field``), faults
(``fail_next``, ``expire_offsets``, ``invalidate_offsets``, ``set_rate``), the request ``log`` (``requests``), ``counters``,
``requests_per_minute`` and ``max_in_flight_reads`` / ``max_in_flight_writes``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import itertools
import json
import re
import secrets
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Unpack
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.common import (
    Fault,
    FaultOptions,
    FaultQueue,
    FixedWindows,
    RequestCounters,
    RequestLog,
    TokenRegistry,
    bearer_token,
)
from tests.fakes.loopback import serve_app

__all__ = [
    "API_PREFIX",
    "MAX_NOTES",
    "Counters",
    "FakeAsana",
    "FakeCustomField",
    "FakeEnumOption",
    "FakeProject",
    "FakeTask",
    "FakeUser",
    "LoggedRequest",
    "serve",
]

API_PREFIX = "/api/1.0"
PUBLIC_BASE = "https://app.asana.com"
HELP = (
    "For more information on API status codes and how to handle them, read the docs on errors: "
    "https://developers.asana.com/docs/errors"
)
RATE_LIMIT_MESSAGE = "You've made too many requests and hit a rate limit. Please retry after the given amount of time."
EXPIRED_OFFSET_MESSAGE = "offset: Your pagination token has expired."
INVALID_OFFSET_MESSAGE = "offset: Not a valid offset for this query."
# 402 answers for premium-only features on a free workspace (observed wording, see the README).
FREE_CUSTOM_FIELDS_MESSAGE = "Custom Fields are not available for free users or guests."
FREE_FIELD_SETTINGS_MESSAGE = "Custom Field Settings are not available for free users."
MAX_NOTES = 65_535
MAX_LIMIT = 100
MAX_BATCH_ACTIONS = 10
NO_ROUTE_MESSAGE = "No matching route for request"
_TASK_PATH = re.compile(r"^/tasks/(\d+)$")
UNPAGINATED_MAX = 1000
FIELD_TYPES = frozenset({"text", "number", "enum", "multi_enum", "date", "people"})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
TASK_FIELDS = frozenset(
    {
        "name",
        "notes",
        "html_notes",
        "due_on",
        "due_at",
        "start_on",
        "completed",
        "assignee",
        "projects",
        "custom_fields",
        "external",
        "workspace",
        "resource_subtype",
    }
)

Json = dict[str, Any]

# Asana gids are long numeric strings, 16 digits today (``1204567890123456``); never small
# integers, never sequential from 1. A stride keeps neighbours from looking related.
_gids = itertools.count(1_204_567_890_123_456, 7_919)


def _new_gid() -> str:
    return str(next(_gids))


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _offset_token(position: int, issued_at: float, ttl: float) -> str:
    """An offset token in Asana's shape.

    An offset shaped like Asana's: a signed JWT (``eyJ0eXAiOiJKV1Qi…``) whose payload holds the
    position and ``iat`` / ``exp`` (15 minutes apart).
    """
    header = _b64url(json.dumps({"typ": "JWT", "alg": "HS256"}, separators=(",", ":")).encode())
    claims = {"border_rank": f"[{position}]", "iat": int(issued_at), "exp": int(issued_at + ttl)}
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    return f"{header}.{payload}.{_b64url(secrets.token_bytes(32))}"


def _iso(epoch: float) -> str:
    when = dt.datetime.fromtimestamp(epoch, dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


class _Fail(Exception):
    """An error answer in Asana's shape."""

    def __init__(self, status: int, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after

    def response(self) -> JSONResponse:
        error: Json = {"message": self.message, "help": HELP}
        if self.status >= 500:
            error["phrase"] = "6 sad squid snuggle softly"
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else None
        return JSONResponse({"errors": [error]}, status_code=self.status, headers=headers)


def _fault_error(fault: Fault) -> _Fail:
    retry_after = int(fault.retry_after) if fault.retry_after is not None else None
    return _Fail(fault.status, fault.message or DEFAULT_MESSAGES.get(fault.status, "Error"), retry_after=retry_after)


def _bad(message: str) -> _Fail:
    return _Fail(400, message)


def _unknown(gid: str) -> _Fail:
    return _Fail(404, f"Unknown object: {gid}")


DEFAULT_MESSAGES = {
    400: "Bad Request",
    401: "Not Authorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    429: RATE_LIMIT_MESSAGE,
    500: "Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


# --------------------------------------------------------------------------------------------------
# State


@dataclass
class FakeUser:
    """A user: gid, name, email and the workspaces it belongs to."""

    gid: str
    name: str
    email: str
    workspaces: list[str]


@dataclass
class FakeEnumOption:
    """An option of an enum or multi-enum custom field (disabled options stay, as in Asana)."""

    gid: str
    name: str
    enabled: bool = True
    color: str = "none"

    def as_json(self) -> Json:
        """The option as Asana answers it."""
        return {
            "gid": self.gid,
            "resource_type": "enum_option",
            "name": self.name,
            "enabled": self.enabled,
            "color": self.color,
        }


@dataclass
class FakeCustomField:
    """A custom field of a workspace: its type, options, and whether it is locked or a formula."""

    gid: str
    name: str
    kind: str
    workspace: str
    options: list[FakeEnumOption] = field(default_factory=list)
    locked: bool = False
    formula: bool = False

    def option(self, gid: str) -> FakeEnumOption | None:
        """The option with this gid, or None."""
        return next((o for o in self.options if o.gid == gid), None)

    def option_named(self, name: str) -> FakeEnumOption:
        """The option with this name (StopIteration if none)."""
        return next(o for o in self.options if o.name == name)

    def as_json(self) -> Json:
        """The field as Asana answers it (without a value)."""
        out: Json = {
            "gid": self.gid,
            "resource_type": "custom_field",
            "name": self.name,
            "resource_subtype": self.kind,
            "type": self.kind,
            "is_formula_field": self.formula,
            "is_value_read_only": self.formula,
        }
        if self.kind in ("enum", "multi_enum"):
            out["enum_options"] = [o.as_json() for o in self.options]
        return out


@dataclass
class FakeProject:
    """A project: its workspace and the custom fields its tasks carry."""

    gid: str
    name: str
    workspace: str
    field_gids: list[str]


@dataclass
class FakeTask:
    """A task as stored: its fields and custom field values by field gid."""

    gid: str
    workspace: str
    projects: list[str]
    seq: int
    created_at: float
    modified_at: float
    name: str = ""
    notes: str = ""
    html_notes: str = "<body></body>"
    due_on: str | None = None
    due_at: str | None = None
    start_on: str | None = None
    completed: bool = False
    assignee: str | None = None
    custom_values: dict[str, Any] = field(default_factory=dict)  # field gid -> stored value


@dataclass(frozen=True)
class LoggedRequest:
    """One request the fake answered (the token is kept for leak checks, never printed)."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    body: Any = None
    at: float = 0.0
    token: str | None = field(default=None, repr=False)


@dataclass
class Counters(RequestCounters):
    """The shared counters, and reads, creates, updates and 429s for too many requests in flight."""

    reads: int = 0
    batches: int = 0
    creates: int = 0
    updates: int = 0
    concurrency_limited: int = 0


@dataclass
class _Offset:
    path: str
    position: int
    issued_at: float
    writes_at: int
    expired: bool = False


# --------------------------------------------------------------------------------------------------
# The fake


class FakeAsana:
    """The fake API. See the module docstring for what it enforces.

    Args:
        rate_per_minute: Requests per token per minute-long window (150 free, 1,500 paid); None: off.
        max_reads: GETs in flight per token before a 429.
        max_writes: Writes in flight per token before a 429.
        offset_ttl: Seconds an offset token lives.
        offset_max_writes: Writes (anywhere) after which an offset token expires; None: never.
        latency: How many times each request yields to the event loop while in flight, so that
            concurrent requests overlap and the concurrency limits can be observed.
        clock: Epoch seconds; inject a fake clock for tests, real time (default) for a loopback server.
        premium: Whether the default workspace is on a paid plan (custom fields answer 402 otherwise).
    """

    def __init__(
        self,
        *,
        rate_per_minute: int | None = 150,
        max_reads: int = 50,
        max_writes: int = 15,
        offset_ttl: float = 900.0,
        offset_max_writes: int | None = None,
        latency: int = 0,
        clock: Callable[[], float] = time.time,
        premium: bool = True,
    ) -> None:
        """A fake with one workspace (``self.workspace``), one user (``self.user``) and their token (``self.token``)."""
        self.rate_per_minute = rate_per_minute
        self.max_reads = max_reads
        self.max_writes = max_writes
        self.offset_ttl = offset_ttl
        self.offset_max_writes = offset_max_writes
        self.latency = latency
        self.clock = clock
        self.workspaces: dict[str, str] = {}  # gid -> name
        self.premium: dict[str, bool] = {}  # workspace gid -> on a paid plan
        self.users: dict[str, FakeUser] = {}
        self._tokens = TokenRegistry()
        self.tokens = self._tokens.owners  # token -> user gid
        self.revoked = self._tokens.revoked
        self.fields: dict[str, FakeCustomField] = {}
        self.projects: dict[str, FakeProject] = {}
        self.tasks_by_gid: dict[str, FakeTask] = {}
        self.log: RequestLog[LoggedRequest] = RequestLog()
        self.counters = Counters()
        self.max_in_flight_reads = 0
        self.max_in_flight_writes = 0
        self._in_flight: dict[tuple[str, bool], int] = defaultdict(int)
        self._windows = FixedWindows(60.0, count_rejected=True)  # rejected requests count too, as Asana says
        self._accepted_per_minute: dict[int, int] = defaultdict(int)
        self._faults = FaultQueue()
        self._offsets: dict[str, _Offset] = {}
        self._setting_gids: dict[tuple[str, str], str] = {}
        self._seq = itertools.count(1)
        self._lock = threading.RLock()
        self.workspace = self.add_workspace("Acme", premium=premium)
        self.user = self.add_user("Pat Owner", "pat@example.com")
        self.token = self.add_token(self.user.gid)
        self.app = self._build_app()

    # -- people and tokens -----------------------------------------------------------------------

    def add_workspace(self, name: str = "Workspace", *, premium: bool = True) -> str:
        """A workspace; ``premium=False`` is a free one: custom fields answer 402 there."""
        gid = _new_gid()
        self.workspaces[gid] = name
        self.premium[gid] = premium
        return gid

    def add_user(self, name: str, email: str, *, workspaces: Sequence[str] | None = None) -> FakeUser:
        """A user, a member of ``workspaces`` (default: the default workspace)."""
        user = FakeUser(_new_gid(), name, email, list(workspaces or [self.workspace]))
        self.users[user.gid] = user
        return user

    def add_token(self, user_gid: str | None = None) -> str:
        """A personal access token of ``user_gid`` (default: the default user)."""
        return self._tokens.add(f"2/{_new_gid()}/{uuid.uuid4().hex}:{uuid.uuid4().hex}", user_gid or self.user.gid)

    def revoke_token(self, token: str) -> None:
        """Revoke a token: every later request with it answers 401."""
        self._tokens.revoke(token)

    # -- projects and fields ---------------------------------------------------------------------

    def add_project(
        self, name: str = "Project", fields: Mapping[str, Any] | None = None, *, workspace: str | None = None
    ) -> FakeProject:
        """Add a project and the custom fields its tasks carry.

        A project whose tasks carry the custom fields ``fields``: name -> type name (``"text"``) or
        ``{"type": "enum", "options": ["A", "B"], "disabled": ["B"], "locked": False, "formula": False}``.
        """
        project = FakeProject(_new_gid(), name, workspace or self.workspace, [])
        self.projects[project.gid] = project
        for field_name, spec in (fields or {}).items():
            if isinstance(spec, str):
                spec = {"type": spec}
            self.add_custom_field(
                project.gid,
                field_name,
                spec["type"],
                options=spec.get("options", ()),
                disabled=spec.get("disabled", ()),
                locked=spec.get("locked", False),
                formula=spec.get("formula", False),
            )
        return project

    def add_custom_field(
        self,
        project_gid: str,
        name: str,
        kind: str,
        *,
        options: Sequence[str] = (),
        disabled: Sequence[str] = (),
        locked: bool = False,
        formula: bool = False,
    ) -> FakeCustomField:
        """A custom field of the project's workspace, added to the project's settings."""
        if kind not in FIELD_TYPES:
            raise ValueError(f"unknown custom field type {kind!r}")
        project = self.projects[project_gid]
        if not self.premium.get(project.workspace, True):
            raise ValueError("a free workspace has no custom fields")
        cf = FakeCustomField(
            _new_gid(),
            name,
            kind,
            project.workspace,
            [FakeEnumOption(_new_gid(), o, enabled=o not in disabled) for o in options],
            locked,
            formula,
        )
        self.fields[cf.gid] = cf
        project.field_gids.append(cf.gid)
        return cf

    def field(self, project_gid: str, name: str) -> FakeCustomField:
        """The custom field ``name`` of a project."""
        project = self.projects[project_gid]
        return next(self.fields[g] for g in project.field_gids if self.fields[g].name == name)

    def disable_option(self, project_gid: str, field_name: str, option: str) -> None:
        """Disable an enum option (Asana never deletes options; tasks keep the value)."""
        self.field(project_gid, field_name).option_named(option).enabled = False

    def lock_field(self, project_gid: str, field_name: str, locked: bool = True) -> None:
        """Lock (or unlock) a custom field: writing a locked field answers 403."""
        self.field(project_gid, field_name).locked = locked

    def remove_field(self, project_gid: str, field_name: str) -> None:
        """A human removed the field from the project."""
        cf = self.field(project_gid, field_name)
        self.projects[project_gid].field_gids.remove(cf.gid)

    # -- tasks -----------------------------------------------------------------------------------

    def add_task(self, project_gid: str, name: str = "", **values: Any) -> FakeTask:
        """Add a task as a person would, without an API call.

        A task as if a human had made it: native fields as keywords, custom fields by NAME in
        ``custom`` (``custom={"Priority": "High", "Source ID": "7"}``).
        """
        project = self.projects[project_gid]
        now = self.clock()
        task = FakeTask(_new_gid(), project.workspace, [project_gid], next(self._seq), now, now, name=name)
        self.tasks_by_gid[task.gid] = task
        self.edit_task(task.gid, **values)
        return task

    def edit_task(self, task_gid: str, **values: Any) -> FakeTask:
        """Change a task as another user would (its modified_at moves on)."""
        task = self.tasks_by_gid[task_gid]
        custom = values.pop("custom", None) or {}
        for key, value in values.items():
            if key == "notes":
                task.notes, task.html_notes = value, f"<body>{_xml_escape(value)}</body>"
            else:
                setattr(task, key, value)
        for field_name, value in custom.items():
            cf = next(
                self.fields[g]
                for p in task.projects
                for g in self.projects[p].field_gids
                if self.fields[g].name == field_name
            )
            if cf.kind == "enum" and value is not None:
                value = cf.option_named(value).gid
            elif cf.kind == "multi_enum":
                value = [cf.option_named(v).gid for v in value or []]
            elif cf.kind == "date" and value is not None:
                value = {"date": value, "date_time": None}
            task.custom_values[cf.gid] = value
        task.modified_at = self.clock()
        return task

    def delete_task(self, task_gid: str) -> None:
        """Delete a task: it answers 404 from then on."""
        del self.tasks_by_gid[task_gid]

    def task(self, task_gid: str) -> FakeTask:
        """The stored task with this gid."""
        return self.tasks_by_gid[task_gid]

    def tasks(self, project_gid: str) -> list[FakeTask]:
        """The project's tasks in creation order."""
        return sorted((t for t in self.tasks_by_gid.values() if project_gid in t.projects), key=lambda t: t.seq)

    def values(self, task_gid: str) -> dict[str, Any]:
        """A task's fields as plain Python values.

        A task's fields as simple Python values: native fields by their API name (assignee as an
        email), custom fields by NAME (enum as the option name, multi-enum as names, date as the
        ``date`` or ``date_time`` text, people as emails).
        """
        task = self.tasks_by_gid[task_gid]
        assignee = self.users[task.assignee].email if task.assignee else None
        out: dict[str, Any] = {
            "name": task.name,
            "notes": task.notes,
            "html_notes": task.html_notes,
            "due_on": task.due_on,
            "due_at": task.due_at,
            "start_on": task.start_on,
            "completed": task.completed,
            "assignee": assignee,
        }
        for cf in self._task_fields(task):
            value = task.custom_values.get(cf.gid)
            if cf.kind == "enum":
                option = cf.option(value) if value else None
                out[cf.name] = option.name if option else None
            elif cf.kind == "multi_enum":
                out[cf.name] = [o.name for gid in value or [] if (o := cf.option(gid))]
            elif cf.kind == "date":
                out[cf.name] = (value.get("date_time") or value.get("date")) if value else None
            elif cf.kind == "people":
                out[cf.name] = [self.users[g].email for g in value or []]
            else:
                out[cf.name] = value
        return out

    # -- faults, limits and inspection -----------------------------------------------------------

    def set_rate(self, rate_per_minute: int | None) -> None:
        """Change the per-minute budget (150 free, 1,500 paid; None: off)."""
        self.rate_per_minute = rate_per_minute
        self._windows.reset()

    def fail_next(self, n: int = 1, status: int = 500, **options: Unpack[FaultOptions]) -> None:
        """Answer the next ``n`` matching requests with an Asana error.

        Args:
            n: How many requests fail.
            status: HTTP status (500, 502, 503, 429, 401, ...); the message defaults to the status's.
            **options: ``message``, ``retry_after``, ``after``, ``method``, ``path``: see ``FaultOptions``.
        """
        self._faults.add(Fault.on(status, **options), n)

    def invalidate_offsets(self) -> None:
        """Forget every offset token handed out so far.

        Forget every offset token handed out so far: using one answers 400 "offset: Not a valid
        offset for this query." (an offset Asana no longer recognises, rather than one that expired).
        """
        with self._lock:
            self._offsets.clear()

    def expire_offsets(self) -> None:
        """Expire every offset token handed out so far (as if the data had changed under them)."""
        with self._lock:
            for offset in self._offsets.values():
                offset.expired = True

    def requests(self, method: str | None = None, path: str | None = None) -> list[LoggedRequest]:
        """Logged requests, optionally only those with this verb and a path matching this regex."""
        return self.log.matching(method, path)

    def requests_per_minute(self) -> dict[int, int]:
        """Requests ACCEPTED per minute-long window of the clock (window index -> count; a batch counts its actions)."""
        return dict(self._accepted_per_minute)

    # -- serialization ---------------------------------------------------------------------------

    def _task_fields(self, task: FakeTask) -> list[FakeCustomField]:
        seen: list[FakeCustomField] = []
        for project_gid in task.projects:
            project = self.projects.get(project_gid)
            for gid in project.field_gids if project else []:
                cf = self.fields[gid]
                if cf not in seen:
                    seen.append(cf)
        return seen

    def _custom_value_json(self, cf: FakeCustomField, value: Any) -> Json:
        out = cf.as_json()
        display: str | None = None
        if cf.kind == "text":
            out["text_value"] = value
            display = value
        elif cf.kind == "number":
            out["number_value"] = value
            display = None if value is None else str(value)
        elif cf.kind == "enum":
            option = cf.option(value) if value else None
            out["enum_value"] = option.as_json() if option else None
            display = option.name if option else None
        elif cf.kind == "multi_enum":
            options = [o for gid in value or [] if (o := cf.option(gid))]
            out["multi_enum_values"] = [o.as_json() for o in options]
            display = ", ".join(o.name for o in options) or None
        elif cf.kind == "date":
            out["date_value"] = value
            display = (value.get("date_time") or value.get("date")) if value else None
        elif cf.kind == "people":
            users = [self.users[g] for g in value or [] if g in self.users]
            out["people_value"] = [{"gid": u.gid, "resource_type": "user", "name": u.name} for u in users]
            display = ", ".join(u.name for u in users) or None
        out["display_value"] = display
        return out

    def _task_json(self, task: FakeTask) -> Json:
        assignee = self.users.get(task.assignee) if task.assignee else None
        projects = [
            {"gid": g, "resource_type": "project", "name": self.projects[g].name}
            for g in task.projects
            if g in self.projects
        ]
        return {
            "gid": task.gid,
            "resource_type": "task",
            "resource_subtype": "default_task",
            "name": task.name,
            "notes": task.notes,
            "html_notes": task.html_notes,
            "completed": task.completed,
            "due_on": task.due_on,
            "due_at": task.due_at,
            "start_on": task.start_on,
            "assignee": {"gid": assignee.gid, "resource_type": "user", "name": assignee.name} if assignee else None,
            "projects": projects,
            "memberships": [{"project": p} for p in projects],
            "workspace": {"gid": task.workspace, "resource_type": "workspace", "name": self.workspaces[task.workspace]},
            "custom_fields": [
                self._custom_value_json(cf, task.custom_values.get(cf.gid)) for cf in self._task_fields(task)
            ],
            "created_at": _iso(task.created_at),
            "modified_at": _iso(task.modified_at),
            "permalink_url": f"{PUBLIC_BASE}/0/{task.projects[0] if task.projects else 0}/{task.gid}",
        }

    @staticmethod
    def _project_fields(full: Json, opt_fields: set[str] | None, compact: tuple[str, ...]) -> Json:
        """Project an object onto the fields ``opt_fields`` asks for.

        ``opt_fields`` projection: gid and resource_type always; the asked fields, else the compact
        set (or everything when ``compact`` is empty).

        Dotted paths select inside nested objects as Asana does: ``custom_fields.text_value`` gives
        each custom field as ``{"gid", "text_value"}`` only; naming ``custom_fields`` itself gives them
        whole.
        """
        if opt_fields:
            return {"resource_type": full.get("resource_type"), **_pick(full, opt_fields)}
        if compact:
            return {k: v for k, v in full.items() if k in compact}
        return full

    # -- the app ---------------------------------------------------------------------------------

    def _build_app(self) -> Starlette:
        def route(path: str, handler: Callable[..., Any], method: str) -> Route:
            async def endpoint(request: Request) -> JSONResponse:
                return await self._serve(request, handler)

            return Route(API_PREFIX + path, endpoint, methods=[method])

        return Starlette(
            routes=[
                route("/users/{gid}", self._get_user, "GET"),
                route("/workspaces/{gid}/users", self._workspace_users, "GET"),
                route("/projects/{gid}", self._get_project, "GET"),
                route("/projects/{gid}/custom_field_settings", self._custom_field_settings, "GET"),
                route("/projects/{gid}/addCustomFieldSetting", self._add_custom_field_setting, "POST"),
                route("/workspaces/{gid}/custom_fields", self._workspace_custom_fields, "GET"),
                route("/custom_fields", self._create_custom_field, "POST"),
                route("/projects/{gid}/tasks", self._project_tasks, "GET"),
                route("/tasks", self._list_tasks, "GET"),
                route("/tasks", self._create_task, "POST"),
                route("/tasks/{gid}", self._get_task, "GET"),
                route("/tasks/{gid}", self._update_task, "PUT"),
                route("/batch", self._batch, "POST"),
            ]
        )

    async def _serve(self, request: Request, handler: Callable[..., Any]) -> JSONResponse:
        raw = await request.body()
        method = request.method
        path = request.url.path[len(API_PREFIX) :] or "/"
        query = dict(request.query_params)
        write = method in WRITE_METHODS
        body: Any = None
        token: str | None = None
        slot: tuple[str, bool] | None = None
        status = 500
        # Asana counts each action of a batch as a request of its own (rate and concurrency alike).
        cost = _batch_size(raw) if path == "/batch" else 1
        batch_write = path == "/batch" and _batch_writes(raw)
        try:
            try:
                with self._lock:
                    self.counters.requests += 1
                    now = self.clock()
                    token, user = self._authenticate(request)
                    self._take_quota(token, now, cost)
                    slot = self._take_slot(token, write or batch_write, cost)
                for _ in range(self.latency):
                    await asyncio.sleep(0)  # while in flight, so concurrent requests overlap
                with self._lock:
                    fault = self._faults.take(method, path)
                    if fault is not None and not fault.after:
                        raise _fault_error(fault)
                    if raw:
                        try:
                            body = json.loads(raw)
                        except ValueError:
                            raise _bad("Could not parse request data, invalid JSON") from None
                    kwargs = dict(request.path_params)
                    status, result = handler(user, body, query, **kwargs)
                    if path == "/batch":
                        pass  # each write action was counted by _batch_action
                    elif write:
                        self.counters.writes += 1
                    else:
                        self.counters.reads += 1
                    if fault is not None:  # after=True: the request took effect, the answer is lost
                        raise _fault_error(fault)
                    response = JSONResponse(result, status_code=status)
            except _Fail as fail:
                status, response = fail.status, fail.response()
                with self._lock:
                    self.counters.errors += 1
            with self._lock:
                at = self.clock()
                if status != 429:
                    self._accepted_per_minute[int(at // 60)] += cost  # a batch's actions count one each
                self.log.append(LoggedRequest(method, path, query, status, body, at, token))
            return response
        finally:
            if slot is not None:
                with self._lock:
                    self._in_flight[slot] -= cost

    def _authenticate(self, request: Request) -> tuple[str, FakeUser]:
        token = bearer_token(request.headers.get("authorization"))
        user_gid = self._tokens.owner(token)
        if token is None or user_gid is None:
            raise _Fail(401, "Not Authorized")
        return token, self.users[user_gid]

    def _take_quota(self, token: str, now: float, cost: int = 1) -> None:
        if self.rate_per_minute is None:
            return
        waits = [self._windows.take(token, limit=self.rate_per_minute, now=now) for _ in range(cost)]
        wait = max((w for w in waits if w is not None), default=None)
        if wait is not None:
            self.counters.rate_limited += 1
            raise _Fail(429, RATE_LIMIT_MESSAGE, retry_after=wait)

    def _take_slot(self, token: str, write: bool, cost: int = 1) -> tuple[str, bool]:
        slot = (token, write)
        cap = self.max_writes if write else self.max_reads
        if self._in_flight[slot] + cost > cap:
            self.counters.concurrency_limited += 1
            self.counters.rate_limited += 1
            raise _Fail(429, RATE_LIMIT_MESSAGE, retry_after=1)
        self._in_flight[slot] += cost
        in_flight = self._in_flight[slot]
        if write:
            self.max_in_flight_writes = max(self.max_in_flight_writes, in_flight)
        else:
            self.max_in_flight_reads = max(self.max_in_flight_reads, in_flight)
        return slot

    # -- access ----------------------------------------------------------------------------------

    def _visible_project(self, user: FakeUser, gid: str) -> FakeProject:
        project = self.projects.get(gid)
        if project is None or project.workspace not in user.workspaces:
            raise _unknown(gid)
        return project

    def _visible_task(self, user: FakeUser, gid: str) -> FakeTask:
        task = self.tasks_by_gid.get(gid)
        if task is None or task.workspace not in user.workspaces:
            raise _unknown(gid)
        return task

    def _find_user(self, ref: Any, me: FakeUser) -> FakeUser | None:
        if not isinstance(ref, str):
            return None
        if ref == "me":
            return me
        if ref in self.users:
            return self.users[ref]
        folded = ref.casefold()
        return next((u for u in self.users.values() if u.email.casefold() == folded), None)

    # -- pagination ------------------------------------------------------------------------------

    def _paginate(self, path: str, query: Mapping[str, str], items: list[Json]) -> tuple[int, Json]:
        limit_text = query.get("limit")
        if limit_text is None:
            if len(items) > UNPAGINATED_MAX:
                raise _bad("The result is too large. You should use pagination (may require specifying a workspace)!")
            return 200, {"data": items}
        try:
            limit = int(limit_text)
        except ValueError:
            raise _bad(f"limit: Not an integer: {limit_text}") from None
        if not 1 <= limit <= MAX_LIMIT:
            raise _bad(f"limit: Must be between 1 and {MAX_LIMIT}")
        start = 0
        token = query.get("offset")
        if token is not None:
            offset = self._offsets.get(token)
            if offset is None or offset.path != path:
                raise _bad(INVALID_OFFSET_MESSAGE)
            expired = (
                offset.expired
                or self.clock() - offset.issued_at > self.offset_ttl
                or (
                    self.offset_max_writes is not None
                    and self.counters.writes - offset.writes_at >= self.offset_max_writes
                )
            )
            if expired:
                raise _bad(EXPIRED_OFFSET_MESSAGE)
            start = offset.position
        page = items[start : start + limit]
        next_page: Json | None = None
        if start + limit < len(items):
            new = _offset_token(start + limit, self.clock(), self.offset_ttl)
            self._offsets[new] = _Offset(path, start + limit, self.clock(), self.counters.writes)
            params = {k: v for k, v in query.items() if k != "offset"}
            params["offset"] = new
            rel = f"{path}?{urlencode(params)}"
            next_page = {"offset": new, "path": rel, "uri": f"{PUBLIC_BASE}{API_PREFIX}{rel}"}
        return 200, {"data": page, "next_page": next_page}

    @staticmethod
    def _opt_fields(query: Mapping[str, str]) -> set[str] | None:
        text = query.get("opt_fields")
        return {f.strip() for f in text.split(",") if f.strip()} if text else None

    # -- handlers: (user, body, query, **path) -> (status, answer) --------------------------------

    def _get_user(self, me: FakeUser, body: Any, query: Mapping[str, str], gid: str) -> tuple[int, Json]:
        user = self._find_user(gid, me)
        if user is None or not set(user.workspaces) & set(me.workspaces):
            raise _unknown(gid)
        full = {
            "gid": user.gid,
            "resource_type": "user",
            "name": user.name,
            "email": user.email,
            "workspaces": [
                {"gid": w, "resource_type": "workspace", "name": self.workspaces[w]} for w in user.workspaces
            ],
        }
        return 200, {"data": self._project_fields(full, self._opt_fields(query), ())}

    def _workspace_users(self, me: FakeUser, body: Any, query: Mapping[str, str], gid: str) -> tuple[int, Json]:
        if gid not in self.workspaces or gid not in me.workspaces:
            raise _unknown(gid)
        opt = self._opt_fields(query)
        items = [
            self._project_fields(
                {"gid": u.gid, "resource_type": "user", "name": u.name, "email": u.email},
                opt,
                ("gid", "resource_type", "name"),
            )
            for u in sorted(self.users.values(), key=lambda u: int(u.gid))
            if gid in u.workspaces
        ]
        return self._paginate(f"/workspaces/{gid}/users", query, items)

    def _get_project(self, me: FakeUser, body: Any, query: Mapping[str, str], gid: str) -> tuple[int, Json]:
        project = self._visible_project(me, gid)
        full = {
            "gid": project.gid,
            "resource_type": "project",
            "name": project.name,
            "workspace": {
                "gid": project.workspace,
                "resource_type": "workspace",
                "name": self.workspaces[project.workspace],
            },
            "custom_field_settings": [self._setting_json(project, g) for g in project.field_gids],
            "permalink_url": f"{PUBLIC_BASE}/0/{project.gid}/list",
        }
        return 200, {"data": self._project_fields(full, self._opt_fields(query), ())}

    def _setting_json(self, project: FakeProject, field_gid: str) -> Json:
        return {
            "gid": self._setting_gids.setdefault((project.gid, field_gid), _new_gid()),
            "resource_type": "custom_field_setting",
            "is_important": True,
            "project": {"gid": project.gid, "resource_type": "project", "name": project.name},
            "custom_field": self.fields[field_gid].as_json(),
        }

    def _custom_field_settings(self, me: FakeUser, body: Any, query: Mapping[str, str], gid: str) -> tuple[int, Json]:
        project = self._visible_project(me, gid)
        if not self.premium.get(project.workspace, True):
            raise _Fail(402, FREE_FIELD_SETTINGS_MESSAGE)
        items = [self._setting_json(project, g) for g in project.field_gids]
        return self._paginate(f"/projects/{gid}/custom_field_settings", query, items)

    # Schema bootstrap: workspace custom fields, and adding one to a project. Duplicate-name and
    # already-added wordings are the fake's (Asana documents the rule, not the message).

    def _workspace_custom_fields(self, me: FakeUser, body: Any, query: Mapping[str, str], gid: str) -> tuple[int, Json]:
        if gid not in self.workspaces or gid not in me.workspaces:
            raise _unknown(gid)
        if not self.premium.get(gid, True):
            raise _Fail(402, FREE_CUSTOM_FIELDS_MESSAGE)
        opt = self._opt_fields(query)
        items = [
            self._project_fields(f.as_json(), opt, ("gid", "resource_type", "name", "resource_subtype"))
            for f in self.fields.values()
            if f.workspace == gid
        ]
        return self._paginate(f"/workspaces/{gid}/custom_fields", query, items)

    def _create_custom_field(self, me: FakeUser, body: Any, query: Mapping[str, str]) -> tuple[int, Json]:
        data = self._envelope(body)
        workspace = data.get("workspace")
        if not isinstance(workspace, str) or not workspace:
            raise _bad("workspace: Missing input")
        if workspace not in self.workspaces or workspace not in me.workspaces:
            raise _bad(f"workspace: Not a recognized ID: {workspace}")
        if not self.premium.get(workspace, True):
            raise _Fail(402, FREE_CUSTOM_FIELDS_MESSAGE)
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            raise _bad("name: Missing input")
        kind = data.get("resource_subtype") or data.get("type")
        if kind not in FIELD_TYPES - {"people"}:
            raise _bad(f"resource_subtype: Not a valid custom field type: {kind!r}")
        if any(f.workspace == workspace and f.name.casefold() == name.casefold() for f in self.fields.values()):
            raise _bad(f"name: A custom field named {name!r} already exists in this workspace")
        options = data.get("enum_options") or []
        if kind in ("enum", "multi_enum") and not isinstance(options, list):
            raise _bad("enum_options: Not a list")
        if kind == "number" and not isinstance(data.get("precision", 0), int):
            raise _bad("precision: Not an integer")
        names = [str(o.get("name")) if isinstance(o, dict) else str(o) for o in options]
        cf = FakeCustomField(_new_gid(), name, str(kind), workspace, [FakeEnumOption(_new_gid(), n) for n in names])
        self.fields[cf.gid] = cf
        return 201, {"data": cf.as_json()}

    def _add_custom_field_setting(
        self, me: FakeUser, body: Any, query: Mapping[str, str], gid: str
    ) -> tuple[int, Json]:
        project = self._visible_project(me, gid)
        if not self.premium.get(project.workspace, True):
            raise _Fail(402, FREE_FIELD_SETTINGS_MESSAGE)
        field_gid = self._envelope(body).get("custom_field")
        cf = self.fields.get(str(field_gid))
        if cf is None or cf.workspace != project.workspace:
            raise _bad(f"custom_field: Not a recognized ID: {field_gid}")
        if cf.gid in project.field_gids:
            raise _bad(f"custom_field: The custom field {cf.name!r} is already on this project")
        project.field_gids.append(cf.gid)
        return 200, {"data": self._setting_json(project, cf.gid)}

    def _list_project(self, me: FakeUser, query: Mapping[str, str], project_gid: str, path: str) -> tuple[int, Json]:
        self._visible_project(me, project_gid)
        opt = self._opt_fields(query)
        compact = ("gid", "resource_type", "name", "resource_subtype")
        items = [self._project_fields(self._task_json(t), opt, compact) for t in self.tasks(project_gid)]
        return self._paginate(path, query, items)

    def _project_tasks(self, me: FakeUser, body: Any, query: Mapping[str, str], gid: str) -> tuple[int, Json]:
        return self._list_project(me, query, gid, f"/projects/{gid}/tasks")

    def _list_tasks(self, me: FakeUser, body: Any, query: Mapping[str, str]) -> tuple[int, Json]:
        project = query.get("project")
        if not project:
            raise _bad("Must specify exactly one of project, tag, section, user task list, or assignee + workspace")
        return self._list_project(me, query, project, "/tasks")

    def _get_task(self, me: FakeUser, body: Any, query: Mapping[str, str], gid: str) -> tuple[int, Json]:
        task = self._visible_task(me, gid)
        return 200, {"data": self._project_fields(self._task_json(task), self._opt_fields(query), ())}

    def _create_task(self, me: FakeUser, body: Any, query: Mapping[str, str]) -> tuple[int, Json]:
        data = self._envelope(body)
        projects = data.get("projects") or []
        if not isinstance(projects, list) or not all(isinstance(p, str) for p in projects):
            raise _bad("projects: Not a list of project gids")
        for gid in projects:
            if gid not in self.projects or self.projects[gid].workspace not in me.workspaces:
                raise _bad(f"projects: Not a recognized ID: {gid}")
        workspace = data.get("workspace") or (self.projects[projects[0]].workspace if projects else None)
        if not workspace:
            raise _bad("workspace: Missing input")
        if workspace not in me.workspaces:
            raise _bad(f"workspace: Not a recognized ID: {workspace}")
        now = self.clock()
        task = FakeTask(_new_gid(), workspace, list(projects), next(self._seq), now, now)
        self._apply(me, task, data, creating=True)
        self.tasks_by_gid[task.gid] = task
        self.counters.creates += 1
        return 201, {"data": self._project_fields(self._task_json(task), self._opt_fields(query), ())}

    def _update_task(self, me: FakeUser, body: Any, query: Mapping[str, str], gid: str) -> tuple[int, Json]:
        task = self._visible_task(me, gid)
        data = self._envelope(body)
        if "projects" in data:
            raise _bad("projects: Cannot be changed with PUT; use POST /tasks/{task_gid}/addProject")
        staged = FakeTask(
            **{**task.__dict__, "custom_values": dict(task.custom_values), "projects": list(task.projects)}
        )
        self._apply(me, staged, data, creating=False)  # all or nothing, as Asana validates first
        staged.modified_at = self.clock()
        self.tasks_by_gid[gid] = staged
        self.counters.updates += 1
        return 200, {"data": self._project_fields(self._task_json(staged), self._opt_fields(query), ())}

    def _batch(self, me: FakeUser, body: Any, query: Mapping[str, str]) -> tuple[int, Json]:
        actions = self._envelope(body).get("actions")
        if not isinstance(actions, list) or not actions:
            raise _bad("actions: Missing input")
        if len(actions) > MAX_BATCH_ACTIONS:
            raise _bad(f"actions: At most {MAX_BATCH_ACTIONS} actions are allowed in a batch request")
        self.counters.batches += 1
        return 200, {"data": [self._batch_action(me, action) for action in actions]}

    def _batch_action(self, me: FakeUser, action: Any) -> Json:
        """One action's ``{status_code, headers, body}``, as its endpoint would have answered it."""
        try:
            if not isinstance(action, dict):
                raise _bad("actions: Not an object")
            method = str(action.get("method") or "").upper()
            path = action.get("relative_path")
            if not isinstance(path, str) or not path.startswith("/"):
                raise _bad("relative_path: Missing input")
            if "?" in path:
                raise _bad("relative_path: Query parameters are not accepted; put them in data")
            options = action.get("options") or {}
            fields = options.get("fields") if isinstance(options, dict) else None
            query = {"opt_fields": ",".join(map(str, fields))} if isinstance(fields, list) and fields else {}
            data = action.get("data")
            task = _TASK_PATH.match(path)
            headers: Json = {}
            fault = self._faults.take(method, path)
            if fault is not None and not fault.after:
                raise _fault_error(fault)
            if path == "/batch":
                raise _bad("Nested calls to the batch API are not allowed")
            if path == "/tasks" and method == "POST":
                status, answer = self._create_task(me, {"data": data}, query)
                headers["location"] = f"{API_PREFIX}/tasks/{answer['data']['gid']}"
            elif task and method == "PUT":
                status, answer = self._update_task(me, {"data": data}, query, task.group(1))
            elif task and method == "GET":
                status, answer = self._get_task(me, None, query, task.group(1))
            else:
                raise _Fail(404, NO_ROUTE_MESSAGE)
            if method in WRITE_METHODS:
                self.counters.writes += 1
            if fault is not None:  # after=True: the action took effect, its result is an error
                raise _fault_error(fault)
            return {"status_code": status, "headers": headers, "body": answer}
        except _Fail as fail:
            self.counters.errors += 1
            return {"status_code": fail.status, "headers": {}, "body": json.loads(fail.response().body)}

    # -- validation ------------------------------------------------------------------------------

    @staticmethod
    def _envelope(body: Any) -> Json:
        if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
            raise _bad("data: Missing input")
        return body["data"]

    def _apply(self, me: FakeUser, task: FakeTask, data: Json, *, creating: bool) -> None:
        unknown = sorted(set(data) - TASK_FIELDS)
        if unknown:
            raise _bad(f"{unknown[0]}: Unknown property")
        if "external" in data:
            raise _bad(
                "external: Custom external data is app-specific and needs OAuth; a personal access token cannot set it"
            )
        if "notes" in data and "html_notes" in data:
            raise _bad("You may only provide one of notes or html_notes")
        if data.get("due_on") is not None and data.get("due_at") is not None:
            raise _bad("You may only provide one of due_on or due_at")
        if "name" in data:
            if not isinstance(data["name"], str):
                raise _bad("name: Not a string")
            task.name = data["name"]
        if "notes" in data:
            notes = data["notes"] if data["notes"] is not None else ""
            if not isinstance(notes, str):
                raise _bad("notes: Not a string")
            if len(notes) > MAX_NOTES:
                raise _bad(f"notes: Value is too long ({len(notes)} characters); the maximum is {MAX_NOTES}")
            task.notes, task.html_notes = notes, f"<body>{_xml_escape(notes)}</body>"
        if "html_notes" in data:
            html = data["html_notes"]
            if not isinstance(html, str):
                raise _bad("html_notes: Not a string")
            if len(html) > MAX_NOTES:
                raise _bad(f"html_notes: Value is too long ({len(html)} characters); the maximum is {MAX_NOTES}")
            try:
                root = ET.fromstring(html)
            except ET.ParseError as err:
                raise _bad(f"html_notes: XML is invalid: {err}") from None
            if root.tag != "body":
                raise _bad("html_notes: The root element must be <body>")
            task.notes, task.html_notes = "".join(root.itertext()), html
        if "due_at" in data and data["due_at"] is not None:
            when = _parse_datetime(data["due_at"], "due_at")
            task.due_at, task.due_on = _iso(when.timestamp()), when.astimezone(dt.UTC).date().isoformat()
        elif "due_on" in data:
            task.due_on = None if data["due_on"] is None else _parse_date(data["due_on"], "due_on")
            task.due_at = None
        elif "due_at" in data:  # due_at: null
            task.due_at = task.due_on = None
        if "start_on" in data:
            task.start_on = None if data["start_on"] is None else _parse_date(data["start_on"], "start_on")
        if "completed" in data:
            if not isinstance(data["completed"], bool):
                raise _bad("completed: Not a boolean")
            task.completed = data["completed"]
        if "assignee" in data:
            if data["assignee"] is None:
                task.assignee = None
            else:
                user = self._find_user(data["assignee"], me)
                if user is None or task.workspace not in user.workspaces:
                    raise _bad(f"assignee: Not a recognized ID: {data['assignee']}")
                task.assignee = user.gid
        if "custom_fields" in data:
            values = data["custom_fields"]
            if not self.premium.get(task.workspace, True):
                raise _Fail(402, FREE_CUSTOM_FIELDS_MESSAGE)
            if not isinstance(values, dict):
                raise _bad("custom_fields: Not an object")
            on_task = {cf.gid: cf for cf in self._task_fields(task)}
            for gid, value in values.items():
                cf = on_task.get(gid)
                if cf is None:
                    raise _bad(f"custom_fields: Custom field with ID {gid} is not on given object")
                if cf.locked:
                    raise _Fail(
                        403, f"custom_fields: The custom field {cf.name!r} is locked; only its owner can edit its value"
                    )
                if cf.formula:
                    raise _bad(f"custom_fields: The custom field {cf.name!r} is a formula field and is read only")
                task.custom_values[gid] = self._custom_value(me, task, cf, value)

    def _custom_value(self, me: FakeUser, task: FakeTask, cf: FakeCustomField, value: Any) -> Any:
        where = f"custom_fields: {cf.name}"
        if cf.kind == "text":
            if value is not None and not isinstance(value, str):
                raise _bad(f"{where}: Text value expected")
            return value
        if cf.kind == "number":
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise _bad(f"{where}: Number value expected")
            return value
        if cf.kind == "enum":
            if value is None:
                return None
            option = cf.option(value) if isinstance(value, str) else None
            if option is None:
                raise _bad(f"enum_value: Not a valid enum option for the custom field {cf.name}: {value}")
            if not option.enabled:
                raise _bad(f"enum_value: The enum option {option.name} of {cf.name} is disabled")
            return option.gid
        if cf.kind == "multi_enum":
            if value is None:
                return []
            if not isinstance(value, list):
                raise _bad(f"{where}: List of enum option gids expected")
            gids: list[str] = []
            for item in value:
                option = cf.option(item) if isinstance(item, str) else None
                if option is None:
                    raise _bad(f"multi_enum_values: Not a valid enum option for the custom field {cf.name}: {item}")
                if not option.enabled:
                    raise _bad(f"multi_enum_values: The enum option {option.name} of {cf.name} is disabled")
                if option.gid not in gids:
                    gids.append(option.gid)
            return gids
        if cf.kind == "date":
            if value is None:
                return None
            if not isinstance(value, dict) or not ({"date", "date_time"} & set(value)):
                raise _bad(f'{where}: Date value expected ({{"date": "YYYY-MM-DD"}} or {{"date_time": ...}})')
            if value.get("date_time") is not None:
                when = _parse_datetime(value["date_time"], "date_value")
                return {"date": when.astimezone(dt.UTC).date().isoformat(), "date_time": _iso(when.timestamp())}
            return {"date": _parse_date(value.get("date"), "date_value"), "date_time": None}
        if cf.kind == "people":
            if value is None:
                return []
            if not isinstance(value, list):
                raise _bad(f"{where}: List of user gids expected")
            users: list[str] = []
            for ref in value:
                user = self._find_user(ref, me)
                if user is None or task.workspace not in user.workspaces:
                    raise _bad(f"people_value: Not a recognized ID: {ref}")
                users.append(user.gid)
            return users
        raise _bad(f"{where}: Cannot be written")


def _pick(obj: Json, paths: set[str]) -> Json:
    """``obj`` narrowed to ``paths`` (``a``, ``a.b``, ``a.b.c``); ``gid`` always kept."""
    heads: dict[str, set[str]] = defaultdict(set)
    for path in paths:
        head, _, tail = path.partition(".")
        heads[head].add(tail)
    out: Json = {"gid": obj["gid"]} if "gid" in obj else {}
    for head, tails in heads.items():
        if head not in obj:
            continue
        value = obj[head]
        if "" in tails or value is None:
            out[head] = value
        elif isinstance(value, dict):
            out[head] = _pick(value, tails)
        elif isinstance(value, list):
            out[head] = [_pick(v, tails) if isinstance(v, dict) else v for v in value]
        else:
            out[head] = value
    return out


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _parse_date(value: Any, what: str) -> str:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
                return dt.date.fromisoformat(value).isoformat()
    raise _bad(f"{what}: Not a valid date (YYYY-MM-DD): {value!r}")


def _parse_datetime(value: Any, what: str) -> dt.datetime:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            if when.tzinfo is not None:
                return when
    raise _bad(f"{what}: Not a valid ISO 8601 date-time with a time zone: {value!r}")


def _batch_actions(raw: bytes) -> list[Any]:
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        return []
    data = body.get("data") if isinstance(body, dict) else None
    actions = data.get("actions") if isinstance(data, dict) else None
    return actions if isinstance(actions, list) else []


def _batch_size(raw: bytes) -> int:
    """Requests a batch counts as: one per action (at least one for a malformed batch)."""
    return max(1, min(len(_batch_actions(raw)), MAX_BATCH_ACTIONS))


def _batch_writes(raw: bytes) -> bool:
    """Whether a batch's actions are writes (they then count against the concurrent-write limit)."""
    return any(isinstance(a, dict) and str(a.get("method", "")).upper() in WRITE_METHODS for a in _batch_actions(raw))


@contextlib.contextmanager
def serve(fake: FakeAsana, *, host: str = "127.0.0.1") -> Iterator[str]:
    """Run the fake on a free loopback port in a thread; yields its API base URL (``.../api/1.0``)."""
    with serve_app(fake.app, name="asana", host=host) as url:
        yield url + API_PREFIX

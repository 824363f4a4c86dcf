"""A stateful fake of the Jira Cloud REST API v3 (the endpoints the Jira connectors use), as a Starlette app.

Use it in-process through ``httpx.ASGITransport(app=fake.app)`` (any base URL, e.g. the fake's
``site``), or on a loopback port with ``with serve(fake) as base_url: ...`` (uvicorn in a thread). It is
written from Atlassian's documentation, independently of ``connectors.jira``::

    site ──< account (email + API token; Basic auth; revocable)
      ├──< user (accountId, displayName, active)
      ├──< field (system fields and custom fields: select / multiselect / text / textarea / number /
      │          date / datetime / labels / user; select options; "not on the screen")
      └──< project (id, key, issue types, components, versions, key counter)
             └──< issue (numeric id, key PROJ-N, fields, entity properties, created/updated,
                         searchable-from time; moved issues keep their id, old keys still resolve)

What it enforces, as Jira Cloud does:

- Basic auth ``email:api-token``: for anything else (a revoked token included) 401 with the plain-text
  body ``Client must be authenticated to access this resource.`` and ``X-Seraph-LoginReason:
  AUTHENTICATED_FAILED``, as Jira Cloud answers a failed Basic login (not the JSON error shape).
- Real shapes: numeric-string issue ids, ``self`` links, ``created``/``updated`` and date-time custom
  fields rendered in the user's zone with Jira's colon-less offset (``2024-03-01T10:15:30.000+0100``;
  ``timezone``), ``status`` with a full ``statusCategory``, ``assignee`` null when unassigned, ADF
  descriptions, no ``total`` in search answers, no ``nextPageToken`` key on the last page
  (JRACLOUD-92184), ``renderedFields`` only with ``expand=renderedFields``, top-level ``names`` /
  ``schema`` maps with ``expand=names,schema``, and ``X-AREQUESTID`` / ``ATL-TraceId`` on every answer.
- ``POST``/``GET /rest/api/3/search/jql`` (a JQL subset: ``project = X``, ``id|key|issuekey in (...)``,
  ``= != > >= < <=`` on ``created``/``updated``, ``status``/``issuetype``/``labels``/``priority`` ``=``
  and ``in``, ``summary ~ "text"``, ``AND``/``OR``/``NOT``/parentheses, ``ORDER BY created|updated|key|id
  [ASC|DESC]``; ``issue.property[...]`` clauses match nothing: properties set over REST are not
  indexed without an app module). ``nextPageToken`` / ``isLast`` paging (tokens are tied to the query
  and expire after 7 days: 400), ``maxResults`` capped at 100 when fields are asked for (5,000 for ids
  only), only ``id`` per issue unless ``fields`` are named, ``properties`` (at most 5) inline,
  ``reconcileIssues`` (at most 50 ids). A JQL naming a key that does not exist answers 400 "An issue
  with key 'X' does not exist for field 'id'."; a query without a restriction is "unbounded" (400).
- **Eventual consistency**: a new issue is invisible to search for ``index_delay`` seconds unless its
  id is in ``reconcileIssues``; ``GET /rest/api/3/issue/{idOrKey}`` is always current.
- ``GET``/``POST /rest/api/3/search`` (and ``/rest/api/2/search``) answer **410 Gone** (CHANGE-2046).
- ``POST /rest/api/3/issue`` with ``fields`` and a ``properties`` array (set in the same request),
  ``PUT``/``GET /rest/api/3/issue/{idOrKey}``, ``PUT``/``GET .../properties/{propertyKey}``,
  ``POST /rest/api/3/issue/bulk`` (``{"issueUpdates": [...]}``, at most 50; each element validated as
  a single create; the answer ``{"issues": [{id, key, self}...], "errors": [{"status",
  "elementErrors": {"errorMessages", "errors"}, "failedElementNumber"}]}`` — created issues in request
  order, ``failedElementNumber`` the 0-based index of a failed element; 201 when any was created, 400
  when none was; more than 50 elements is a 400 with the fake's wording),
  ``GET /rest/api/3/field``, ``GET /rest/api/3/project/{key}``, ``GET /rest/api/3/myself``.
- Validation in Jira's shape ``{"errorMessages": [...], "errors": {"<field>": "<message>"}}`` (400):
  unknown or off-screen field ("Field 'x' cannot be set. It is not on the appropriate screen, or
  unknown."), missing summary, summary over 255 characters or with a newline, description not ADF or
  over 32,767 characters of text, labels with spaces, unknown priority / component / version / select
  option, unknown or inactive accountId, unparseable dates, property values over 32,768 characters.
- The burst limit: a token bucket per (method, endpoint) of ``burst`` requests per second; beyond it
  429 with ``Retry-After`` (whole seconds), ``X-RateLimit-Reset``, ``RateLimit-Reason:
  jira-burst-based``. Time is injectable (``clock``).

Test-facing helpers: ``add_token`` / ``revoke_token`` / ``rotate_token``, ``add_user``, ``add_project``,
``add_custom_field`` / ``hide_field``, ``add_issue`` / ``set_fields`` / ``move_issue`` /
``delete_issue``, inspection (``issue``, ``issues``, ``property``, ``description_text``,
``searchable``), ``set_index_delay`` / ``index_all``, ``set_rate``, faults (``fail_next``; ``drop_next``:
the request is carried out and the connection drops before the answer — a lost create response or a
client crashing right after its create), the request ``log`` (``requests()``) and ``counters``.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import itertools
import json
import math
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Unpack

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.fakes.common import Fault, FaultOptions, FaultQueue, RequestCounters, RequestLog, TokenBuckets, TokenRegistry
from tests.fakes.loopback import serve_app

__all__ = [
    "SITE",
    "Counters",
    "FakeField",
    "FakeIssue",
    "FakeJira",
    "FakeProject",
    "LoggedRequest",
    "serve",
]

SITE = "https://acme.atlassian.net"
API = "/rest/api/3"

MAX_SUMMARY = 255
MAX_TEXT = 32_767
MAX_TEXTFIELD = 255
MAX_LABEL = 255
MAX_PROPERTY_KEY = 255
MAX_PROPERTY_VALUE = 32_768
MAX_RECONCILE = 50
MAX_BULK_CREATE = 50
MAX_SEARCH_PROPERTIES = 5
MAX_RESULTS_WITH_FIELDS = 100
MAX_RESULTS_IDS_ONLY = 5000
DEFAULT_MAX_RESULTS = 50
PAGE_TOKEN_TTL = 7 * 24 * 3600.0
FIRST_ISSUE_ID = 10_000

PRIORITIES = ("Highest", "High", "Medium", "Low", "Lowest")
DEFAULT_PRIORITY = "Medium"
STATUSES = {"To Do": "new", "In Progress": "indeterminate", "Done": "done"}
# statusCategory key -> (id, colorName, name), as every Jira Cloud site has them.
STATUS_CATEGORIES = {
    "new": (2, "blue-gray", "To Do"),
    "indeterminate": (4, "yellow", "In Progress"),
    "done": (3, "green", "Done"),
}
ISSUE_EXPAND = "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations"

REMOVED = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. A full migration "
    "guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"
)
NOT_AUTHENTICATED = "Client must be authenticated to access this resource."
NO_ISSUE = "Issue does not exist or you do not have permission to see it."
UNBOUNDED = "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
BAD_TOKEN = "The provided next page token is invalid or expired."

CUSTOM = "com.atlassian.jira.plugin.system.customfieldtypes"

Json = dict[str, Any]

CUSTOM_KINDS: dict[str, Json] = {
    "select": {"type": "option", "custom": f"{CUSTOM}:select"},
    "multiselect": {"type": "array", "items": "option", "custom": f"{CUSTOM}:multiselect"},
    "text": {"type": "string", "custom": f"{CUSTOM}:textfield"},
    "textarea": {"type": "string", "custom": f"{CUSTOM}:textarea"},
    "number": {"type": "number", "custom": f"{CUSTOM}:float"},
    "date": {"type": "date", "custom": f"{CUSTOM}:datepicker"},
    "datetime": {"type": "datetime", "custom": f"{CUSTOM}:datetime"},
    "labels": {"type": "array", "items": "string", "custom": f"{CUSTOM}:labels"},
    "user": {"type": "user", "custom": f"{CUSTOM}:userpicker"},
}

# id -> (name, schema, settable)
SYSTEM_FIELDS: dict[str, tuple[str, Json, bool]] = {
    "summary": ("Summary", {"type": "string", "system": "summary"}, True),
    "description": ("Description", {"type": "string", "system": "description"}, True),
    "environment": ("Environment", {"type": "string", "system": "environment"}, True),
    "labels": ("Labels", {"type": "array", "items": "string", "system": "labels"}, True),
    "priority": ("Priority", {"type": "priority", "system": "priority"}, True),
    "assignee": ("Assignee", {"type": "user", "system": "assignee"}, True),
    "reporter": ("Reporter", {"type": "user", "system": "reporter"}, True),
    "duedate": ("Due date", {"type": "date", "system": "duedate"}, True),
    "components": ("Components", {"type": "array", "items": "component", "system": "components"}, True),
    "versions": ("Affects versions", {"type": "array", "items": "version", "system": "versions"}, True),
    "fixVersions": ("Fix versions", {"type": "array", "items": "version", "system": "fixVersions"}, True),
    "issuetype": ("Issue Type", {"type": "issuetype", "system": "issuetype"}, True),
    "project": ("Project", {"type": "project", "system": "project"}, True),
    "status": ("Status", {"type": "status", "system": "status"}, False),
    "created": ("Created", {"type": "datetime", "system": "created"}, False),
    "updated": ("Updated", {"type": "datetime", "system": "updated"}, False),
}


def _ts(epoch: float, tz: dt.tzinfo = dt.UTC) -> str:
    """A timestamp as Jira writes it.

    Jira's timestamp format, in the requesting user's time zone: ``2024-03-01T10:15:30.000+0100``
    (milliseconds, and an offset WITHOUT a colon; Python < 3.11 ``fromisoformat`` refused it).
    """
    when = dt.datetime.fromtimestamp(epoch, tz)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}" + when.strftime("%z")


def _request_id() -> str:
    """An ``X-AREQUESTID`` as Jira sends one: ``<minute of day>x<counter>x<node>`` (e.g. ``945x62874x1``)."""
    return f"{secrets.randbelow(1440)}x{secrets.randbelow(10**6)}x{secrets.randbelow(9) + 1}"


def adf_text(doc: Any) -> str:
    """The text of an ADF document as this fake counts it: text nodes plus one per hardBreak."""
    parts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "text":
                parts.append(str(node.get("text", "")))
            elif node.get("type") == "hardBreak":
                parts.append("\n")
            for child in node.get("content") or []:
                walk(child)
            if node.get("type") in ("paragraph", "heading", "codeBlock"):
                parts.append("\n\n")

    walk(doc)
    return "".join(parts).strip("\n")


def _adf_problem(doc: Any) -> str | None:
    if not isinstance(doc, dict) or doc.get("type") != "doc" or doc.get("version") != 1:
        return "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
    if not isinstance(doc.get("content"), list):
        return "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
    stack = list(doc["content"])
    while stack:
        node = stack.pop()
        if not isinstance(node, dict) or not isinstance(node.get("type"), str):
            return "INVALID_INPUT: every ADF node needs a type"
        if node["type"] == "text" and (not isinstance(node.get("text"), str) or not node["text"]):
            return "INVALID_INPUT: text nodes must have non-empty text"
        stack.extend(node.get("content") or [])
    count = sum(1 for _ in adf_text(doc))
    if count > MAX_TEXT:
        return f"The entered text is too long. It exceeds the allowed limit of {MAX_TEXT:,} characters."
    return None


def _doc(text: str) -> Json:
    paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    content = []
    for para in paragraphs:
        nodes: list[Json] = []
        for i, line in enumerate(para.split("\n")):
            if i:
                nodes.append({"type": "hardBreak"})
            if line:
                nodes.append({"type": "text", "text": line})
        content.append({"type": "paragraph", "content": nodes})
    return {"type": "doc", "version": 1, "content": content}


class _Fail(Exception):
    """An error answer in Jira's shape."""

    def __init__(
        self,
        status: int,
        messages: Sequence[str] = (),
        errors: Mapping[str, str] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.messages = list(messages)
        self.errors = dict(errors or {})
        self.headers = dict(headers or {})
        super().__init__("; ".join([*self.messages, *self.errors.values()]))

    def response(self) -> Response:
        if self.status == 401:
            # Jira Cloud answers a failed Basic login with a plain-text body, not the JSON error shape.
            return PlainTextResponse(
                NOT_AUTHENTICATED,
                status_code=401,
                headers={
                    "X-Seraph-LoginReason": "AUTHENTICATED_FAILED",
                    "WWW-Authenticate": 'OAuth realm="https%3A%2F%2Facme.atlassian.net"',
                    **self.headers,
                },
            )
        return JSONResponse(
            {"errorMessages": self.messages, "errors": self.errors}, status_code=self.status, headers=self.headers
        )


class _Drop(Exception):
    """The connection drops before the answer (the client sees a transport error)."""


# --------------------------------------------------------------------------------------------------
# State


@dataclass
class FakeProject:
    """A project: its key, name and the ids of its issue types, components and versions."""

    id: str
    key: str
    name: str
    issue_types: dict[str, str]  # name -> id
    components: dict[str, str]  # name -> id
    versions: dict[str, str]  # name -> id
    counter: int = 0


@dataclass
class FakeField:
    """A system or custom field: its schema, options, and whether it is on the screens."""

    id: str
    name: str
    schema: Json
    custom: bool
    settable: bool = True
    on_screen: bool = True
    options: dict[str, str] = field(default_factory=dict)  # value -> option id


@dataclass
class FakeIssue:
    """An issue as stored: fields, properties, every key it had, and when search sees it."""

    id: str
    key: str
    project: str  # project key
    fields: Json  # API-shaped values
    properties: Json
    created: float
    updated: float
    searchable_at: float
    old_keys: list[str] = field(default_factory=list)
    deleted: bool = False

    @property
    def number(self) -> int:
        """The number in the issue key (``ENG-12`` -> 12)."""
        return int(self.key.rsplit("-", 1)[1])


@dataclass(frozen=True)
class LoggedRequest:
    """One request the fake answered."""

    method: str
    path: str
    status: int
    body: Any = None
    params: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Counters(RequestCounters):
    """The shared counters, and issues created."""

    creates: int = 0
    bulk_creates: int = 0


# --------------------------------------------------------------------------------------------------
# JQL (a subset)

_TOKEN_RE = re.compile(
    r"""\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<op>!=|>=|<=|~|=|>|<|\(|\)|,)|(?P<word>[^\s"'(),=!<>~]+))"""
)
_KEYWORDS = frozenset({"AND", "OR", "NOT", "IN", "IS", "EMPTY", "NULL", "ORDER", "BY", "ASC", "DESC"})
_KEY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*-[0-9]+$")

Predicate = Callable[[FakeIssue], bool]


@dataclass
class _Tok:
    kind: str  # str | op | word
    text: str

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "word" else ""


def _tokenize(jql: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(jql):
        if jql[pos:].strip() == "":
            break
        match = _TOKEN_RE.match(jql, pos)
        if match is None or match.end() == pos:
            raise _Fail(400, [f"Error in the JQL Query: the character '{jql[pos]}' is not valid (at {pos})."])
        pos = match.end()
        if match.group("str") is not None:
            raw = match.group("str")[1:-1]
            tokens.append(_Tok("str", re.sub(r"\\(.)", r"\1", raw)))
        elif match.group("op") is not None:
            tokens.append(_Tok("op", match.group("op")))
        else:
            tokens.append(_Tok("word", match.group("word")))
    return tokens


class _JqlParser:
    def __init__(self, fake: FakeJira, jql: str) -> None:
        self.fake = fake
        self.tokens = _tokenize(jql)
        self.pos = 0

    def peek(self) -> _Tok | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise _Fail(400, ["Error in the JQL Query: the query ended unexpectedly."])
        self.pos += 1
        return tok

    def expect_op(self, op: str) -> None:
        tok = self.take()
        if tok.kind != "op" or tok.text != op:
            raise _Fail(400, [f"Error in the JQL Query: expected '{op}' but got '{tok.text}'."])

    def parse(self) -> tuple[Predicate | None, list[tuple[str, bool]]]:
        predicate: Predicate | None = None
        tok = self.peek()
        if tok is not None and tok.upper != "ORDER":
            predicate = self.parse_or()
        order: list[tuple[str, bool]] = []
        tok = self.peek()
        if tok is not None:
            if tok.upper != "ORDER":
                raise _Fail(400, [f"Error in the JQL Query: unexpected '{tok.text}'."])
            self.take()
            if self.take().upper != "BY":
                raise _Fail(400, ["Error in the JQL Query: expected 'by' after 'order'."])
            while True:
                name = self.take().text.lower()
                if name not in ("created", "updated", "key", "issuekey", "id"):
                    raise _Fail(400, [f"Not able to sort using field '{name}'."])
                ascending = True
                nxt = self.peek()
                if nxt is not None and nxt.upper in ("ASC", "DESC"):
                    ascending = self.take().upper == "ASC"
                order.append((name, ascending))
                nxt = self.peek()
                if nxt is None:
                    break
                self.expect_op(",")
        return predicate, order

    def parse_or(self) -> Predicate:
        parts = [self.parse_and()]
        while (tok := self.peek()) is not None and tok.upper == "OR":
            self.take()
            parts.append(self.parse_and())
        return parts[0] if len(parts) == 1 else (lambda issue: any(p(issue) for p in parts))

    def parse_and(self) -> Predicate:
        parts = [self.parse_unary()]
        while (tok := self.peek()) is not None and tok.upper == "AND":
            self.take()
            parts.append(self.parse_unary())
        return parts[0] if len(parts) == 1 else (lambda issue: all(p(issue) for p in parts))

    def parse_unary(self) -> Predicate:
        tok = self.peek()
        if tok is not None and tok.upper == "NOT":
            self.take()
            inner = self.parse_unary()
            return lambda issue: not inner(issue)
        if tok is not None and tok.kind == "op" and tok.text == "(":
            self.take()
            inner = self.parse_or()
            self.expect_op(")")
            return inner
        return self.parse_clause()

    def values(self) -> list[str]:
        self.expect_op("(")
        out: list[str] = []
        while True:
            tok = self.take()
            if tok.kind == "op":
                raise _Fail(400, [f"Error in the JQL Query: unexpected '{tok.text}' in a list."])
            out.append(tok.text)
            tok = self.take()
            if tok.kind == "op" and tok.text == ")":
                return out
            if tok.kind != "op" or tok.text != ",":
                raise _Fail(400, [f"Error in the JQL Query: expected ',' or ')' but got '{tok.text}'."])

    def parse_clause(self) -> Predicate:
        name_tok = self.take()
        if name_tok.kind == "op":
            raise _Fail(400, [f"Error in the JQL Query: expected a field name but got '{name_tok.text}'."])
        name = name_tok.text
        tok = self.take()
        if tok.upper == "IS":
            negate = False
            if (nxt := self.peek()) is not None and nxt.upper == "NOT":
                self.take()
                negate = True
            if self.take().upper not in ("EMPTY", "NULL"):
                raise _Fail(400, ["Error in the JQL Query: expected EMPTY after IS."])
            test = self.fake._empty_test(name)
            return (lambda issue: not test(issue)) if negate else test
        if tok.upper == "NOT":
            if self.take().upper != "IN":
                raise _Fail(400, ["Error in the JQL Query: expected IN after NOT."])
            inner = self.fake._clause(name, "in", self.values())
            return lambda issue: not inner(issue)
        if tok.upper == "IN":
            return self.fake._clause(name, "in", self.values())
        if tok.kind != "op" or tok.text not in ("=", "!=", ">", ">=", "<", "<=", "~"):
            raise _Fail(400, [f"Error in the JQL Query: unexpected operator '{tok.text}'."])
        value = self.take()
        if value.kind == "op":
            raise _Fail(400, [f"Error in the JQL Query: expected a value but got '{value.text}'."])
        return self.fake._clause(name, tok.text, [value.text])


def _parse_jql_time(text: str) -> float:
    for fmt in ("%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d"):
        try:
            return dt.datetime.strptime(text, fmt).replace(tzinfo=dt.UTC).timestamp()
        except ValueError:
            continue
    raise _Fail(400, [f"Date value '{text}' for field is invalid. Valid formats include: 'yyyy/MM/dd HH:mm'."])


# --------------------------------------------------------------------------------------------------
# The fake


class FakeJira:
    """The fake API. See the module docstring for what it enforces.

    Args:
        site: The site's base URL (used in ``self`` links).
        email: The account email of the first token (``self.token``).
        clock: Epoch seconds; a fake clock in tests, real time (default) for a loopback server.
        burst: Requests per second per (method, endpoint); None disables the limit.
        index_delay: Seconds before a new issue shows up in search (0: at once).
        timezone: The requesting user's time zone: Jira renders ``created``, ``updated`` and date-time
            custom fields in it (``+0100`` by default, so an offset other than UTC is always exercised).
    """

    def __init__(
        self,
        *,
        site: str = SITE,
        email: str = "sync-bot@example.com",
        clock: Callable[[], float] = time.time,
        burst: int | None = 10,
        index_delay: float = 0.0,
        timezone: dt.tzinfo = dt.timezone(dt.timedelta(hours=1)),
    ) -> None:
        """A fake with the system fields and one API token (``self.token``) for ``email``."""
        self.site = site.rstrip("/")
        self.timezone = timezone
        self.clock = clock
        self.burst = burst
        self.index_delay = index_delay
        self._tokens = TokenRegistry()
        self.tokens = self._tokens.owners  # token -> email
        self.users: dict[str, Json] = {}  # accountId -> user json (plus "email")
        self.account_ids: dict[str, str] = {}  # email -> accountId
        self.projects: dict[str, FakeProject] = {}
        self.fields: dict[str, FakeField] = {}
        self.issues_by_id: dict[str, FakeIssue] = {}
        self.keys: dict[str, str] = {}  # every key an issue ever had -> id
        self.log: RequestLog[LoggedRequest] = RequestLog()
        self.counters = Counters()
        self._faults = FaultQueue()
        self._buckets = TokenBuckets()  # per (method, endpoint)
        self._ids = itertools.count(FIRST_ISSUE_ID)
        self._other_ids = itertools.count(10_000)
        self._field_ids = itertools.count(10_000)
        self._lock = threading.RLock()
        self.priorities = {name: str(i + 1) for i, name in enumerate(PRIORITIES)}
        for fid, (name, schema, settable) in SYSTEM_FIELDS.items():
            self.fields[fid] = FakeField(fid, name, dict(schema), custom=False, settable=settable)
        self.email = email
        self.token = self.add_token(email)
        self.app = self._build_app()

    # -- accounts ------------------------------------------------------------------------------

    def add_user(
        self, display_name: str, *, account_id: str | None = None, email: str | None = None, active: bool = True
    ) -> str:
        """Add a user; returns its accountId."""
        account_id = account_id or f"5b10ac8d82e05b22cc7d{secrets.token_hex(6)}"
        self.users[account_id] = {
            "accountId": account_id,
            "accountType": "atlassian",
            "displayName": display_name,
            "active": active,
            "email": email,
        }
        if email:
            self.account_ids[email] = account_id
        return account_id

    def add_token(self, email: str | None = None) -> str:
        """A new API token for ``email`` (a user is made for it if needed)."""
        email = email or self.email
        if email not in self.account_ids:
            self.add_user(email.split("@")[0].replace(".", " ").title(), email=email)
        return self._tokens.add(f"ATATT3xFake{secrets.token_urlsafe(24)}", email)

    def revoke_token(self, token: str) -> None:
        """Every later request with the token answers 401."""
        self._tokens.revoke(token)

    def rotate_token(self, token: str) -> str:
        """Revoke ``token`` and return a new one for the same account."""
        email = self.tokens.get(token, self.email)
        self.revoke_token(token)
        return self.add_token(email)

    # -- configuration -------------------------------------------------------------------------

    def add_project(
        self,
        key: str,
        *,
        name: str | None = None,
        issue_types: Sequence[str] = ("Task", "Bug", "Story"),
        components: Sequence[str] = (),
        versions: Sequence[str] = (),
    ) -> FakeProject:
        """A project with these issue types, components and versions."""
        project = FakeProject(
            id=str(next(self._other_ids)),
            key=key,
            name=name or key.title(),
            issue_types={t: str(next(self._other_ids)) for t in issue_types},
            components={c: str(next(self._other_ids)) for c in components},
            versions={v: str(next(self._other_ids)) for v in versions},
        )
        self.projects[key] = project
        return project

    def add_custom_field(
        self, name: str, kind: str = "select", *, options: Sequence[str] = (), field_id: str | None = None
    ) -> str:
        """A custom field of ``kind`` (see ``CUSTOM_KINDS``); returns its id (``customfield_NNNNN``)."""
        if kind not in CUSTOM_KINDS:
            raise ValueError(f"unknown custom field kind {kind!r}")
        field_id = field_id or f"customfield_{next(self._field_ids)}"
        schema = {**CUSTOM_KINDS[kind], "customId": int(field_id.rsplit("_", 1)[-1])}
        self.fields[field_id] = FakeField(
            field_id, name, schema, custom=True, options={o: str(next(self._other_ids)) for o in options}
        )
        return field_id

    def hide_field(self, field_id: str) -> None:
        """Take a field off the create/edit screens: setting it answers "cannot be set"."""
        self.fields[field_id].on_screen = False

    def set_rate(self, burst: int | None) -> None:
        """Change the burst limit (buckets start full again); None disables it."""
        self.burst = burst
        self._buckets.reset()

    def set_index_delay(self, seconds: float) -> None:
        """How long a new issue takes to show up in search from now on."""
        self.index_delay = seconds

    def index_all(self) -> None:
        """Make every issue searchable now."""
        now = self.clock()
        for issue in self.issues_by_id.values():
            issue.searchable_at = min(issue.searchable_at, now)

    def fail_next(self, n: int = 1, status: int = 503, **options: Unpack[FaultOptions]) -> None:
        """Answer the next ``n`` matching requests with ``status``.

        Args:
            n: How many requests fail.
            status: HTTP status (503, 429, 500, ...).
            **options: ``message``, ``retry_after``, ``after``, ``method``, ``path``: see ``FaultOptions``.
        """
        self._faults.add(Fault.on(status, **options), n)

    def drop_next(self, n: int = 1, *, after: bool = True, method: str | None = None, path: str | None = None) -> None:
        """Drop the connection of the next ``n`` matching requests.

        The next ``n`` matching requests lose their connection before the answer. With ``after`` (the
        default) the request is carried out first: "the issue was created but the response is lost",
        which is also what a client crashing right after its create looks like to the server.
        """
        self._faults.add(Fault.on(0, method=method, path=path, after=after, drop=True), n)

    def requests(self, method: str | None = None, path: str | None = None) -> list[LoggedRequest]:
        """Logged requests, optionally only those with this verb and a path matching this regex."""
        return self.log.matching(method, path)

    # -- issues (test side) --------------------------------------------------------------------

    def add_issue(
        self,
        project: str,
        summary: str = "An issue",
        *,
        description: str | Json | None = None,
        issue_type: str = "Task",
        status: str = "To Do",
        priority: str | None = DEFAULT_PRIORITY,
        labels: Sequence[str] = (),
        assignee: str | None = None,
        reporter: str | None = None,
        components: Sequence[str] = (),
        fix_versions: Sequence[str] = (),
        due: str | None = None,
        properties: Mapping[str, Any] | None = None,
        custom: Mapping[str, Any] | None = None,
        created: float | None = None,
        searchable: bool = True,
    ) -> FakeIssue:
        """Add an issue as a person would (no validation); searchable at once unless told otherwise."""
        with self._lock:
            proj = self.projects[project]
            now = self.clock() if created is None else created
            doc = _doc(description) if isinstance(description, str) else description
            fields: Json = {
                "summary": summary,
                "description": doc,
                "labels": list(labels),
                "priority": self._priority_json(priority) if priority else None,
                "assignee": self._user_json(assignee) if assignee else None,
                "reporter": self._user_json(reporter or self.account_ids[self.email]),
                "duedate": due,
                "components": [self._named_json(proj.components, c, "component") for c in components],
                "versions": [],
                "fixVersions": [self._named_json(proj.versions, v, "version") for v in fix_versions],
                "issuetype": self._issuetype_json(proj, issue_type),
                "status": self._status_json(status),
            }
            fields.update(custom or {})
            issue = self._new_issue(proj, fields, dict(properties or {}), now)
            # Added "by a person" earlier: already in the search index (or, on request, not yet).
            issue.searchable_at = -math.inf if searchable else math.inf
            return issue

    def set_fields(self, id_or_key: str, values: Mapping[str, Any]) -> FakeIssue:
        """Overwrite API-shaped field values (as an edit in the UI would) and bump ``updated``."""
        with self._lock:
            issue = self.issue(id_or_key)
            issue.fields.update(values)
            issue.updated = self.clock()
            return issue

    def move_issue(self, id_or_key: str, project: str) -> FakeIssue:
        """Move an issue to another project: new key, same id; the old key keeps resolving."""
        with self._lock:
            issue = self.issue(id_or_key)
            target = self.projects[project]
            target.counter += 1
            issue.old_keys.append(issue.key)
            issue.key = f"{target.key}-{target.counter}"
            issue.project = target.key
            self.keys[issue.key] = issue.id
            issue.fields["issuetype"] = self._issuetype_json(target, issue.fields["issuetype"]["name"])
            issue.fields["components"] = []
            issue.fields["fixVersions"] = []
            issue.updated = self.clock()
            return issue

    def delete_issue(self, id_or_key: str) -> None:
        """Delete an issue as another user would: it answers 404 from now on."""
        with self._lock:
            self.issue(id_or_key).deleted = True

    def issue(self, id_or_key: str) -> FakeIssue:
        """The issue with this id or (current or old) key; KeyError if none."""
        issue_id = id_or_key if id_or_key in self.issues_by_id else self.keys.get(id_or_key.upper())
        if issue_id is None:
            raise KeyError(id_or_key)
        return self.issues_by_id[issue_id]

    def issues(self, project: str | None = None, *, include_deleted: bool = False) -> list[FakeIssue]:
        """The stored issues, of one project if given (deleted ones only on request)."""
        return [
            i
            for i in self.issues_by_id.values()
            if (project is None or i.project == project) and (include_deleted or not i.deleted)
        ]

    def property(self, id_or_key: str, key: str) -> Any:
        """The value of an issue's entity property ``key`` (None if unset)."""
        return self.issue(id_or_key).properties.get(key)

    def description_text(self, id_or_key: str) -> str:
        """An issue's description as plain text."""
        return adf_text(self.issue(id_or_key).fields.get("description"))

    def searchable(self, issue: FakeIssue, reconcile: set[int] | frozenset[int] = frozenset()) -> bool:
        """Whether search sees the issue now (indexed, or named in ``reconcile``)."""
        return not issue.deleted and (issue.searchable_at <= self.clock() or int(issue.id) in reconcile)

    # -- JSON views ----------------------------------------------------------------------------

    def _priority_json(self, name: str) -> Json:
        pid = self.priorities[name]
        return {"self": f"{self.site}{API}/priority/{pid}", "id": pid, "name": name}

    def _user_json(self, account_id: str) -> Json:
        user = self.users[account_id]
        return {
            "self": f"{self.site}{API}/user?accountId={account_id}",
            "accountId": account_id,
            "accountType": user["accountType"],
            "displayName": user["displayName"],
            "active": user["active"],
        }

    def _named_json(self, names: Mapping[str, str], name: str, kind: str) -> Json:
        return {"self": f"{self.site}{API}/{kind}/{names[name]}", "id": names[name], "name": name}

    def _issuetype_json(self, project: FakeProject, name: str) -> Json:
        type_id = project.issue_types[name]
        return {"self": f"{self.site}{API}/issuetype/{type_id}", "id": type_id, "name": name, "subtask": False}

    def _status_json(self, name: str) -> Json:
        status_id = str(list(STATUSES).index(name) + 1)
        key = STATUSES[name]
        cat_id, color, cat_name = STATUS_CATEGORIES[key]
        return {
            "self": f"{self.site}{API}/status/{status_id}",
            "description": "",
            "iconUrl": f"{self.site}/",
            "name": name,
            "id": status_id,
            "statusCategory": {
                "self": f"{self.site}{API}/statuscategory/{cat_id}",
                "id": cat_id,
                "key": key,
                "colorName": color,
                "name": cat_name,
            },
        }

    def _project_json(self, project: FakeProject) -> Json:
        return {
            "self": f"{self.site}{API}/project/{project.id}",
            "id": project.id,
            "key": project.key,
            "name": project.name,
        }

    def _new_issue(self, project: FakeProject, fields: Json, properties: Json, now: float) -> FakeIssue:
        project.counter += 1
        issue_id = str(next(self._ids))
        key = f"{project.key}-{project.counter}"
        issue = FakeIssue(
            id=issue_id,
            key=key,
            project=project.key,
            fields=fields,
            properties=properties,
            created=now,
            updated=now,
            searchable_at=now + self.index_delay,
        )
        self.issues_by_id[issue_id] = issue
        self.keys[key] = issue_id
        return issue

    def _issue_json(
        self,
        issue: FakeIssue,
        fields: Sequence[str] | None,
        properties: Sequence[str],
        expand: frozenset[str] = frozenset(),
    ) -> Json:
        """An issue as Jira answers it, narrowed to ``fields``.

        ``fields`` None: every field; [] : id only (search's default). ``expand``: ``renderedFields``
        adds the HTML renderings (absent otherwise, as in Jira).
        """
        if fields is not None and not fields and not properties:
            return {"id": issue.id}
        out: Json = {
            "expand": ISSUE_EXPAND,
            "id": issue.id,
            "self": f"{self.site}{API}/issue/{issue.id}",
            "key": issue.key,
        }
        everything = {
            **issue.fields,
            "project": self._project_json(self.projects[issue.project]),
            "created": _ts(issue.created, self.timezone),
            "updated": _ts(issue.updated, self.timezone),
        }
        for fid, value in list(everything.items()):
            fld = self.fields.get(fid)
            if fld is not None and fld.custom and fld.schema.get("type") == "datetime" and isinstance(value, str):
                # Stored as sent; Jira answers in the requesting user's time zone.
                with contextlib.suppress(ValueError):
                    when = dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")
                    everything[fid] = _ts(when.timestamp(), self.timezone)
        if fields is None or "*all" in fields or "*navigable" in fields:
            chosen = dict(everything)
        else:
            chosen = {name: everything.get(name) for name in fields if name in everything or name in self.fields}
        for name in fields or ():
            if name.startswith("-"):
                chosen.pop(name[1:], None)
        if fields is None or fields:
            out["fields"] = chosen
            if "renderedFields" in expand:
                out["renderedFields"] = {fid: self._rendered(fid, value) for fid, value in chosen.items()}
        if properties:
            wanted = set(issue.properties) if "*all" in properties else set(properties)
            out["properties"] = {k: v for k, v in issue.properties.items() if k in wanted}
        return out

    def _rendered(self, fid: str, value: Any) -> Any:
        """``renderedFields``: HTML for rich text, Jira's display format for dates, None for the rest."""
        if isinstance(value, dict) and value.get("type") == "doc":
            return "".join(f"<p>{p}</p>" for p in adf_text(value).split("\n\n") if p)
        if fid in ("created", "updated") and isinstance(value, str):
            when = dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")
            return when.strftime("%d/%b/%y %I:%M %p")
        return None

    def _expanded_meta(self, expand: frozenset[str], returned: Sequence[str]) -> Json:
        """The ``names`` and ``schema`` maps of an expanded answer, for the fields it returned."""
        out: Json = {}
        known = [fid for fid in dict.fromkeys(returned) if fid in self.fields]
        if "names" in expand:
            out["names"] = {fid: self.fields[fid].name for fid in known}
        if "schema" in expand:
            out["schema"] = {fid: dict(self.fields[fid].schema) for fid in known}
        return out

    # -- the app -------------------------------------------------------------------------------

    def _build_app(self) -> Starlette:
        def route(path: str, handler: Callable[..., Any], methods: list[str]) -> Route:
            async def endpoint(request: Request) -> Response:
                return await self._serve(request, handler, path)

            return Route(path, endpoint, methods=methods)

        return Starlette(
            routes=[
                route(f"{API}/search/jql", self._search, ["GET", "POST"]),
                route(f"{API}/search", self._removed, ["GET", "POST"]),
                route("/rest/api/2/search", self._removed, ["GET", "POST"]),
                route(f"{API}/issue", self._create, ["POST"]),
                route(f"{API}/issue/bulk", self._bulk_create, ["POST"]),
                route(f"{API}/issue/{{id}}", self._get_issue, ["GET"]),
                route(f"{API}/issue/{{id}}", self._edit, ["PUT"]),
                route(f"{API}/issue/{{id}}/properties/{{prop}}", self._get_property, ["GET"]),
                route(f"{API}/issue/{{id}}/properties/{{prop}}", self._set_property, ["PUT"]),
                route(f"{API}/field", self._get_fields, ["GET"]),
                route(f"{API}/project/{{key}}", self._get_project, ["GET"]),
                route(f"{API}/myself", self._myself, ["GET"]),
            ]
        )

    async def _serve(self, request: Request, handler: Callable[..., Any], template: str) -> Response:
        raw = await request.body()
        method, path = request.method, request.url.path
        params = dict(request.query_params)
        body: Any = None
        drop = False
        with self._lock:
            self.counters.requests += 1
            try:
                email = self._authenticate(request)
                self._take(method, template)
                fault = self._faults.take(method, path)
                if fault is not None and not fault.after:
                    raise self._fault_error(fault)
                if raw:
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        raise _Fail(400, ["Unexpected character: the request body is not JSON."]) from None
                status, result = handler(email, body, params, **request.path_params)
                if fault is not None:  # after=True: it took effect; the answer is lost
                    raise self._fault_error(fault)
                if status == 204 or result is None:
                    response: Response = Response(status_code=status)
                else:
                    response = JSONResponse(result, status_code=status)
            except _Drop:
                status, drop = 0, True
                response = Response(status_code=500)
            except _Fail as fail:
                status, response = fail.status, fail.response()
                self.counters.errors += 1
                if fail.status == 429:
                    self.counters.rate_limited += 1
            self.log.append(LoggedRequest(method, path, status, body, params))
        if drop:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        response.headers["X-AREQUESTID"] = _request_id()
        response.headers["ATL-TraceId"] = secrets.token_hex(8)
        return response

    def _fault_error(self, fault: Fault) -> Exception:
        if fault.drop:
            return _Drop()
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
        return _Fail(fault.status, [fault.message or f"Injected failure ({fault.status})."], headers=headers)

    def _authenticate(self, request: Request) -> str:
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            raise _Fail(401, [NOT_AUTHENTICATED])
        try:
            email, _, token = base64.b64decode(encoded.strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise _Fail(401, [NOT_AUTHENTICATED]) from None
        if self.tokens.get(token) != email:
            raise _Fail(401, [NOT_AUTHENTICATED])
        return email

    def _take(self, method: str, template: str) -> None:
        if self.burst is None:
            return
        now = self.clock()
        wait = self._buckets.take((method, template), rate=self.burst, burst=self.burst, now=now)
        if wait is None:
            return
        reset = dt.datetime.fromtimestamp(now + wait, dt.UTC).strftime("%Y-%m-%dT%H:%MZ")
        raise _Fail(
            429,
            ["Rate limit exceeded."],
            headers={
                "Retry-After": str(wait),
                "X-RateLimit-Reset": reset,
                "RateLimit-Reason": "jira-burst-based",
                "X-RateLimit-Limit": str(self.burst),
                "X-RateLimit-Remaining": "0",
            },
        )

    def _lookup(self, id_or_key: str) -> FakeIssue:
        try:
            issue = self.issue(id_or_key)
        except KeyError:
            raise _Fail(404, [NO_ISSUE]) from None
        if issue.deleted:
            raise _Fail(404, [NO_ISSUE])
        return issue

    # -- endpoints -----------------------------------------------------------------------------

    def _removed(self, email: str, body: Any, params: Mapping[str, str]) -> tuple[int, Any]:
        raise _Fail(410, [REMOVED])

    def _myself(self, email: str, body: Any, params: Mapping[str, str]) -> tuple[int, Any]:
        return 200, self._user_json(self.account_ids[email])

    def _get_fields(self, email: str, body: Any, params: Mapping[str, str]) -> tuple[int, Any]:
        return 200, [
            {
                "id": f.id,
                "key": f.id,
                "name": f.name,
                "custom": f.custom,
                "orderable": f.settable,
                "navigable": True,
                "searchable": True,
                "clauseNames": [f.id, f.name.lower()] if not f.custom else [f"cf[{f.schema.get('customId')}]", f.name],
                "schema": f.schema,
            }
            for f in self.fields.values()
        ]

    def _get_project(self, email: str, body: Any, params: Mapping[str, str], key: str) -> tuple[int, Any]:
        project = self.projects.get(key.upper()) or next((p for p in self.projects.values() if p.id == key), None)
        if project is None:
            raise _Fail(404, [f"No project could be found with key '{key}'."])
        return 200, {
            **self._project_json(project),
            "issueTypes": [{"id": tid, "name": name, "subtask": False} for name, tid in project.issue_types.items()],
            "components": [{"id": cid, "name": name} for name, cid in project.components.items()],
            "versions": [{"id": vid, "name": name} for name, vid in project.versions.items()],
        }

    def _get_issue(self, email: str, body: Any, params: Mapping[str, str], id: str) -> tuple[int, Any]:
        issue = self._lookup(id)
        fields = _csv(params.get("fields"))
        properties = _csv(params.get("properties")) or []
        expand = _expand(params.get("expand"))
        out = self._issue_json(issue, fields, properties, expand)
        out.update(self._expanded_meta(expand, list(out.get("fields", {}))))
        return 200, out

    def _get_property(self, email: str, body: Any, params: Mapping[str, str], id: str, prop: str) -> tuple[int, Any]:
        issue = self._lookup(id)
        if prop not in issue.properties:
            raise _Fail(404, [f"The property with key '{prop}' does not exist."])
        return 200, {"key": prop, "value": issue.properties[prop]}

    def _set_property(self, email: str, body: Any, params: Mapping[str, str], id: str, prop: str) -> tuple[int, Any]:
        issue = self._lookup(id)
        problem = _property_problem(prop, body)
        if problem:
            raise _Fail(400, [problem])
        existed = prop in issue.properties
        issue.properties[prop] = body
        self.counters.writes += 1
        return (200 if existed else 201), None

    def _create(self, email: str, body: Any, params: Mapping[str, str]) -> tuple[int, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("fields"), dict):
            raise _Fail(400, ["The request must contain 'fields'."])
        if body.get("update"):
            raise _Fail(400, ["This fake does not support 'update' operations; use 'fields'."])
        raw = dict(body["fields"])
        errors: dict[str, str] = {}
        project = self._project_ref(raw.pop("project", None))
        if project is None:
            errors["project"] = "Specify a valid project ID or key"
        issue_type = self._issuetype_ref(project, raw.pop("issuetype", None)) if project else None
        if project is not None and issue_type is None:
            errors["issuetype"] = "Specify a valid issue type"
        if not raw.get("summary"):
            errors.setdefault("summary", "You must specify a summary of the issue.")
        values, field_errors = self._check_fields(project, raw)
        errors.update(field_errors)
        properties = self._check_properties(body.get("properties"))
        if errors:
            raise _Fail(400, [], errors)
        assert project is not None and issue_type is not None
        fields: Json = {
            "summary": "",
            "description": None,
            "labels": [],
            "priority": self._priority_json(DEFAULT_PRIORITY),
            "assignee": None,
            "reporter": self._user_json(self.account_ids[email]),
            "duedate": None,
            "components": [],
            "versions": [],
            "fixVersions": [],
            "issuetype": self._issuetype_json(project, issue_type),
            "status": self._status_json("To Do"),
        }
        fields.update(values)
        issue = self._new_issue(project, fields, properties, self.clock())
        self.counters.writes += 1
        self.counters.creates += 1
        return 201, {"id": issue.id, "key": issue.key, "self": f"{self.site}{API}/issue/{issue.id}"}

    def _bulk_create(self, email: str, body: Any, params: Mapping[str, str]) -> tuple[int, Any]:
        updates = body.get("issueUpdates") if isinstance(body, dict) else None
        if not isinstance(updates, list) or not updates:
            raise _Fail(400, ["The request must contain 'issueUpdates'."])
        if len(updates) > MAX_BULK_CREATE:
            raise _Fail(400, [f"The bulk create request can contain at most {MAX_BULK_CREATE} issues."])
        self.counters.bulk_creates += 1
        issues: list[Json] = []
        errors: list[Json] = []
        for number, update in enumerate(updates):
            try:
                _, created = self._create(email, update, params)
            except _Fail as fail:
                errors.append(
                    {
                        "status": fail.status,
                        "elementErrors": {"errorMessages": fail.messages, "errors": fail.errors},
                        "failedElementNumber": number,
                    }
                )
                continue
            issues.append(created)
        return (201 if issues else 400), {"issues": issues, "errors": errors}

    def _edit(self, email: str, body: Any, params: Mapping[str, str], id: str) -> tuple[int, Any]:
        issue = self._lookup(id)
        if not isinstance(body, dict):
            raise _Fail(400, ["The request body must be an object."])
        if body.get("update"):
            raise _Fail(400, ["This fake does not support 'update' operations; use 'fields'."])
        raw = dict(body.get("fields") or {})
        errors: dict[str, str] = {}
        for fixed in ("project", "issuetype"):
            if fixed in raw:
                raw.pop(fixed)
                errors[fixed] = f"Field '{fixed}' cannot be set. It is not on the appropriate screen, or unknown."
        if "summary" in raw and not raw["summary"]:
            errors["summary"] = "You must specify a summary of the issue."
        values, field_errors = self._check_fields(self.projects[issue.project], raw)
        errors.update(field_errors)
        properties = self._check_properties(body.get("properties"))
        if errors:
            raise _Fail(400, [], errors)
        issue.fields.update(values)
        issue.properties.update(properties)
        issue.updated = self.clock()
        self.counters.writes += 1
        return 204, None

    def _project_ref(self, ref: Any) -> FakeProject | None:
        if not isinstance(ref, dict):
            return None
        if ref.get("key"):
            return self.projects.get(str(ref["key"]))
        return next((p for p in self.projects.values() if p.id == str(ref.get("id"))), None)

    def _issuetype_ref(self, project: FakeProject | None, ref: Any) -> str | None:
        if project is None or not isinstance(ref, dict):
            return None
        if ref.get("name") in project.issue_types:
            return str(ref["name"])
        return next((n for n, tid in project.issue_types.items() if tid == str(ref.get("id"))), None)

    def _check_properties(self, raw: Any) -> Json:
        if raw is None:
            return {}
        if not isinstance(raw, list):
            raise _Fail(400, ["'properties' must be a list of {key, value}."])
        out: Json = {}
        for item in raw:
            if not isinstance(item, dict) or not isinstance(item.get("key"), str) or "value" not in item:
                raise _Fail(400, ["Each property needs a 'key' and a 'value'."])
            problem = _property_problem(item["key"], item["value"])
            if problem:
                raise _Fail(400, [problem])
            out[item["key"]] = item["value"]
        return out

    def _check_fields(self, project: FakeProject | None, raw: Mapping[str, Any]) -> tuple[Json, dict[str, str]]:
        """Validate settable fields; returns (API-shaped values to store, errors by field id)."""
        values: Json = {}
        errors: dict[str, str] = {}
        for fid, value in raw.items():
            fld = self.fields.get(fid)
            if fld is None or not fld.settable or not fld.on_screen:
                errors[fid] = f"Field '{fid}' cannot be set. It is not on the appropriate screen, or unknown."
                continue
            try:
                values[fid] = self._check_value(project, fld, value)
            except _Fail as fail:
                errors[fid] = fail.messages[0]
        return values, errors

    def _check_value(self, project: FakeProject | None, fld: FakeField, value: Any) -> Any:
        def bad(message: str) -> _Fail:
            return _Fail(400, [message])

        schema = fld.schema
        kind, items, custom = schema.get("type"), schema.get("items"), str(schema.get("custom") or "")
        if fld.id == "summary":
            if not isinstance(value, str):
                raise bad("Operation value must be a string")
            if len(value) > MAX_SUMMARY:
                raise bad("Summary must be less than 255 characters.")
            if "\n" in value or "\r" in value:
                raise bad("The summary is invalid because it contains newline characters.")
            return value
        if fld.id in ("description", "environment") or custom.endswith(":textarea"):
            if value is None:
                return None
            problem = _adf_problem(value)
            if problem:
                raise bad(problem)
            return value
        if kind == "array" and items == "string":
            if value is None:
                return []
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise bad("Operation value must be an array of strings")
            for label in value:
                if not label or any(ch.isspace() for ch in label):
                    raise bad(f"The label '{label}' contains spaces which is invalid.")
                if len(label) > MAX_LABEL:
                    raise bad(f"The label '{label[:20]}...' is longer than {MAX_LABEL} characters.")
            return list(value)
        if kind == "priority":
            name = _ref_name(value, self.priorities)
            if name is None:
                raise bad(f"Priority name '{_ref_text(value)}' is not valid")
            return self._priority_json(name)
        if kind == "user":
            if value is None:
                if fld.id == "reporter":
                    raise bad("Reporter is required.")
                return None
            account = value.get("accountId") if isinstance(value, dict) else None
            user = self.users.get(str(account)) if account else None
            if user is None or not user["active"]:
                raise bad(f"Specify a valid value for {fld.name.lower()}: the accountId '{account}' is not valid.")
            return self._user_json(str(account))
        if kind == "date":
            if value is None:
                return None
            if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
                raise bad(f"Error parsing date string: {value}")
            try:
                dt.date.fromisoformat(value)
            except ValueError:
                raise bad(f"Error parsing date string: {value}") from None
            return value
        if kind == "datetime":
            if value is None:
                return None
            try:
                dt.datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%S.%f%z")
            except ValueError:
                raise bad(f"Error parsing date-time string: {value}") from None
            return value
        if kind == "array" and items in ("component", "version"):
            if project is None:
                raise bad("Specify a project first")
            names = project.components if items == "component" else project.versions
            if not isinstance(value, list):
                raise bad(f"Operation value must be an array of {items}s")
            out = []
            for ref in value:
                name = _ref_name(ref, names)
                if name is None:
                    raise bad(f"{items.title()} name '{_ref_text(ref)}' is not valid")
                out.append(self._named_json(names, name, items))
            return out
        if kind == "option":
            if value is None:
                return None
            option = _ref_option(value, fld.options)
            if option is None:
                raise bad(f"Option value '{_ref_text(value)}' is not valid")
            return {
                "self": f"{self.site}{API}/customFieldOption/{fld.options[option]}",
                "value": option,
                "id": fld.options[option],
            }
        if kind == "array" and items == "option":
            if value is None:
                return []
            if not isinstance(value, list):
                raise bad("Operation value must be an array of options")
            out = []
            for ref in value:
                option = _ref_option(ref, fld.options)
                if option is None:
                    raise bad(f"Option value '{_ref_text(ref)}' is not valid")
                out.append({"value": option, "id": fld.options[option]})
            return out
        if kind == "number":
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise bad("Operation value must be a number")
            return value
        if kind == "string":
            if value is None:
                return None
            if not isinstance(value, str):
                raise bad("Operation value must be a string")
            if len(value) > MAX_TEXTFIELD:
                raise bad(f"Text fields cannot be more than {MAX_TEXTFIELD} characters.")
            return value
        raise bad(f"Field '{fld.id}' cannot be set. It is not on the appropriate screen, or unknown.")

    # -- search --------------------------------------------------------------------------------

    def _search(self, email: str, body: Any, params: Mapping[str, str]) -> tuple[int, Any]:
        if body is None:  # GET: the same parameters in the query string
            body = {
                "jql": params.get("jql"),
                "nextPageToken": params.get("nextPageToken"),
                "maxResults": int(params["maxResults"]) if params.get("maxResults") else None,
                "fields": _csv(params.get("fields")) or [],
                "properties": _csv(params.get("properties")) or [],
                "reconcileIssues": [int(i) for i in _csv(params.get("reconcileIssues")) or []],
                "expand": params.get("expand"),
            }
        if not isinstance(body, dict):
            raise _Fail(400, ["The request body must be an object."])
        jql = body.get("jql")
        if not isinstance(jql, str) or not jql.strip():
            raise _Fail(400, [UNBOUNDED])
        predicate, order = _JqlParser(self, jql).parse()
        if predicate is None:
            raise _Fail(400, [UNBOUNDED])
        fields = [str(f) for f in body.get("fields") or []]
        properties = [str(p) for p in body.get("properties") or []]
        if len(properties) > MAX_SEARCH_PROPERTIES:
            raise _Fail(400, [f"You can request at most {MAX_SEARCH_PROPERTIES} properties."])
        reconcile = body.get("reconcileIssues") or []
        if not isinstance(reconcile, list) or not all(isinstance(i, int) for i in reconcile):
            raise _Fail(400, ["reconcileIssues must be a list of issue ids (numbers)."])
        if len(reconcile) > MAX_RECONCILE:
            raise _Fail(400, [f"The number of issues to reconcile must not exceed {MAX_RECONCILE}."])
        requested = body.get("maxResults")
        max_results = DEFAULT_MAX_RESULTS if requested is None else int(requested)
        if max_results < 0:
            raise _Fail(400, ["maxResults must not be negative."])
        ids_only = all(f in ("id", "key") for f in fields)
        max_results = min(max_results, MAX_RESULTS_IDS_ONLY if ids_only else MAX_RESULTS_WITH_FIELDS)
        digest = hashlib.sha256(jql.encode()).hexdigest()[:16]
        offset = 0
        token = body.get("nextPageToken")
        if token:
            offset = self._read_token(str(token), digest)
        chosen = set(reconcile)
        matching = [i for i in self.issues_by_id.values() if self.searchable(i, chosen) and predicate(i)]
        matching.sort(key=lambda i: int(i.id), reverse=not order)  # no ORDER BY: newest first
        for name, ascending in reversed(order):
            matching.sort(key=lambda i, n=name: _sort_key(i, n), reverse=not ascending)  # type: ignore[misc]
        expand = _expand(body.get("expand"))
        page = matching[offset : offset + max_results]
        end = offset + len(page)
        issues = [self._issue_json(i, fields, properties, expand) for i in page]
        # No "total" (there is a separate approximate-count endpoint). The last page carries isLast
        # and no nextPageToken key at all (JRACLOUD-92184), not a null one.
        result: Json = {"issues": issues}
        if end < len(matching):
            result["nextPageToken"] = self._make_token(end, digest)
        result["isLast"] = end >= len(matching)
        returned = [fid for issue in issues for fid in issue.get("fields", {})]
        result.update(self._expanded_meta(expand, returned))
        return 200, result

    def _make_token(self, offset: int, digest: str) -> str:
        raw = json.dumps({"o": offset, "q": digest, "t": self.clock()}).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def _read_token(self, token: str, digest: str) -> int:
        try:
            state = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            offset, query, issued = int(state["o"]), str(state["q"]), float(state["t"])
        except (ValueError, KeyError, TypeError):
            raise _Fail(400, [BAD_TOKEN]) from None
        if query != digest or self.clock() - issued > PAGE_TOKEN_TTL:
            raise _Fail(400, [BAD_TOKEN])
        return offset

    def _empty_test(self, name: str) -> Predicate:
        lowered = name.lower()
        if lowered.startswith("issue.property["):
            # Entity properties set over REST are not indexed without an app's index module.
            return lambda issue: True
        fid = self._field_for(lowered)
        return lambda issue: issue.fields.get(fid) in (None, [], "")

    def _field_for(self, name: str) -> str:
        aliases = {"type": "issuetype", "fixversion": "fixVersions", "component": "components", "due": "duedate"}
        name = aliases.get(name, name)
        for fld in self.fields.values():
            if name in (fld.id.lower(), fld.name.lower()) or name == f"cf[{fld.schema.get('customId')}]":
                return fld.id
        raise _Fail(400, [f"Field '{name}' does not exist or you do not have permission to view it."])

    def _clause(self, name: str, op: str, values: list[str]) -> Predicate:
        lowered = name.lower()
        if lowered.startswith("issue.property["):
            return lambda issue: False  # not indexed (see _empty_test)
        if lowered == "project":
            wanted: set[str] = set()
            for v in values:
                project = self.projects.get(v.upper()) or next(
                    (p for p in self.projects.values() if v in (p.id, p.name)), None
                )
                if project is None:
                    raise _Fail(400, [f"The value '{v}' does not exist for the field 'project'."])
                wanted.add(project.key)
            if op in ("=", "in"):
                return lambda issue: issue.project in wanted
            if op == "!=":
                return lambda issue: issue.project not in wanted
        if lowered in ("id", "key", "issue", "issuekey"):
            ids: set[str] = set()
            for v in values:
                if _KEY_RE.match(v):
                    found = self.keys.get(v.upper())
                    if found is None:
                        raise _Fail(400, [f"An issue with key '{v}' does not exist for field '{lowered}'."])
                    ids.add(found)
                elif v.isdigit():
                    ids.add(v)
                else:
                    raise _Fail(400, [f"The issue key '{v}' for field '{lowered}' is invalid."])
            if op in ("=", "in"):
                return lambda issue: issue.id in ids
            if op == "!=":
                return lambda issue: issue.id not in ids
        if lowered in ("created", "updated") and op in ("=", "!=", ">", ">=", "<", "<="):
            bound = _parse_jql_time(values[0])
            compare = {
                "=": lambda a: a == bound,
                "!=": lambda a: a != bound,
                ">": lambda a: a > bound,
                ">=": lambda a: a >= bound,
                "<": lambda a: a < bound,
                "<=": lambda a: a <= bound,
            }[op]
            return lambda issue: compare(issue.created if lowered == "created" else issue.updated)
        if lowered == "summary" and op == "~":
            needle = values[0].lower()
            return lambda issue: needle in str(issue.fields.get("summary", "")).lower()
        if op in ("=", "!=", "in"):
            fid = self._field_for(lowered)
            wanted_values = {v.lower() for v in values}

            def names(issue: FakeIssue) -> set[str]:
                value = issue.fields.get(fid)
                items = value if isinstance(value, list) else [value]
                out: set[str] = set()
                for item in items:
                    if isinstance(item, dict):
                        out.update(
                            str(item.get(k)).lower() for k in ("name", "value", "id", "accountId") if item.get(k)
                        )
                    elif item is not None:
                        out.add(str(item).lower())
                return out

            if op == "!=":
                return lambda issue: not (names(issue) & wanted_values)
            return lambda issue: bool(names(issue) & wanted_values)
        raise _Fail(400, [f"The operator '{op}' is not supported by the '{name}' field (in this fake)."])


def _sort_key(issue: FakeIssue, name: str) -> Any:
    if name == "created":
        return (issue.created, int(issue.id))
    if name == "updated":
        return (issue.updated, int(issue.id))
    if name in ("key", "issuekey"):
        return (issue.project, issue.number)
    return int(issue.id)


def _expand(value: Any) -> frozenset[str]:
    """``expand`` as Jira takes it: a comma-separated string (a list is accepted too)."""
    if isinstance(value, list):
        return frozenset(str(v).strip() for v in value if str(v).strip())
    return frozenset(_csv(value) or []) if isinstance(value, str) else frozenset()


def _csv(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


def _property_problem(key: Any, value: Any) -> str | None:
    if not isinstance(key, str) or not key or len(key) > MAX_PROPERTY_KEY:
        return f"The property key must be 1..{MAX_PROPERTY_KEY} characters."
    if len(json.dumps(value)) > MAX_PROPERTY_VALUE:
        return f"The property value must not be longer than {MAX_PROPERTY_VALUE} characters."
    return None


def _ref_text(ref: Any) -> str:
    if isinstance(ref, dict):
        return str(ref.get("name") or ref.get("value") or ref.get("id") or "")
    return str(ref)


def _ref_name(ref: Any, names: Mapping[str, str]) -> str | None:
    if not isinstance(ref, dict):
        return None
    if ref.get("name") in names:
        return str(ref["name"])
    return next((n for n, i in names.items() if i == str(ref.get("id"))), None)


def _ref_option(ref: Any, options: Mapping[str, str]) -> str | None:
    if not isinstance(ref, dict):
        return None
    if ref.get("value") in options:
        return str(ref["value"])
    return next((n for n, i in options.items() if i == str(ref.get("id"))), None)


# --------------------------------------------------------------------------------------------------
# Loopback server


@contextlib.contextmanager
def serve(fake: FakeJira, *, host: str = "127.0.0.1") -> Iterator[str]:
    """Run the fake on a free loopback port in a thread; yields its base URL; stops cleanly on exit."""
    with serve_app(fake.app, name="jira", host=host) as url:
        yield url

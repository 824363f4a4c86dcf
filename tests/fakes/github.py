"""A stateful fake of the GitHub REST API (the endpoints the GitHub source reads), as a Starlette app.

Use it in-process::

    clock = FakeClock()
    fake = FakeGitHub(clock=clock.clock)
    fake.add_repos("acme", 250)
    transport = httpx.ASGITransport(app=fake.app)       # base_url https://api.github.com

or on a loopback port (``with serve(fake) as base_url: ...``).

What it does as GitHub does:

- ``GET /orgs/{org}/repos`` (``type``, ``sort``, ``direction``, ``per_page`` ≤ 100, ``page``) with a
  ``Link`` header of absolute URLs on ``/organizations/{org_id}/repos`` (``rel="next"``, ``"last"``,
  ``"first"``, ``"prev"``), which it also serves; ``GET /repos/{owner}/{repo}`` and
  ``/repositories/{id}``; ``/readme`` (raw text for ``Accept: application/vnd.github.raw``, base64
  JSON otherwise; 404 when there is none); ``/languages``; ``/contributors`` (``per_page``, ``page``;
  204 for an empty repo; 403 "too large" on demand). A renamed repo's old name answers 301 to
  ``/repositories/{id}…``. Names are case-insensitive. ``GET /rate_limit`` (free, as on GitHub).
- Bearer (or ``token``) auth: 401 ``{"message": "Bad credentials"}`` for an unknown or revoked token;
  no token is anonymous (public repos only, its own 60/h bucket) unless ``allow_anonymous=False``.
- A weak ETag on every 200 (a hash of the body) and ``304 Not Modified`` with an empty body when
  ``If-None-Match`` matches; a 304 does not count against the primary rate limit.
- The primary rate limit: ``x-ratelimit-limit/remaining/used/reset/resource`` on every response; at 0
  remaining a 403 with ``x-ratelimit-remaining: 0`` and ``API rate limit exceeded for user ID 1.``
  until the reset (window and limit configurable, time injectable).
- On demand: secondary rate limits (403/429 with ``retry-after``) and injected faults (``fail_next``).
- ``x-github-request-id`` on every response (GitHub's five hex groups); a 403 without a ``User-Agent``.
- Real shapes: repo, org and user ids beyond 2**31 (repos beyond 2**32: ``REPO_ID_START``), node ids in
  GitHub's current format (``R_kgDP…``, ``O_…``, ``U_…``), the full repo object (``owner`` object,
  ``license`` null or ``NOASSERTION``/``other``, ``topics``, ``visibility``, ``pushed_at`` null for an
  empty repo), error bodies ``{"message", "documentation_url", "status": "<code as a string>"}``.
- User accounts (``add_user``): ``/orgs/{user}/repos`` is a 404; ``/users/{login}/repos`` (``type`` =
  owner/member/all, anything else a 422) pages on as ``/user/{id}/repos``.
- Blocked repos (``FakeRepo.blocked``): listed with their org, but every read answers "Repository
  access blocked" (451 for ``dmca``, 403 for ``tos``/``unavailable``).

Every request is logged in ``fake.requests`` as ``Call(method, path, status)``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import fnmatch
import hashlib
import itertools
import json
import re
import secrets
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.common import FakeTime, Fault, FaultQueue, RequestLog, TokenRegistry
from tests.fakes.loopback import serve_app

__all__ = ["Call", "FakeClock", "FakeGitHub", "FakeOrg", "FakeRepo", "serve"]

DOCS = "https://docs.github.com/rest"
RATE_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
SECONDARY_DOCS = RATE_DOCS + "#about-secondary-rate-limits"
REPO_ID_START = 1_234_567_890_123
"""First repo id: beyond 2**31 and 2**32 (GitHub ids are int64; repo ids passed 2**31 long ago for events)."""
ACCOUNT_ID_START = 2_200_000_001
"""First org/user id: beyond 2**31."""
USER_ID = 3_100_000_042
"""The id of the token's user, as GitHub quotes it in "API rate limit exceeded for user ID …"."""
SUPPORTED_API_VERSIONS = frozenset({"2022-11-28", "2026-03-10"})
JSON_TYPE = "application/json; charset=utf-8"
RAW_TYPE = "application/vnd.github.raw; charset=utf-8"


FakeClock = FakeTime
"""The shared fake clock (``tests.fakes.common.FakeTime``) under the name this module's users know."""


class Call(NamedTuple):
    """One request the fake answered."""

    method: str
    path: str
    status: int


@dataclass
class FakeOrg:
    """An account that owns repos: an organization, or a user (``type="User"``)."""

    login: str
    id: int
    type: str = "Organization"

    @property
    def is_user(self) -> bool:
        """Whether the account is a user rather than an organization."""
        return self.type == "User"


@dataclass
class FakeRepo:
    """One repository. Mutate it through ``FakeGitHub.modify_repo`` so ``updated_at`` moves."""

    id: int
    owner: str
    name: str
    description: str | None = None
    stargazers_count: int = 0
    forks_count: int = 0
    open_issues_count: int = 0
    language: str | None = "Python"
    topics: list[str] = field(default_factory=list)
    archived: bool = False
    fork: bool = False
    license: str | None = "MIT"  # SPDX id; None: no license file; "NOASSERTION": unrecognised
    pushed_at: str | None = "2024-05-01T10:00:00Z"  # None: never pushed to (GitHub sends null)
    created_at: str = "2020-01-15T08:30:00Z"
    updated_at: str = "2024-05-01T10:00:00Z"
    visibility: str = "public"
    readme: str | None = None
    languages: dict[str, int] = field(default_factory=dict)
    contributors: list[dict[str, Any]] = field(default_factory=list)  # {login, contributions, type}
    empty: bool = False  # no commits: contributors answer 204
    contributors_too_large: bool = False  # contributors answer GitHub's 403 "too large"
    blocked: str | None = None  # "dmca": 451; "tos"/"unavailable": 403 "Repository access blocked" (still listed)

    @property
    def full_name(self) -> str:
        """The ``owner/name`` of the repository."""
        return f"{self.owner}/{self.name}"

    @property
    def private(self) -> bool:
        """Whether the repository is not public."""
        return self.visibility != "public"


@dataclass
class _Bucket:
    limit: int
    window: float
    used: int = 0
    reset: float = 0.0


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _json_bytes(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def node_id(prefix: str, number: int) -> str:
    """A GraphQL node id in GitHub's current format: ``R_kgDO…`` (repo), ``O_…`` (org), ``U_…`` (user).

    The part after the underscore is URL-safe base64 (no padding) of a MessagePack array
    ``[0, id]``; an id of 2**32 or more is packed as uint64, hence ``kgDP`` instead of ``kgDO``.
    """
    if number < 0x80:
        packed_id = bytes([number])
    elif number < 0x100:
        packed_id = b"\xcc" + number.to_bytes(1, "big")
    elif number < 0x10000:
        packed_id = b"\xcd" + number.to_bytes(2, "big")
    elif number < 2**32:
        packed_id = b"\xce" + number.to_bytes(4, "big")
    else:
        packed_id = b"\xcf" + number.to_bytes(8, "big")
    packed = b"\x92\x00" + packed_id
    return f"{prefix}_" + base64.urlsafe_b64encode(packed).decode().rstrip("=")


def _etag(content: bytes, *, weak: bool = True) -> str:
    digest = hashlib.sha256(content).hexdigest()[:40]
    return f'W/"{digest}"' if weak else f'"{digest}"'


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(candidate.strip().removeprefix("W/") == bare for candidate in header.split(","))


_LICENSE_NAMES = {
    "MIT": "MIT License",
    "Apache-2.0": "Apache License 2.0",
    "BSD-3-Clause": 'BSD 3-Clause "New" or "Revised" License',
    "GPL-3.0": "GNU General Public License v3.0",
    "NOASSERTION": "Other",
}
_LICENSE_KEYS = {"NOASSERTION": "other"}


class FakeGitHub:
    """The fake API and its state. ``fake.app`` is the ASGI app.

    Args:
        token: The valid token (default: a random ``ghp_…``); more with ``add_token``.
        clock: Epoch seconds; share the client's fake clock so rate-limit resets line up.
        rate_limit: Requests per window for a token (GitHub: 5000 an hour).
        rate_window: Window length in seconds.
        anonymous_rate_limit: Requests per window without a token (GitHub: 60).
        allow_anonymous: Whether requests without a token are served (GitHub: yes).
    """

    def __init__(
        self,
        *,
        token: str | None = None,
        clock: Callable[[], float] = time.time,
        rate_limit: int = 5000,
        rate_window: float = 3600.0,
        anonymous_rate_limit: int = 60,
        allow_anonymous: bool = True,
    ) -> None:
        """An empty fake with one valid token (``self.token``)."""
        self.clock = clock
        self.token = token or "ghp_" + secrets.token_hex(18)
        self._tokens = TokenRegistry()
        self.tokens = self._tokens.owners.keys()  # the valid tokens (a live, read-only set view)
        self.revoked = self._tokens.revoked
        self._tokens.add(self.token)
        self.allow_anonymous = allow_anonymous
        self.orgs: dict[str, FakeOrg] = {}  # lower login -> org
        self.repos: dict[int, FakeRepo] = {}
        self.moved: dict[str, int] = {}  # lower old full name -> repo id
        self._user = _Bucket(rate_limit, rate_window)
        self._anonymous = _Bucket(anonymous_rate_limit, rate_window)
        self._faults = FaultQueue()  # matched against the path as a glob (``/repos/*/readme``)
        # Ids beyond 2**31 and 2**32, as GitHub's int64 ids will be: a client that squeezes them into
        # 32 bits, or through a float, gets them wrong.
        self._ids = itertools.count(REPO_ID_START)
        self._org_ids = itertools.count(ACCOUNT_ID_START)
        self._request_ids = itertools.count(1)
        self.requests: RequestLog[Call] = RequestLog()
        self.in_flight = 0
        self.max_in_flight = 0
        self.app = Starlette(
            routes=[Route("/{path:path}", self._endpoint, methods=["GET", "HEAD", "POST", "PATCH", "PUT", "DELETE"])]
        )

    # ------------------------------------------------------------------------------ state: orgs and repos

    def add_org(self, login: str) -> FakeOrg:
        """The organization ``login``, made if it does not exist yet."""
        org = self.orgs.get(login.lower())
        if org is None:
            org = self.orgs[login.lower()] = FakeOrg(login, next(self._org_ids))
        return org

    def add_user(self, login: str) -> FakeOrg:
        """A user account: its repos list at ``/users/{login}/repos`` (``/orgs/{login}/repos`` is a 404)."""
        account = self.orgs.get(login.lower())
        if account is None:
            account = self.orgs[login.lower()] = FakeOrg(login, next(self._org_ids), "User")
        elif not account.is_user:
            raise ValueError(f"{login} is an organization")
        return account

    def add_repo(self, owner: str, name: str, **fields: Any) -> FakeRepo:
        """Add a repo to ``owner`` (an org, created if needed); ``fields`` are ``FakeRepo`` fields.

        An ``empty=True`` repo has ``pushed_at`` and ``language`` null unless given, as on GitHub.
        """
        if fields.get("empty"):
            fields.setdefault("pushed_at", None)
            fields.setdefault("language", None)
        org = self.orgs.get(owner.lower()) or self.add_org(owner)
        if self._find(f"{org.login}/{name}") is not None:
            raise ValueError(f"repo {org.login}/{name} exists")
        repo = FakeRepo(id=next(self._ids), owner=org.login, name=name, **fields)
        self.repos[repo.id] = repo
        self.moved.pop(repo.full_name.lower(), None)
        return repo

    def add_repos(self, owner: str, count: int, *, prefix: str = "repo", **fields: Any) -> list[FakeRepo]:
        """Add ``count`` repos named ``<prefix>-000``… with a README, languages and contributors."""
        out = []
        for i in range(count):
            name = f"{prefix}-{i:03d}"
            defaults: dict[str, Any] = {
                "description": f"The {name} project",
                "stargazers_count": i,
                "readme": f"# {name}\n\nHello from {name}.\n",
                "languages": {"Python": 1000 + i, "Shell": 10},
                "contributors": [
                    {"login": "alice", "contributions": 50, "type": "User"},
                    {"login": "dependabot[bot]", "contributions": 40, "type": "Bot"},
                    {"login": "bob", "contributions": 5, "type": "User"},
                ],
            }
            defaults.update(fields)
            out.append(self.add_repo(owner, name, **defaults))
        return out

    def get_repo(self, full_name: str) -> FakeRepo:
        """The repository ``owner/name`` (KeyError if unknown)."""
        repo = self._find(full_name)
        if repo is None:
            raise KeyError(full_name)
        return repo

    def modify_repo(self, full_name: str, **changes: Any) -> FakeRepo:
        """Change fields of a repo; ``updated_at`` moves to now unless given."""
        repo = self.get_repo(full_name)
        for key in changes:
            if key in ("id", "owner", "name"):
                raise ValueError(f"use rename_repo to change {key}")
            if not hasattr(repo, key):
                raise AttributeError(key)
        changes.setdefault("updated_at", _iso(self.clock()))
        for key, value in changes.items():
            setattr(repo, key, value)
        return repo

    def delete_repo(self, full_name: str) -> None:
        """Delete a repository: it answers 404 from now on."""
        repo = self.get_repo(full_name)
        del self.repos[repo.id]
        for old, rid in list(self.moved.items()):
            if rid == repo.id:
                del self.moved[old]

    def rename_repo(self, full_name: str, new_name: str, *, new_owner: str | None = None) -> FakeRepo:
        """Rename (or transfer) a repo; its id stays, the old name redirects (301) to ``/repositories/{id}``."""
        repo = self.get_repo(full_name)
        old = repo.full_name.lower()
        if new_owner is not None:
            repo.owner = self.add_org(new_owner).login
        repo.name = new_name
        repo.updated_at = _iso(self.clock())
        self.moved[old] = repo.id
        return repo

    def _find(self, full_name: str) -> FakeRepo | None:
        lowered = full_name.lower()
        for repo in self.repos.values():
            if repo.full_name.lower() == lowered:
                return repo
        return None

    # ------------------------------------------------------------------------------ state: tokens, limits, faults

    def add_token(self, token: str) -> None:
        """Accept ``token`` as a further valid token (un-revoking it)."""
        self._tokens.add(token)

    def revoke_token(self, token: str | None = None) -> None:
        """Revoke a token (default: the current one); it answers 401 from now on."""
        self._tokens.revoke(token or self.token)

    def rotate_token(self) -> str:
        """Revoke the current token and issue a new one (same user, same rate-limit bucket)."""
        self.token = self._tokens.rotate(self.token, "ghp_" + secrets.token_hex(18))
        return self.token

    def fail_next(
        self, n: int = 1, *, status: int = 502, path: str | None = None, retry_after: float | None = None
    ) -> None:
        """Answer the next ``n`` requests (matching the glob ``path``, e.g. ``/repos/*/readme``) with ``status``."""
        self._faults.add(Fault(status, glob=path, retry_after=retry_after), n)

    def secondary_rate_limit(
        self, n: int = 1, *, status: int = 403, retry_after: float | None = 60, path: str | None = None
    ) -> None:
        """Answer the next ``n`` requests with GitHub's secondary rate limit (403 or 429, ``retry-after``)."""
        self._faults.add(Fault(status, glob=path, retry_after=retry_after, secondary=True), n)

    def clear_faults(self) -> None:
        """Drop every pending injected fault and secondary limit."""
        self._faults.clear()

    def exhaust_rate_limit(self, *, reset_in: float) -> None:
        """Use up the token's primary budget; it resets ``reset_in`` seconds from now."""
        self._refresh(self._user)
        self._user.used = self._user.limit
        self._user.reset = self.clock() + reset_in

    @property
    def rate_used(self) -> int:
        """Requests counted against the token's primary limit in the current window."""
        self._refresh(self._user)
        return self._user.used

    @property
    def rate_remaining(self) -> int:
        """Requests left in the token's primary window."""
        self._refresh(self._user)
        return self._user.limit - self._user.used

    @property
    def rate_reset(self) -> float:
        """When the token's primary window resets (epoch seconds)."""
        self._refresh(self._user)
        return self._user.reset

    def _refresh(self, bucket: _Bucket) -> None:
        now = self.clock()
        if bucket.reset == 0.0 or now >= bucket.reset:
            bucket.used = 0
            bucket.reset = float(int(now + bucket.window))

    # ------------------------------------------------------------------------------ request log

    def count(self, path: str | None = None, *, status: int | None = None, method: str | None = "GET") -> int:
        """Requests whose path matches the glob ``path`` (all if None) and ``status``/``method`` if given."""
        return sum(
            1
            for c in self.requests
            if (path is None or fnmatch.fnmatchcase(c.path, path))
            and (status is None or c.status == status)
            and (method is None or c.method == method)
        )

    def statuses(self) -> Counter[int]:
        """How many requests were answered with each status."""
        return Counter(c.status for c in self.requests)

    def clear_requests(self) -> None:
        """Forget the requests logged so far."""
        self.requests.clear()

    # ------------------------------------------------------------------------------ HTTP

    async def _endpoint(self, request: Request) -> Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)  # let concurrent requests overlap, as on a real server
            response = self._respond(request)
        finally:
            self.in_flight -= 1
        self.requests.append(Call(request.method, request.url.path, response.status_code))
        return response

    def _respond(self, request: Request) -> Response:
        # GitHub's shape: five colon-separated upper-case hex groups, e.g. "C9E4:2B3A:1A2B3C:1B2C3D:65F1A2B3".
        serial = next(self._request_ids)
        digest = hashlib.sha1(f"{serial}:{request.url.path}".encode()).hexdigest().upper()
        request_id = f"{digest[:4]}:{digest[4:8]}:{serial:06X}:{digest[8:14]}:{int(self.clock()):08X}"
        base_headers = {"x-github-request-id": request_id, "x-github-media-type": "github.v3; format=json"}
        if not request.headers.get("user-agent"):
            body = {
                "message": "Request forbidden by administrative rules. Please make sure your request has a "
                "User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required)."
            }
            return Response(_json_bytes(body), 403, headers=base_headers, media_type=JSON_TYPE)
        version = request.headers.get("x-github-api-version")
        if version is not None and version not in SUPPORTED_API_VERSIONS:
            body = {"message": f"Unsupported 'X-GitHub-Api-Version' header: {version}", "documentation_url": DOCS}
            return Response(_json_bytes(body), 400, headers=base_headers, media_type=JSON_TYPE)

        token = self._token_of(request)
        if token is None and not self.allow_anonymous:
            return self._error(401, "Requires authentication", base_headers, self._anonymous)
        if token is not None and token not in self.tokens:
            return self._error(401, "Bad credentials", base_headers, self._anonymous)
        bucket = self._user if token is not None else self._anonymous
        self._refresh(bucket)

        fault = self._faults.take(request.method, request.url.path)
        if fault is not None:
            return self._fault_response(fault, base_headers, bucket)

        free = request.url.path == "/rate_limit"
        if not free and bucket.used >= bucket.limit:
            who = f"user ID {USER_ID}" if token else "127.0.0.1"
            message = (
                f"API rate limit exceeded for {who}. If you reach out to GitHub Support for help, please include "
                f"the request ID {base_headers['x-github-request-id']}."
            )
            return self._error(403, message, base_headers, bucket, docs=RATE_DOCS)

        status, content, headers = self._dispatch(request, anonymous=token is None, bucket=bucket)
        headers = {**base_headers, **headers}
        if status == 200:
            etag = _etag(content, weak=headers.get("content-type", JSON_TYPE) == JSON_TYPE)
            headers["etag"] = etag
            headers.setdefault("cache-control", "private, max-age=60, s-maxage=60")
            headers["vary"] = "Accept, Authorization, Cookie, X-GitHub-OTP"
            if _etag_matches(request.headers.get("if-none-match"), etag):
                # An authorized 304 does not count against the primary rate limit.
                headers.pop("content-type", None)
                return Response(b"", 304, headers={**headers, **self._rate_headers(bucket)})
        if not free:
            bucket.used += 1
        media_type = headers.pop("content-type", JSON_TYPE) if content or status != 204 else None
        return Response(content, status, headers={**headers, **self._rate_headers(bucket)}, media_type=media_type)

    @staticmethod
    def _token_of(request: Request) -> str | None:
        header = request.headers.get("authorization")
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() not in ("bearer", "token") or not value.strip():
            return "\x00invalid"
        return value.strip()

    def _rate_headers(self, bucket: _Bucket) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(bucket.limit),
            "x-ratelimit-remaining": str(max(0, bucket.limit - bucket.used)),
            "x-ratelimit-used": str(bucket.used),
            "x-ratelimit-reset": str(int(bucket.reset)),
            "x-ratelimit-resource": "core",
        }

    def _error(
        self, status: int, message: str, headers: dict[str, str], bucket: _Bucket, *, docs: str = DOCS
    ) -> Response:
        self._refresh(bucket)
        body = {"message": message, "documentation_url": docs, "status": str(status)}
        return Response(
            _json_bytes(body), status, headers={**headers, **self._rate_headers(bucket)}, media_type=JSON_TYPE
        )

    def _fault_response(self, fault: Fault, headers: dict[str, str], bucket: _Bucket) -> Response:
        headers = dict(headers)
        if fault.retry_after is not None:
            headers["retry-after"] = str(int(fault.retry_after))
        if fault.secondary:
            message = (
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
                "If you reach out to GitHub Support for help, please include the request ID "
                f"{headers['x-github-request-id']}."
            )
            return self._error(fault.status, message, headers, bucket, docs=SECONDARY_DOCS)
        if fault.status == 403:
            return self._error(403, "Resource not accessible by personal access token", headers, bucket)
        if fault.status == 401:
            return self._error(401, "Bad credentials", headers, bucket)
        if fault.status >= 500:
            return Response(
                _json_bytes({"message": "Server Error"}),
                fault.status,
                headers={**headers, **self._rate_headers(bucket)},
                media_type=JSON_TYPE,
            )
        return self._error(fault.status, "Injected fault", headers, bucket)

    # ------------------------------------------------------------------------------ endpoints

    _ORG_REPOS = re.compile(r"^/orgs/(?P<org>[^/]+)/repos/?$")
    _ORG_ID_REPOS = re.compile(r"^/organizations/(?P<id>\d+)/repos/?$")
    _USER_REPOS = re.compile(r"^/users/(?P<login>[^/]+)/repos/?$")
    _USER_ID_REPOS = re.compile(r"^/user/(?P<id>\d+)/repos/?$")
    _REPO = re.compile(r"^/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)(?P<rest>/readme|/languages|/contributors)?/?$")
    _REPO_ID = re.compile(r"^/repositories/(?P<id>\d+)(?P<rest>/readme|/languages|/contributors)?/?$")

    def _dispatch(self, request: Request, *, anonymous: bool, bucket: _Bucket) -> tuple[int, bytes, dict[str, str]]:
        path = request.url.path
        if request.method not in ("GET", "HEAD"):
            return self._not_found()
        if path == "/rate_limit":
            rate = {"limit": bucket.limit, "remaining": bucket.limit - bucket.used, "used": bucket.used}
            rate["reset"] = int(bucket.reset)
            return 200, _json_bytes({"resources": {"core": rate}, "rate": rate}), {}
        if m := self._ORG_REPOS.match(path):
            org = self.orgs.get(urllib.parse.unquote(m["org"]).lower())
            # A user is not an organization: /orgs/{user}/repos is a 404 on GitHub.
            return self._org_repos(request, org, anonymous) if org and not org.is_user else self._not_found()
        if m := self._ORG_ID_REPOS.match(path):
            org = next((o for o in self.orgs.values() if o.id == int(m["id"]) and not o.is_user), None)
            return self._org_repos(request, org, anonymous) if org else self._not_found()
        if m := self._USER_REPOS.match(path):
            # /users/{login}/repos answers for organizations too; its next links are /user/{id}/repos.
            account = self.orgs.get(urllib.parse.unquote(m["login"]).lower())
            return self._user_repos(request, account, anonymous) if account else self._not_found()
        if m := self._USER_ID_REPOS.match(path):
            account = next((o for o in self.orgs.values() if o.id == int(m["id"])), None)
            return self._user_repos(request, account, anonymous) if account else self._not_found()
        if m := self._REPO.match(path):
            full = f"{urllib.parse.unquote(m['owner'])}/{urllib.parse.unquote(m['name'])}"
            repo = self._find(full)
            if repo is None and full.lower() in self.moved:
                return self._moved(request, self.moved[full.lower()], m["rest"] or "")
            return self._repo_endpoint(request, repo, m["rest"] or "", anonymous)
        if m := self._REPO_ID.match(path):
            return self._repo_endpoint(request, self.repos.get(int(m["id"])), m["rest"] or "", anonymous)
        return self._not_found()

    @staticmethod
    def _not_found() -> tuple[int, bytes, dict[str, str]]:
        return 404, _json_bytes({"message": "Not Found", "documentation_url": DOCS, "status": "404"}), {}

    @staticmethod
    def _base(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    def _moved(self, request: Request, repo_id: int, rest: str) -> tuple[int, bytes, dict[str, str]]:
        location = f"{self._base(request)}/repositories/{repo_id}{rest}"
        if request.url.query:
            location += "?" + request.url.query
        body = {"message": "Moved Permanently", "url": location, "documentation_url": DOCS}
        return 301, _json_bytes(body), {"location": location}

    @staticmethod
    def _int_param(request: Request, name: str, default: int, *, low: int = 1, high: int | None = None) -> int:
        try:
            value = int(request.query_params.get(name, default))
        except ValueError:
            value = default
        value = max(low, value)
        return min(high, value) if high is not None else value

    def _paged(
        self, request: Request, items: list[Any], link_path: str, default_per_page: int = 30
    ) -> tuple[list[Any], dict[str, str]]:
        per_page = self._int_param(request, "per_page", default_per_page, high=100)
        page = self._int_param(request, "page", 1)
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        params = dict(request.query_params)

        def url(n: int) -> str:
            query = urllib.parse.urlencode({**params, "per_page": per_page, "page": n})
            return f"{self._base(request)}{link_path}?{query}"

        links = []  # in GitHub's order: prev, next, last, first
        if page > 1:
            links.append(f'<{url(page - 1)}>; rel="prev"')
        if page < last:
            links += [f'<{url(page + 1)}>; rel="next"', f'<{url(last)}>; rel="last"']
        if page > 1:
            links.append(f'<{url(1)}>; rel="first"')
        return chunk, ({"link": ", ".join(links)} if links else {})

    _USER_REPO_TYPES = frozenset({"all", "owner", "member"})

    def _user_repos(self, request: Request, account: FakeOrg, anonymous: bool) -> tuple[int, bytes, dict[str, str]]:
        """``GET /users/{login}/repos``: ``type`` is ``owner`` (default), ``all`` or ``member``; others are a 422.

        Only public repos are listed (this endpoint shows another account's public repos).
        """
        kind = request.query_params.get("type", "owner")
        if kind not in self._USER_REPO_TYPES:
            body = {
                "message": "Validation Failed",
                "errors": [{"resource": "Repository", "field": "type", "code": "invalid"}],
                "documentation_url": f"{DOCS}/repos/repos#list-repositories-for-a-user",
                "status": "422",
            }
            return 422, _json_bytes(body), {}
        repos = [r for r in self.repos.values() if r.owner.lower() == account.login.lower() and not r.private]
        if kind == "member":
            repos = []  # this fake has no collaborators
        sort = request.query_params.get("sort", "full_name")
        direction = request.query_params.get("direction", "asc" if sort == "full_name" else "desc")
        repos.sort(key=self._sort_key(sort), reverse=direction == "desc")
        chunk, headers = self._paged(request, repos, f"/user/{account.id}/repos")
        return 200, _json_bytes([self.repo_json(request, r) for r in chunk]), headers

    @staticmethod
    def _sort_key(sort: str) -> Callable[[FakeRepo], Any]:
        return {
            "full_name": lambda r: r.full_name.lower(),
            "created": lambda r: (r.created_at, r.id),
            "updated": lambda r: (r.updated_at, r.id),
            "pushed": lambda r: (r.pushed_at or "", r.id),
        }.get(sort, lambda r: (r.created_at, r.id))

    def _org_repos(self, request: Request, org: FakeOrg, anonymous: bool) -> tuple[int, bytes, dict[str, str]]:
        kind = request.query_params.get("type", "all")
        sort = request.query_params.get("sort", "created")
        direction = request.query_params.get("direction", "asc" if sort == "full_name" else "desc")
        repos = [r for r in self.repos.values() if r.owner.lower() == org.login.lower()]
        if anonymous:
            repos = [r for r in repos if not r.private]
        if kind == "public":
            repos = [r for r in repos if not r.private]
        elif kind == "private":
            repos = [r for r in repos if r.private]
        elif kind == "forks":
            repos = [r for r in repos if r.fork]
        elif kind == "sources":
            repos = [r for r in repos if not r.fork]
        repos.sort(key=self._sort_key(sort), reverse=direction == "desc")
        chunk, headers = self._paged(request, repos, f"/organizations/{org.id}/repos")
        return 200, _json_bytes([self.repo_json(request, r) for r in chunk]), headers

    def _repo_endpoint(
        self, request: Request, repo: FakeRepo | None, rest: str, anonymous: bool
    ) -> tuple[int, bytes, dict[str, str]]:
        if repo is None or (anonymous and repo.private):
            return self._not_found()
        if repo.blocked is not None:
            # Listed with the org's repos, but every read of the repo itself is refused.
            body = {
                "message": "Repository access blocked",
                "block": {
                    "reason": repo.blocked,
                    "created_at": repo.updated_at,
                    "html_url": "https://github.com/github/dmca/blob/master/2024/05/2024-05-01-example.md"
                    if repo.blocked == "dmca"
                    else "https://github.com/tos",
                },
            }
            return (451 if repo.blocked == "dmca" else 403), _json_bytes(body), {}
        if rest == "":
            return 200, _json_bytes(self.repo_json(request, repo)), {}
        if rest == "/readme":
            if repo.readme is None:
                return self._not_found()
            accept = request.headers.get("accept", "")
            if "raw" in accept:
                return 200, repo.readme.encode(), {"content-type": RAW_TYPE}
            content = base64.encodebytes(repo.readme.encode()).decode()
            body = {
                "type": "file",
                "encoding": "base64",
                "name": "README.md",
                "path": "README.md",
                "size": len(repo.readme.encode()),
                "content": content,
                "sha": hashlib.sha1(repo.readme.encode()).hexdigest(),
            }
            return 200, _json_bytes(body), {}
        if rest == "/languages":
            ranked = dict(sorted(repo.languages.items(), key=lambda kv: -kv[1]))
            return 200, _json_bytes(ranked), {}
        if rest == "/contributors":
            if repo.contributors_too_large:
                message = (
                    "The history or contributor list is too large to list contributors for this repository via the API."
                )
                return 403, _json_bytes({"message": message, "documentation_url": DOCS, "status": "403"}), {}
            if repo.empty:
                return 204, b"", {}
            people = sorted(repo.contributors, key=lambda c: -int(c.get("contributions", 0)))
            chunk, headers = self._paged(request, people, f"/repositories/{repo.id}/contributors")
            listed = [
                {
                    **self.account_json(c["login"], self._user_id(c["login"]), c.get("type", "User")),
                    "contributions": int(c.get("contributions", 0)),
                }
                for c in chunk
            ]
            return 200, _json_bytes(listed), headers
        return self._not_found()

    @staticmethod
    def _user_id(login: str) -> int:
        """A stable user id beyond 2**31 for a contributor's login."""
        return ACCOUNT_ID_START + 1_000_000 + int(hashlib.sha1(login.encode()).hexdigest()[:7], 16)

    @staticmethod
    def account_json(
        login: str, account_id: int, kind: str = "User", *, base: str = "https://api.github.com"
    ) -> dict[str, Any]:
        """A "simple user" object as GitHub embeds it (``owner``, contributors)."""
        prefix = {"Organization": "O", "Bot": "BOT"}.get(kind, "U")
        return {
            "login": login,
            "id": account_id,
            "node_id": node_id(prefix, account_id),
            "avatar_url": f"https://avatars.githubusercontent.com/u/{account_id}?v=4",
            "gravatar_id": "",
            "url": f"{base}/users/{login}",
            "html_url": f"https://github.com/{login}",
            "repos_url": f"{base}/users/{login}/repos",
            "type": kind,
            "user_view_type": "public",
            "site_admin": False,
        }

    def repo_json(self, request: Request | None, repo: FakeRepo) -> dict[str, Any]:
        """The repo as GitHub's REST API shows it (every field the source reads, and most others)."""
        base = self._base(request) if request is not None else "https://api.github.com"
        org = self.orgs.get(repo.owner.lower())
        license_json = (
            {
                "key": _LICENSE_KEYS.get(repo.license, repo.license.lower()),
                "name": _LICENSE_NAMES.get(repo.license, repo.license),
                "spdx_id": repo.license,
                "url": None if repo.license == "NOASSERTION" else f"{base}/licenses/{repo.license.lower()}",
                "node_id": base64.b64encode(f"07:License{len(repo.license)}".encode()).decode(),
            }
            if repo.license is not None
            else None
        )
        api = f"{base}/repos/{repo.full_name}"
        return {
            "id": repo.id,
            "node_id": node_id("R", repo.id),
            "name": repo.name,
            "full_name": repo.full_name,
            "private": repo.private,
            "owner": self.account_json(
                repo.owner, org.id if org else 0, org.type if org else "Organization", base=base
            ),
            "html_url": f"https://github.com/{repo.full_name}",
            "description": repo.description,
            "fork": repo.fork,
            "url": api,
            "languages_url": f"{api}/languages",
            "contributors_url": f"{api}/contributors",
            "created_at": repo.created_at,
            "updated_at": repo.updated_at,
            "pushed_at": repo.pushed_at,
            "git_url": f"git://github.com/{repo.full_name}.git",
            "ssh_url": f"git@github.com:{repo.full_name}.git",
            "clone_url": f"https://github.com/{repo.full_name}.git",
            "homepage": None,
            "size": 0 if repo.empty else 1024,
            "stargazers_count": repo.stargazers_count,
            "watchers_count": repo.stargazers_count,
            "language": repo.language,
            "has_issues": True,
            "has_projects": True,
            "has_downloads": True,
            "has_wiki": True,
            "has_pages": False,
            "has_discussions": False,
            "forks_count": repo.forks_count,
            "mirror_url": None,
            "archived": repo.archived,
            "disabled": False,
            "open_issues_count": repo.open_issues_count,
            "license": license_json,
            "allow_forking": True,
            "is_template": False,
            "web_commit_signoff_required": False,
            "topics": list(repo.topics),
            "visibility": repo.visibility,
            "forks": repo.forks_count,
            "open_issues": repo.open_issues_count,
            "watchers": repo.stargazers_count,
            "default_branch": "main",
            "permissions": {"admin": False, "maintain": False, "push": False, "triage": False, "pull": True},
        }

    def snapshot(self, full_name: str) -> FakeRepo:
        """A copy of a repo's current state."""
        return dataclasses.replace(self.get_repo(full_name))


# --------------------------------------------------------------------------------------------------
# Loopback server


@contextlib.contextmanager
def serve(fake: FakeGitHub, *, startup_timeout: float = 10.0) -> Iterator[str]:
    """Serve ``fake.app`` with uvicorn on 127.0.0.1 (a free port) in a thread; yields the base URL.

    The socket is bound here, before the thread starts, so there is no window in which another
    process can take the port. Stops the server on exit (``should_exit``) and joins the thread.
    """
    with serve_app(fake.app, name="github", startup_timeout=startup_timeout) as url:
        yield url

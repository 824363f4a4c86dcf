"""``GitHubClient``: a typed client for the few REST endpoints the GitHub source reads.

It sits on ``connectors.http.make_client``, so retries, backoff, the per-token rate limiter, GitHub's
rate-limited 403 and redaction come from there. It adds what is specific to GitHub:

- **Link-header pagination** (``connectors.http.LinkHeaderPagination``): follow ``rel="next"`` until it is absent.
  GitHub's next links are absolute and may name another path than the one requested
  (``/orgs/acme/repos`` pages on as ``/organizations/9919/repos``), so they are followed as given.
- **Conditional requests** (:class:`ETagCache`): every GET sends ``If-None-Match`` with the ETag of
  the last 200 for the same URL, media type and token; a ``304 Not Modified`` reuses the cached body.
  GitHub does not count an authorized 304 against the primary rate limit, so an unchanged repo costs
  nothing on the next pass. The cache is module level (bounded, least recently used out first), so
  it outlives one client, one source instance and one pass, within one process.
- **Cursors**: a next link is stored relative to the API root (``/organizations/9919/repos?…&page=2``)
  so a cursor stays valid in a new process and on another host name for the same API.
- **User accounts**: ``/orgs/{name}/repos`` is a 404 for a user, whose repos list at
  ``/users/{name}/repos`` (next links ``/user/{id}/repos``). A 404 on the first page of an org
  listing is retried there once; the user endpoint knows only ``type`` = ``owner``/``member``/``all``
  (anything else is a 422), so the org types are mapped and the rest filtered here.
- **Blocked repositories**: a repo taken down (DMCA: ``451``; terms of service: ``403``) still
  appears in its org's listing, and every read of it answers ``{"message": "Repository access
  blocked", "block": {"reason", …}}``. That is :class:`RepositoryBlocked`, a ``RecordError`` for that
  repo alone: a 403 here is not a credential failure.
- **Secondary rate limits without ``retry-after``**: GitHub documents "wait at least one minute"
  for them; its ``x-ratelimit-reset`` header then still names the *primary* window (up to an hour
  away, with plenty remaining), which a generic client would wait for. :class:`_GitHubTransport`
  gives such a response a ``retry-after`` of 60 s before ``connectors.http`` reads it.
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import re
import threading
import urllib.parse
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

import httpx

from connectors.core import BlobStore, ConfigError, RecordError
from connectors.github.settings import (
    ACCEPT_JSON,
    ACCEPT_RAW,
    API_BASE,
    API_VERSION,
    CONTRIBUTORS_PER_PAGE,
    ETAG_CACHE_MAX_BYTES,
    ETAG_CACHE_MAX_ENTRIES,
    MAX_CONCURRENT,
    MAX_PAGES,
    ORG_REPO_SORT,
    ORG_REPO_TYPE,
    PER_PAGE,
    RATE,
    SERVICE,
    SKIPPED_REPO_STATUSES,
    TIMEOUT,
    TOO_LARGE_TO_LIST,
)
from connectors.http import (
    HttpSettings,
    JsonApiClient,
    LinkHeaderPagination,
    NotFound,
    Rate,
    parse_link_header,
    raise_for_status,
)

__all__ = [
    "SHARED_ETAG_CACHE",
    "BlobETagStore",
    "CachedBody",
    "ETagCache",
    "ETagStore",
    "GitHubClient",
    "GitHubResponse",
    "LinkHeaderPagination",
    "ListPage",
    "RepositoryBlocked",
    "parse_link_header",
    "rate_limit_key_for",
    "token_digest",
]

logger = logging.getLogger(__name__)

ANONYMOUS_KEY = "github:anonymous"
_ORG_CURSOR_RE = re.compile(
    r"^/(?:orgs/[A-Za-z0-9_.-]+|organizations/\d+|users/[A-Za-z0-9_.-]+|user/\d+)/repos(?:\?[^#\s]*)?$"
)
_USER_CURSOR_RE = re.compile(r"^/(?:users/[^/]+|user/\d+)/repos")
_SECONDARY_TEXT = re.compile(r"secondary rate limit|abuse detection", re.I)

SECONDARY_LIMIT_WAIT = 60
"""GitHub: after a secondary rate limit without ``retry-after`` (and with primary budget left),
"wait for at least one minute before retrying"."""

USER_REPO_TYPES = {"all": "owner", "public": "owner", "private": "owner", "forks": "owner", "sources": "owner"}
"""An org listing ``type`` as ``/users/{name}/repos`` takes it (``owner``, ``member`` or ``all``); the
difference is filtered by :func:`keep_user_repo`. ``member`` passes through."""


# --------------------------------------------------------------------------------------------------
# Credentials


def token_digest(token: str) -> str:
    """The sha256 hex digest of a token: safe to store and compare, impossible to use."""
    return hashlib.sha256(token.encode()).hexdigest()


def rate_limit_key_for(token: str | None) -> str:
    """``github:<12 hex of sha256(token)>``: two tokens are two credentials, and no secret leaks."""
    return f"github:{token_digest(token)[:12]}" if token else ANONYMOUS_KEY


# --------------------------------------------------------------------------------------------------
# The ETag cache


@dataclass(frozen=True, slots=True)
class CachedBody:
    """What a 200 said, kept to answer the next 304: the ETag, the raw body and its Link header."""

    etag: str
    content: bytes
    link: str | None = None

    @property
    def size(self) -> int:
        """Bytes the entry holds (body and link header)."""
        return len(self.content) + len(self.etag) + len(self.link or "")


CacheKey = tuple[str, str, str]  # (credential key, Accept, absolute URL)


@runtime_checkable
class ETagStore(Protocol):
    """Where conditional-request bodies live.

    ``ETagCache`` keeps them in memory; a store that persists them (the state store, a file) makes the savings survive
    a new process.
    """

    def get(self, key: CacheKey) -> CachedBody | None:
        """The cached body for ``key``, or None."""

    def put(self, key: CacheKey, entry: CachedBody) -> None:
        """Remember ``entry`` for ``key``."""

    def discard(self, key: CacheKey) -> None:
        """Forget ``key``."""


class ETagCache:
    """A bounded, thread-safe LRU of ``(credential, accept, url) -> CachedBody``.

    Bodies are stored as bytes, not parsed objects, so a caller (or an enrich hook) that mutates a
    parsed payload cannot corrupt what the next pass reads. Keys carry the credential key (a digest),
    never the token; two tokens never share entries, as they may see different repositories.

    Args:
        max_entries: Entries kept; the least recently used go first.
        max_bytes: Total size of the bodies kept.
    """

    def __init__(self, max_entries: int = ETAG_CACHE_MAX_ENTRIES, max_bytes: int = ETAG_CACHE_MAX_BYTES) -> None:
        """Start empty, with these limits."""
        if max_entries < 1 or max_bytes < 1:
            raise ConfigError(f"ETagCache needs max_entries >= 1 and max_bytes >= 1, got {max_entries}, {max_bytes}")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: collections.OrderedDict[CacheKey, CachedBody] = collections.OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """The number of entries."""
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        """Bytes held by all entries."""
        return self._bytes

    def get(self, key: CacheKey) -> CachedBody | None:
        """The cached body for ``key`` (now the most recently used), or None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: CacheKey, entry: CachedBody) -> None:
        """Remember ``entry`` for ``key``; the least recently used go past the limits."""
        if entry.size > self.max_bytes:
            self.discard(key)  # a body larger than the whole cache is not worth keeping
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.size
            self._entries[key] = entry
            self._bytes += entry.size
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.size

    def discard(self, key: CacheKey) -> None:
        """Forget ``key``."""
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.size

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def snapshot(self) -> list[tuple[CacheKey, CachedBody]]:
        """The entries, least recently used first (for tests and diagnostics)."""
        with self._lock:
            return list(self._entries.items())


SHARED_ETAG_CACHE = ETagCache()


class BlobETagStore:
    """ETag bodies kept in a durable ``BlobStore`` (the platform's state store).

    ETag bodies kept in a durable ``BlobStore`` (the platform's state store), so that an unchanged
    repo costs no rate limit on the next pass even when that pass runs in a new process.

    A small in-memory LRU sits in front so one pass does not read the same entry twice.
    """

    NAMESPACE = "github-etag"

    def __init__(self, blobs: BlobStore, *, memory: ETagCache | None = None) -> None:
        """Read through ``memory`` to ``blobs``."""
        self.blobs = blobs
        self.memory = memory or ETagCache(max_entries=2048, max_bytes=16 * 1024 * 1024)

    @staticmethod
    def _key(key: CacheKey) -> str:
        return hashlib.sha256("\x1f".join(key).encode()).hexdigest()

    def get(self, key: CacheKey) -> CachedBody | None:
        """The cached body for ``key``: from memory, else from the blob store."""
        hit = self.memory.get(key)
        if hit is not None:
            return hit
        raw = self.blobs.get_blob(self.NAMESPACE, self._key(key))
        if raw is None:
            return None
        head, _, content = raw.partition(b"\n")
        try:
            meta = json.loads(head)
            entry = CachedBody(etag=meta["etag"], content=content, link=meta.get("link"))
        except (ValueError, KeyError):
            return None  # an unreadable entry is a miss, never an error
        self.memory.put(key, entry)
        return entry

    def put(self, key: CacheKey, entry: CachedBody) -> None:
        """Remember ``entry`` in memory and in the blob store."""
        self.memory.put(key, entry)
        head = json.dumps({"etag": entry.etag, "link": entry.link}).encode()
        self.blobs.put_blob(self.NAMESPACE, self._key(key), head + b"\n" + entry.content)

    def discard(self, key: CacheKey) -> None:
        """Forget ``key`` in memory and in the blob store."""
        self.memory.discard(key)
        self.blobs.delete_blob(self.NAMESPACE, self._key(key))


"""The process-wide cache every ``GitHubClient`` uses unless given another."""


# --------------------------------------------------------------------------------------------------
# Responses


class RepositoryBlocked(RecordError):
    """GitHub refuses every read of one repository (DMCA takedown: 451; terms of service: 403).

    Attributes:
        status_code: Always 451: a blocked repo, never a credential failure. ``auth_error_in_chain``
            reads a ``status_code`` of 403 as auth, so a terms-of-service block does not report it
            (as ``connectors.http`` reports a rate-limited 403 as 429).
        http_status: The status on the wire, 451 or 403.
        reason: ``block.reason`` (``dmca``, ``tos``, ``unavailable``, …).
    """

    status_code = 451

    def __init__(self, message: str, *, http_status: int, reason: str) -> None:
        """Keep the message, the HTTP status and GitHub's block reason."""
        super().__init__(message)
        self.http_status = http_status
        self.reason = reason


def blocked_reason(status: int, content: bytes) -> str | None:
    """``block.reason`` of GitHub's "Repository access blocked" answer (403 or 451); None for anything else."""
    if status not in (403, 451) or b"block" not in content:
        return None
    try:
        body = json.loads(content)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    block = body.get("block")
    if isinstance(block, dict):
        return str(block.get("reason") or "blocked")
    return "blocked" if body.get("message") == "Repository access blocked" else None


@dataclass(frozen=True, slots=True)
class GitHubResponse:
    """A successful GET, fresh or answered from the cache after a 304.

    Attributes:
        status_code: 200, 204, ... of the fresh response; 200 when the body came from the cache.
        content: The body (the cached one after a 304).
        links: The ``Link`` header by relation.
        not_modified: True when the server answered 304 and the body is the cached one.
        headers: The headers of the response that arrived (the 304's after a 304).
    """

    status_code: int
    content: bytes
    links: dict[str, str]
    not_modified: bool
    headers: httpx.Headers

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.content) if self.content else None

    @property
    def text(self) -> str:
        """The body as text."""
        return self.content.decode("utf-8", errors="replace")


@dataclass(frozen=True, slots=True)
class ListPage:
    """One page of a listing: its items and the URL of the next page (None on the last)."""

    items: list[dict[str, Any]]
    next_url: str | None
    not_modified: bool


def is_secondary_limit(status: int, headers: httpx.Headers, body: bytes) -> bool:
    """A 403/429 that is GitHub's secondary rate limit: primary budget left, and the documented text."""
    if status not in (403, 429) or headers.get("x-ratelimit-remaining") == "0":
        return False
    return bool(_SECONDARY_TEXT.search(body[:4000].decode("utf-8", errors="replace")))


class _GitHubTransport(httpx.AsyncBaseTransport):
    """The transport under ``connectors.http``'s retries, with GitHub's secondary-limit rule applied.

    A secondary rate limit without ``retry-after`` gets ``retry-after: 60`` (GitHub: wait at least a
    minute), so the retry layer does not take the primary window's ``x-ratelimit-reset`` (up to an
    hour away) for the wait. An injected transport is lent, not owned: closing the client leaves it open.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport | None) -> None:
        self._owns_inner = inner is None
        self._inner = inner if inner is not None else httpx.AsyncHTTPTransport(retries=0)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if response.status_code in (403, 429) and "retry-after" not in response.headers:
            await response.aread()
            if is_secondary_limit(response.status_code, response.headers, response.content):
                response.headers["retry-after"] = str(SECONDARY_LIMIT_WAIT)
        return response

    async def aclose(self) -> None:
        if self._owns_inner:
            await self._inner.aclose()


def keep_user_repo(repo: Mapping[str, Any], repo_type: str) -> bool:
    """Whether a repo of a user listing belongs to the org-style ``repo_type`` asked for."""
    if repo_type == "public":
        return not repo.get("private")
    if repo_type == "private":
        return bool(repo.get("private"))
    if repo_type == "forks":
        return bool(repo.get("fork"))
    if repo_type == "sources":
        return not repo.get("fork")
    return True


def _segment(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def repo_path(full_name: str) -> str:
    """``/repos/{owner}/{repo}`` for ``owner/repo``, each part quoted."""
    owner, _, name = full_name.partition("/")
    if not owner or not name or "/" in name:
        raise ConfigError(f"GitHub: {full_name!r} is not an owner/repo name")
    return f"/repos/{_segment(owner)}/{_segment(name)}"


# --------------------------------------------------------------------------------------------------
# The client


class GitHubClient(JsonApiClient):
    """A typed GitHub REST client: a :class:`~connectors.http.JsonApiClient` with conditional GETs.

    Use it as an async context manager (or call :meth:`aclose`). It never reads the environment:
    the token is given.

    Args:
        token: A personal access token, OAuth or app token; None for unauthenticated requests (60/h).
        base_url: The REST root (``https://api.github.com``; GHES ``https://HOST/api/v3``).
        credential: The rate-limit key (default ``rate_limit_key_for(token)``).
        rate: The token's request rate.
        max_concurrent: Requests in flight at once on the token.
        timeout: Per-request timeout.
        etag_cache: Conditional-request cache (default: the process-wide one); None disables it.
        per_page: Items per listing page.
        http: Transport (``httpx.ASGITransport(app=fake.app)`` in tests; not closed with the client,
            so one transport can serve many clients), retry policy, sleep and clock
            (:class:`~connectors.http.HttpSettings`).
    """

    service = SERVICE

    def __init__(
        self,
        *,
        token: str | None,
        base_url: str = API_BASE,
        credential: str | None = None,
        rate: Rate | None = RATE,
        max_concurrent: int | None = MAX_CONCURRENT,
        timeout: float | httpx.Timeout = TIMEOUT,
        etag_cache: ETagStore | None = SHARED_ETAG_CACHE,
        per_page: int = PER_PAGE,
        http: HttpSettings | None = None,
    ) -> None:
        """Build the client (its transport adds GitHub's missing ``retry-after`` on secondary limits)."""
        headers = {"Accept": ACCEPT_JSON, "X-GitHub-Api-Version": API_VERSION}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        settings = http or HttpSettings()
        super().__init__(
            base_url=base_url,
            headers=headers,
            credential=credential or rate_limit_key_for(token),
            rate=rate,
            max_concurrent=max_concurrent,
            http=replace(settings, transport=_GitHubTransport(settings.transport)),
            timeout=timeout,
        )
        self._cache = etag_cache
        if not 1 <= per_page <= PER_PAGE:
            raise ConfigError(f"GitHub per_page must be between 1 and {PER_PAGE}, got {per_page}")
        self.per_page = per_page
        self.pagination = LinkHeaderPagination()
        self.requests = 0
        """Responses received (each retried attempt inside the transport is not counted)."""
        self.not_modified = 0
        """Of those, 304s answered from the cache."""
        self.user_accounts: set[str] = set()
        """Names (lower case) that :meth:`org_repos_page` found to be user accounts, not organizations."""

    @property
    def base_url(self) -> httpx.URL:
        """The REST root requests are relative to."""
        return self._http.base_url

    # ------------------------------------------------------------------------------ raw GET

    async def get(
        self,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        accept: str = ACCEPT_JSON,
        conditional: bool = True,
    ) -> GitHubResponse:
        """GET ``url`` (relative to the API root, or absolute on the same host), conditionally.

        Raises the ``connectors.http`` error for any 4xx/5xx (``NotFound`` for 404/410, ``AuthError``
        for 401 and a plain 403, ``RateLimited``, ``TransientError`` after the retries).
        """
        request = self._http.build_request("GET", url, params=params, headers={"Accept": accept})
        key: CacheKey = (self.credential, accept, str(request.url))
        cached = self._cache.get(key) if (self._cache is not None and conditional) else None
        if cached is not None:
            request.headers["If-None-Match"] = cached.etag
        response = await self._http.send(request)
        self.requests += 1
        if response.status_code == 304 and cached is not None:
            self.not_modified += 1
            link = response.headers.get("link") or cached.link
            return GitHubResponse(200, cached.content, parse_link_header(link), True, response.headers)
        if (reason := blocked_reason(response.status_code, response.content)) is not None:
            raise RepositoryBlocked(
                f"GitHub GET {request.url.path} -> {response.status_code}: Repository access blocked ({reason})",
                http_status=response.status_code,
                reason=reason,
            )
        try:
            raise_for_status(response, service=SERVICE, credential=self.credential)
        except NotFound:
            if self._cache is not None:
                self._cache.discard(key)
            raise
        if response.status_code == 304:
            # Only possible if something else set If-None-Match; there is no body to reuse.
            raise ConfigError(f"GitHub GET {request.url.path}: 304 Not Modified without a cached body")
        etag = response.headers.get("etag")
        if self._cache is not None and conditional and etag and response.status_code == 200:
            self._cache.put(key, CachedBody(etag, response.content, response.headers.get("link")))
        return GitHubResponse(
            response.status_code,
            response.content,
            parse_link_header(response.headers.get("link")),
            False,
            response.headers,
        )

    async def list_page(self, url: str, *, params: Mapping[str, str | int] | None = None) -> ListPage:
        """One page of a JSON array listing and the next page's URL (absolute, as GitHub sent it)."""
        response = await self.get(url, params=params)
        items = response.json() if response.status_code != 204 else []
        if not isinstance(items, list):
            raise ConfigError(f"GitHub GET {url.split('?', 1)[0]}: expected a JSON array, got {type(items).__name__}")
        return ListPage(items, self.pagination.next_url(response.links), response.not_modified)

    async def paginate(
        self, url: str, *, params: Mapping[str, str | int] | None = None, max_pages: int = MAX_PAGES
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Every page of a listing, following ``rel="next"`` until the last one."""
        next_url: str | None = url
        first = True
        pages = 0
        while next_url is not None:
            page = await self.list_page(next_url, params=params if first else None)
            first = False
            pages += 1
            yield page.items
            if pages >= max_pages:
                raise ConfigError(f"GitHub GET {url.split('?', 1)[0]}: more than {max_pages} pages")
            next_url = page.next_url

    # ------------------------------------------------------------------------------ cursors

    def cursor_for(self, next_url: str) -> str:
        """A next link made relative to the API root: the stable, host-free form stored as a cursor.

        Raises ConfigError when the link leaves the API (another host or path): the token must never
        be sent there.
        """
        base = self._http.base_url
        url = base.join(next_url)
        base_path = base.raw_path.split(b"?", 1)[0]
        if (url.scheme, url.host, url.port) != (base.scheme, base.host, base.port) or not url.raw_path.startswith(
            base_path
        ):
            raise ConfigError("GitHub sent a Link to a page outside the API root; refusing to follow it")
        return "/" + url.raw_path[len(base_path) :].decode("ascii").lstrip("/")

    def org_repos_url(
        self, org: str, cursor: str | None, *, repo_type: str = ORG_REPO_TYPE, user: bool = False
    ) -> tuple[str, dict[str, str | int]]:
        """The URL (and params) of a page of an org's repos: the first page, or the one a cursor names.

        A cursor is what :meth:`cursor_for` returned (``/organizations/9919/repos?…&page=2``, or
        ``/user/583231/repos?…&page=2`` for a user account) or, as durable-sync stored it, a bare page
        number (``"2"``). ``user=True`` lists a user account (``/users/{name}/repos``).
        """
        if user:
            first = f"/users/{_segment(org)}/repos"
            kind = USER_REPO_TYPES.get(repo_type, repo_type)
        else:
            first, kind = f"/orgs/{_segment(org)}/repos", repo_type
        params: dict[str, str | int] = {"type": kind, "sort": ORG_REPO_SORT, "per_page": self.per_page}
        if cursor is None:
            return first, params
        if cursor.isdigit() and int(cursor) >= 1:
            return first, {**params, "page": int(cursor)}
        if not _ORG_CURSOR_RE.match(cursor):
            raise ConfigError(
                f"GitHub org {org!r}: cursor {cursor!r} was not issued by this source "
                "(expected /orgs/<org>/repos?…, /organizations/<id>/repos?… or /user/<id>/repos?…); "
                "start a full pass"
            )
        if cursor.startswith(("/orgs/", "/users/")) and cursor.split("/")[2].lower() != org.lower():
            raise ConfigError(f"GitHub org {org!r}: cursor {cursor!r} belongs to another account; start a full pass")
        return cursor, {}

    async def org_repos_page(
        self, org: str, cursor: str | None = None, *, repo_type: str = ORG_REPO_TYPE, user: bool | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of an account's repos and the cursor of the next page (None on the last).

        ``GET /orgs/{org}/repos``; for a user account (``user=True``, or a 404 there on the first page
        when ``user`` is None) ``GET /users/{org}/repos``, filtered to ``repo_type``. A cursor names its
        own endpoint. Raises ``ConfigError`` when the name is neither an organization nor a user.
        """
        if cursor is not None and not cursor.isdigit():
            user = bool(_USER_CURSOR_RE.match(cursor))
        url, params = self.org_repos_url(org, cursor, repo_type=repo_type, user=bool(user))
        try:
            page = await self.list_page(url, params=params or None)
        except NotFound:
            if user is not None:
                raise
            # Not an organization: a user account lists its repos elsewhere.
            url, params = self.org_repos_url(org, cursor, repo_type=repo_type, user=True)
            try:
                page = await self.list_page(url, params=params or None)
            except NotFound:
                raise ConfigError(f"GitHub: there is no organization or user named {org!r}") from None
            user = True
            self.user_accounts.add(org.lower())
        items = [r for r in page.items if keep_user_repo(r, repo_type)] if user else page.items
        next_cursor = self.cursor_for(page.next_url) if page.next_url else None
        if next_cursor is not None and next_cursor == cursor:
            logger.warning("GitHub org %s: the next link repeats the current page; ending the pass", org)
            next_cursor = None
        return items, next_cursor

    # ------------------------------------------------------------------------------ repos

    async def get_repo(self, full_name: str) -> dict[str, Any] | None:
        """``GET /repos/{owner}/{repo}`` (a renamed repo is followed through GitHub's 301); None if gone."""
        return await self._get_repo_at(repo_path(full_name), full_name)

    async def get_repository(self, repo_id: int) -> dict[str, Any] | None:
        """``GET /repositories/{id}``: a repo by its immutable id; None if gone."""
        return await self._get_repo_at(f"/repositories/{int(repo_id)}", str(repo_id))

    async def _get_repo_at(self, path: str, label: str) -> dict[str, Any] | None:
        try:
            response = await self.get(path)
        except NotFound:
            logger.warning("GitHub repo %s not found (deleted, private to this token, or renamed away)", label)
            return None
        except RepositoryBlocked as err:
            logger.warning("GitHub repo %s skipped: %s", label, err)
            return None
        except Exception as err:
            if getattr(err, "status_code", None) in SKIPPED_REPO_STATUSES:
                logger.warning("GitHub repo %s skipped: %s", label, err)
                return None
            raise
        data = response.json()
        if not isinstance(data, dict):
            raise ConfigError(f"GitHub GET {path}: expected a JSON object")
        return data

    async def get_readme(self, full_name: str) -> str | None:
        """The README as raw text; None when the repo has none (404, also an empty repo)."""
        try:
            response = await self.get(f"{repo_path(full_name)}/readme", accept=ACCEPT_RAW)
        except NotFound:
            return None
        return response.text or None

    async def get_languages(self, full_name: str) -> dict[str, int]:
        """``{language: bytes}``; empty for an empty repo. A 404 (the repo vanished mid-pass) is empty."""
        try:
            response = await self.get(f"{repo_path(full_name)}/languages")
        except NotFound:
            return {}
        data = response.json() or {}
        return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}

    async def get_contributors(self, full_name: str, *, per_page: int = CONTRIBUTORS_PER_PAGE) -> list[dict[str, Any]]:
        """The first page of contributors, most commits first, bots included.

        Empty for an empty repo (GitHub answers 204), a vanished one (404), and one whose history is
        too large to list (GitHub's 403 "too large to list contributors", which is not an auth failure).
        """
        url = f"{repo_path(full_name)}/contributors"
        try:
            response = await self.get(url, params={"per_page": max(1, min(100, per_page))})
        except NotFound:
            return []
        except Exception as err:
            if getattr(err, "status_code", None) == 403 and TOO_LARGE_TO_LIST in str(getattr(err, "body", "")).lower():
                logger.info("GitHub repo %s: contributor list too large for the API; leaving it empty", full_name)
                return []
            raise
        if response.status_code == 204:
            return []
        data = response.json()
        return [c for c in data if isinstance(c, dict)] if isinstance(data, list) else []

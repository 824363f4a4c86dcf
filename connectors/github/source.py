"""``GitHubSource``: the repositories of GitHub organizations and named repos, one record per repo.

Specs (one partition each)::

    org:<org>   params {"kind": "org", "org": <org>}            every repo of the org, 100 a page
    repos       params {"kind": "repos", "repos": [full names]}  the named repos, 20 a page

Cursors (opaque to the engine, documented for operators):

- org spec: GitHub's ``rel="next"`` link made relative to the API root, e.g.
  ``/organizations/9919/repos?type=all&sort=full_name&per_page=100&page=2`` (for a user account,
  whose repos list at ``/users/{name}/repos``: ``/user/583231/repos?…&page=2``). It is replayed against the
  configured ``base_url``, so it survives a new process and a new host name. A bare page number
  (``"2"``, durable-sync's cursor) is accepted too.
- repos spec: the offset into the named list as a decimal string (``"20"``).

Per repo, three enrichment calls (README, languages, contributors) run with bounded concurrency. Every
GET is conditional (ETags, see ``client.py``), so an unchanged repo costs no rate limit on the next
pass. An enrichment call that fails for any reason but a 404 fails the page (it is retried by the
pass), instead of being recorded as empty data: an empty README or language list is always real.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from connectors.auth import env_secret
from connectors.core import (
    AuthError,
    ConfigError,
    EnrichContext,
    EnrichHook,
    RateLimited,
    Record,
    SourceSpec,
    check_count,
    checked_hook,
    enrich_one,
)
from connectors.github.client import (
    SHARED_ETAG_CACHE,
    ETagStore,
    GitHubClient,
    RepositoryBlocked,
    rate_limit_key_for,
    token_digest,
)
from connectors.github.settings import (
    ANONYMOUS_RATE,
    API_BASE,
    BOT_SUFFIX,
    CONTRIBUTORS_PER_PAGE,
    DEFAULT_CONTRIBUTOR_LIMIT,
    DEFAULT_INTERVAL_MINUTES,
    ENRICH_CONCURRENCY,
    MAX_CONCURRENT,
    NAMED_PAGE_SIZE,
    NO_LICENSE_SPDX,
    ORG_REPO_TYPE,
    ORG_REPO_TYPES,
    PER_PAGE,
    RATE,
    TOKEN_ENV,
)
from connectors.http import HttpSettings, drain_pages

__all__ = ["EnrichHook", "GitHubSource", "RepoContext", "repo_record"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

# GitHub logins: alphanumerics and single hyphens, at most 39 characters. Repo names: [A-Za-z0-9._-].
_LOGIN_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")
_REPO_NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


# --------------------------------------------------------------------------------------------------
# The enrich hook


@dataclass(frozen=True, slots=True)
class RepoContext(EnrichContext[GitHubClient]):
    """What a per-repo ``enrich`` hook may look at besides the record (the live context of every source).

    ``client`` (the page's ``GitHubClient``, for extra calls, conditional and rate limited like the rest;
    valid only during the call), ``spec`` and ``source`` as ``connectors.core.EnrichContext``, plus:

    Attributes:
        raw_repo: The repo payload as GitHub sent it (``GET /orgs/{org}/repos`` or ``/repos/{o}/{r}``).
        readme: The README text, or None (none, or ``fetch_readme=False``).
        languages: ``{language: bytes}`` (empty when ``fetch_languages=False``).
        contributors: The first page of contributors as sent, bots included (empty when
            ``fetch_contributors=False``).
    """

    raw_repo: dict[str, Any]
    readme: str | None
    languages: dict[str, int]
    contributors: list[dict[str, Any]]


# --------------------------------------------------------------------------------------------------
# Mapping


def _int(value: Any) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def _datetime(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    parsed = dt.datetime.fromisoformat(value)  # GitHub: 2024-05-01T10:00:00Z
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def _date(value: Any) -> dt.date | None:
    parsed = _datetime(value)
    return parsed.astimezone(dt.UTC).date() if parsed is not None else None


def _license(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    spdx = value.get("spdx_id")
    return spdx if isinstance(spdx, str) and spdx not in NO_LICENSE_SPDX else None


def _human_logins(contributors: Sequence[dict[str, Any]], limit: int) -> list[str]:
    logins: list[str] = []
    for c in contributors:
        login = c.get("login")
        if not isinstance(login, str) or not login:
            continue  # anonymous (email-only) contributors have no login
        if c.get("type") == "Bot" or login.lower().endswith(BOT_SUFFIX):
            continue
        logins.append(login)
        if len(logins) >= limit:
            break
    return logins


def repo_record(
    repo: dict[str, Any],
    *,
    readme: str | None = None,
    languages: dict[str, int] | None = None,
    contributors: Sequence[dict[str, Any]] | None = None,
    contributor_limit: int = DEFAULT_CONTRIBUTOR_LIMIT,
) -> Record:
    """The record of one repo payload. ``languages``/``contributors`` None leave those properties out.

    A property left out is left alone by the destination, which is what a disabled enrichment wants;
    an empty list would clear it.
    """
    repo_id = repo.get("id")
    if not isinstance(repo_id, int) or isinstance(repo_id, bool):
        raise ConfigError(f"GitHub repo payload without an integer id: {repo.get('full_name')!r}")
    props: dict[str, Any] = {
        "Name": repo.get("name"),
        "Full name": repo.get("full_name"),
        "Description": repo.get("description") or None,
        "URL": repo.get("html_url"),
        "Stars": _int(repo.get("stargazers_count")),
        "Forks": _int(repo.get("forks_count")),
        "Open issues": _int(repo.get("open_issues_count")),
        "Language": repo.get("language") or None,
    }
    if languages is not None:
        ranked = sorted(languages.items(), key=lambda kv: (-kv[1], kv[0]))
        props["Languages"] = [name for name, _ in ranked]
    props["Topics"] = [str(t) for t in repo.get("topics") or []]
    props["Archived"] = bool(repo.get("archived"))
    props["Fork"] = bool(repo.get("fork"))
    props["License"] = _license(repo.get("license"))
    if contributors is not None:
        props["Contributors"] = _human_logins(contributors, contributor_limit)
    props["Pushed at"] = _datetime(repo.get("pushed_at"))
    props["Created"] = _date(repo.get("created_at"))
    props["Repo ID"] = str(repo_id)
    return Record(primary_key=str(repo_id), properties=props, body=readme or None)


# --------------------------------------------------------------------------------------------------
# Bounded concurrency


def _significance(err: BaseException) -> int:
    if isinstance(err, AuthError):
        return 0  # pauses the credential: must win over a transient error of a sibling
    if isinstance(err, RateLimited):
        return 1
    if isinstance(err, ConfigError):
        return 2
    return 3


async def _gather_bounded(factories: Sequence[Callable[[], Awaitable[T]]], limit: int) -> list[T]:
    """Run the coroutines at most ``limit`` at a time; results in order.

    On the first failure the others are cancelled and the most significant error is raised as is
    (an ``AuthError`` before a ``RateLimited`` before anything else), never wrapped in a group.
    """
    if not factories:
        return []
    semaphore = asyncio.Semaphore(limit)

    async def run(factory: Callable[[], Awaitable[T]]) -> T:
        async with semaphore:
            return await factory()

    tasks = [asyncio.ensure_future(run(f)) for f in factories]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    if any(t.done() and not t.cancelled() and t.exception() is not None for t in tasks):
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        errors = [e for t in tasks if not t.cancelled() and (e := t.exception()) is not None]
        raise min(errors, key=_significance)
    return [t.result() for t in tasks]


# --------------------------------------------------------------------------------------------------
# The source


def _strings(value: Sequence[str] | str, what: str) -> list[str]:
    if isinstance(value, str):
        raise ConfigError(f"GitHubSource.{what} must be a list of strings, not the string {value!r}")
    out = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise ConfigError(f"GitHubSource.{what}: {item!r} is not a non-empty string")
        out.append(item.strip())
    return out


def _dedupe(values: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for v in values:
        if v.lower() not in seen:
            seen.add(v.lower())
            out.append(v)
    return out


def _valid_full_name(full: str) -> bool:
    owner, _, name = full.partition("/")
    return bool(_LOGIN_RE.match(owner)) and bool(_REPO_NAME_RE.match(name)) and name not in (".", "..")


class GitHubSource:
    """Repositories of GitHub organizations and named repos (see the module docstring and README.md).

    Args:
        orgs: Organizations (or users) whose repos are listed; one spec ``org:<org>`` each.
        repos: ``owner/repo`` names fetched one by one; together one spec ``repos``.
        exclude: Repos never synced, by full (``acme/site``) or bare (``site``) name, case-insensitive.
        include_archived: Keep archived repos of the orgs (named repos are always kept).
        include_forks: Keep forks of the orgs.
        topics: If set, an org repo is kept only when it has one of these topics (case-insensitive).
            Named repos bypass it.
        token: The token; by default read from ``token_env`` at each use (never at import).
        token_env: Environment variable holding the token.
        token_required: Without a token, raise ``ConfigError`` (default). False allows GitHub's
            unauthenticated access: public repos only, 60 requests an hour per IP address.
        enrich: Per-repo hook ``(record, RepoContext) -> record | None``, sync or async (the hook of every
            source, ``connectors.core.EnrichHook``); a raise fails that repo's record only.
        fetch_readme: Fetch the README as the record body.
        fetch_languages: Fetch the "Languages" property (left out of the record when False).
        fetch_contributors: Fetch the "Contributors" property (left out of the record when False).
        contributor_limit: Human contributors kept, most commits first.
        interval_minutes: How often each spec syncs.
        repo_type: The org listing's ``type`` (``all``, ``public``, ``private``, ``forks``, ``sources``,
            ``member``).
        base_url: The REST root (GitHub Enterprise Server: ``https://HOST/api/v3``).
        http: Transport (``httpx.ASGITransport(app=fake.app)`` in tests), retry policy, sleep and clock
            (:class:`~connectors.http.HttpSettings`; the clock must match the server's for rate-limit resets).
        etag_cache: Conditional-request cache; default the process-wide one; None disables ETags.
        enrich_concurrency: Repos enriched at once per page.
        named_page_size: Named repos per page.
        per_page: Org repos per listing page (GitHub allows 1-100; smaller pages checkpoint sooner).
        name: The source name (``route = <name>_to_<destination>``).
    """

    def __init__(
        self,
        *,
        orgs: Sequence[str] = (),
        repos: Sequence[str] = (),
        exclude: Sequence[str] = (),
        include_archived: bool = False,
        include_forks: bool = True,
        topics: Sequence[str] = (),
        token: str | None = None,
        token_env: str = TOKEN_ENV,
        token_required: bool = True,
        enrich: EnrichHook | None = None,
        fetch_readme: bool = True,
        fetch_languages: bool = True,
        fetch_contributors: bool = True,
        contributor_limit: int = DEFAULT_CONTRIBUTOR_LIMIT,
        interval_minutes: int = DEFAULT_INTERVAL_MINUTES,
        repo_type: str = ORG_REPO_TYPE,
        base_url: str = API_BASE,
        http: HttpSettings | None = None,
        etag_cache: ETagStore | None = SHARED_ETAG_CACHE,
        per_page: int = PER_PAGE,
        enrich_concurrency: int = ENRICH_CONCURRENCY,
        named_page_size: int = NAMED_PAGE_SIZE,
        name: str = "github",
    ) -> None:
        """Check the arguments and remember them; nothing is read or sent yet."""
        self.orgs = _dedupe(_strings(orgs, "orgs"))
        for org in self.orgs:
            if not _LOGIN_RE.match(org):
                raise ConfigError(f"GitHubSource.orgs: {org!r} is not a GitHub organization or user name")
        self.repos = _dedupe(_strings(repos, "repos"))
        for full in self.repos:
            if not _valid_full_name(full):
                raise ConfigError(f"GitHubSource.repos: {full!r} is not an owner/repo name")
        self.exclude = frozenset(e.lower() for e in _strings(exclude, "exclude"))
        self.topics = frozenset(t.lower() for t in _strings(topics, "topics"))
        if token is not None and (not isinstance(token, str) or not token.strip()):
            raise ConfigError("GitHubSource.token must be a non-empty string or None")
        self._token = token.strip() if token is not None else None
        if not isinstance(token_env, str) or not token_env:
            raise ConfigError(f"GitHubSource.token_env must be an environment variable name, got {token_env!r}")
        self.token_env = token_env
        self.token_required = token_required
        self.enrich: EnrichHook | None = checked_hook(enrich, "GitHubSource")
        self.include_archived = include_archived
        self.include_forks = include_forks
        self.fetch_readme = fetch_readme
        self.fetch_languages = fetch_languages
        self.fetch_contributors = fetch_contributors
        for field_name, value in (
            ("contributor_limit", contributor_limit),
            ("interval_minutes", interval_minutes),
            ("enrich_concurrency", enrich_concurrency),
            ("named_page_size", named_page_size),
        ):
            check_count("GitHubSource", field_name, value)
        self.contributor_limit = contributor_limit
        self.interval_minutes = interval_minutes
        if repo_type not in ORG_REPO_TYPES:
            raise ConfigError(f"GitHubSource.repo_type must be one of {sorted(ORG_REPO_TYPES)}, got {repo_type!r}")
        self.repo_type = repo_type
        self.base_url = base_url.rstrip("/")
        self.http = http
        self._etag_cache = etag_cache
        if not isinstance(per_page, int) or not 1 <= per_page <= PER_PAGE:
            raise ConfigError(f"GitHubSource.per_page must be between 1 and {PER_PAGE}, got {per_page!r}")
        self.per_page = per_page
        self.enrich_concurrency = enrich_concurrency
        self.named_page_size = named_page_size
        if not isinstance(name, str) or not name:
            raise ConfigError(f"GitHubSource.name must be a non-empty string, got {name!r}")
        self.name = name
        self._user_accounts: set[str] = set()
        """``orgs`` entries found to be user accounts (their repos list at ``/users/{name}/repos``)."""
        self.requests_sent = 0
        """Responses received by this source's clients (for tests and benchmarks)."""
        self.not_modified = 0
        """Of those, 304s answered from the ETag cache."""

    def __repr__(self) -> str:  # never the token
        """Name the connector, never its secret."""
        return f"GitHubSource(name={self.name!r}, orgs={self.orgs!r}, repos={len(self.repos)})"

    # ------------------------------------------------------------------------------ credential

    def _current_token(self) -> str | None:
        if self._token is not None:
            return self._token
        return env_secret(self.token_env)

    @property
    def configured(self) -> bool:
        """Whether there is something to read (orgs or repos) and a token (or anonymous access)."""
        if not self.orgs and not self.repos:
            return False
        return self._current_token() is not None or not self.token_required

    @property
    def config_hint(self) -> str:
        """``"configured"``, or what to set before the connector can run."""
        if not self.orgs and not self.repos:
            return "give GitHubSource orgs=[...] or repos=['owner/repo', ...] (GITHUB_ORGS / GITHUB_REPOS)"
        return (
            f"set {self.token_env} to a GitHub token: a classic PAT with public_repo (or repo for private "
            "repos), or a fine-grained token with read-only Metadata and Contents"
        )

    @property
    def rate_limit_key(self) -> str:
        """``github:<12 hex of sha256(token)>``; ``github:anonymous`` without a token."""
        return rate_limit_key_for(self._current_token())

    @property
    def credential_key(self) -> str:
        """The credential slot, stable across token rotations: ``github:<token_env>``.

        Pauses are keyed on it, so a token renewed in the same variable lifts them; the rate
        limiter is keyed on ``rate_limit_key`` (per token), as GitHub counts per token.
        """
        if self._token is not None:
            return rate_limit_key_for(self._token)
        return f"github:{self.token_env}"

    def credential_fingerprint(self) -> str | None:
        """The sha256 digest of the current token (changes when the token does); None without one."""
        token = self._current_token()
        return token_digest(token) if token else None

    # ------------------------------------------------------------------------------ specs

    def specs(self) -> list[SourceSpec]:
        """One spec per org, plus one for the listed repos."""
        specs = [SourceSpec(f"org:{org}", self.interval_minutes, {"kind": "org", "org": org}) for org in self.orgs]
        if self.repos:
            specs.append(SourceSpec("repos", self.interval_minutes, {"kind": "repos", "repos": list(self.repos)}))
        return specs

    # ------------------------------------------------------------------------------ client

    @contextlib.asynccontextmanager
    async def open_client(self) -> AsyncIterator[GitHubClient]:
        """A ``GitHubClient`` with the current token; raises ``ConfigError`` when a required token is missing."""
        token = self._current_token()
        if token is None and self.token_required:
            raise ConfigError(
                f"GitHub source {self.name!r}: no token: {self.config_hint}; or pass token_required=False "
                "for unauthenticated access (public repos, 60 requests an hour)"
            )
        client = GitHubClient(
            token=token,
            base_url=self.base_url,
            http=self.http,
            rate=RATE if token else ANONYMOUS_RATE,
            max_concurrent=MAX_CONCURRENT,
            etag_cache=self._etag_cache,
            per_page=self.per_page,
        )
        try:
            async with client:
                yield client
        finally:
            self.requests_sent += client.requests
            self.not_modified += client.not_modified

    # ------------------------------------------------------------------------------ fetching

    async def fetch_page(
        self, spec: SourceSpec, only_items: list[str] | None = None, cursor: str | None = None
    ) -> tuple[list[Record], str | None]:
        """One page of records of ``spec`` and the cursor of the next (None after the last page).

        ``only_items`` (``owner/repo`` full names, bare repo names of the spec's org, or repo ids;
        case-insensitive) fetches just those repos of the spec, in one page; others are ignored.
        """
        kind = spec.params.get("kind")
        if kind not in ("org", "repos"):
            raise ConfigError(f"GitHub source {self.name!r}: spec {spec.key!r} has unknown kind {kind!r}")
        if kind == "org" and not (isinstance(spec.params.get("org"), str) and _LOGIN_RE.match(spec.params["org"])):
            raise ConfigError(f"GitHub source {self.name!r}: spec {spec.key!r} needs params['org'], an org name")
        async with self.open_client() as client:
            next_cursor: str | None = None
            if only_items is not None:
                repos = await self._targeted(client, spec, only_items)
            elif kind == "org":
                org = str(spec.params["org"])
                user = True if org.lower() in self._user_accounts else None
                listed, next_cursor = await client.org_repos_page(org, cursor, repo_type=self.repo_type, user=user)
                self._user_accounts |= client.user_accounts
                repos = [r for r in listed if self._keep_org_repo(r)]
            else:
                repos, next_cursor = await self._named_page(client, spec, cursor)
            records = await self._enrich_page(client, spec, self._dedupe_ids(repos))
            logger.debug(
                "GitHub %s: %d records, %d requests (%d answered 304), next cursor %s",
                spec.key,
                len(records),
                client.requests,
                client.not_modified,
                next_cursor,
            )
        return records, next_cursor

    async def fetch(self, spec: SourceSpec, only_items: list[str] | None = None) -> list[Record]:
        """Every record of ``spec`` (a drain over :meth:`fetch_page`; prefer paging)."""
        return await drain_pages(self.fetch_page, spec, only_items)

    # ------------------------------------------------------------------------------ gates

    def _excluded(self, repo: dict[str, Any]) -> bool:
        full = str(repo.get("full_name") or "").lower()
        bare = str(repo.get("name") or "").lower()
        return full in self.exclude or bare in self.exclude

    def _excluded_name(self, full: str) -> bool:
        full = full.lower()
        return full in self.exclude or full.partition("/")[2] in self.exclude

    def _keep_org_repo(self, repo: dict[str, Any]) -> bool:
        if self._excluded(repo):
            return False
        if repo.get("archived") and not self.include_archived:
            return False
        if repo.get("fork") and not self.include_forks:
            return False
        if self.topics:
            topics = {str(t).lower() for t in repo.get("topics") or []}
            if not topics & self.topics:
                return False
        return True

    @staticmethod
    def _dedupe_ids(repos: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        seen: set[int] = set()
        out = []
        for repo in repos:
            rid = repo.get("id")
            if not isinstance(rid, int) or isinstance(rid, bool):
                logger.warning("GitHub: skipping a repo payload without an integer id (%r)", repo.get("full_name"))
                continue
            if rid not in seen:
                seen.add(rid)
                out.append(repo)
        return out

    # ------------------------------------------------------------------------------ named and targeted

    def _named(self, spec: SourceSpec) -> list[str]:
        names = spec.params.get("repos", self.repos)
        return [n for n in _dedupe([str(n) for n in names]) if not self._excluded_name(n)]

    async def _named_page(
        self, client: GitHubClient, spec: SourceSpec, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        if cursor is not None and not cursor.isdigit():
            raise ConfigError(
                f"GitHub source {self.name!r}: cursor {cursor!r} of spec {spec.key!r} was not issued by this "
                "source (expected an offset such as '20'); start a full pass"
            )
        names = self._named(spec)
        start = int(cursor or 0)
        chunk = names[start : start + self.named_page_size]
        fetched = await _gather_bounded([_bind(client.get_repo, n) for n in chunk], self.enrich_concurrency)
        repos = [r for r in fetched if r is not None and not self._excluded(r)]
        end = start + self.named_page_size
        return repos, (str(end) if end < len(names) else None)

    async def _targeted(self, client: GitHubClient, spec: SourceSpec, items: Sequence[str]) -> list[dict[str, Any]]:
        org = str(spec.params["org"]) if spec.params.get("kind") == "org" else None
        named = {n.lower(): n for n in self._named(spec)} if org is None else {}
        named_by_bare: dict[str, str] = {}
        for full in named.values():
            named_by_bare.setdefault(full.partition("/")[2].lower(), full)
        names: list[str] = []
        ids: list[int] = []
        for raw in items:
            item = str(raw).strip()
            if item.isdigit():
                ids.append(int(item))
            elif org is not None:
                full = item if "/" in item else f"{org}/{item}"
                if full.partition("/")[0].lower() == org.lower() and _valid_full_name(full):
                    names.append(full)
                else:
                    logger.debug("GitHub %s: ignoring targeted item %r (not a repo of the org)", spec.key, item)
            elif item.lower() in named:
                names.append(named[item.lower()])
            elif "/" not in item and item.lower() in named_by_bare:
                names.append(named_by_bare[item.lower()])
            else:
                logger.debug("GitHub %s: ignoring targeted item %r (not a named repo)", spec.key, item)
        names = _dedupe(names)
        factories: list[Callable[[], Awaitable[dict[str, Any] | None]]] = [_bind(client.get_repo, n) for n in names]
        factories += [_bind(client.get_repository, i) for i in dict.fromkeys(ids)]
        fetched = await _gather_bounded(factories, self.enrich_concurrency)
        repos = []
        for index, repo in enumerate(fetched):
            if repo is None:
                continue
            if org is not None:
                owner = (repo.get("owner") or {}).get("login") or str(repo.get("full_name", "")).partition("/")[0]
                if str(owner).lower() == org.lower() and self._keep_org_repo(repo):
                    repos.append(repo)
                continue
            # Fetched by a named full name: it is one of ours even when GitHub followed a rename.
            # Fetched by id: only when its current name is on the list.
            by_name = index < len(names)
            if not self._excluded(repo) and (by_name or str(repo.get("full_name", "")).lower() in named):
                repos.append(repo)
        return repos

    # ------------------------------------------------------------------------------ enrichment

    async def _enrich_page(
        self, client: GitHubClient, spec: SourceSpec, repos: Sequence[dict[str, Any]]
    ) -> list[Record]:
        factories = [_bind(self._enrich_one, client, spec, r) for r in repos]
        results = await _gather_bounded(factories, self.enrich_concurrency)
        return [r for r in results if r is not None]

    async def _enrich_one(self, client: GitHubClient, spec: SourceSpec, repo: dict[str, Any]) -> Record | None:
        full = str(repo.get("full_name") or "")

        async def readme() -> str | None:
            return await client.get_readme(full) if self.fetch_readme else None

        async def languages() -> dict[str, int] | None:
            return await client.get_languages(full) if self.fetch_languages else None

        async def contributors() -> list[dict[str, Any]] | None:
            if not self.fetch_contributors:
                return None
            per_page = max(CONTRIBUTORS_PER_PAGE, 2 * self.contributor_limit)
            return await client.get_contributors(full, per_page=per_page)

        try:
            results: list[Any] = await _gather_bounded([readme, languages, contributors], 3)
        except RepositoryBlocked as err:
            # Listed, but taken down (DMCA, terms of service): no record, so the destination keeps
            # what it had instead of an empty README; the other repos of the page go on.
            logger.warning("GitHub repo %s skipped: %s", full, err)
            return None
        text = cast("str | None", results[0])
        langs = cast("dict[str, int] | None", results[1])
        people = cast("list[dict[str, Any]] | None", results[2])
        record = repo_record(
            repo,
            readme=text,
            languages=langs,
            contributors=people,
            contributor_limit=self.contributor_limit,
        )
        if self.enrich is None:
            return record
        ctx = RepoContext(
            client, spec, self.name, raw_repo=repo, readme=text, languages=langs or {}, contributors=people or []
        )
        return await enrich_one(self.enrich, record, ctx, owner=f"GitHub source {self.name!r}")


def _bind(fn: Callable[..., Awaitable[T]], *args: Any) -> Callable[[], Awaitable[T]]:
    """A zero-argument coroutine factory (a coroutine object can be awaited once; a factory is lazy)."""

    def factory() -> Awaitable[T]:
        return fn(*args)

    return factory

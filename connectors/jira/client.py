"""``JiraClient``: a typed client of the Jira Cloud REST API v3 over ``connectors.http``.

Every request goes through the shared client base (``connectors.http.JsonApiClient``): Basic auth (account email + API
token), one rate limiter per token, retries with backoff on 429 (honouring ``Retry-After`` /
``X-RateLimit-Reset``), 5xx and timeouts, typed errors and redaction of the email and token from every
message and log line.

Creating an issue is not idempotent, so it is sent with ``retry_options(retry_ambiguous=False)``: after
a read timeout, a dropped connection or a 500/502/504 the issue may exist, and resending could create
a second one; the error surfaces instead (``TransientError``) and the destination's listing adopts
the issue by its entity property. Edits and reads are idempotent and retried.

:meth:`JiraClient.bulk_create` sends up to 50 creates in one ``POST /rest/api/3/issue/bulk``: Jira
answers 201 when any was created (400 when none was) with ``issues`` (the created ones) and
``errors`` (``failedElementNumber``: the 0-based index of the element, ``elementErrors`` in the 400
shape below). Each element's outcome is returned on its own: the created issue, its ``JiraRejected``,
or None when Jira's answer cannot be mapped back (see the method).

A 400 carries Jira's error shape ``{"errorMessages": [...], "errors": {"<field id>": "<message>"}}``;
it is raised as :class:`JiraRejected` with both parts parsed, so a destination can name the field.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, TypedDict, Unpack

import httpx

from connectors.auth import env_secret
from connectors.core import ConfigError, RecordError, SyncError
from connectors.http import (
    HTTPRecordError,
    HttpSettings,
    Json,
    JsonApiClient,
    NextPageTokenPagination,
    NotFound,
    Rate,
    error_for_response,
    redact_text,
    retry_options,
)
from connectors.jira.settings import (
    BASE_URL_ENV,
    BULK_CREATE_PATH,
    CREATE_TIMEOUT,
    DEFAULT_TIMEOUT,
    EMAIL_ENV,
    FIELD_PATH,
    ISSUE_PATH,
    JIRA_RATE,
    MAX_BULK_CREATE,
    MAX_CONCURRENT,
    MAX_RECONCILE_IDS,
    MAX_SEARCH_PROPERTIES,
    PAGE_SIZE,
    PROJECT_PATH,
    SEARCH_PATH,
    SERVICE,
    TOKEN_ENV,
)

__all__ = [
    "JiraClient",
    "JiraCredentialArgs",
    "JiraCredentials",
    "JiraRejected",
    "NextPageTokenPagination",
    "credential_digest",
    "normalize_base_url",
    "rate_limit_key_for",
]

logger = logging.getLogger(__name__)


def normalize_base_url(value: str | None) -> str | None:
    """The site's base URL from what a user pastes; None for nothing.

    ``https://acme.atlassian.net`` from ``acme.atlassian.net``, ``https://acme.atlassian.net/`` or a
    pasted browse link (``.../browse/ENG-1``, ``.../jira/...``); None for nothing.
    """
    text = (value or "").strip()
    if not text:
        return None
    if "://" not in text:
        text = f"https://{text}"
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL as err:
        raise ConfigError(f"Jira base URL {value!r} is not a URL ({err})") from None
    if not url.host:
        raise ConfigError(f"Jira base URL {value!r} has no host")
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}"


def credential_digest(*parts: str) -> str:
    """A sha256 hex digest naming a credential without revealing it."""
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def rate_limit_key_for(email: str, token: str) -> str:
    """``jira:<12 hex>``: the key the toolkit shares limits under (one per token)."""
    return f"jira:{credential_digest(email, token)[:12]}"


class JiraCredentialArgs(TypedDict, total=False):
    """The credential keywords of ``JiraSource`` and ``JiraDestination``, handed on to ``JiraCredentials``.

    Declared once so the two connectors take the same six keywords (``**credentials:
    Unpack[JiraCredentialArgs]``) without repeating them; see ``JiraCredentials`` for their meaning.
    """

    base_url: str | None
    email: str | None
    token: str | None
    base_url_env: str | None
    email_env: str | None
    token_env: str | None


class JiraCredentials:
    """Where a Jira connector's site, account email and API token come from, read at each use.

    Explicit values win; otherwise the environment variables (the email and token also from
    ``NAME_FILE``, see ``connectors.auth.env_secret``), so a token renewed in place is picked up and a
    pause on the old one can lift itself.

    Args:
        base_url, email, token: Explicit values (tests, or code that manages its own secrets).
        base_url_env, email_env, token_env: Environment variable names (None: do not read one; default:
            ``JIRA_BASE_URL``, ``JIRA_EMAIL``, ``JIRA_API_TOKEN`` as in ``settings``).
    """

    def __init__(self, **args: Unpack[JiraCredentialArgs]) -> None:
        """Remember the arguments (the keywords of :class:`JiraCredentialArgs`); nothing is read or sent yet."""
        self._base_url = args.get("base_url")
        self._email = args.get("email")
        self._token = args.get("token")
        self.base_url_env = args.get("base_url_env", BASE_URL_ENV)
        self.email_env = args.get("email_env", EMAIL_ENV)
        self.token_env = args.get("token_env", TOKEN_ENV)

    def base_url(self) -> str | None:
        """The site now (``https://<site>.atlassian.net``), or None."""
        raw = self._base_url or ((os.environ.get(self.base_url_env) or "").strip() if self.base_url_env else "")
        return normalize_base_url(raw)

    def email(self) -> str | None:
        """The account email now: the one given, else the variable's."""
        return self._email or env_secret(self.email_env)

    def token(self) -> str | None:
        """The API token now: the one given, else the variable's."""
        return self._token or env_secret(self.token_env)

    def missing(self) -> list[str]:
        """What is not set, as hints naming the variables."""
        out: list[str] = []
        if not self.base_url():
            out.append(f"{self.base_url_env or 'base_url'} (https://<site>.atlassian.net)")
        if not self.email():
            out.append(f"{self.email_env or 'email'} (the Atlassian account email)")
        if not self.token():
            out.append(f"{self.token_env or 'token'} (an API token from id.atlassian.com)")
        return out

    def require(self, who: str) -> tuple[str, str, str]:
        """(base URL, email, token), or ``ConfigError`` naming what is missing."""
        base, email, token = self.base_url(), self.email(), self.token()
        if not base or not email or not token:
            raise ConfigError(f"{who}: set " + " and ".join(self.missing()))
        return base, email, token

    def client(self, who: str, *, http: HttpSettings | None, rate: Rate | None) -> JiraClient:
        """A client of the credentials now (``ConfigError`` naming ``who`` and what is missing)."""
        base, email, token = self.require(who)
        return JiraClient(base, email, token, http=http, rate=rate)

    @property
    def rate_limit_key(self) -> str:
        """``jira:<12 hex>`` of the email and token (one limiter per token); ``jira`` without."""
        email, token = self.email(), self.token()
        return rate_limit_key_for(email, token) if email and token else "jira"

    @property
    def credential_key(self) -> str:
        """The credential slot, stable across token rotations (``jira:JIRA_API_TOKEN``)."""
        if self._token or not self.token_env:
            return self.rate_limit_key
        return f"jira:{self.token_env or TOKEN_ENV}"

    def fingerprint(self) -> str | None:
        """Changes when the site, the email or the token does; None without a token."""
        token = self.token()
        if not token:
            return None
        return credential_digest(self.base_url() or "", self.email() or "", token)

    def credential_fingerprint(self) -> str | None:
        """The engine's name for :meth:`fingerprint` (see ``connectors.http.CredentialMembers``)."""
        return self.fingerprint()


class JiraRejected(RecordError):
    """Jira rejected a request (400): ``errors`` maps field ids to messages, ``messages`` the rest.

    Attributes:
        status_code: The HTTP status (400).
        errors: ``{"<field id>": "<message>"}`` from Jira's ``errors`` object (redacted).
        messages: Jira's ``errorMessages`` (redacted).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        errors: Mapping[str, str],
        messages: Sequence[str],
        primary_key: str | None = None,
    ) -> None:
        """Keep Jira's field errors and messages (already redacted)."""
        super().__init__(message, primary_key=primary_key)
        self.status_code = status_code
        self.errors = dict(errors)
        self.messages = list(messages)


class JiraClient(JsonApiClient):
    """A Jira Cloud REST v3 client for one account email + API token on one site.

    A :class:`~connectors.http.JsonApiClient`: :meth:`request` returns the JSON body (None for an
    empty answer, e.g. 204) and raises :class:`JiraRejected` for a 400, with Jira's ``errors`` /
    ``errorMessages`` parsed. Search pages with :class:`~connectors.http.NextPageTokenPagination`.

    Args:
        base_url: ``https://<site>.atlassian.net`` (a loopback fake in tests).
        email: The Atlassian account email (Basic auth user).
        token: The API token (Basic auth password).
        rate: The token's request rate (shared by every client of the same token).
        timeout: Default per-request timeout (creates get ``CREATE_TIMEOUT``).
        http: Transport, sleep, clock and retry policy (:class:`~connectors.http.HttpSettings`).
    """

    service = SERVICE
    create_timeout = CREATE_TIMEOUT
    pagination = NextPageTokenPagination()

    def __init__(
        self,
        base_url: str,
        email: str,
        token: str,
        *,
        rate: Rate | None = JIRA_RATE,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        http: HttpSettings | None = None,
    ) -> None:
        """Check the site and credentials and build the client."""
        base = normalize_base_url(base_url)
        if not base or not email or not token:
            raise ConfigError("JiraClient needs a base URL, an account email and an API token")
        self.base_url = base
        self._secrets = (email, token)
        super().__init__(
            base_url=base,
            auth=httpx.BasicAuth(email, token),
            headers={"Accept": "application/json"},
            credential=rate_limit_key_for(email, token),
            rate=rate,
            max_concurrent=MAX_CONCURRENT,
            http=http,
            timeout=timeout,
        )

    def error_for(self, response: httpx.Response) -> SyncError:
        """The toolkit's typed error, except a 400: :class:`JiraRejected` (caused by the toolkit's error).

        Args:
            response: A 4xx/5xx response whose body has been read.
        """
        err = error_for_response(response)
        if response.status_code == 400 and isinstance(err, HTTPRecordError):
            rejected = self._rejected(response, err)
            rejected.__cause__ = err
            rejected.__suppress_context__ = True
            return rejected
        return err

    def _rejected(self, response: httpx.Response, err: HTTPRecordError) -> JiraRejected:
        errors: dict[str, str] = {}
        messages: list[str] = []
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            raw_errors = body.get("errors")
            if isinstance(raw_errors, dict):
                errors = {str(k): redact_text(str(v), self._secrets) for k, v in raw_errors.items()}
            raw_messages = body.get("errorMessages")
            if isinstance(raw_messages, list):
                messages = [redact_text(str(m), self._secrets) for m in raw_messages]
        detail = "; ".join([*messages, *(f"{k}: {v}" for k, v in errors.items())]) or err.body
        return JiraRejected(
            f"{SERVICE} {err.method} {response.request.url.path} -> 400: {detail}",
            status_code=400,
            errors=errors,
            messages=messages,
        )

    # -- search -----------------------------------------------------------------------------------

    async def search(
        self,
        jql: str,
        *,
        fields: Sequence[str] = (),
        properties: Sequence[str] = (),
        max_results: int = PAGE_SIZE,
        next_page_token: str | None = None,
        reconcile_issues: Sequence[int] = (),
        expand: Sequence[str] = (),
    ) -> Json:
        """One page of ``POST /rest/api/3/search/jql``.

        Args:
            jql: The query (must be bounded, e.g. ``project = X``).
            fields: Fields to return (without any, Jira returns only ids).
            properties: Issue property keys to return inline (at most 5).
            max_results: Page size asked for; Jira may return fewer.
            next_page_token: The previous page's ``nextPageToken``.
            reconcile_issues: Issue ids (at most 50) whose latest state the answer must reflect
                (search is eventually consistent).
            expand: What to add (``schema``: the types of the returned fields, top level; ``names``;
                ``renderedFields``), sent as Jira's comma-separated string.
        """
        if len(properties) > MAX_SEARCH_PROPERTIES:
            raise ConfigError(f"Jira search: at most {MAX_SEARCH_PROPERTIES} properties, got {len(properties)}")
        body: Json = {"jql": jql, "maxResults": max_results}
        if fields:
            body["fields"] = list(fields)
        if properties:
            body["properties"] = list(properties)
        if next_page_token:
            body["nextPageToken"] = next_page_token
        if reconcile_issues:
            body["reconcileIssues"] = [int(i) for i in list(reconcile_issues)[-MAX_RECONCILE_IDS:]]
        if expand:
            body["expand"] = ",".join(expand)
        # A search only reads, so it is safe to resend.
        result = await self.request("POST", SEARCH_PATH, json=body)
        return result if isinstance(result, dict) else {"issues": [], "isLast": True}

    async def iter_search(
        self,
        jql: str,
        *,
        fields: Sequence[str] = (),
        properties: Sequence[str] = (),
        max_results: int = PAGE_SIZE,
        reconcile_issues: Sequence[int] = (),
    ) -> AsyncIterator[Json]:
        """Every page body of a search, fetched lazily."""

        async def fetch(token: str | None) -> Json:
            return await self.search(
                jql,
                fields=fields,
                properties=properties,
                max_results=max_results,
                next_page_token=token,
                reconcile_issues=reconcile_issues,
            )

        async for body in self.pagination.pages(fetch):
            yield body

    # -- issues -----------------------------------------------------------------------------------

    async def get_issue(
        self, id_or_key: str, *, fields: Sequence[str] = (), properties: Sequence[str] = ()
    ) -> Json | None:
        """``GET /rest/api/3/issue/{idOrKey}``; None when it does not exist or is not visible.

        ``GET /rest/api/3/issue/{idOrKey}`` (strongly consistent; a moved issue's old key still
        finds it); None when it does not exist or is not visible.
        """
        params: dict[str, str] = {"fields": ",".join(fields) if fields else "id"}
        if properties:
            params["properties"] = ",".join(properties)
        try:
            result = await self.request("GET", f"{ISSUE_PATH}/{id_or_key}", params=params)
        except NotFound:
            return None
        return result if isinstance(result, dict) else None

    async def create_issue(self, body: Json) -> Json:
        """``POST /rest/api/3/issue``: fields, and ``properties`` set in the same request."""
        result = await self.request("POST", ISSUE_PATH, json=body, create=True)
        if not isinstance(result, dict) or not result.get("id"):
            raise RecordError(f"{SERVICE}: create issue answered without an id: {json.dumps(result)[:200]}")
        return result

    async def bulk_create(self, bodies: Sequence[Json]) -> list[Json | SyncError | None]:
        """``POST /rest/api/3/issue/bulk``: up to 50 creates; per element its ``{id, key, self}``, error or None.

        Never resent after an ambiguous failure (like a single create). Jira lists the created
        issues without saying which element each came from (JRACLOUD-81005); they are taken in
        request order, skipping the ``failedElementNumber``s, and only when their number adds up.
        When it does not, the created elements are None (created, id unknown): the destination's
        listing finds them by their entity property.

        Raises:
            ConfigError: No bodies, or more than 50.
            SyncError: The request itself failed (auth, a rate limit past the retries, a lost answer).
        """
        if not 1 <= len(bodies) <= MAX_BULK_CREATE:
            raise ConfigError(f"Jira bulk create: 1 to {MAX_BULK_CREATE} issues, got {len(bodies)}")
        response = await self._http.request(
            "POST",
            self.url_for(BULK_CREATE_PATH),
            json={"issueUpdates": list(bodies)},
            extensions=retry_options(retry_ambiguous=False),
            timeout=self.create_timeout,
        )
        self.requests += 1
        try:
            await response.aread()
            answer = _json_or_none(response)
            # 400 with the bulk shape: every element failed, each with its own errors.
            bulk_shape = isinstance(answer, dict) and isinstance(answer.get("errors"), list)
            if response.status_code >= 400 and not (response.status_code == 400 and bulk_shape):
                raise self.error_for(response)
        finally:
            await response.aclose()
        answer = answer if isinstance(answer, dict) else {}
        results: list[Json | SyncError | None] = [None] * len(bodies)
        failed: set[int] = set()
        for error in answer.get("errors") or []:
            number = error.get("failedElementNumber") if isinstance(error, dict) else None
            if isinstance(number, int) and 0 <= number < len(bodies) and number not in failed:
                failed.add(number)
                results[number] = self._element_error(error)
        created = [i for i in answer.get("issues") or [] if isinstance(i, dict) and i.get("id")]
        landed = [n for n in range(len(bodies)) if n not in failed]
        if len(created) == len(landed):
            for number, issue in zip(landed, created, strict=True):
                results[number] = issue
        else:
            logger.warning(
                "%s bulk create: %d issues created for %d elements not refused; their ids are left to the listing",
                SERVICE,
                len(created),
                len(landed),
            )
        return results

    def _element_error(self, error: Json) -> SyncError:
        """One failed element's error, as a single create's answer with its ``status`` would raise it."""
        status = error.get("status")
        details = error.get("elementErrors")
        response = httpx.Response(
            status if isinstance(status, int) and status >= 400 else 400,
            json=details if isinstance(details, dict) else {},
            request=self._http.build_request("POST", self.url_for(ISSUE_PATH)),
        )
        return self.error_for(response)

    async def edit_issue(self, id_or_key: str, body: Json) -> None:
        """``PUT /rest/api/3/issue/{idOrKey}`` (204). Setting fields is idempotent, so it is retried."""
        await self.request("PUT", f"{ISSUE_PATH}/{id_or_key}", json=body)

    async def set_issue_property(self, id_or_key: str, key: str, value: Any) -> None:
        """``PUT /rest/api/3/issue/{idOrKey}/properties/{key}``."""
        await self.request("PUT", f"{ISSUE_PATH}/{id_or_key}/properties/{key}", json=value)

    # -- metadata ---------------------------------------------------------------------------------

    async def get_project(self, key: str) -> Json | None:
        """``GET /rest/api/3/project/{key}`` (with ``issueTypes``); None when not found or not visible."""
        try:
            result = await self.request("GET", f"{PROJECT_PATH}/{key}")
        except NotFound:
            return None
        return result if isinstance(result, dict) else None

    async def get_fields(self) -> list[Json]:
        """``GET /rest/api/3/field``: every system and custom field (id, name, schema)."""
        result = await self.request("GET", FIELD_PATH)
        return [f for f in result if isinstance(f, dict)] if isinstance(result, list) else []


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json() if response.content.strip() else None
    except ValueError:
        return None

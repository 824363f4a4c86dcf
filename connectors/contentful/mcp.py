"""``ContentfulMcpDestination``: entries of one content type, written through Contentful's hosted MCP server.

The hosted server (``https://mcp.contentful.com/mcp``) acts as the user who logged in with OAuth; its
token is MCP-scoped (it does not work on the CMA REST API), hence this destination next to the REST one.
Field values are encoded by the SAME pure ``encode.py`` as the REST destination.

Tools used::

    get_initial_context  {}                                           the server requires it first
    get_content_type     {spaceId, environmentId, contentTypeId}      at connect: field types for encode.py
    create_entry         {spaceId, environmentId, contentTypeId, fields}
    get_entry            {spaceId, environmentId, entryId}
    update_entry         {spaceId, environmentId, entryId, version, fields}
    publish_entry        {spaceId, environmentId, entryId: [id]}      (a LIST)

Answers are prose-prefixed pseudo-XML (not valid XML: ``<*>`` tags), so nothing parses them as XML; values
are scraped (:func:`entry_id_of`, :func:`version_of`, :func:`fields_of`), JSON answers are accepted too.

Decisions (user-facing version in README.md, "MCP destination"):

- **Ids are server-assigned**: ``create_entry`` cannot take our id, so the destination relies on the
  engine's link map (``stores_keys = False``; ``query_existing_ids`` is empty; the engine commits each link
  right after its create). A create whose answer is lost is not resent and is created again by the next
  pass: one duplicate per lost answer (the crash window, README).
- **Updates**: ``get_entry`` for the version (and the fields), then ``update_entry`` with only the managed
  fields. The hosted tool merges fields by field id, so unmanaged fields (human edits) are kept by the
  server; a written field replaces that field's every locale, so other locales of a managed field are
  merged in from what ``get_entry`` returned. None removes our locale (an emptied field is sent as ``{}``).
  Create-only properties are never sent. An update that changes nothing is not sent.
  ``VersionMismatch`` re-reads and retries, ``MAX_VERSION_RETRIES`` times in all, then a ``RecordError``.
- **Publish** (``publish=True``) is tolerant: a permission refusal of ``publish_entry`` (the app
  installation has its own per-tool permissions) logs a warning and keeps the draft; any other publish
  error fails the record (the draft is kept).
- **Locales**: every field is written under ``default_locale``; for non-localized fields it must be the
  space's default locale (the server cannot tell us the locales without extra tools).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import httpx

from connectors.auth.tokens import TokenStore
from connectors.contentful.encode import ContentTypeSpec, encode_fields
from connectors.contentful.settings import DEFAULT_ENVIRONMENT, DEFAULT_LOCALE, MAX_VERSION_RETRIES
from connectors.core import AuthError, ConfigError, Record, RecordError, TransientError
from connectors.http import DEFAULT_MAX_WAIT, Clock, Rate, RetryPolicy, Sleep, redact_text
from connectors.mcp import DEFAULT_CALL_TIMEOUT, AuthLike, McpConnector, McpSession, McpToolError

__all__ = [
    "CONTENTFUL_MCP_URL",
    "DEFAULT_ACCOUNT",
    "ContentfulMcpDestination",
    "entry_id_of",
    "fields_of",
    "published_version_of",
    "version_of",
]

logger = logging.getLogger(__name__)

Json = dict[str, Any]

CONTENTFUL_MCP_URL = "https://mcp.contentful.com/mcp"
SERVICE = "Contentful MCP"
DEFAULT_ACCOUNT = "contentful-mcp"

TOOL_CONTEXT = "get_initial_context"
TOOL_CONTENT_TYPE = "get_content_type"
TOOL_CREATE = "create_entry"
TOOL_GET = "get_entry"
TOOL_UPDATE = "update_entry"
TOOL_PUBLISH = "publish_entry"
READ_ONLY_TOOLS = frozenset({TOOL_CONTEXT, TOOL_CONTENT_TYPE, TOOL_GET})

_ID = r"[A-Za-z0-9._-]{1,64}"
_URN_ID_RE = re.compile(rf"/entries/({_ID})")
_SPACE_ID_RE = re.compile(rf"</space>\s*<id>\s*({_ID})\s*</id>", re.I)
_VERSION_RE = re.compile(r"<version>\s*(\d+)\s*</version>", re.I)
_PUBLISHED_RE = re.compile(r"<publishedVersion>\s*(\d+)\s*</publishedVersion>", re.I)
_FIELDS_RE = re.compile(r"<fields>\s*(.*?)\s*</fields>", re.S | re.I)
_VERSION_MISMATCH_RE = re.compile(r"version\s*mismatch", re.I)
_NOT_FOUND_RE = re.compile(r"\bnot ?found\b|could not be found", re.I)
_PERMISSION_RE = re.compile(r"permission|not permitted|not allowed|access ?denied", re.I)


# --------------------------------------------------------------------------------------------------
# Scraping the pseudo-XML answers


def _json_in(text: str) -> Any:
    """The JSON object in ``text``: all of it, or from its first ``{`` to its last ``}`` (after prose)."""
    stripped = text.strip()
    for candidate in (stripped, stripped[stripped.find("{") : stripped.rfind("}") + 1]):
        if candidate.startswith("{"):
            try:
                return json.loads(candidate)
            except ValueError:
                continue
    return None


def _json_sys(text: str) -> Mapping[str, Any]:
    data = _json_in(text)
    sys = data.get("sys") if isinstance(data, dict) else None
    return sys if isinstance(sys, dict) else {}


def entry_id_of(text: str) -> str | None:
    """The entry id in an answer: from the URN (``…/entries/<id>``), else ``</space><id>X</id>``, else a
    JSON answer's ``sys.id``; None when none is found."""
    for pattern in (_URN_ID_RE, _SPACE_ID_RE):
        match = pattern.search(text)
        if match:
            return match.group(1)
    value = _json_sys(text).get("id")
    return str(value) if isinstance(value, str) and re.fullmatch(_ID, value) else None


def version_of(text: str) -> int | None:
    """``sys.version`` in an answer: ``<version>N</version>`` (never ``publishedVersion``), or JSON."""
    match = _VERSION_RE.search(text)
    if match:
        return int(match.group(1))
    value = _json_sys(text).get("version")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def published_version_of(text: str) -> int | None:
    match = _PUBLISHED_RE.search(text)
    if match:
        return int(match.group(1))
    value = _json_sys(text).get("publishedVersion")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def fields_of(text: str) -> dict[str, Any] | None:
    """The entry's locale-wrapped fields: the JSON in ``<fields>…</fields>``, or a JSON answer's ``fields``;
    None when the answer carries none we can read."""
    match = _FIELDS_RE.search(text)
    data: Any = None
    if match:
        try:
            data = json.loads(match.group(1))
        except ValueError:
            data = None
    else:
        parsed = _json_in(text)
        data = parsed.get("fields") if isinstance(parsed, dict) else None
    if not isinstance(data, dict):
        return None
    return {k: dict(v) for k, v in data.items() if isinstance(v, dict)}


# --------------------------------------------------------------------------------------------------
# The destination


class ContentfulMcpDestination(McpConnector):
    """Entries of one Contentful content type over the hosted MCP server (see the module docstring).

    Args:
        space_id: The space.
        content_type: The content type id.
        field_map: Record property -> field id. Only these are written.
        environment: The environment id.
        default_locale: The locale every field is written in.
        publish: Publish after every write (tolerant of a permission refusal).
        create_only_properties: Written on create, never on update.
        auth: The OAuth provider's ``httpx.Auth`` (bearer + refresh-and-retry once on a 401), or a
            zero-argument token callable / static token.
        token_store: Where the OAuth grant lives (``credential_fingerprint``; without ``auth``, a plain
            bearer of the stored access token).
        account: The grant's token-store account; pauses are keyed on ``contentful-mcp:<account>``.
        mcp_url: The MCP endpoint.
        transport: httpx transport under the toolkit (``httpx.ASGITransport(fake.app)`` in tests).
        rate, retry, sleep, clock, max_wait, call_timeout: As for ``connectors.mcp.open_mcp_session``.
        name: Destination name.
    """

    stores_keys = False
    max_concurrency = 1
    max_value_length: int | None = None
    credential_prefix = "contentful-mcp"
    mcp_service = SERVICE
    mcp_read_only_tools = READ_ONLY_TOOLS

    def __init__(
        self,
        space_id: str,
        content_type: str,
        field_map: Mapping[str, str],
        *,
        environment: str = DEFAULT_ENVIRONMENT,
        default_locale: str = DEFAULT_LOCALE,
        publish: bool = False,
        create_only_properties: Iterable[str] = (),
        auth: AuthLike | None = None,
        token_store: TokenStore | None = None,
        account: str = DEFAULT_ACCOUNT,
        mcp_url: str = CONTENTFUL_MCP_URL,
        transport: httpx.AsyncBaseTransport | None = None,
        httpx_client_factory: Callable[..., httpx.AsyncClient] | None = None,
        rate: Rate | None = None,
        retry: RetryPolicy | None = None,
        sleep: Sleep | None = None,
        clock: Clock | None = None,
        max_wait: float = DEFAULT_MAX_WAIT,
        call_timeout: float = DEFAULT_CALL_TIMEOUT,
        name: str = "contentful-mcp",
    ) -> None:
        if not field_map:
            raise ConfigError("ContentfulMcpDestination: field_map must map at least one record property to a field")
        targets = list(field_map.values())
        doubled = sorted({f for f in targets if targets.count(f) > 1})
        if doubled:
            raise ConfigError(f"ContentfulMcpDestination: field_map writes several properties to field(s) {doubled}")
        self.space_id = space_id
        self.content_type = content_type
        self.field_map = dict(field_map)
        self.environment = environment
        self.default_locale = default_locale
        self.publish = publish
        self.create_only_properties = set(create_only_properties)
        self._init_mcp(
            auth=auth,
            token_store=token_store,
            account=account,
            mcp_url=mcp_url,
            transport=transport,
            httpx_client_factory=httpx_client_factory,
            rate=rate,
            retry=retry,
            sleep=sleep,
            clock=clock,
            max_wait=max_wait,
            call_timeout=call_timeout,
        )
        self.name = name
        self.publish_refusals = 0

    # -- configuration ----------------------------------------------------------------------------

    @property
    def configured(self) -> bool:
        return self._has_credential() and bool(self.space_id) and bool(self.content_type)

    @property
    def config_hint(self) -> str:
        missing = []
        if not self._has_credential():
            missing.append(f"a Contentful OAuth login (account {self.account!r}: durable-sync auth login)")
        if not self.space_id:
            missing.append("space_id")
        if not self.content_type:
            missing.append("content_type")
        return "configured" if not missing else "set " + " and ".join(missing)

    def describe(self) -> str:
        if not self.space_id:
            return "Contentful over MCP (not configured)"
        env = "" if self.environment == DEFAULT_ENVIRONMENT else f"/environments/{quote(self.environment, safe='')}"
        return (
            f"https://app.contentful.com/spaces/{quote(self.space_id, safe='')}{env}/entries"
            f"?contentTypeId={quote(self.content_type, safe='')}"
        )

    # -- sessions ---------------------------------------------------------------------------------

    def _where(self) -> Json:
        return {"spaceId": self.space_id, "environmentId": self.environment}

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[_ContentfulMcpSession]:
        """One MCP session: ``get_initial_context`` first, then the content type (checked against field_map)."""
        if not self.space_id or not self.content_type:
            raise ConfigError(f"ContentfulMcpDestination {self.name!r}: {self.config_hint}")
        async with self._open() as mcp:
            await mcp.call(TOOL_CONTEXT, {})
            content_type = await self._content_type(mcp)
            yield _ContentfulMcpSession(self, mcp, content_type)

    async def _content_type(self, mcp: McpSession) -> ContentTypeSpec:
        where = f"Contentful space {self.space_id} (environment {self.environment})"
        try:
            result = await mcp.call(TOOL_CONTENT_TYPE, {**self._where(), "contentTypeId": self.content_type})
        except McpToolError as err:
            if _NOT_FOUND_RE.search(err.text):
                raise ConfigError(f"{where} has no content type {self.content_type!r}") from None
            raise
        data = result.structured or _json_in(result.text)
        if not isinstance(data, dict) or not isinstance(data.get("fields"), list):
            raise TransientError(f"{SERVICE} {TOOL_CONTENT_TYPE}: no content type in the answer")
        spec = ContentTypeSpec.from_api(data)
        ct = f"content type {self.content_type!r}"
        for prop, field_id in self.field_map.items():
            field = spec.fields.get(field_id)
            if field is None:
                raise ConfigError(
                    f"{where}: {ct} has no field {field_id!r} (field_map[{prop!r}]); its fields are "
                    f"{', '.join(sorted(spec.fields))}"
                )
            reason = field.not_writable()
            if reason:
                raise ConfigError(f"{where}: {ct} field {field_id!r} (field_map[{prop!r}]): {reason}")
        return spec


class _ContentfulMcpSession:
    def __init__(self, dest: ContentfulMcpDestination, mcp: McpSession, content_type: ContentTypeSpec) -> None:
        self.dest = dest
        self.mcp = mcp
        self.content_type = content_type

    def _encode(self, record: Record, *, skip: Iterable[str] = ()) -> dict[str, Any]:
        skipped = set(skip)
        values = {k: v for k, v in record.properties.items() if k not in skipped}
        return encode_fields(values, self.dest.field_map, self.content_type, primary_key=record.primary_key)

    async def create(self, record: Record, synced_at: dt.datetime) -> str:
        """Create the entry (values validated by encode.py before the call) and return its server-assigned id.

        Raises:
            RecordError: A value does not fit, the tool rejected the entry, or its answer names no id
                (the entry may exist then: see the README's crash window).
        """
        locale = self.dest.default_locale
        encoded = self._encode(record)
        fields = {fid: {locale: value} for fid, value in encoded.items() if value is not None}
        result = await self.mcp.call(
            TOOL_CREATE, {**self.dest._where(), "contentTypeId": self.content_type.id, "fields": fields}
        )
        entry_id = entry_id_of(result.text)
        if entry_id is None:
            raise RecordError(
                f"{SERVICE} {TOOL_CREATE}: no entry id in the answer ({redact_text(result.text[:200])!r})",
                primary_key=record.primary_key,
            )
        if self.dest.publish:
            await self._publish(entry_id, record)
        return entry_id

    async def update(self, existing_id: str, record: Record, synced_at: dt.datetime) -> bool:
        """Write the managed fields (never create-only ones); retried on VersionMismatch.

        Raises:
            RecordError: The entry is gone, a value does not fit, the tool rejected it, or the entry kept
                changing under us.
        """
        locale = self.dest.default_locale
        encoded = self._encode(record, skip=self.dest.create_only_properties)
        where = {**self.dest._where(), "entryId": existing_id}
        for attempt in range(1, MAX_VERSION_RETRIES + 1):
            try:
                got = await self.mcp.call(TOOL_GET, where)
            except McpToolError as err:
                if _NOT_FOUND_RE.search(err.text):
                    raise RecordError(
                        f"Contentful entry {existing_id} no longer exists (deleted in Contentful); unlink it so "
                        "the next pass creates it again",
                        primary_key=record.primary_key,
                    ) from err
                raise
            version = version_of(got.text)
            if version is None:
                raise RecordError(
                    f"{SERVICE} {TOOL_GET}: no version in the answer for entry {existing_id} "
                    f"({redact_text(got.text[:200])!r})",
                    primary_key=record.primary_key,
                )
            current = fields_of(got.text)
            payload: Json = {}
            for field_id, value in encoded.items():
                before = dict((current or {}).get(field_id) or {})
                after = dict(before)
                if value is None:
                    after.pop(locale, None)
                else:
                    after[locale] = value
                if current is None or after != before:
                    payload[field_id] = after
            try:
                if payload:
                    await self.mcp.call(TOOL_UPDATE, {**where, "version": version, "fields": payload})
            except (McpToolError, TransientError) as err:
                if not _VERSION_MISMATCH_RE.search(str(err)):
                    raise
                logger.info(
                    "%s %s: entry %s changed while we wrote it (attempt %d/%d); reading it again",
                    SERVICE,
                    self.dest.name,
                    existing_id,
                    attempt,
                    MAX_VERSION_RETRIES,
                )
                continue
            if self.dest.publish and (payload or _has_unpublished_changes(got.text, version)):
                await self._publish(existing_id, record)
            return True
        raise RecordError(
            f"Contentful entry {existing_id} kept changing while we wrote it (VersionMismatch "
            f"{MAX_VERSION_RETRIES} times); it is tried again next pass",
            primary_key=record.primary_key,
        )

    async def _publish(self, entry_id: str, record: Record) -> None:
        try:
            await self.mcp.call(TOOL_PUBLISH, {**self.dest._where(), "entryId": [entry_id]})
        except (McpToolError, AuthError) as err:
            http_level = getattr(err, "status_code", None) is not None
            if not http_level and _PERMISSION_RE.search(str(err)):
                self.dest.publish_refusals += 1
                logger.warning(
                    "%s %s: entry %s saved as a draft, not published: publish_entry was refused (%s)",
                    SERVICE,
                    self.dest.name,
                    entry_id,
                    redact_text(str(err), limit=200),
                )
                return
            if isinstance(err, AuthError):
                raise
            raise RecordError(
                f"Contentful entry {entry_id} was saved as a draft but not published: {err}",
                primary_key=record.primary_key,
            ) from err

    async def query_existing_ids(self) -> dict[str, str]:
        """Always empty: entries do not carry our key; the engine's link map is the only mapping."""
        return {}


def _has_unpublished_changes(text: str, version: int) -> bool:
    published = published_version_of(text)
    return published is None or version > published + 1

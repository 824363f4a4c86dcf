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

Answers are a message followed by the CMA's JSON rendered as XML by the server (fast-xml-parser, values not
escaped, so not valid XML): a tolerant tag parser reads them (:func:`entry_id_of`, :func:`version_of`,
:func:`fields_of` typed by the content type, :func:`content_type_of`); older shapes (a URN, JSON inside
``<fields>``, JSON answers) are accepted too.

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
  A version conflict (``Version conflict`` from the server's own check, ``VersionMismatch`` from the CMA)
  re-reads and retries, ``MAX_VERSION_RETRIES`` times in all, then a ``RecordError``. A managed RichText
  field with values in other locales is refused (the XML cannot carry them faithfully).
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
from dataclasses import dataclass, field
from typing import Any, Unpack
from urllib.parse import quote

from connectors.contentful.destination import ContentfulTargetArgs, _ContentfulTarget, check_field_map
from connectors.contentful.encode import ContentTypeSpec, FieldSpec, encode_fields
from connectors.contentful.settings import DEFAULT_ENVIRONMENT, MAX_VERSION_RETRIES
from connectors.core import AuthError, ConfigError, Record, RecordError, TransientError
from connectors.http import Json, redact_text
from connectors.mcp import McpConnectionArgs, McpConnector, McpSession, McpToolError, pop_mcp_connection

__all__ = [
    "CONTENTFUL_MCP_URL",
    "DEFAULT_ACCOUNT",
    "ContentfulMcpDestination",
    "content_type_of",
    "entry_id_of",
    "fields_of",
    "published_version_of",
    "version_of",
]

logger = logging.getLogger(__name__)

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
# The CMA says "VersionMismatch"; the hosted update_entry checks the version itself first and says
# "Version conflict: the entry has changed since you read it (your version: …)".
_VERSION_MISMATCH_RE = re.compile(r"version\s*(?:mismatch|conflict)", re.I)
_NOT_FOUND_RE = re.compile(r"\bnot ?found\b|could not be found", re.I)
_PERMISSION_RE = re.compile(r"permission|not permitted|not allowed|access ?denied", re.I)
_TAG_RE = re.compile(r"<(/?)([A-Za-z_][\w.:-]*)\s*(/?)>")
_LOSSY_TYPES = frozenset({"RichText", "Object", "Location"})
"""Field types whose values the server's XML cannot carry faithfully (empty arrays vanish, numbers
become text): read back only approximately."""


# --------------------------------------------------------------------------------------------------
# Reading the answers: the hosted server renders the CMA's JSON with fast-xml-parser's XMLBuilder
# (``<newEntry><sys><id>…</id>…</sys><fields><title><en-US>…</en-US></title></fields></newEntry>``):
# every key a tag, every array item a repeated tag, empty values self-closed or left out, and text NOT
# escaped (a value holding ``<`` or ``&`` is emitted as is), so it is not XML a strict parser accepts.
# ``_parse_tags`` reads it tolerantly: a closing tag closes the nearest open element of its name, and
# tag-like text inside a value (``<b>`` in a Text field) stays part of that value's raw slice.


@dataclass
class _Node:
    tag: str
    start: int
    end: int = -1
    children: list[_Node] = field(default_factory=list)

    def child(self, tag: str) -> _Node | None:
        return next((c for c in self.children if c.tag == tag), None)

    def raw(self, source: str) -> str:
        return source[self.start : self.end]


def _parse_tags(text: str) -> _Node:
    root = _Node("", 0, len(text))
    stack = [root]
    for match in _TAG_RE.finditer(text):
        closing, name, self_closing = match.groups()
        if self_closing:
            stack[-1].children.append(_Node(name, match.end(), match.end()))
        elif not closing:
            node = _Node(name, match.end())
            stack[-1].children.append(node)
            stack.append(node)
        else:
            depth = next((i for i in range(len(stack) - 1, 0, -1) if stack[i].tag == name), None)
            if depth is None:
                continue  # a stray closing tag: text
            for node in stack[depth:]:
                node.end = match.start()
            del stack[depth:]
    for node in stack[1:]:
        node.end = len(text)
    return root


def _generic(node: _Node, source: str) -> Any:
    """A node as JSON-like data.

    A node as JSON-like data: text for a leaf (``true``/``false`` as bools), a dict of its children
    otherwise, a repeated tag as a list.
    """
    if not node.children:
        text = node.raw(source).strip()
        return {"true": True, "false": False}.get(text, text)
    out: dict[str, Any] = {}
    for child in node.children:
        value = _generic(child, source)
        if child.tag in out:
            previous = out[child.tag]
            out[child.tag] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            out[child.tag] = value
    return out


def _find(node: _Node, accept: Callable[[_Node], bool]) -> _Node | None:
    """The first node (breadth first) that ``accept`` takes."""
    queue = [node]
    while queue:
        current = queue.pop(0)
        if accept(current):
            return current
        queue.extend(current.children)
    return None


def _entry_node(text: str) -> tuple[_Node, _Node] | None:
    """(the entry element, its ``<sys>``) in an answer: the parent of a ``sys`` whose own ``type`` is ``Entry``."""

    def is_entry(node: _Node) -> bool:
        sys = node.child("sys")
        kind = sys.child("type") if sys is not None else None
        return kind is not None and kind.raw(text).strip() == "Entry"

    entry = _find(_parse_tags(text), is_entry)
    sys = entry.child("sys") if entry is not None else None
    return (entry, sys) if entry is not None and sys is not None else None


def _entry_sys(text: str) -> _Node | None:
    found = _entry_node(text)
    return found[1] if found is not None else None


def _sys_text(text: str, key: str) -> str | None:
    sys = _entry_sys(text)
    node = sys.child(key) if sys is not None else None
    return node.raw(text).strip() if node is not None and not node.children else None


def _number(text: str) -> int | float | None:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return None


def _typed(values: list[_Node], spec: FieldSpec | None, source: str) -> Any:
    """One locale's value (``values``: the locale tag, repeated for an array) as the field's type reads it."""
    kind = spec.type if spec is not None else None
    if kind in ("Symbol", "Text", "Date"):
        return values[0].raw(source)
    if kind in ("Integer", "Number"):
        return _number(values[0].raw(source).strip())
    if kind == "Boolean":
        return values[0].raw(source).strip() == "true"
    if kind == "Link":
        return _generic(values[0], source)
    if kind == "Array":
        if spec is not None and spec.items_type == "Symbol":
            return [v.raw(source) for v in values]
        return [_generic(v, source) for v in values]
    generic = [_generic(v, source) for v in values]
    return generic[0] if len(generic) == 1 else generic


def _xml_fields(text: str, content_type: ContentTypeSpec | None) -> dict[str, dict[str, Any]] | None:
    found = _entry_node(text)
    if found is None:
        return None
    node = found[0].child("fields")
    if node is None:
        return {}  # suppressEmptyNode: an entry without fields has no <fields> at all
    out: dict[str, dict[str, Any]] = {}
    for field_node in node.children:
        spec = content_type.fields.get(field_node.tag) if content_type is not None else None
        by_locale: dict[str, list[_Node]] = {}
        for value in field_node.children:
            by_locale.setdefault(value.tag, []).append(value)
        out[field_node.tag] = {locale: _typed(values, spec, text) for locale, values in by_locale.items()}
    return out


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
    """The entry id in an answer, or None.

    The entry id in an answer: the entry's own ``<sys><id>`` (the server's XML), else a URN
    (``…/entries/<id>``), else ``</space><id>X</id>``, else a JSON answer's ``sys.id``; None when none is found.
    """
    value = _sys_text(text, "id")
    if value is not None and re.fullmatch(_ID, value):
        return value
    for pattern in (_URN_ID_RE, _SPACE_ID_RE):
        match = pattern.search(text)
        if match:
            return match.group(1)
    json_value = _json_sys(text).get("id")
    return str(json_value) if isinstance(json_value, str) and re.fullmatch(_ID, json_value) else None


def _sys_int(text: str, key: str, pattern: re.Pattern[str]) -> int | None:
    value = _sys_text(text, key)
    if value is not None and value.isdigit():
        return int(value)
    match = pattern.search(text)
    if match:
        return int(match.group(1))
    json_value = _json_sys(text).get(key)
    return json_value if isinstance(json_value, int) and not isinstance(json_value, bool) else None


def version_of(text: str) -> int | None:
    """The entry's ``sys.version`` in an answer (never ``publishedVersion``, never a linked object's)."""
    return _sys_int(text, "version", _VERSION_RE)


def published_version_of(text: str) -> int | None:
    """The ``publishedVersion`` of the entry in an answer, or None when unpublished."""
    return _sys_int(text, "publishedVersion", _PUBLISHED_RE)


def _fields_read(
    text: str, content_type: ContentTypeSpec | None = None
) -> tuple[dict[str, dict[str, Any]] | None, bool]:
    """(the entry's locale-wrapped fields or None, whether they were read exactly: JSON, not XML)."""
    match = _FIELDS_RE.search(text)
    if match:
        try:
            data: Any = json.loads(match.group(1))
        except ValueError:
            data = None
        if isinstance(data, dict):
            return {k: dict(v) for k, v in data.items() if isinstance(v, dict)}, True
    parsed = _json_in(text)
    if isinstance(parsed, dict) and isinstance(parsed.get("fields"), dict):
        return {k: dict(v) for k, v in parsed["fields"].items() if isinstance(v, dict)}, True
    return _xml_fields(text, content_type), False


def fields_of(text: str, content_type: ContentTypeSpec | None = None) -> dict[str, dict[str, Any]] | None:
    """The entry's locale-wrapped fields in an answer, or None.

    The entry's locale-wrapped fields in an answer: the server's XML (values typed by ``content_type``
    when given), JSON inside ``<fields>…</fields>``, or a JSON answer's ``fields``; None when the answer
    carries no entry we can read.
    """
    return _fields_read(text, content_type)[0]


def content_type_of(text: str) -> Json | None:
    """The content type in a ``get_content_type`` answer (XML or JSON), as the CMA's JSON would have it."""
    data = _json_in(text)
    if isinstance(data, dict) and isinstance(data.get("fields"), list):
        return data
    root = _parse_tags(text)
    node = _find(root, lambda n: n.child("fields") is not None and n.child("name") is not None)
    if node is None:
        return None
    generic = _generic(node, text)
    if not isinstance(generic, dict):
        return None
    fields = generic.get("fields")
    generic["fields"] = [f for f in (fields if isinstance(fields, list) else [fields]) if isinstance(f, dict)]
    return generic


# --------------------------------------------------------------------------------------------------
# The destination


class _ContentfulMcpDestinationArgs(ContentfulTargetArgs, McpConnectionArgs, total=False):
    """``ContentfulMcpDestination``'s keywords besides the space, content type, field map and name."""


class ContentfulMcpDestination(_ContentfulTarget, McpConnector):
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
        http: Transport under the toolkit (``httpx.ASGITransport(fake.app)`` in tests), HTTP retry
            policy, sleep and clock (:class:`~connectors.http.HttpSettings`).
        httpx_client_factory, rate, max_wait, call_timeout: As for ``connectors.mcp.open_mcp_session``.
        name: Destination name.
    """

    stores_keys = False
    max_concurrency = 1
    max_value_length: int | None = None
    credential_prefix = "contentful-mcp"
    mcp_service = SERVICE
    mcp_read_only_tools = READ_ONLY_TOOLS
    mcp_default_account = DEFAULT_ACCOUNT
    mcp_default_url = CONTENTFUL_MCP_URL

    def __init__(
        self,
        space_id: str,
        content_type: str,
        field_map: Mapping[str, str],
        *,
        name: str = "contentful-mcp",
        **options: Unpack[_ContentfulMcpDestinationArgs],
    ) -> None:
        """Check the arguments and remember them; nothing is read or sent yet."""
        target: dict[str, Any] = dict(options)
        connection = pop_mcp_connection(target)
        self._init_target("ContentfulMcpDestination", space_id, content_type, field_map, **target)
        self._init_mcp(**connection)
        self.name = name
        self.publish_refusals = 0

    # -- configuration ----------------------------------------------------------------------------

    @property
    def configured(self) -> bool:
        """Whether everything this connector needs is set (see ``config_hint``)."""
        return self._has_credential() and bool(self.space_id) and bool(self.content_type)

    @property
    def config_hint(self) -> str:
        """``"configured"``, or what to set before the connector can run."""
        missing = []
        if not self._has_credential():
            missing.append(f"a Contentful OAuth login (account {self.account!r}: durable-sync auth login)")
        if not self.space_id:
            missing.append("space_id")
        if not self.content_type:
            missing.append("content_type")
        return "configured" if not missing else "set " + " and ".join(missing)

    def describe(self) -> str:
        """Where the records go, for people: a URL when one is known."""
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
        data = result.structured or content_type_of(result.text)
        if not isinstance(data, dict) or not isinstance(data.get("fields"), list):
            raise TransientError(f"{SERVICE} {TOOL_CONTENT_TYPE}: no content type in the answer")
        spec = ContentTypeSpec.from_api(data)
        check_field_map(where, spec, self.field_map, self.content_type)
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
        """Write the managed fields (never create-only ones); retried on a version conflict.

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
            current, exact = _fields_read(got.text, self.content_type)
            payload: Json = {}
            for field_id, value in encoded.items():
                before = dict((current or {}).get(field_id) or {})
                spec = self.content_type.fields.get(field_id)
                if not exact and spec is not None and spec.type in _LOSSY_TYPES and set(before) - {locale}:
                    # Writing the field replaces its every locale, and the XML answer did not carry the
                    # other locales' values faithfully: refuse rather than overwrite translations.
                    raise RecordError(
                        f"{SERVICE}: field {field_id!r} ({spec.type}) of entry {existing_id} has values in "
                        f"other locales ({', '.join(sorted(set(before) - {locale}))}) that the server's answer "
                        "cannot carry faithfully; write it through the REST destination",
                        primary_key=record.primary_key,
                    )
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

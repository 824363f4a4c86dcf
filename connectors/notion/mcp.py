"""Notion over its hosted MCP server: ``NotionMcpDestination`` and ``NotionMcpSource`` (OAuth, no admin).

The REST connectors need an *integration* (a workspace admin creates it and shares databases with it);
the hosted MCP server (``https://mcp.notion.com/mcp``, streamable HTTP) acts as the user who authorized
it with OAuth (``durable-sync auth login``), so no admin is needed. Both transports write and read the
same pages with the SAME value logic: records are encoded by ``encode.py`` (and the REST destination's
record → properties mapping: title, key, synced stamp, dropped columns, truncations), then adapted to the
hosted tools' flat format by :func:`to_flat_properties`; rows read back are adapted to Notion's property
objects by :func:`row_to_properties` and decoded by ``decode.py``.

Why separate classes rather than ``NotionDestination(transport="mcp")``: the credential (an OAuth
``httpx.Auth`` + token-store account vs an integration token in an env var), the pause scope
(``notion-mcp:<account>`` vs ``notion:NOTION_TOKEN``), the knobs (``mcp_url``, ``edited_property``) and
what each transport can do (below) differ; one class with a mode flag would have half its arguments
meaningless in either mode. A route picks one by configuration with :func:`notion_destination` /
:func:`notion_source` (``transport="rest"|"mcp"``). The spec key is the same (``ds:<id>``), so a route
can switch transport without new partitions.

Tools used (argument shapes of the hosted server)::

    notion-fetch               {"id": <database id | "collection://<data source id>" | page id>}
    notion-query-data-sources  {"data": {"data_source_urls": [...], "query": <SQLite>, "params": [...]}}
    notion-create-pages        {"parent": {"data_source_id"}, "pages": [{"properties", "content"?}]}
    notion-update-page         {"page_id", "command": "update_properties", "properties"}
    notion-create-database     {"parent"?: {"page_id"}, "title", "schema": "CREATE TABLE (...)"}
    notion-update-data-source  {"data_source_id", "statements": "ADD COLUMN <column DDL>; ..."}  (bootstrap)

The flat property format: title/text as plain strings, numbers as JSON numbers, checkboxes
``"__YES__"``/``"__NO__"``, select/status as the option name, multi-select as an array of names, dates
split into ``date:<P>:start`` + ``date:<P>:is_datetime`` (0/1), ``null`` clears; properties named
``id``/``url`` (any case) are written ``userDefined:<name>``. SQL rows carry the page's ``url`` and a
multi-select as JSON text.

What the MCP transport cannot do that REST does (also in README.md):

- **Text is Markdown.** The hosted server reads title/text values and page content as Notion-flavoured
  Markdown, so ``*``, ``_``, backticks, ``[..](..)`` and ``#`` at a line start may render as formatting;
  REST writes them literally. Rich-text formatting cannot be set either way.
- **Bodies** are sent as one ``content`` string on create (Markdown; a README renders as headings and
  lists), truncated at ``MAX_CONTENT_CHARS`` (reported); no chunked appends.
- **Reads are SQL**, and the hosted server's SQL mode is metered on plans without Notion AI (a shared
  workspace quota). SQL text loses mentions and link targets; people come back as user URLs.
- **Incremental reads** need a *Last edited time* property in the data source (``edited_property=``):
  SQL can filter columns only, while REST filters on the page's own timestamp.
- Clearing a value sends ``null`` (the tools document it); a checkbox is unchecked with ``"__NO__"``.

Ids: the database-vs-data-source split (2025-09-03) applies here too: ``collection://<database id>``
fails, so a database id is resolved with ``notion-fetch`` to its first ``collection://`` data source
(warning when it has several). Paging is keyset paging on the page URL (``WHERE "url" > ? ORDER BY "url"
LIMIT n``): unique and immutable, so inserts and trashing during a pass neither skip nor repeat rows
(``OFFSET`` would). Pages in the trash are not SQL rows.

``notion-fetch`` answers: the hosted server sends one text block holding a JSON envelope ``{"metadata":
{"type": "page"|"database"|"data_source"}, "title", "url", "text"}`` whose ``text`` is the markup
(``<database>``, ``<data-source>`` with its ``<data-source-state>`` JSON, ``<page>`` with its
``<properties>`` JSON), URLs of databases and data sources wrapped as ``{{…}}``; older and self-hosted
servers send the bare markup. Both are read (``_read_fetch``). An answer that holds no schema or page
values we can read is a ``ConfigError`` naming its shape (retrying will not change it), unless it looks
cut short or says the server is busy (``TransientError``).

Errors are the ``connectors.mcp`` mapping (HTTP 401 after the OAuth provider's refresh → ``AuthError``,
``rate_limited`` tool results → ``RateLimited``); a tool's validation error is a ``RecordError`` with
Notion's message. Pauses are keyed on ``credential_key = "notion-mcp:<account>"``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal, Unpack, cast

from connectors.core import ConfigError, Record, RecordError, SchemaChange, SourceSpec, SyncError, TransientError
from connectors.http import Json, drain_pages, redact_text
from connectors.mcp import (
    McpConnectionArgs,
    McpConnector,
    McpSession,
    McpToolError,
    ToolResult,
    pop_mcp_connection,
)
from connectors.notion.client import DataSourceRef, normalize_id
from connectors.notion.decode import decode_properties
from connectors.notion.destination import (
    NotionDestination,
    NotionTargetArgs,
    _key_text,
    _NotionSession,
    _NotionTarget,
)
from connectors.notion.encode import BODY, Truncation, payload_size, split_text, utf16_len
from connectors.notion.schema import Schema, schema_to_properties
from connectors.notion.settings import (
    MAX_CONCURRENCY,
    NOTION_APP_BASE,
    NOTION_RATE,
    PAGE_SIZE,
)
from connectors.notion.source import NotionPassArgs, NotionSource, _NotionPasses

__all__ = [
    "DEFAULT_ACCOUNT",
    "MAX_CONTENT_CHARS",
    "NOTION_MCP_URL",
    "NotionMcpDestination",
    "NotionMcpSource",
    "body_content",
    "column_name",
    "notion_destination",
    "notion_source",
    "page_id_of",
    "row_to_properties",
    "rows_from_result",
    "schema_from_fetch",
    "schema_to_ddl",
    "to_flat_properties",
]

logger = logging.getLogger(__name__)

NOTION_MCP_URL = "https://mcp.notion.com/mcp"
SERVICE = "Notion MCP"
DEFAULT_ACCOUNT = "notion"
"""The token-store account of the OAuth grant, and the suffix of ``credential_key`` (``notion-mcp:notion``)."""

TOOL_FETCH = "notion-fetch"
TOOL_QUERY = "notion-query-data-sources"
TOOL_CREATE_PAGES = "notion-create-pages"
TOOL_UPDATE_PAGE = "notion-update-page"
TOOL_CREATE_DATABASE = "notion-create-database"
TOOL_UPDATE_DATA_SOURCE = "notion-update-data-source"
READ_ONLY_TOOLS = frozenset({TOOL_FETCH, TOOL_QUERY})
"""Resent after an ambiguous failure (a read timeout, a 502); creates and updates are not."""

MAX_CONTENT_CHARS = 50_000
"""Longest page ``content`` sent on create (UTF-16 units), as durable-sync sent it; longer is truncated."""

URL_COLUMN = "url"
"""The SQL column holding each row's page URL: the page id, and the keyset the listing pages on."""

CURSOR_VERSION = 1

# Hosted schema type names that differ from the REST API's.
_HOSTED_TYPES = {
    "text": "rich_text",
    "auto_increment_id": "unique_id",
    "person": "people",
    "file": "files",
    "phone": "phone_number",
}
_DDL_TYPES = {
    "title": "TITLE",
    "rich_text": "RICH_TEXT",
    "number": "NUMBER",
    "checkbox": "CHECKBOX",
    "date": "DATE",
    "url": "URL",
    "email": "EMAIL",
    "phone_number": "PHONE_NUMBER",
    "select": "SELECT",
    "multi_select": "MULTI_SELECT",
}
# Inside a notion-fetch answer the hosted server wraps the URLs of databases, data sources and views in
# double braces (``url="{{collection://<id>}}"``); older and self-hosted servers send them bare. Every
# pattern below reads both.
_UUID = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
_URL_VALUE = r'"(?:\{\{)?([^"{}]+?)(?:\}\})?"'
_COLLECTION_RE = re.compile(rf"(?:\{{\{{)?collection://({_UUID})(?:\}}\}})?")


def _collection_url_in(tag: str) -> re.Pattern[str]:
    """The data source id in the ``url="collection://<id>"`` of a ``<tag …>``, braced or bare."""
    return re.compile(rf'<{tag}\b[^>]*\burl="(?:\{{\{{)?collection://({_UUID})')


_DATA_SOURCE_TAG_RE = _collection_url_in("data-source")
_PARENT_DATA_SOURCE_RE = _collection_url_in("parent-data-source")
_DATABASE_URL_RE = re.compile(rf"<database\b[^>]*\burl={_URL_VALUE}")
_PAGE_TAG_RE = re.compile(r"<page\b[^>]*>")
_TAG_URL_RE = re.compile(rf"\burl={_URL_VALUE}")
_NOT_FOUND_RE = re.compile(r"could not find|object_not_found|not found", re.I)
# A short plain-text answer in place of markup that says the server cannot answer now.
_BUSY_RE = re.compile(
    r"try again|temporarily|overloaded|too many requests|rate.?limit|timed? ?out|unavailable|busy", re.I
)
_MARKUP_TAG_RE = re.compile(r"<[a-z][a-z-]*[\s>/]")
_FETCH_KINDS = frozenset({"page", "database", "data_source"})


# --------------------------------------------------------------------------------------------------
# Adapters between Notion property objects (REST shape, encode.py/decode.py) and the flat format


def column_name(name: str) -> str:
    """The flat/SQL name of a property: ``userDefined:<name>`` for ``id``/``url`` (any case)."""
    return f"userDefined:{name}" if name.lower() in ("id", "url") else name


def _sql_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _plain(elements: Iterable[Mapping[str, Any]]) -> str:
    return "".join(str((e.get("text") or {}).get("content", "")) for e in elements)


def to_flat_properties(properties: Mapping[str, Mapping[str, Any]]) -> Json:
    """Notion property values as encode.py builds them (``{"Stars": {"number": 5}}``) in the flat format.

    ``None`` values clear (``null``); an unchecked checkbox is ``"__NO__"``; a date becomes
    ``date:<P>:start`` and ``date:<P>:is_datetime``.

    Raises:
        ConfigError: A property value of a type this adapter has no flat form for (a connector bug).
    """
    flat: Json = {}
    for name, value in properties.items():
        ((kind, raw),) = value.items()
        column = column_name(name)
        if kind == "title":
            flat[column] = _plain(raw or [])
        elif kind == "rich_text":
            flat[column] = _plain(raw or []) or None
        elif kind in ("number", "url", "email", "phone_number"):
            flat[column] = raw
        elif kind == "checkbox":
            flat[column] = "__YES__" if raw else "__NO__"
        elif kind in ("select", "status"):
            flat[column] = raw["name"] if raw else None
        elif kind == "multi_select":
            flat[column] = [o["name"] for o in raw] if raw else None
        elif kind == "date":
            start = (raw or {}).get("start")
            flat[f"date:{name}:start"] = start
            if start is not None:
                flat[f"date:{name}:is_datetime"] = 1 if "T" in start else 0
        else:
            raise ConfigError(f"Notion MCP: no flat form for {kind} property {name!r}")
    return flat


def _number(value: Any) -> Any:
    if isinstance(value, str):
        try:
            value = float(value) if re.search(r"[.eE]", value) else int(value)
        except ValueError:
            return None
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)  # SQLite's FLOAT column gives 3.0 for the 3 REST reports
    return value


def _json_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return [v.strip() for v in value.split(",") if v.strip()]
        return parsed if isinstance(parsed, list) else [parsed]
    return [value]


def _id_of(value: Any) -> str:
    text = str(value)
    try:
        return normalize_id(text)
    except ConfigError:
        return text.rsplit("/", 1)[-1]


def _row_date(name: str, row: Mapping[str, Any]) -> Any:
    """A date property value from the row's ``date:<name>:start/end/is_datetime`` columns."""
    start = row.get(f"date:{name}:start")
    if start in (None, ""):
        return None if f"date:{name}:start" not in row else {"date": None}
    start = str(start)
    if str(row.get(f"date:{name}:is_datetime")) in ("0", "False") and "T" in start:
        start = start.split("T", 1)[0]
    return {"date": {"start": start, "end": row.get(f"date:{name}:end"), "time_zone": None}}


def _text(value: Any) -> list[Json]:
    return [{"plain_text": str(value)}] if value not in (None, "") else []


def _option(value: Any) -> Json | None:
    return {"name": str(value)} if value not in (None, "") else None


def _user(value: Any) -> Json:
    return {"id": str(value).removeprefix("user://")}


def _unique_id(value: Any) -> Json | None:
    if value in (None, ""):
        return None
    prefix, _, number = str(value).rpartition("-")
    return {"prefix": prefix or None, "number": _number(number)}


def _formula(value: Any) -> Json:
    if isinstance(value, bool):
        return {"type": "boolean", "boolean": value}
    if isinstance(value, (int, float)):
        return {"type": "number", "number": _number(value)}
    return {"type": "string", "string": value}


def _empty_none(value: Any) -> Any:
    return value if value != "" else None


# Property type -> the raw value of its ``{type: raw}`` from the row's one column.
_ROW_VALUES: dict[str, Callable[[Any], Any]] = {
    "title": _text,
    "rich_text": _text,
    "number": _number,
    "checkbox": lambda value: value in ("__YES__", True, 1, "1", "true"),
    "select": _option,
    "status": _option,
    "multi_select": lambda value: [{"name": str(v)} for v in _json_list(value)],
    "url": _empty_none,
    "email": _empty_none,
    "phone_number": _empty_none,
    "created_time": _empty_none,
    "last_edited_time": _empty_none,
    "created_by": lambda value: _user(value) if value else None,
    "last_edited_by": lambda value: _user(value) if value else None,
    "people": lambda value: [_user(v) for v in _json_list(value)],
    "relation": lambda value: [{"id": _id_of(v)} for v in _json_list(value)],
    "files": lambda value: [{"name": str(v)} for v in _json_list(value)],
    "unique_id": _unique_id,
    "formula": _formula,
}


def _row_value(kind: str, name: str, row: Mapping[str, Any]) -> Any:
    """One Notion property value (``{type: raw}``) from a flat row, or None when the row lacks it."""
    if kind == "date":
        return _row_date(name, row)
    convert = _ROW_VALUES.get(kind)
    column = column_name(name)
    if convert is None or column not in row:
        return None
    return {kind: convert(row[column])}


def row_to_properties(row: Mapping[str, Any], schema: Mapping[str, Mapping[str, Any]]) -> dict[str, Json]:
    """A flat row (SQL result, fetched page) as Notion property objects, for ``decode.decode_properties``.

    Properties the row does not carry are left out (a narrowed ``SELECT``).
    """
    out: dict[str, Json] = {}
    for name, prop in schema.items():
        kind = str(prop.get("type"))
        value = _row_value(kind, name, row)
        if value is not None:
            out[name] = {"id": prop.get("id", name), "type": kind, **value}
    return out


def page_id_of(row: Mapping[str, Any]) -> str | None:
    """A row's page id: the first of ``id``, ``page_id``, ``_id``, ``url``, ``page_url`` that holds one."""
    for key in ("id", "page_id", "_id", URL_COLUMN, "page_url"):
        value = row.get(key)
        if not value:
            continue
        try:
            return normalize_id(str(value))
        except ConfigError:
            continue
    return None


def _markdown_rows(text: str) -> list[Json]:
    """Rows of the first Markdown table in ``text`` (the oldest answer format of the SQL tool)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("|")]
    if len(lines) < 2:
        return []

    def cells(line: str) -> list[str]:
        return [c.strip() for c in line.strip("|").split("|")]

    header = cells(lines[0])
    body = [ln for ln in lines[1:] if not re.fullmatch(r"\|?[\s:|-]+\|?", ln)]
    return [dict(zip(header, cells(ln), strict=False)) for ln in body]


def rows_from_result(result: ToolResult) -> list[Json]:
    """The rows of a ``notion-query-data-sources`` answer.

    The rows of a ``notion-query-data-sources`` answer: a JSON list, or ``results``/``rows``/``data``
    in a JSON object, else a Markdown table.

    Raises:
        TransientError: No rows can be read from the answer (an answer format we do not know).
    """
    data = result.data()
    if data is None:
        match = re.search(r"<results?>\s*(.*?)\s*</results?>", result.text, re.S)
        if match:
            try:
                data = json.loads(match.group(1))
            except ValueError:
                data = None
    if isinstance(data, dict):
        for key in ("results", "rows", "data"):
            if isinstance(data.get(key), list):
                data = data[key]
                break
    if isinstance(data, list):
        return [r for r in data if isinstance(r, dict)]
    rows = _markdown_rows(result.text)
    if rows or "|" in result.text:
        return rows
    raise TransientError(f"{SERVICE} {result.tool}: cannot read rows from the answer ({result.text[:200]!r})")


def _json_in_tag(text: str, tag: str) -> Any:
    match = re.search(rf"<{tag}[^>]*>\s*(.*?)\s*</{tag}>", text, re.S)
    if not match:
        return None
    try:
        return json.loads(match.group(1))
    except ValueError:
        return None


@dataclass(frozen=True)
class _Fetched:
    """A ``notion-fetch`` answer, read: its markup, and what the envelope around it says (if any).

    Attributes:
        markup: The Markdown-ish markup (``<database …>``, ``<data-source …>``, ``<page …>``).
        kind: The envelope's ``metadata.type`` (``page``, ``database``, ``data_source``…), None without one.
        url: The envelope's ``url``, None without one.
        enveloped: The answer was the JSON envelope (else the markup came bare).
        cut_short: The answer looks truncated: an envelope whose JSON does not parse, or a tag left open.
    """

    markup: str
    kind: str | None = None
    url: str | None = None
    enveloped: bool = False
    cut_short: bool = False

    def shape(self) -> str:
        """What was received, for an error message: short, whitespace collapsed, token-looking strings masked."""
        head = redact_text(self.markup, limit=160)
        if self.enveloped:
            return f"a JSON envelope of type {self.kind!r} holding {head!r}"
        return f"text {head!r}"


def _read_fetch(result: ToolResult) -> _Fetched:
    """The markup of a ``notion-fetch`` (or ``notion-create-database``) answer, whatever its wrapping.

    The hosted server answers one text block holding ``{"metadata": {"type": …}, "title", "url", "text":
    "<markup>"}``: the markup is the ``text`` string (so its JSON is escaped until the envelope is
    parsed). Older and self-hosted servers answer the bare markup, which is read as it is. Every reader
    of a fetch answer goes through here.
    """
    envelope = _envelope(result.structured)
    if envelope is not None:
        return envelope  # the structured copy is already parsed: the text is not read again
    text = result.text.strip()
    if text.startswith("{"):
        try:
            envelope = _envelope(json.loads(text))
        except ValueError:
            # An envelope cut off mid-way (a size limit, a dropped stream) parses no more than a bare
            # text would; it is told apart so that the caller can retry it.
            if '"metadata"' in text[:500]:
                return _Fetched(result.text, cut_short=True)
    return envelope or _Fetched(result.text)


def _envelope(data: Any) -> _Fetched | None:
    """The hosted server's ``{"metadata": {"type"}, "url", "text"}`` envelope, read; None if ``data`` is not one."""
    if not (isinstance(data, dict) and isinstance(data.get("text"), str) and isinstance(data.get("metadata"), dict)):
        return None
    kind, url = data["metadata"].get("type"), data.get("url")
    return _Fetched(
        data["text"],
        kind=str(kind) if kind else None,
        url=url if isinstance(url, str) else None,
        enveloped=True,
    )


def _open_tag(markup: str, tag: str) -> bool:
    """Whether ``<tag`` opens in ``markup`` and is never closed (the answer was cut off inside it)."""
    return re.search(rf"<{tag}\b", markup) is not None and f"</{tag}>" not in markup


def _unreadable(fetched: _Fetched, what: str) -> SyncError:
    """The error for a successful fetch answer that does not hold what we need (``what`` names it).

    A truncated answer, or a short plain-text one saying the server is busy, may read next time: a
    ``TransientError``. Anything else is a shape this connector cannot read, which retrying will not
    change: a ``ConfigError`` naming the shape received.
    """
    message = f"{what} ({fetched.shape()})"
    if fetched.cut_short or any(_open_tag(fetched.markup, tag) for tag in ("data-source-state", "properties")):
        return TransientError(f"{message}: the answer looks cut short")
    if len(fetched.markup) < 500 and not _MARKUP_TAG_RE.search(fetched.markup) and _BUSY_RE.search(fetched.markup):
        return TransientError(message)
    return ConfigError(f"{message}: not a notion-fetch answer this connector can read (has the server changed?)")


def schema_from_fetch(result: ToolResult) -> dict[str, Json]:
    """A data source's schema, REST-shaped, from a ``notion-fetch`` answer.

    A data source's schema, REST-shaped (``{name: {"id", "name", "type", <type>: {"options"}}}``), from a
    ``notion-fetch`` answer: ``structuredContent["schema"|"properties"]`` or the ``<data-source-state>``
    JSON of its markup (the hosted server's JSON envelope is unwrapped first; bare markup is read too).
    Hosted type names are mapped to the REST API's (``text`` → ``rich_text``).

    Args:
        result: The answer of ``notion-fetch`` on a data source (or on a database: its first data source).

    Raises:
        TransientError: The answer looks truncated, or says the server is busy.
        ConfigError: The answer holds no schema this connector can read (the message names its shape).
    """
    return _schema_of(_read_fetch(result), result)


def _schema_of(fetched: _Fetched, result: ToolResult) -> dict[str, Json]:
    """:func:`schema_from_fetch` of an answer already read by ``_read_fetch`` (the envelope parsed once)."""
    state: Any = (None if fetched.enveloped else result.structured) or _json_in_tag(fetched.markup, "data-source-state")
    raw = None
    if isinstance(state, dict):
        raw = state.get("schema") if isinstance(state.get("schema"), dict) else state.get("properties")
    if not isinstance(raw, dict):
        raise _unreadable(fetched, f"{SERVICE} {result.tool}: no data source schema in the answer")
    schema: dict[str, Json] = {}
    for name, spec in raw.items():
        spec = spec if isinstance(spec, dict) else {"type": str(spec)}
        kind = str(spec.get("type") or "")
        kind = _HOSTED_TYPES.get(kind, kind)
        config = spec.get(kind) if isinstance(spec.get(kind), dict) else {}
        options = spec.get("options", (config or {}).get("options"))
        entry: Json = {"id": str(spec.get("id") or name), "name": name, "type": kind, kind: dict(config or {})}
        if options is not None:
            entry[kind]["options"] = [o if isinstance(o, dict) else {"name": str(o)} for o in options]
        schema[name] = entry
    return schema


def _data_source_ids(text: str, pattern: re.Pattern[str] = _COLLECTION_RE) -> list[str]:
    """The data source ids ``pattern`` finds in ``text``, in order, each once."""
    seen: list[str] = []
    for found in pattern.findall(text):
        ds = normalize_id(found)
        if ds not in seen:
            seen.append(ds)
    return seen


def _fetch_kind(result: ToolResult, fetched: _Fetched) -> str | None:
    """``database``, ``data_source`` or ``page``: what a fetch answer shows (None: cannot tell).

    The envelope says it; bare markup is recognized by its tags. A database is checked first, because
    the hosted server lists each of its data sources with its ``<data-source-state>`` inside it.
    """
    if fetched.kind in _FETCH_KINDS:
        return fetched.kind
    if not fetched.enveloped and result.structured is not None:
        return "data_source"
    if _DATABASE_URL_RE.search(fetched.markup):
        return "database"
    if "<data-source-state" in fetched.markup:
        return "data_source"
    if _PAGE_TAG_RE.search(fetched.markup):
        return "page"
    return None


def body_content(body: str | None, *, max_units: int = MAX_CONTENT_CHARS) -> tuple[str | None, Truncation | None]:
    """The ``content`` of a new page for ``Record.body`` (as is: Notion-flavoured Markdown), truncated."""
    if not body:
        return None, None
    total = utf16_len(body)
    if total <= max_units:
        return body, None
    pieces, _ = split_text(body, max_units=max_units, max_pieces=1)
    kept = pieces[0] if pieces else ""
    return kept, Truncation(BODY, total, utf16_len(kept))


def schema_to_ddl(schema: Schema) -> str:
    """The ``CREATE TABLE`` of ``notion-create-database`` for an inferred schema (via the REST mapping)."""
    columns = [_column_ddl(name, spec) for name, spec in schema_to_properties(schema).items()]
    return f"CREATE TABLE ({', '.join(columns)})"


def _column_ddl(name: str, spec: Mapping[str, Any]) -> str:
    """One column of the hosted server's DDL (``"Tags" MULTI_SELECT('a', 'b')``) from a REST property spec."""
    ((kind, config),) = spec.items()
    ddl = _DDL_TYPES[kind]
    if kind in ("select", "multi_select"):
        options = ", ".join("'" + str(o["name"]).replace("'", "''") + "'" for o in (config or {}).get("options") or [])
        ddl = f"{ddl}({options})"
    return f"{_sql_ident(name)} {ddl}"


def _table(data_source_id: str) -> str:
    return f"collection://{data_source_id}"


def _query_args(data_source_id: str, sql: str, params: list[Any]) -> Json:
    data: Json = {"data_source_urls": [_table(data_source_id)], "query": sql}
    if params:
        data["params"] = params
    return {"data": data}


# --------------------------------------------------------------------------------------------------
# Credentials shared by the destination and the source


class _McpConnector(McpConnector):
    """Notion's settings of the shared MCP plumbing (``connectors.mcp.McpConnector``)."""

    credential_prefix = "notion-mcp"
    mcp_service = SERVICE
    mcp_read_only_tools = READ_ONLY_TOOLS
    mcp_default_account = DEFAULT_ACCOUNT
    mcp_default_url = NOTION_MCP_URL
    mcp_default_rate = NOTION_RATE


class _NotionMcpDestinationArgs(NotionTargetArgs, McpConnectionArgs, total=False):
    """``NotionMcpDestination``'s keywords besides ``database_id``, ``max_concurrency`` and ``name``."""


class _NotionMcpSourceArgs(NotionPassArgs, McpConnectionArgs, total=False):
    """``NotionMcpSource``'s keywords besides ``data_source_id`` and ``edited_property``."""


async def _resolve(mcp: McpSession, object_id: str, *, owner: str) -> DataSourceRef:
    """The data source behind a database id or a data source id, with its schema."""
    try:
        result = await mcp.call(TOOL_FETCH, {"id": object_id})
    except McpToolError as err:
        if _NOT_FOUND_RE.search(err.text):
            raise ConfigError(
                f"{owner}: no Notion database or data source {object_id} is visible to the authorized user "
                "(check the id, and that your Notion account can open it)"
            ) from err
        raise
    fetched = _read_fetch(result)
    kind = _fetch_kind(result, fetched)
    if kind == "data_source":
        own = normalize_id(object_id)
        siblings = _data_source_ids(fetched.markup) or [own]
        data_source_id = own if own in siblings else siblings[0]
        return DataSourceRef(data_source_id, None, {"properties": _schema_of(fetched, result)}, (data_source_id,))
    if kind == "database":
        # The database's own <data-source> tags: a schema's relations may name other data sources.
        siblings = _data_source_ids(fetched.markup, _DATA_SOURCE_TAG_RE) or _data_source_ids(fetched.markup)
        database = _DATABASE_URL_RE.search(fetched.markup)
        database_url = database.group(1) if database else fetched.url
        if not siblings or database_url is None:
            raise ConfigError(
                f"{owner}: Notion database {object_id} shows no data source the authorized user can open "
                f"(a linked view of a database not shared with you?); the answer was {fetched.shape()}"
            )
        first = await mcp.call(TOOL_FETCH, {"id": _table(siblings[0])})
        database_id = normalize_id(database_url)
        return DataSourceRef(siblings[0], database_id, {"properties": schema_from_fetch(first)}, tuple(siblings))
    if kind is None:
        raise _unreadable(
            fetched, f"{owner}: cannot tell what Notion object {object_id} is from the notion-fetch answer"
        )
    raise ConfigError(
        f"{owner}: Notion object {object_id} is not a database or a data source (the answer shows a {kind})"
    )


# --------------------------------------------------------------------------------------------------
# The destination


class NotionMcpDestination(_NotionTarget, _McpConnector):
    """Pages of one Notion data source over the hosted MCP server, created and updated by key.

    Same record mapping as ``NotionDestination`` (see its docstring and the module docstring here for
    what the MCP tools cannot do).

    Args:
        database_id: The database (or a data source id; both are resolved with ``notion-fetch``).
        data_source_id: Pin one data source of the database.
        title_property, key_property, synced_property, create_only_properties, create_missing_options:
            As for ``NotionDestination``.
        parent_page_id: Where ``ensure_schema`` creates the database (None: a private page at the top of
            the authorized user's workspace — something the REST API cannot do).
        auth: The OAuth provider's ``httpx.Auth`` (bearer + refresh-and-retry once on a 401), or a
            zero-argument token callable / static token.
        token_store: Where the OAuth grant lives; used for ``credential_fingerprint`` and, without
            ``auth``, for a plain bearer of the stored access token (no refresh).
        account: The grant's token-store account; pauses are keyed on ``notion-mcp:<account>``.
        mcp_url: The MCP endpoint.
        http: Transport under the toolkit (``httpx.ASGITransport(fake.app)`` in tests), HTTP retry
            policy, sleep and clock (:class:`~connectors.http.HttpSettings`).
        httpx_client_factory: mcp's client factory protocol, for full control (see ``connectors.mcp``).
        rate: Requests per second of the account (default Notion's 3/s).
        max_wait: Longest tool-level rate-limit wait slept in-process (longer: ``RateLimited``).
        call_timeout: Seconds one tool call may take.
        max_concurrency: Writes in flight at once.
        name: Destination name.
    """

    stores_keys = True
    max_value_length: int | None = None

    def __init__(
        self,
        database_id: str | None = None,
        *,
        max_concurrency: int = MAX_CONCURRENCY,
        name: str = "notion",
        **options: Unpack[_NotionMcpDestinationArgs],
    ) -> None:
        """Check the arguments and remember them; nothing is read or sent yet."""
        target: dict[str, Any] = dict(options)
        self._init_mcp(**pop_mcp_connection(target))
        self._init_target("NotionMcpDestination", name, database_id, max_concurrency, **target)

    @property
    def configured(self) -> bool:
        """Whether everything this connector needs is set (see ``config_hint``)."""
        return self._has_credential() and (self.database_id, self.data_source_id) != (None, None)

    @property
    def config_hint(self) -> str:
        """``"configured"``, or what to set before the connector can run."""
        missing = []
        if not self._has_credential():
            missing.append(f"a Notion OAuth login (account {self.account!r}: durable-sync auth login)")
        if (self.database_id, self.data_source_id) == (None, None):
            missing.append("database_id (a database your Notion account can open)")
        return "configured" if not missing else "set " + " and ".join(missing)

    def describe(self) -> str:
        """Where the records go, for people: a URL when one is known."""
        database = (self._resolved[1] if self._resolved else None) or self.database_id
        if database:
            return f"{NOTION_APP_BASE}/{database.replace('-', '')}"
        if self.data_source_id:
            return f"Notion data source {self.data_source_id} (over MCP)"
        return "Notion over MCP (not configured)"

    async def _target(self, mcp: McpSession) -> DataSourceRef:
        owner = f"NotionMcpDestination {self.name!r}"

        async def reread(data_source_id: str, database_id: str | None) -> DataSourceRef | None:
            try:
                fetched = await mcp.call(TOOL_FETCH, {"id": _table(data_source_id)})
            except McpToolError as err:
                if not _NOT_FOUND_RE.search(err.text):
                    raise
                return None
            schema = schema_from_fetch(fetched)
            return DataSourceRef(data_source_id, database_id, {"properties": schema}, (data_source_id,))

        async def resolve(object_id: str, kind: Literal["database", "data_source"]) -> DataSourceRef:
            return await _resolve(mcp, _table(object_id) if kind == "data_source" else object_id, owner=owner)

        ids = (self.database_id, self.data_source_id)
        return await self._resolved_target(ids, reread, resolve, lambda: f"{owner}: {self.config_hint}")

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[_NotionMcpSession]:
        """An MCP session on the data source (its schema fetched once, at the start)."""
        async with self._open() as mcp:
            target = await self._target(mcp)
            yield _NotionMcpSession(self, mcp, target)

    async def bootstrap_schema(self, sample: Sequence[Record], *, apply: bool) -> list[SchemaChange]:
        """The properties the data source lacks for ``sample``; with ``apply``, add them.

        Missing properties are added with one ``notion-update-data-source`` call (``ADD COLUMN``
        statements, nothing else); an existing property of another type is reported (``mismatch``) and
        left alone. With no database configured, the database is planned (and created by
        ``ensure_schema``).
        """
        schema = self._inferred(sample)
        if (self.database_id, self.data_source_id) == (None, None):
            changes = self._new_database_plan(schema)
            if apply:
                await self.ensure_schema(schema)
            return changes
        async with self._open() as mcp:
            target = await self._target(mcp)
            changes, missing = self._schema_diff(schema, target.properties)
            if apply and missing:
                statements = "; ".join(f"ADD COLUMN {_column_ddl(n, spec)}" for n, spec in missing.items())
                await mcp.call(
                    TOOL_UPDATE_DATA_SOURCE, {"data_source_id": target.data_source_id, "statements": statements}
                )
                logger.warning(
                    "Notion %s: added %s to data source %s over MCP",
                    self.name,
                    ", ".join(missing),
                    target.data_source_id,
                )
        return changes

    async def ensure_schema(self, schema: Schema) -> str | None:
        """Create the database from ``schema`` when none is configured (create-only).

        Create the database from ``schema`` (under ``parent_page_id``, else at the top of the
        authorized user's workspace), when none is configured. Create-only.

        Returns:
            The new database's id (pass it as ``database_id`` to keep using it).
        """
        if (self.database_id, self.data_source_id) != (None, None):
            return None
        arguments: Json = {"title": schema.name or self.name, "schema": schema_to_ddl(schema)}
        if self.parent_page_id:
            arguments["parent"] = {"page_id": self.parent_page_id}
        async with self._open() as mcp:
            result = await mcp.call(TOOL_CREATE_DATABASE, arguments)
        markup = _read_fetch(result).markup  # the created database's tags, enveloped or bare
        database = _DATABASE_URL_RE.search(markup)
        sources = _data_source_ids(markup)
        if database is None or not sources:
            raise TransientError(f"{SERVICE} {TOOL_CREATE_DATABASE}: no database id in the answer")
        self.database_id = normalize_id(database.group(1))
        self._resolved = ((self.database_id, None), self.database_id, sources[0])
        logger.warning(
            "Notion: created database %s%s over MCP; pass database_id=%s to keep using it",
            self.database_id,
            f" under page {self.parent_page_id}" if self.parent_page_id else "",
            self.database_id,
        )
        return self.database_id


class _NotionMcpSession(_NotionSession):
    """The REST session's record mapping (title, key, synced stamp, drops, truncations), MCP writes.

    ``_NotionSession`` is reused so both transports turn a record into the very same property values;
    only the wire differs (``to_flat_properties`` and the tools).
    """

    def __init__(self, dest: NotionMcpDestination, mcp: McpSession, target: DataSourceRef) -> None:
        # The REST session only reads the destination's mapping settings and never touches the client
        # in the methods kept here.
        super().__init__(cast(NotionDestination, dest), cast(Any, None), target)
        self.mcp = mcp

    # The contract allows True ("created, id unknown"); the REST session always knows the id.
    async def _send_create(self, record: Record, properties: Json) -> str | bool:
        """Create the page (body as its Markdown content) and return its id (True: created, id unknown).

        Raises:
            RecordError: The tool rejected the page.
        """
        page: Json = {"properties": to_flat_properties(properties)}
        content, truncation = body_content(record.body)
        if truncation is not None:
            self._report(record.primary_key, [truncation])
        if content:
            page["content"] = content
        arguments = {"parent": {"data_source_id": self.target.data_source_id}, "pages": [page]}
        self._check_size("page", payload_size(arguments), record.primary_key)
        result = await self.mcp.call(TOOL_CREATE_PAGES, arguments)
        data = result.data()
        pages = data.get("pages") if isinstance(data, dict) else data
        if isinstance(pages, list) and pages and isinstance(pages[0], dict):
            page_id = page_id_of(pages[0])
            if page_id:
                return page_id
        # Created, but the answer does not say its id: the next reconcile links it by its key.
        logger.warning("%s %s: no page id in the answer for record %s", SERVICE, TOOL_CREATE_PAGES, record.primary_key)
        return True

    async def _send_update(self, existing_id: str, record: Record, properties: Json) -> None:
        """Set ``properties`` on the page with ``update_properties``.

        Raises:
            RecordError: The page is in the trash or gone.
        """
        arguments = {
            "page_id": existing_id,
            "command": "update_properties",
            "properties": to_flat_properties(properties),
        }
        self._check_size("update", payload_size(arguments), record.primary_key)
        try:
            await self.mcp.call(TOOL_UPDATE_PAGE, arguments)
        except McpToolError as err:
            text = err.text.lower()
            if "archived" in text or "in the trash" in text:
                raise self._in_trash(existing_id, record.primary_key) from err
            if err.code == "object_not_found" or _NOT_FOUND_RE.search(text):
                raise RecordError(
                    f"Notion page {existing_id} not found (deleted for good, or no longer visible to the "
                    "authorized user)",
                    primary_key=record.primary_key,
                ) from err
            raise

    async def query_existing_rows(self) -> AsyncIterator[tuple[str, str]]:
        """Every (key, page id) of the data source, by keyset pages of 100 on the page URL.

        Pages in the trash are not rows (their links look deleted); rows without a key are skipped.
        """
        key = self.dest.key_property
        prop = self.schema[key]
        table = _sql_ident(_table(self.target.data_source_id))
        url = _sql_ident(URL_COLUMN)
        after: str | None = None
        while True:
            where, params = (f" WHERE {url} > ?", [after]) if after is not None else ("", [])
            sql = f"SELECT {url}, {_sql_ident(column_name(key))} FROM {table}{where} ORDER BY {url} LIMIT {PAGE_SIZE}"
            rows = rows_from_result(
                await self.mcp.call(TOOL_QUERY, _query_args(self.target.data_source_id, sql, params))
            )
            for row in rows:
                page_id = page_id_of(row)
                value = _row_value(str(prop.get("type")), key, row)
                text = _key_text({"type": prop.get("type"), **value}) if value else None
                if page_id and text:
                    yield text, page_id
            if len(rows) < PAGE_SIZE:
                return
            last = rows[-1].get(URL_COLUMN)
            if not last or last == after:
                return
            after = str(last)

    async def query_existing_ids(self) -> dict[str, str]:
        """{key: page id}; for a key listed twice the last page wins (``query_existing_rows`` shows both)."""
        return {key: page_id async for key, page_id in self.query_existing_rows()}


# --------------------------------------------------------------------------------------------------
# The source


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _sql_time(when: dt.datetime) -> str:
    """A UTC timestamp as SQLite's ``datetime()`` prints it (what the filter compares against)."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


class NotionMcpSource(_NotionPasses, _McpConnector):
    """Pages of one Notion data source as records, read over the hosted MCP server with SQL.

    Records are those of ``NotionSource`` (``primary_key`` = page id, properties decoded by decode.py, no
    body); the spec key is the same (``ds:<id>``).

    Paging: ``SELECT * … [WHERE datetime("<edited>") >= datetime(?)] [AND "url" > ?] ORDER BY "url"
    LIMIT page_size+1`` — keyset pages on the immutable page URL. Cursor (opaque JSON)::

        {"v": 1, "after": "<last page URL>", "since": "<UTC time or null>", "started": "<ISO time>"}

    Incremental passes need ``edited_property``, a *Last edited time* property of the data source (SQL
    sees properties only): a pass then reads pages edited since the previous complete pass STARTED,
    minus ``lookback``; at least every ``full_scan_every`` a pass reads everything. Without it every
    pass is a full scan (``incremental`` is False). Watermarks live in ``watermarks`` (in memory by
    default; pass a durable mapping to keep them across processes).

    Args:
        data_source_id: A data source id or a database id (or a Notion URL of either).
        edited_property: The data source's Last edited time property, for incremental reads.
        auth, token_store, account, mcp_url, http, httpx_client_factory, rate, max_wait, call_timeout: As for
            ``NotionMcpDestination``.
        interval_minutes, lookback, full_scan_every, watermarks, now, page_size, name: As for ``NotionSource``.
    """

    def __init__(
        self,
        data_source_id: str,
        *,
        edited_property: str | None = None,
        **options: Unpack[_NotionMcpSourceArgs],
    ) -> None:
        """Check the arguments and remember them; nothing is read or sent yet."""
        passes: dict[str, Any] = dict(options)
        self._init_mcp(**pop_mcp_connection(passes))
        self._init_passes("NotionMcpSource", data_source_id, **passes)
        self.edited_property = edited_property
        self._target: DataSourceRef | None = None

    @property
    def incremental(self) -> bool:
        """Whether passes read only recent edits (an ``edited_property`` is set)."""
        return self.edited_property is not None

    # -- watermarks -------------------------------------------------------------------------------

    def _since_for_new_pass(self, spec_key: str) -> str | None:
        return self._incremental_mark(spec_key, "next_since") if self.incremental else None

    def _finish_pass(self, spec_key: str, since: str | None, started: str) -> None:
        state = self._state.load(spec_key)
        state["next_since"] = _sql_time(dt.datetime.fromisoformat(started) - self.lookback)
        if since is None:
            state["full_at"] = started
        self._state.save(spec_key, state)

    # -- reading ----------------------------------------------------------------------------------

    async def _data_source(self, mcp: McpSession, *, refresh: bool) -> DataSourceRef:
        if self._target is None:
            self._target = await _resolve(mcp, self.id, owner=f"NotionMcpSource {self.name!r}")
            if len(self._target.siblings) > 1:
                logger.warning(
                    "Notion database %s has %d data sources; reading the first, %s",
                    self._target.database_id,
                    len(self._target.siblings),
                    self._target.data_source_id,
                )
        elif refresh:
            fetched = await mcp.call(TOOL_FETCH, {"id": _table(self._target.data_source_id)})
            schema = schema_from_fetch(fetched)
            self._target = DataSourceRef(
                self._target.data_source_id, self._target.database_id, {"properties": schema}, self._target.siblings
            )
        if self.edited_property is not None:
            prop = self._target.properties.get(self.edited_property)
            if prop is None or prop.get("type") != "last_edited_time":
                raise ConfigError(
                    f"NotionMcpSource {self.name!r}: edited_property {self.edited_property!r} must be a Last edited "
                    "time property of the data source"
                )
        return self._target

    def _record(self, row: Mapping[str, Any], schema: Mapping[str, Json]) -> Record | None:
        page_id = page_id_of(row)
        if page_id is None:
            return None
        return Record(page_id, decode_properties(row_to_properties(row, schema)))

    async def fetch_page(
        self, spec: SourceSpec, only_items: list[str] | None, cursor: str | None
    ) -> tuple[list[Record], str | None]:
        """One page of records and the cursor of the next (None after the last).

        ``only_items`` (page ids) are fetched one by one with ``notion-fetch``; pages not found, in the
        trash or of another data source are left out; the watermark is not touched.
        """
        async with self._open() as mcp:
            target = await self._data_source(mcp, refresh=cursor is None)
            if only_items is not None:
                return await self._enriched(mcp, spec, await self._fetch_items(mcp, target, only_items)), None
            if cursor is None:
                after, since, started = None, self._since_for_new_pass(spec.key), self.now().isoformat()
            else:
                after, since, started = self._decode_cursor(spec.key, cursor)
            conditions, params = [], []
            if since is not None and self.edited_property is not None:
                conditions.append(f"datetime({_sql_ident(column_name(self.edited_property))}) >= datetime(?)")
                params.append(since)
            if after is not None:
                conditions.append(f"{_sql_ident(URL_COLUMN)} > ?")
                params.append(after)
            where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
            sql = (
                f"SELECT * FROM {_sql_ident(_table(target.data_source_id))}{where} "
                f"ORDER BY {_sql_ident(URL_COLUMN)} LIMIT {self.page_size + 1}"
            )
            rows = rows_from_result(await mcp.call(TOOL_QUERY, _query_args(target.data_source_id, sql, params)))
            more = len(rows) > self.page_size
            rows = rows[: self.page_size]
            records = [r for r in (self._record(row, target.properties) for row in rows) if r is not None]
            records = await self._enriched(mcp, spec, records)
        if not more or not rows or not rows[-1].get(URL_COLUMN):
            self._finish_pass(spec.key, since, started)
            return records, None
        state = {"v": CURSOR_VERSION, "after": str(rows[-1][URL_COLUMN]), "since": since, "started": started}
        return records, json.dumps(state, sort_keys=True, separators=(",", ":"))

    def _decode_cursor(self, spec_key: str, cursor: str) -> tuple[str, str | None, str]:
        try:
            state = json.loads(cursor)
            if state.get("v") != CURSOR_VERSION or not isinstance(state.get("after"), str):
                raise ValueError("wrong version or no position")
            started = str(state.get("started") or self.now().isoformat())
        except (ValueError, AttributeError) as err:
            raise ConfigError(
                f"NotionMcpSource {spec_key}: cursor {cursor[:200]!r} is not one of ours ({err})"
            ) from None
        return state["after"], state.get("since"), started

    async def _fetch_items(self, mcp: McpSession, target: DataSourceRef, page_ids: list[str]) -> list[Record]:
        records: list[Record] = []
        for raw_id in page_ids:
            try:
                result = await mcp.call(TOOL_FETCH, {"id": normalize_id(raw_id, what="page id")})
            except (McpToolError, ConfigError) as err:
                logger.info("Notion MCP source %s: page %s skipped: %s", self.name, raw_id, err)
                continue
            fetched = _read_fetch(result)
            row = _json_in_tag(fetched.markup, "properties")
            page = _PAGE_TAG_RE.search(fetched.markup)
            if page is not None and 'in-trash="true"' in page.group(0):
                continue
            if not isinstance(row, dict) or page is None:
                error = _unreadable(fetched, f"{SERVICE} {TOOL_FETCH}: no page properties in the answer")
                if isinstance(error, TransientError):
                    raise error  # cut short or busy: the pass is retried rather than the page dropped
                # Not a page we can read (a database, a shape we do not know): said, not skipped silently.
                logger.warning("Notion MCP source %s: page %s skipped: %s", self.name, raw_id, error)
                continue
            parents = _data_source_ids(fetched.markup, _PARENT_DATA_SOURCE_RE) or _data_source_ids(fetched.markup)
            if parents and target.data_source_id not in parents:
                logger.info("Notion MCP source %s: page %s belongs to another data source; skipped", self.name, raw_id)
                continue
            url = _TAG_URL_RE.search(page.group(0))
            row.setdefault(URL_COLUMN, url.group(1) if url else (fetched.url or raw_id))
            record = self._record(row, target.properties)
            if record is not None:
                records.append(record)
        return records

    async def fetch(self, spec: SourceSpec, only_items: list[str] | None = None) -> list[Record]:
        """Every record of the spec (a drain over ``fetch_page``)."""
        return await drain_pages(self.fetch_page, spec, only_items)


# --------------------------------------------------------------------------------------------------
# Picking a transport by configuration


def notion_destination(
    transport: Literal["rest", "mcp"] = "rest", *args: Any, **kwargs: Any
) -> NotionDestination | NotionMcpDestination:
    """A Notion destination over REST (an integration token) or MCP (an OAuth login).

    Example: ``notion_destination(os.environ.get("NOTION_TRANSPORT", "rest"), database_id, key_property="Repo
    ID", auth=provider)`` — arguments that only one transport has are rejected by the other's class.
    """
    if transport == "rest":
        return NotionDestination(*args, **kwargs)
    if transport == "mcp":
        return NotionMcpDestination(*args, **kwargs)
    raise ConfigError(f"Notion transport must be 'rest' or 'mcp', got {transport!r}")


def notion_source(
    transport: Literal["rest", "mcp"] = "rest", *args: Any, **kwargs: Any
) -> NotionSource | NotionMcpSource:
    """A Notion source over REST or MCP (see :func:`notion_destination`); both use the spec key ``ds:<id>``."""
    if transport == "rest":
        return NotionSource(*args, **kwargs)
    if transport == "mcp":
        return NotionMcpSource(*args, **kwargs)
    raise ConfigError(f"Notion transport must be 'rest' or 'mcp', got {transport!r}")

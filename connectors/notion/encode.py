"""Neutral values -> Notion property values and page blocks (shared by the REST and MCP variants).

Pure functions over the data source schema (``{name: {"id", "name", "type", <type>: config}}``); no I/O.
Each value is encoded by the TYPE of its target property, not by its Python type:

===============  ==========================================  =========================================
Notion type      accepted neutral values                      None / empty
===============  ==========================================  =========================================
title,           str (int, float, bool, date, datetime and   ``[]`` (clears the text)
rich_text        list[str] are written as text; lists are
                 joined with ", "). Split into elements of
                 <= 2000 UTF-16 units, at most 100; beyond
                 that the text is TRUNCATED and reported.
number           int, float (not bool)                        ``null``
checkbox         bool                                         ``false`` (a checkbox cannot be empty)
select           str: an existing option, or a new one when   ``null`` (also for "")
                 ``create_missing_options`` (Notion adds it);
                 no commas, <= 100 characters
status           str: an existing option (the API cannot      ``null``
                 create status options)
multi_select     list[str] (or one str): options as for       ``[]``
                 select; duplicates dropped; beyond 100
                 options TRUNCATED and reported
date             date -> {"start": "YYYY-MM-DD"}; aware       ``null`` (also for "")
                 datetime -> ISO 8601 with its offset (ms);
                 str in ISO 8601 (a date, or a date-time
                 with an offset)
url              str, <= 2000 characters                      ``null`` (also for "")
email            str, <= 200 characters                       ``null`` (also for "")
phone_number     str, <= 200 characters                       ``null`` (also for "")
===============  ==========================================  =========================================

Anything else is a ``RecordError`` naming the property: a value of the wrong type (a list into a
number, a bool into a date), a string that is no date, a naive date-time, an option that does not
exist (when options may not be created), an over-long URL or email (truncating would corrupt it).

A property the data source does not have, or whose type cannot be written from a neutral value
(people, relation, files, and the computed ones: formula, rollup, created/last edited time/by,
unique_id, button, verification), is DROPPED and listed in :attr:`Encoded.dropped` so the caller can
warn once; the record is still written.

Bodies become paragraph blocks (:func:`body_blocks`): one per blank-line separated paragraph, long
paragraphs split over several blocks; :func:`chunk_blocks` groups them into requests of at most 100
blocks and ``PAYLOAD_BUDGET_BYTES`` of JSON.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.core import RecordError
from connectors.http import Json
from connectors.notion.settings import (
    BODY_BLOCK_MAX_ELEMENTS,
    MAX_ARRAY_ELEMENTS,
    MAX_BLOCKS_PER_REQUEST,
    MAX_BODY_CHARS,
    MAX_EMAIL_CHARS,
    MAX_OPTION_NAME_CHARS,
    MAX_PHONE_CHARS,
    MAX_RICH_TEXT_CHARS,
    MAX_URL_CHARS,
    PAYLOAD_BUDGET_BYTES,
)

__all__ = [
    "BODY",
    "COMPUTED_TYPES",
    "WRITABLE_TYPES",
    "Encoded",
    "Truncation",
    "body_blocks",
    "chunk_blocks",
    "date_value",
    "encode_properties",
    "encode_value",
    "payload_size",
    "rich_text",
    "split_text",
    "unwritable_reason",
    "utf16_len",
]

BODY = "(body)"
"""The ``Truncation.property`` of a truncated page body."""

WRITABLE_TYPES = frozenset(
    {
        "title",
        "rich_text",
        "number",
        "checkbox",
        "select",
        "status",
        "multi_select",
        "date",
        "url",
        "email",
        "phone_number",
    }
)
COMPUTED_TYPES = frozenset(
    {
        "formula",
        "rollup",
        "created_time",
        "created_by",
        "last_edited_time",
        "last_edited_by",
        "unique_id",
        "button",
        "verification",
    }
)

_PARAGRAPH_BREAK = re.compile(r"\n(?:[ \t]*\n)+")  # one or more blank (or whitespace-only) lines


@dataclass(frozen=True)
class Truncation:
    """A value cut to fit Notion's limits (reported, never silent).

    Attributes:
        property: The property name, or ``BODY`` for the page body.
        original: The length before (UTF-16 units of text, or options of a multi-select).
        kept: The length written.
        unit: ``"characters"`` or ``"options"``.
    """

    property: str
    original: int
    kept: int
    unit: str = "characters"

    def describe(self) -> str:
        """What was cut, for people."""
        where = "the body" if self.property == BODY else f"property {self.property!r}"
        return f"{where} truncated from {self.original} to {self.kept} {self.unit} (Notion's limit)"


@dataclass
class Encoded:
    """The result of :func:`encode_properties`.

    Attributes:
        properties: Ready for the ``properties`` of a create/update request.
        dropped: ``(name, reason)`` of the properties left out.
        truncations: Values cut to fit.
        new_options: ``(property, option)`` pairs Notion will add to the schema on write.
    """

    properties: Json = field(default_factory=dict)
    dropped: list[tuple[str, str]] = field(default_factory=list)
    truncations: list[Truncation] = field(default_factory=list)
    new_options: list[tuple[str, str]] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------
# Text


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the way Notion (JavaScript) counts its limits."""
    return len(text.encode("utf-16-le")) // 2


def split_text(
    text: str, *, max_units: int = MAX_RICH_TEXT_CHARS, max_pieces: int | None = MAX_ARRAY_ELEMENTS
) -> tuple[list[str], bool]:
    """``text`` cut into pieces of at most ``max_units`` UTF-16 units, keeping ``max_pieces`` at most.

    Returns:
        The pieces, and whether text was dropped because there were more than ``max_pieces``.
    """
    if not text:
        return [], False
    if utf16_len(text) == len(text):  # no astral characters: one unit each
        pieces = [text[i : i + max_units] for i in range(0, len(text), max_units)]
    else:
        pieces = []
        start = units = 0
        for i, ch in enumerate(text):
            width = 2 if ord(ch) > 0xFFFF else 1
            if units + width > max_units:
                pieces.append(text[start:i])
                start, units = i, 0
            units += width
        pieces.append(text[start:])
    if max_pieces is not None and len(pieces) > max_pieces:
        return pieces[:max_pieces], True
    return pieces, False


def _text_element(content: str) -> Json:
    return {"type": "text", "text": {"content": content}}


def rich_text(text: str, name: str = "") -> tuple[list[Json], Truncation | None]:
    """A rich-text array for ``text`` (<= 100 elements of <= 2000 units), and the truncation if any."""
    pieces, truncated = split_text(text)
    truncation = None
    if truncated:
        truncation = Truncation(name, utf16_len(text), sum(utf16_len(p) for p in pieces))
    return [_text_element(p) for p in pieces], truncation


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


# --------------------------------------------------------------------------------------------------
# Values


def _error(name: str, message: str, primary_key: str | None) -> RecordError:
    return RecordError(f"Notion property {name!r}: {message}", primary_key=primary_key)


def _iso_datetime(value: dt.datetime) -> str:
    # Notion keeps milliseconds; say so rather than send microseconds it would drop.
    return value.isoformat(timespec="milliseconds" if value.microsecond else "seconds")


def date_value(name: str, value: Any, *, primary_key: str | None = None) -> Json | None:
    """The ``date`` object of a neutral value (None clears).

    Raises:
        RecordError: Not a date, a datetime, or an ISO 8601 string; or a naive datetime.
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            parsed: dt.date = (
                dt.date.fromisoformat(text) if len(text) <= 10 else dt.datetime.fromisoformat(text.replace(" ", "T"))
            )
        except ValueError:
            raise _error(name, f"{value!r} is not a date (ISO 8601 expected, e.g. 2024-05-01)", primary_key) from None
        value = parsed
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise _error(name, f"date-time {value.isoformat()} has no timezone", primary_key)
        return {"start": _iso_datetime(value)}
    if isinstance(value, dt.date):
        return {"start": value.isoformat()}
    raise _error(name, f"a {type(value).__name__} cannot be written to a date property", primary_key)


def _option_name(name: str, value: Any, primary_key: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _error(name, f"a {type(value).__name__} cannot be written to an option property", primary_key)
    option = value.strip()
    if not option:
        return None
    if "," in option:
        raise _error(name, f"option {option!r} contains a comma, which Notion does not allow", primary_key)
    if utf16_len(option) > MAX_OPTION_NAME_CHARS:
        raise _error(name, f"option {option[:40]!r}... is longer than {MAX_OPTION_NAME_CHARS} characters", primary_key)
    return option


def _existing_options(prop: Mapping[str, Any]) -> list[str]:
    config = prop.get(prop.get("type", "")) or {}
    return [str(o.get("name")) for o in (config.get("options") or []) if isinstance(o, dict)]


def _check_options(
    name: str,
    prop: Mapping[str, Any],
    options: Sequence[str],
    *,
    create_missing_options: bool,
    primary_key: str | None,
) -> list[str]:
    """The options not yet in the schema; a RecordError if they may not be created."""
    existing = set(_existing_options(prop))
    missing = [o for o in options if o not in existing]
    if not missing:
        return []
    if prop.get("type") == "status" or not create_missing_options:
        known = ", ".join(sorted(existing)[:20]) or "none"
        how = (
            "status options can only be added in Notion"
            if prop.get("type") == "status"
            else "add it in Notion or set create_missing_options=True"
        )
        raise _error(
            name,
            f"option{'s' if len(missing) > 1 else ''} {', '.join(repr(m) for m in missing)} "
            f"do{'' if len(missing) > 1 else 'es'} not exist (existing: {known}); {how}",
            primary_key,
        )
    return missing


_Encoded = tuple[Json, list[Truncation], list[str]]
"""``({<type>: value}, truncations, options Notion will create)``."""

_TEXT_LIMITS = {"url": MAX_URL_CHARS, "email": MAX_EMAIL_CHARS, "phone_number": MAX_PHONE_CHARS}


@dataclass(frozen=True)
class _Target:
    """The property a value is encoded for, and what the caller allows."""

    name: str
    kind: str
    prop: Mapping[str, Any]
    create_missing_options: bool
    primary_key: str | None

    def error(self, message: str) -> RecordError:
        return _error(self.name, message, self.primary_key)

    def new_options(self, options: Sequence[str]) -> list[str]:
        return _check_options(
            self.name,
            self.prop,
            options,
            create_missing_options=self.create_missing_options,
            primary_key=self.primary_key,
        )


def _encode_text(target: _Target, value: Any) -> _Encoded:
    if value is None:
        return {target.kind: []}, [], []
    if isinstance(value, dict):
        raise target.error("an object cannot be written as text")
    elements, truncation = rich_text(_as_text(value), target.name)
    return {target.kind: elements}, [truncation] if truncation else [], []


def _encode_number(target: _Target, value: Any) -> _Encoded:
    if value is None:
        return {"number": None}, [], []
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise target.error(f"a {type(value).__name__} cannot be written to a number property")
    if not math.isfinite(value):
        raise target.error(f"{value!r} is not a finite number")
    return {"number": value}, [], []


def _encode_checkbox(target: _Target, value: Any) -> _Encoded:
    if value is None:
        return {"checkbox": False}, [], []
    if not isinstance(value, bool):
        raise target.error(f"a {type(value).__name__} cannot be written to a checkbox (bool expected)")
    return {"checkbox": value}, [], []


def _encode_option(target: _Target, value: Any) -> _Encoded:
    """A select or status value."""
    option = _option_name(target.name, value, target.primary_key)
    if option is None:
        return {target.kind: None}, [], []
    return {target.kind: {"name": option}}, [], target.new_options([option])


def _encode_multi_select(target: _Target, value: Any) -> _Encoded:
    if value is None:
        return {"multi_select": []}, [], []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise target.error(f"a {type(value).__name__} cannot be written to a multi-select")
    names: list[str] = []
    for item in items:
        option = _option_name(target.name, item, target.primary_key)
        if option is not None and option not in names:
            names.append(option)
    truncations = []
    if len(names) > MAX_ARRAY_ELEMENTS:
        truncations.append(Truncation(target.name, len(names), MAX_ARRAY_ELEMENTS, "options"))
        names = names[:MAX_ARRAY_ELEMENTS]
    new = target.new_options(names)
    return {"multi_select": [{"name": n} for n in names]}, truncations, new


def _encode_date(target: _Target, value: Any) -> _Encoded:
    return {"date": date_value(target.name, value, primary_key=target.primary_key)}, [], []


def _encode_limited_text(target: _Target, value: Any) -> _Encoded:
    """A url, email or phone_number value (too long is an error: truncating would corrupt it)."""
    kind = target.kind
    if value is None or (isinstance(value, str) and not value.strip()):
        return {kind: None}, [], []
    if not isinstance(value, str):
        raise target.error(f"a {type(value).__name__} cannot be written to a {kind} property")
    limit = _TEXT_LIMITS[kind]
    text = value.strip()
    if utf16_len(text) > limit:
        raise target.error(f"{utf16_len(text)} characters, longer than Notion's {kind} limit of {limit}")
    return {kind: text}, [], []


# Property type -> its encoder; see the table in the module docstring.
_ENCODERS: dict[str, Callable[[_Target, Any], _Encoded]] = {
    "title": _encode_text,
    "rich_text": _encode_text,
    "number": _encode_number,
    "checkbox": _encode_checkbox,
    "select": _encode_option,
    "status": _encode_option,
    "multi_select": _encode_multi_select,
    "date": _encode_date,
    "url": _encode_limited_text,
    "email": _encode_limited_text,
    "phone_number": _encode_limited_text,
}


def encode_value(
    name: str,
    prop: Mapping[str, Any],
    value: Any,
    *,
    create_missing_options: bool = False,
    primary_key: str | None = None,
) -> tuple[Json, list[Truncation], list[str]]:
    """One property value for the property schema ``prop``.

    Returns:
        ``({<type>: value}, truncations, options Notion will create)``.

    Raises:
        RecordError: The value does not fit the property's type (see the module table).
    """
    kind = str(prop.get("type"))
    encoder = _ENCODERS.get(kind)
    if encoder is None:
        raise _error(name, f"properties of type {kind} cannot be written", primary_key)
    return encoder(_Target(name, kind, prop, create_missing_options, primary_key), value)


def unwritable_reason(prop: Mapping[str, Any] | None) -> str | None:
    """Why a property cannot be written from a neutral value, or None when it can."""
    if prop is None:
        return "the data source has no such property"
    kind = prop.get("type")
    if kind in WRITABLE_TYPES:
        return None
    if kind in COMPUTED_TYPES:
        return f"it is a {kind} property, computed by Notion"
    return f"properties of type {kind} are not written by this connector"


def encode_properties(
    values: Mapping[str, Any],
    schema: Mapping[str, Mapping[str, Any]],
    *,
    primary_key: str | None = None,
    create_missing_options: bool = False,
) -> Encoded:
    """Encode neutral values by the schema's property types (see the module table).

    Unknown properties and unwritable types are dropped (listed in ``dropped``); the rest must fit.

    Raises:
        RecordError: A value does not fit its property.
    """
    out = Encoded()
    for name, value in values.items():
        prop = schema.get(name)
        reason = unwritable_reason(prop)
        if prop is None or reason is not None:
            out.dropped.append((name, reason or "unknown"))
            continue
        encoded, truncations, new = encode_value(
            name, prop, value, create_missing_options=create_missing_options, primary_key=primary_key
        )
        out.properties[name] = encoded
        out.truncations += truncations
        out.new_options += [(name, option) for option in new]
    return out


# --------------------------------------------------------------------------------------------------
# Bodies


def _cut(text: str, max_units: int) -> str:
    pieces, _ = split_text(text, max_units=max_units, max_pieces=1)
    return pieces[0] if pieces else ""


def body_blocks(body: str | None, *, max_units: int = MAX_BODY_CHARS) -> tuple[list[Json], Truncation | None]:
    """Paragraph blocks for a body: one per blank-line separated paragraph (lines kept inside it).

    A paragraph of more than ``BODY_BLOCK_MAX_ELEMENTS`` elements continues in the next block. A body
    longer than ``max_units`` is truncated; the truncation is returned.
    """
    if not body:
        return [], None
    truncation = None
    total = utf16_len(body)
    if total > max_units:
        body = _cut(body, max_units)
        truncation = Truncation(BODY, total, utf16_len(body))
    blocks: list[Json] = []
    for paragraph in _PARAGRAPH_BREAK.split(body):
        paragraph = paragraph.strip("\r\n")
        if not paragraph.strip():
            continue
        pieces, _ = split_text(paragraph, max_pieces=None)
        for i in range(0, len(pieces), BODY_BLOCK_MAX_ELEMENTS):
            elements = [_text_element(p) for p in pieces[i : i + BODY_BLOCK_MAX_ELEMENTS]]
            blocks.append({"object": "block", "type": "paragraph", "paragraph": {"rich_text": elements}})
    return blocks, truncation


def payload_size(obj: Any) -> int:
    """Bytes of ``obj`` as httpx sends it (compact JSON, UTF-8)."""
    return len(json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode())


def chunk_blocks(
    blocks: Iterable[Json],
    *,
    first_budget: int = PAYLOAD_BUDGET_BYTES,
    budget: int = PAYLOAD_BUDGET_BYTES,
    max_blocks: int = MAX_BLOCKS_PER_REQUEST,
) -> list[list[Json]]:
    """Blocks grouped into requests: <= ``max_blocks`` each and within the byte budgets.

    The first group rides along with the create request, so it has its own (smaller) budget and may
    be empty; every group after it is an append request.
    """
    chunks: list[list[Json]] = [[]]
    size, limit = 0, first_budget
    for block in blocks:
        block_size = payload_size(block) + 1  # the comma
        current = chunks[-1]
        if len(current) >= max_blocks or (size + block_size > limit and (current or len(chunks) == 1)):
            chunks.append([])
            size, limit = 0, budget
        chunks[-1].append(block)
        size += block_size
    return chunks

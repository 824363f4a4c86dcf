"""Contentful field values -> neutral values (the source's half of ``encode.py``).

Pure functions; no I/O. A value is decoded by its field's type when the content type is known:

================  ==========================================================================
Contentful type   neutral value
================  ==========================================================================
Symbol, Text      str
RichText          str: the document's text, blocks separated by a blank line
Integer           int
Number            float (an Integer-looking JSON number too: the field type decides)
Boolean           bool
Date              ``date`` for ``YYYY-MM-DD``; an aware ``datetime`` otherwise (a time
                  without an offset, which the web app allows, is read as UTC)
Array of Symbol   list[str]
Link              str: the linked entry's or asset's id
Array of Links    list[str]: the ids
Location          str: ``"<lat>,<lon>"``
Object            str: the JSON (keys sorted)
================  ==========================================================================

Localized values are read in one locale (:func:`pick_locale`): the configured locale, then each
fallback locale, then the first locale the entry has a value in.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from connectors.contentful.encode import FieldSpec

__all__ = ["MISSING", "decode_value", "parse_date", "pick_locale", "rich_text_plain"]

MISSING: Any = object()
"""Returned by :func:`pick_locale` when the field has no value in any locale."""

_BLOCK_NODES = frozenset(
    {
        "paragraph",
        "heading-1",
        "heading-2",
        "heading-3",
        "heading-4",
        "heading-5",
        "heading-6",
        "blockquote",
        "list-item",
        "unordered-list",
        "ordered-list",
        "table",
        "table-row",
        "table-cell",
        "table-header-cell",
    }
)


def parse_date(text: Any) -> dt.date | dt.datetime | None:
    """A Contentful Date value: ``date`` for a day, an aware ``datetime`` otherwise; None if unreadable."""
    if not isinstance(text, str) or not text.strip():
        return None
    text = text.strip()
    try:
        if len(text) == 10:
            return dt.date.fromisoformat(text)
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def _node_text(node: Any) -> str:
    if not isinstance(node, Mapping):
        return ""
    if node.get("nodeType") == "text":
        return str(node.get("value") or "")
    children = node.get("content") or []
    parts = [_node_text(child) for child in children]
    if any(isinstance(c, Mapping) and c.get("nodeType") in _BLOCK_NODES for c in children):
        return "\n".join(p for p in parts if p)
    return "".join(parts)


def rich_text_plain(document: Any) -> str:
    """The text of a RichText document: top-level blocks separated by a blank line (embeds skipped)."""
    if not isinstance(document, Mapping):
        return ""
    blocks = [_node_text(node) for node in document.get("content") or []]
    return "\n\n".join(b for b in blocks if b)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _link_id(value: Any) -> str | None:
    sys = value.get("sys") if isinstance(value, Mapping) else None
    link_id = sys.get("id") if isinstance(sys, Mapping) else None
    return str(link_id) if link_id else None


def _guess(value: Any) -> Any:
    """A value of a field the content type does not describe, by its JSON type."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    if isinstance(value, list) and value and all(_link_id(v) for v in value):
        return [_link_id(v) for v in value]
    if _link_id(value):
        return _link_id(value)
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def decode_value(spec: FieldSpec | None, value: Any) -> Any:
    """The neutral value of one field value (see the module docstring); None for an unreadable value."""
    if value is None:
        return None
    if spec is None:
        return _guess(value)
    kind = spec.kind
    if kind in ("Symbol", "Text"):
        return value if isinstance(value, str) else str(value)
    if kind == "RichText":
        return rich_text_plain(value)
    if kind == "Integer":
        number = _number(value)
        return int(number) if number is not None and number.is_integer() else None
    if kind == "Number":
        return _number(value)
    if kind == "Boolean":
        return value if isinstance(value, bool) else None
    if kind == "Date":
        return parse_date(value)
    if kind == "Array<Symbol>":
        return [str(v) for v in value] if isinstance(value, list) else None
    if kind == "Link":
        return _link_id(value)
    if kind in ("Array<Link>", "Array<ResourceLink>"):
        return [i for v in value if (i := _link_id(v))] if isinstance(value, list) else None
    if kind == "Location" and isinstance(value, Mapping):
        return f"{value.get('lat')},{value.get('lon')}"
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def pick_locale(by_locale: Any, locales: Sequence[str]) -> Any:
    """The value of a locale-wrapped field in the first of ``locales`` it has.

    The value of a locale-wrapped field in the first of ``locales`` it has, else in the first locale
    present; :data:`MISSING` when it has none.
    """
    if not isinstance(by_locale, Mapping) or not by_locale:
        return MISSING
    for code in locales:
        if code in by_locale:
            return by_locale[code]
    return next(iter(by_locale.values()))

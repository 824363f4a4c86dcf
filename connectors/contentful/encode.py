"""Neutral values -> Contentful field values, and our keys -> entry ids (shared by REST and MCP destinations).

Pure functions over a content type (:class:`ContentTypeSpec`, read from the API); no I/O. Each value
is encoded by the TYPE of its target field, not by its Python type:

==================  ===============================================  ==============================
Contentful type     accepted neutral values                          over a limit / wrong type
==================  ===============================================  ==============================
Symbol              str; int, float, bool, date, datetime and        > 256 characters: RecordError
                    list[str] are written as text (dates in ISO
                    8601, bools as true/false, lists joined ", ")
Text                as Symbol                                        > 50,000 characters: RecordError
RichText            str: a document of paragraphs (split on blank    RecordError
                    lines; single newlines kept inside a paragraph)
Integer             int; a float with no fraction (not bool)         beyond +-2**53, a fraction, or
                                                                     any other type: RecordError
Number              int, float (not bool; finite)                    RecordError
Boolean             bool                                             RecordError
Date                date -> "YYYY-MM-DD"; aware datetime -> ISO      a naive datetime, a str that
                    8601 with its offset (seconds, or milliseconds   is no date: RecordError
                    when it has a fraction); str in ISO 8601
Array of Symbol     list[str] (a single str is one item)             an item > 256: RecordError
Link (Entry/Asset)  str: the linked entry's or asset's id            not an id: RecordError
Array of Links      list[str] of ids                                 RecordError
Location, Object,   not writable from neutral values: mapping a      ConfigError at connect
ResourceLink        property to one is a configuration error
==================  ===============================================  ==============================

``None`` removes the field's value in the written locale (Contentful has no "null" value; an absent
field is how an entry says "empty"); values in other locales are kept. ``[]`` is written as an empty
array.

Locales: a field's value is written under one locale, the configured default locale for localized
fields and the space's default locale for non-localized ones (the only locale they accept):
:func:`merge_fields` applies encoded values onto the fields an entry already has, so other locales and
fields we do not manage survive (the CMA replaces the whole ``fields`` object on every update).

Entry ids (:func:`entry_id_for`): ``<prefix><key>`` when the key itself is a valid id tail (letters,
digits, ``-``, ``_``, ``.``, not starting with ``.``, and the whole id at most 64 characters); otherwise
``<prefix>.<first 40 hex digits of sha256(key)>``. The id depends on the key alone, so a create that
is retried, or repeated after a lost link, lands on the same entry. A direct id maps back to its key
(:func:`key_for_entry_id`); a hashed one cannot, so its key must also be stored in a key field.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.contentful.settings import (
    ENTRY_ID_RE,
    HASHED_ID_HEX,
    ID_MARKER,
    MAX_ENTRY_ID,
    MAX_ID_PREFIX,
    MAX_INTEGER,
    MAX_SYMBOL_CHARS,
    MAX_TEXT_CHARS,
)
from connectors.core import ConfigError, RecordError
from connectors.http import Json

__all__ = [
    "NOT_WRITABLE",
    "ContentTypeSpec",
    "FieldSpec",
    "check_prefix",
    "date_text",
    "encode_fields",
    "encode_value",
    "entry_id_for",
    "is_hashed_id",
    "key_for_entry_id",
    "merge_fields",
    "rich_text_document",
]

NOT_WRITABLE = frozenset({"Location", "Object", "ResourceLink"})
_DATE_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$")
_TAIL_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")


# --------------------------------------------------------------------------------------------------
# Content types


@dataclass(frozen=True)
class FieldSpec:
    """One field of a content type, as the API describes it.

    Attributes:
        id: The field id (what entries are keyed by; stable when the field is renamed).
        name: The display name.
        type: Symbol, Text, RichText, Integer, Number, Boolean, Date, Location, Object, Link, Array,
            ResourceLink.
        items_type: For an Array: the item type (Symbol, Link, ResourceLink).
        link_type: For a Link or an Array of Links: Entry or Asset.
        localized: Whether the field has a value per locale.
        required: Whether publishing needs a value (in the default locale).
        disabled: Hidden in the editor (still writable through the API).
        omitted: Left out of delivery (CDA) responses; still writable through the CMA.
    """

    id: str
    name: str
    type: str
    items_type: str | None = None
    link_type: str | None = None
    localized: bool = False
    required: bool = False
    disabled: bool = False
    omitted: bool = False

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> FieldSpec:
        """A field spec from a content type's ``fields[]`` item as the API returns it."""
        raw_items = data.get("items")
        items: Mapping[str, Any] = raw_items if isinstance(raw_items, Mapping) else {}
        return cls(
            id=str(data.get("id")),
            name=str(data.get("name") or data.get("id")),
            type=str(data.get("type")),
            items_type=str(items["type"]) if items.get("type") else None,
            link_type=str(data.get("linkType") or items.get("linkType") or "") or None,
            localized=bool(data.get("localized")),
            required=bool(data.get("required")),
            disabled=bool(data.get("disabled")),
            omitted=bool(data.get("omitted")),
        )

    @property
    def kind(self) -> str:
        """The type with its item type: ``Array<Symbol>``, ``Array<Link>``, ``Link``, ``Symbol`` ..."""
        return f"Array<{self.items_type}>" if self.type == "Array" else self.type

    def not_writable(self) -> str | None:
        """Why neutral values cannot be written to this field, or None."""
        if self.type in NOT_WRITABLE or (self.type == "Array" and self.items_type not in ("Symbol", "Link")):
            return f"a {self.kind} field cannot be written from neutral values"
        return None


@dataclass(frozen=True)
class ContentTypeSpec:
    """A content type: its id, display field and fields by id."""

    id: str
    name: str
    display_field: str | None
    fields: dict[str, FieldSpec] = field(default_factory=dict)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> ContentTypeSpec:
        """A content type spec from the API's content type object."""
        raw_sys = data.get("sys")
        sys: Mapping[str, Any] = raw_sys if isinstance(raw_sys, Mapping) else {}
        fields = [FieldSpec.from_api(f) for f in data.get("fields") or [] if isinstance(f, Mapping)]
        return cls(
            id=str(sys.get("id")),
            name=str(data.get("name") or sys.get("id")),
            display_field=str(data["displayField"]) if data.get("displayField") else None,
            fields={f.id: f for f in fields},
        )


# --------------------------------------------------------------------------------------------------
# Values


def _error(field_spec: FieldSpec, name: str, message: str, primary_key: str | None) -> RecordError:
    return RecordError(
        f"Contentful: property {name!r} -> field {field_spec.id!r} ({field_spec.kind}): {message}",
        primary_key=primary_key,
    )


def date_text(value: Any) -> str | None:
    """A date or aware datetime in ISO 8601 (a datetime keeps its offset); None for anything else."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            return None
        spec = "milliseconds" if value.microsecond else "seconds"
        return value.isoformat(timespec=spec)
    if isinstance(value, dt.date):
        return value.isoformat()
    return None


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return date_text(value)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    return None


def rich_text_document(text: str) -> Json:
    """A RichText document of one paragraph per blank-line separated block (empty text: no paragraph)."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    return {
        "nodeType": "document",
        "data": {},
        "content": [
            {
                "nodeType": "paragraph",
                "data": {},
                "content": [{"nodeType": "text", "value": p, "marks": [], "data": {}}],
            }
            for p in paragraphs
        ],
    }


def _link(field_spec: FieldSpec, name: str, value: Any, primary_key: str | None) -> Json:
    if not isinstance(value, str) or not ENTRY_ID_RE.match(value):
        raise _error(field_spec, name, f"{value!r} is not a Contentful id", primary_key)
    return {"sys": {"type": "Link", "linkType": field_spec.link_type or "Entry", "id": value}}


def _encode_text(field_spec: FieldSpec, name: str, value: Any, primary_key: str | None) -> str:
    """Symbol or Text: the value as text, within the field's character limit."""
    text = _text(value)
    if text is None:
        raise _error(field_spec, name, f"cannot write a {type(value).__name__} as text", primary_key)
    limit = MAX_SYMBOL_CHARS if field_spec.kind == "Symbol" else MAX_TEXT_CHARS
    if len(text) > limit:
        raise _error(field_spec, name, f"{len(text)} characters, over the limit of {limit}", primary_key)
    return text


def _encode_rich_text(field_spec: FieldSpec, name: str, value: Any, primary_key: str | None) -> Json:
    if not isinstance(value, str):
        raise _error(field_spec, name, f"needs text, got {type(value).__name__}", primary_key)
    return rich_text_document(value)


def _encode_integer(field_spec: FieldSpec, name: str, value: Any, primary_key: str | None) -> int:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _error(field_spec, name, f"needs a whole number, got {value!r}", primary_key)
    if abs(value) > MAX_INTEGER:
        raise _error(field_spec, name, f"{value} is beyond +-2**53", primary_key)
    return value


def _encode_number(field_spec: FieldSpec, name: str, value: Any, primary_key: str | None) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _error(field_spec, name, f"needs a number, got {value!r}", primary_key)
    return value


def _encode_boolean(field_spec: FieldSpec, name: str, value: Any, primary_key: str | None) -> bool:
    if not isinstance(value, bool):
        raise _error(field_spec, name, f"needs true or false, got {value!r}", primary_key)
    return value


def _encode_date(field_spec: FieldSpec, name: str, value: Any, primary_key: str | None) -> str:
    text = date_text(value) if not isinstance(value, str) else value.strip()
    if isinstance(value, dt.datetime) and text is None:
        raise _error(field_spec, name, f"datetime {value.isoformat()} has no timezone", primary_key)
    if text is None or not _DATE_TEXT.match(text) or not _parses(text):
        raise _error(field_spec, name, f"{value!r} is not a date (ISO 8601)", primary_key)
    return text


def _encode_symbols(field_spec: FieldSpec, name: str, value: Any, primary_key: str | None) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(v, str) for v in items):
        raise _error(field_spec, name, f"needs a list of strings, got {type(value).__name__}", primary_key)
    for item in items:
        if len(item) > MAX_SYMBOL_CHARS:
            raise _error(
                field_spec,
                name,
                f"an item of {len(item)} characters, over the limit of {MAX_SYMBOL_CHARS}",
                primary_key,
            )
    return list(items)


def _encode_links(field_spec: FieldSpec, name: str, value: Any, primary_key: str | None) -> list[Json]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise _error(field_spec, name, f"needs a list of ids, got {type(value).__name__}", primary_key)
    return [_link(field_spec, name, v, primary_key) for v in items]


# One encoder per writable field kind (FieldSpec.kind); see the table in the module docstring.
_ENCODERS: dict[str, Callable[[FieldSpec, str, Any, str | None], Any]] = {
    "Symbol": _encode_text,
    "Text": _encode_text,
    "RichText": _encode_rich_text,
    "Integer": _encode_integer,
    "Number": _encode_number,
    "Boolean": _encode_boolean,
    "Date": _encode_date,
    "Array<Symbol>": _encode_symbols,
    "Link": _link,
    "Array<Link>": _encode_links,
}


def encode_value(field_spec: FieldSpec, value: Any, *, name: str | None = None, primary_key: str | None = None) -> Any:
    """The JSON value of ``value`` for ``field_spec`` (None: remove the field's value).

    Args:
        field_spec: The target field.
        value: A neutral value.
        name: The record property it comes from (for messages; default: the field id).
        primary_key: The record's key (for ``RecordError.primary_key``).

    Raises:
        RecordError: The value does not fit the field (type, size, range); see the module docstring.
    """
    name = name or field_spec.id
    if value is None:
        return None
    encoder = _ENCODERS.get(field_spec.kind)
    if encoder is None:
        raise _error(field_spec, name, field_spec.not_writable() or "not writable", primary_key)
    return encoder(field_spec, name, value, primary_key)


def _parses(text: str) -> bool:
    try:
        if len(text) == 10:
            dt.date.fromisoformat(text)
        else:
            dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def encode_fields(
    values: Mapping[str, Any],
    field_map: Mapping[str, str],
    content_type: ContentTypeSpec,
    *,
    primary_key: str | None = None,
) -> dict[str, Any]:
    """``{field id: JSON value or None}`` for the mapped properties present in ``values``.

    Properties absent from ``values`` are not touched (an update writes only what the record carries);
    properties not in ``field_map`` are ignored. Every bad value raises, so a record is written whole
    or not at all.

    Raises:
        RecordError: A value does not fit its field.
        ConfigError: ``field_map`` names a field the content type does not have.
    """
    out: dict[str, Any] = {}
    for prop, field_id in field_map.items():
        if prop not in values:
            continue
        spec = content_type.fields.get(field_id)
        if spec is None:
            raise ConfigError(f"Contentful content type {content_type.id!r} has no field {field_id!r}")
        out[field_id] = encode_value(spec, values[prop], name=prop, primary_key=primary_key)
    return out


def merge_fields(current: Mapping[str, Any], encoded: Mapping[str, Any], locales: Mapping[str, str]) -> Json:
    """The ``fields`` object to PUT: ``current`` with the encoded values set.

    The ``fields`` object to PUT: ``current`` with each encoded value set (or, for None, removed)
    under ``locales[field id]``; other locales and fields are kept as they are.
    """
    merged: Json = {fid: dict(by_locale) for fid, by_locale in current.items() if isinstance(by_locale, Mapping)}
    for field_id, value in encoded.items():
        locale = locales[field_id]
        if value is None:
            by_locale = merged.get(field_id)
            if by_locale is not None:
                by_locale.pop(locale, None)
                if not by_locale:
                    del merged[field_id]
        else:
            merged.setdefault(field_id, {})[locale] = value
    return merged


# --------------------------------------------------------------------------------------------------
# Entry ids


def check_prefix(prefix: str) -> str:
    """``prefix`` when it is a valid start of an entry id (possibly empty).

    Raises:
        ConfigError: Other characters than ``[A-Za-z0-9._-]``, a leading ``.``, or over 20 characters.
    """
    if prefix and (not _TAIL_RE.match(prefix) or len(prefix) > MAX_ID_PREFIX):
        raise ConfigError(
            f"Contentful id_prefix {prefix!r}: use at most {MAX_ID_PREFIX} characters of letters, digits, '-', '_' "
            "and '.', not starting with '.'"
        )
    return prefix


def entry_id_for(key: str, prefix: str) -> str:
    """The entry id of a record key (deterministic).

    The entry id of a record key: ``<prefix><key>`` when that is a valid id whose tail does not start
    with ``.``, else ``<prefix>.<sha256(key)[:40]>``. Deterministic: the same key always gives the same id.
    """
    if _TAIL_RE.match(key) and len(prefix) + len(key) <= MAX_ENTRY_ID:
        return prefix + key
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:HASHED_ID_HEX]
    return f"{prefix}{ID_MARKER}{digest}"


def is_hashed_id(entry_id: str, prefix: str) -> bool:
    """Whether ``entry_id`` is one of ours whose key had to be hashed (it cannot be mapped back)."""
    return entry_id.startswith(prefix + ID_MARKER)


def key_for_entry_id(entry_id: str, prefix: str) -> str | None:
    """The key a direct id was made from; None for a hashed id or an id without the prefix."""
    if not entry_id.startswith(prefix):
        return None
    tail = entry_id[len(prefix) :]
    if not tail or tail.startswith(ID_MARKER):
        return None
    return tail

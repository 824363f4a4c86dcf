"""Notion property values -> neutral values (for ``NotionSource`` and for reading keys back).

===================================  ==============================================================
Notion type                          neutral value
===================================  ==============================================================
title, rich_text                     str (the plain text of every element); None when empty
number                               int or float; None when empty
checkbox                             bool
select, status                       str (the option name); None when empty
multi_select                         list[str] of option names (``[]`` when empty)
date                                 ``datetime.date`` for a date, an aware ``datetime`` for a date-time
                                     (a naive one is placed in its ``time_zone``, else UTC); only the
                                     start of a range; None when empty
url, email, phone_number             str; None when empty
created_time, last_edited_time       aware datetime
created_by, last_edited_by           str (the user's name, else id)
people                               list[str] (names, else ids)
relation                             list[str] (page ids)
files                                list[str] (file names)
unique_id                            str (``PREFIX-12``, or ``12`` without a prefix)
formula                              its result: str, int/float, bool, date/datetime or None
rollup                               number, date, or for arrays a list[str] of the items' text
button, verification, anything else  skipped (not in the record)
===================================  ==============================================================
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "SKIP",
    "decode_date",
    "decode_properties",
    "decode_property",
    "parse_timestamp",
    "plain_text",
]

logger = logging.getLogger(__name__)


class _Skip:
    def __repr__(self) -> str:
        return "SKIP"


SKIP: Any = _Skip()
"""Returned by :func:`decode_property` for a value with no neutral form."""


def plain_text(rich: Sequence[Mapping[str, Any]] | None) -> str:
    """The text of a rich-text array (``plain_text`` of each element, else its ``text.content``)."""
    out = []
    for element in rich or []:
        text = element.get("plain_text")
        if text is None:
            text = (element.get("text") or {}).get("content", "")
        out.append(str(text))
    return "".join(out)


def parse_timestamp(text: str) -> dt.datetime:
    """An aware datetime from Notion's ISO 8601 timestamps (``2024-05-01T12:00:00.000Z``)."""
    value = dt.datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def decode_date(text: str | None, time_zone: str | None = None) -> dt.date | dt.datetime | None:
    """A date (``YYYY-MM-DD``) or an aware date-time (naive ones in ``time_zone``, else UTC)."""
    if not text:
        return None
    if len(text) <= 10:
        return dt.date.fromisoformat(text)
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        zone: dt.tzinfo = dt.UTC
        if time_zone:
            try:
                zone = ZoneInfo(time_zone)
            except (ZoneInfoNotFoundError, ValueError):
                logger.warning("Notion: unknown time zone %r; reading %s as UTC", time_zone, text)
        value = value.replace(tzinfo=zone)
    return value


def _user(user: Mapping[str, Any] | None) -> str | None:
    if not user:
        return None
    return str(user.get("name") or user.get("id") or "") or None


def _formula(value: Mapping[str, Any] | None) -> Any:
    if not value:
        return None
    kind = value.get("type")
    if kind == "date":
        date = value.get("date") or {}
        return decode_date(date.get("start"), date.get("time_zone"))
    if kind in ("string", "number", "boolean"):
        return value.get(kind)
    return SKIP


def _rollup_item_text(item: Mapping[str, Any]) -> str | None:
    decoded = decode_property(item)
    if decoded is SKIP or decoded is None:
        return None
    if isinstance(decoded, list):
        return ", ".join(decoded)
    if isinstance(decoded, (dt.date, dt.datetime)):
        return decoded.isoformat()
    return str(decoded)


def _rollup(value: Mapping[str, Any] | None) -> Any:
    if not value:
        return None
    kind = value.get("type")
    if kind == "number":
        return value.get("number")
    if kind == "date":
        date = value.get("date") or {}
        return decode_date(date.get("start"), date.get("time_zone"))
    if kind == "array":
        texts = [_rollup_item_text(item) for item in value.get("array") or []]
        return [t for t in texts if t is not None]
    return SKIP


def _text(raw: Any) -> str | None:
    return plain_text(raw) or None


def _checkbox(raw: Any) -> bool:
    return bool(raw)


def _scalar(raw: Any) -> Any:
    return raw if raw != "" else None


def _option(raw: Any) -> str | None:
    return str(raw["name"]) if raw else None


def _options(raw: Any) -> list[str]:
    return [str(o["name"]) for o in raw or []]


def _date(raw: Any) -> dt.date | dt.datetime | None:
    return decode_date(raw.get("start"), raw.get("time_zone")) if raw else None


def _timestamp(raw: Any) -> dt.datetime | None:
    return parse_timestamp(raw) if raw else None


def _people(raw: Any) -> list[str]:
    return [name for name in (_user(u) for u in raw or []) if name]


def _relation(raw: Any) -> list[str]:
    return [str(r["id"]) for r in raw or [] if r.get("id")]


def _files(raw: Any) -> list[str]:
    return [str(f.get("name") or (f.get(f.get("type", "")) or {}).get("url") or "") for f in raw or []]


def _unique_id(raw: Any) -> str | None:
    if not raw or raw.get("number") is None:
        return None
    prefix = raw.get("prefix")
    return f"{prefix}-{raw['number']}" if prefix else str(raw["number"])


# Property type -> decoder of its value (the object under the type's name); see the module docstring.
_DECODERS: dict[str, Callable[[Any], Any]] = {
    "title": _text,
    "rich_text": _text,
    "number": _scalar,
    "checkbox": _checkbox,
    "url": _scalar,
    "email": _scalar,
    "phone_number": _scalar,
    "select": _option,
    "status": _option,
    "multi_select": _options,
    "date": _date,
    "created_time": _timestamp,
    "last_edited_time": _timestamp,
    "created_by": _user,
    "last_edited_by": _user,
    "people": _people,
    "relation": _relation,
    "files": _files,
    "unique_id": _unique_id,
    "formula": _formula,
    "rollup": _rollup,
}


def decode_property(value: Mapping[str, Any]) -> Any:
    """The neutral value of one page property value object (``{"id", "type", <type>: ...}``).

    Returns ``SKIP`` for types with no neutral form.
    """
    kind = value.get("type")
    if not isinstance(kind, str) or kind not in _DECODERS:
        return SKIP
    return _DECODERS[kind](value.get(kind))


def decode_properties(properties: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Neutral values of a page's ``properties`` (types with no neutral form left out)."""
    out: dict[str, Any] = {}
    for name, value in properties.items():
        try:
            decoded = decode_property(value)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            # One odd value (a format Notion added later) must not lose the whole page.
            logger.warning("Notion: cannot decode property %r (%s): %s", name, value.get("type"), err)
            continue
        if decoded is not SKIP:
            out[name] = decoded
    return out

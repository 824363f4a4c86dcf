"""Neutral values to Asana task fields and custom field values. Pure functions, no I/O.

Every encoder raises :class:`EncodeError` (a ``ValueError``) with a message that names the field and
the value; the destination turns it into a ``RecordError`` for that record. Users (``assignee``, people
fields) need the API to resolve an email to a gid, so the destination resolves them itself.

=================  ==================================================  ===========================
Target             Neutral values accepted                             ``None``
=================  ==================================================  ===========================
``name``           str; int/float/date/datetime as text                ``""``
``notes``          str (the record body, or a mapped property)         not sent (kept)
``html_notes``     str, XML-escaped inside ``<body>``                  not sent (kept)
``due_on/due_at``  date -> ``due_on``; aware datetime -> ``due_at``    clears the due date
``start_on``       date (ISO date text too)                            clears
``completed``      bool                                                ``false``
text field         str; int/float/date/datetime as text                clears
number field       int, float (not bool)                               clears
enum field         str: an enabled option's NAME                       clears
multi_enum field   list[str] (or one str) of enabled option NAMES      clears (``[]``)
date field         date -> ``{"date"}``; datetime -> ``{"date_time"}``  clears
=================  ==================================================  ===========================
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape

from connectors.http import Json

__all__ = [
    "WRITABLE_KINDS",
    "EncodeError",
    "encode_completed",
    "encode_custom_value",
    "encode_due",
    "encode_start",
    "field_kind",
    "find_option",
    "format_datetime",
    "render_text",
    "to_html_notes",
    "unwritable_reason",
]

# Characters XML 1.0 forbids (html_notes must be well-formed XML): C0 controls but tab/LF/CR,
# surrogates, U+FFFE/U+FFFF.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_MAX_LISTED_OPTIONS = 20


class EncodeError(ValueError):
    """A value does not fit its target; the message says which and why."""


def field_kind(field: Mapping[str, Any]) -> str:
    """The custom field's type (``resource_subtype``; the deprecated ``type`` as a fallback)."""
    return str(field.get("resource_subtype") or field.get("type") or "")


def unwritable_reason(field: Mapping[str, Any]) -> str | None:
    """Why values of this custom field cannot be written, or None when they can."""
    if field.get("is_formula_field") or field.get("is_value_read_only"):
        return "its value is computed by Asana (formula or read-only field)"
    kind = field_kind(field)
    if kind not in WRITABLE_KINDS:
        return f"it is a {kind or 'unknown'} field, which this destination does not write"
    return None


def format_datetime(value: dt.datetime) -> str:
    """An aware datetime as Asana writes them: UTC, milliseconds, ``Z``."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise EncodeError(f"datetime {value.isoformat()} has no timezone")
    utc = value.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _type_name(value: Any) -> str:
    return type(value).__name__


def render_text(value: Any, target: str) -> str:
    """A scalar as text (str as is, numbers, dates and datetimes in ISO form)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, list, tuple)):
        raise EncodeError(f"{target}: a {_type_name(value)} does not fit a text field")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise EncodeError(f"{target}: {value!r} is not a finite number")
        return repr(value)
    if isinstance(value, dt.datetime):
        return format_datetime(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    raise EncodeError(f"{target}: unsupported type {_type_name(value)}")


def to_html_notes(text: str) -> str:
    """Plain text as Asana rich text: characters XML forbids dropped, ``& < >`` escaped, in ``<body>``.

    Line breaks are kept as they are (Asana's rich text keeps newlines in text).
    """
    return f"<body>{escape(_XML_INVALID.sub('', text))}</body>"


def _parse_date(text: str, target: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise EncodeError(f"{target}: {text!r} is not an ISO date (YYYY-MM-DD)") from None


def _parse_when(text: str, target: str) -> dt.date | dt.datetime:
    """An ISO date, or an ISO datetime with an offset (naive ones are refused)."""
    stripped = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", stripped):
        return _parse_date(stripped, target)
    try:
        when = dt.datetime.fromisoformat(stripped.replace("Z", "+00:00"))
    except ValueError:
        raise EncodeError(f"{target}: {text!r} is not an ISO date or datetime") from None
    if when.tzinfo is None:
        raise EncodeError(f"{target}: datetime {text!r} has no timezone")
    return when


def encode_due(value: Any, target: str = "due date") -> Json:
    """``due_on`` for a date, ``due_at`` for an aware datetime; None clears the due date."""
    if value is None:
        return {"due_on": None}
    if isinstance(value, str):
        value = _parse_when(value, target)
    if isinstance(value, dt.datetime):
        return {"due_at": format_datetime(value)}
    if isinstance(value, dt.date):
        return {"due_on": value.isoformat()}
    raise EncodeError(f"{target}: a {_type_name(value)} is not a date or datetime")


def encode_start(value: Any, target: str = "start_on") -> str | None:
    """``start_on`` takes a date (Asana's start date has no time when the task has a due date)."""
    if value is None:
        return None
    if isinstance(value, str):
        return _parse_date(value, target).isoformat()
    if isinstance(value, dt.datetime):
        raise EncodeError(f"{target}: takes a date, got a datetime ({value.isoformat()})")
    if isinstance(value, dt.date):
        return value.isoformat()
    raise EncodeError(f"{target}: a {_type_name(value)} is not a date")


def encode_completed(value: Any, target: str = "completed") -> bool:
    """The ``completed`` value of a task from a record value (a boolean or its text)."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    raise EncodeError(f"{target}: takes a bool, got a {_type_name(value)} ({value!r})")


def find_option(field: Mapping[str, Any], name: str) -> str:
    """The gid of the enabled option called ``name`` (exact, else the only case-insensitive match).

    Raises:
        EncodeError: No such option, several case-insensitive matches, or the option is disabled.
    """
    field_name = field.get("name", "?")
    options = [o for o in field.get("enum_options") or [] if isinstance(o, dict)]
    matches = [o for o in options if o.get("name") == name]
    if not matches:
        folded = name.casefold()
        matches = [o for o in options if str(o.get("name", "")).casefold() == folded]
        if len(matches) > 1:
            raise EncodeError(f"custom field {field_name!r}: option {name!r} matches several options by case")
    if not matches:
        enabled = [str(o.get("name")) for o in options if o.get("enabled", True)]
        shown = ", ".join(repr(n) for n in enabled[:_MAX_LISTED_OPTIONS])
        more = f" and {len(enabled) - _MAX_LISTED_OPTIONS} more" if len(enabled) > _MAX_LISTED_OPTIONS else ""
        raise EncodeError(
            f"custom field {field_name!r} has no option {name!r} (options: {shown or 'none'}{more}); add it in "
            "Asana or transform the value"
        )
    option = matches[0]
    if not option.get("enabled", True):
        raise EncodeError(
            f"custom field {field_name!r}: option {option.get('name')!r} is disabled in Asana; enable it or "
            "transform the value"
        )
    return str(option["gid"])


def _encode_text(field: Mapping[str, Any], value: Any, target: str) -> Any:
    return None if value is None else render_text(value, target)


def _encode_number(field: Mapping[str, Any], value: Any, target: str) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EncodeError(f"{target}: takes a number, got a {_type_name(value)} ({value!r})")
    if isinstance(value, float) and not math.isfinite(value):
        raise EncodeError(f"{target}: {value!r} is not a finite number")
    return value


def _encode_enum(field: Mapping[str, Any], value: Any, target: str) -> Any:
    if value is None:
        return None
    if not isinstance(value, str):
        raise EncodeError(f"{target}: takes an option name (str), got a {_type_name(value)} ({value!r})")
    return find_option(field, value)


def _encode_multi_enum(field: Mapping[str, Any], value: Any, target: str) -> Any:
    if value is None:
        return []
    names: Sequence[Any] = [value] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise EncodeError(f"{target}: takes a list of option names, got a {_type_name(value)}")
    gids: list[str] = []
    for name in names:
        gid = find_option(field, name)
        if gid not in gids:
            gids.append(gid)
    return gids


def _encode_date(field: Mapping[str, Any], value: Any, target: str) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        value = _parse_when(value, target)
    if isinstance(value, dt.datetime):
        return {"date_time": format_datetime(value)}
    if isinstance(value, dt.date):
        return {"date": value.isoformat()}
    raise EncodeError(f"{target}: takes a date or datetime, got a {_type_name(value)} ({value!r})")


# One encoder per custom field kind; people fields are resolved by the destination (email -> gid).
_CUSTOM_ENCODERS: dict[str, Callable[[Mapping[str, Any], Any, str], Any]] = {
    "text": _encode_text,
    "number": _encode_number,
    "enum": _encode_enum,
    "multi_enum": _encode_multi_enum,
    "date": _encode_date,
}

# The kinds a destination can write: those with an encoder, and people (resolved by the destination).
WRITABLE_KINDS = frozenset(_CUSTOM_ENCODERS) | {"people"}


def encode_custom_value(field: Mapping[str, Any], value: Any) -> Any:
    """The value of ``custom_fields[<gid>]`` for a neutral value (people fields excepted).

    Raises:
        EncodeError: The value does not fit the field's type, or names an option that is missing or
            disabled.
    """
    kind = field_kind(field)
    target = f"custom field {field.get('name', '?')!r} ({kind})"
    encoder = _CUSTOM_ENCODERS.get(kind)
    if encoder is None:
        raise EncodeError(f"{target}: values of this type are not written")
    return encoder(field, value, target)

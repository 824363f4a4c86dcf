"""Neutral-value helpers shared by the files connectors (kinds, ISO text, string limits)."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from connectors.core import InvalidValue, RecordError

__all__ = [
    "InvalidCell",
    "check_value_lengths",
    "flat_row",
    "invalid_cell",
    "iso_datetime",
    "neutral_kind",
    "parse_iso_datetime",
]

_MAX_SHOWN = 60
"""Characters of a bad cell's raw value quoted in its message (a cell may be a whole paragraph)."""


class InvalidCell(InvalidValue):
    """A cell that did not convert to its declared type, standing in for its value in the record.

    It is deliberately not a neutral value: the engine's ``validate_record`` rejects the record that
    holds one, so the record becomes a failed outcome (stored, retried on later passes) and the rest
    of the page is written. Passing the raw text on instead would let a typed destination take it as
    the first value of a column, and a fixed cell would then be refused by the column it typed.

    The engine's message is ``message`` (``property 'due': 'soon' is not a date (...)``); there is one
    subclass per declared type, named after it, and the destinations use ``message`` too when they
    are called directly.

    Attributes:
        type_name: The declared type the cell failed (``date``).
        raw: The value as read (the CSV text, or the JSON value).
        reason: Why it did not convert.
    """

    __slots__ = ("raw", "reason", "type_name")

    def __init__(self, type_name: str, raw: Any, reason: str) -> None:
        self.type_name = type_name
        self.raw = raw
        self.reason = reason

    @property
    def message(self) -> str:
        shown = repr(self.raw)
        if len(shown) > _MAX_SHOWN:
            shown = shown[: _MAX_SHOWN - 3] + "..."
        return f"{shown} is not {_article(self.type_name)} {self.type_name} ({self.reason})"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.raw!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, InvalidCell) and (self.type_name, self.raw, self.reason) == (
            other.type_name,
            other.raw,
            other.reason,
        )

    __hash__ = None  # type: ignore[assignment]


_INVALID_CELL_TYPES: dict[str, type[InvalidCell]] = {}


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def invalid_cell(type_name: str, raw: Any, reason: str) -> InvalidCell:
    """The ``InvalidCell`` of a ``type_name`` cell (an instance of ``NotADate``, ``NotAnInt``, ...)."""
    cls = _INVALID_CELL_TYPES.get(type_name)
    if cls is None:
        name = f"Not{_article(type_name).capitalize()}{type_name.capitalize()}"
        cls = type(name, (InvalidCell,), {"__slots__": ()})
        _INVALID_CELL_TYPES[type_name] = cls
    return cls(type_name, raw, reason)


def neutral_kind(name: str, value: Any, *, primary_key: str | None = None) -> str | None:
    """The neutral kind of ``value``: ``bool``, ``int``, ``float``, ``str``, ``date``, ``datetime``, ``list``.

    Returns None for None. Destinations call it before writing so a non-neutral value becomes a
    ``RecordError`` for that record instead of a corrupt row.

    Raises:
        RecordError: ``value`` is not a neutral value (a dict, a NaN, a naive datetime, ...).
    """
    if value is None:
        return None
    if isinstance(value, InvalidCell):
        raise RecordError(f"property {name!r}: {value.message}", primary_key=primary_key)
    # bool before int: True is an int to isinstance, but a different kind to every destination.
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RecordError(f"property {name!r}: {value!r} is not a finite number", primary_key=primary_key)
        return "float"
    if isinstance(value, str):
        return "str"
    # datetime before date: a datetime is a date to isinstance.
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise RecordError(
                f"property {name!r}: datetime {value.isoformat()} has no timezone", primary_key=primary_key
            )
        return "datetime"
    if isinstance(value, dt.date):
        return "date"
    if isinstance(value, (list, tuple)):
        for item in value:
            if not isinstance(item, str):
                raise RecordError(
                    f"property {name!r}: list items must be strings, got {type(item).__name__}",
                    primary_key=primary_key,
                )
        return "list"
    raise RecordError(
        f"property {name!r}: unsupported type {type(value).__name__} (neutral types only)",
        primary_key=primary_key,
    )


def check_value_lengths(
    properties: dict[str, Any], max_value_length: int | None, *, primary_key: str | None = None
) -> None:
    """Raise ``RecordError`` when a string (or a list item) is longer than ``max_value_length``."""
    if max_value_length is None:
        return
    for name, value in properties.items():
        texts = value if isinstance(value, (list, tuple)) else [value]
        for text in texts:
            if isinstance(text, str) and len(text) > max_value_length:
                raise RecordError(
                    f"property {name!r}: {len(text)} characters, longer than the limit of {max_value_length}",
                    primary_key=primary_key,
                )


def iso_datetime(value: dt.datetime) -> str:
    """ISO 8601 text of an aware datetime; a naive one is taken as UTC (engine timestamps are aware)."""
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.isoformat()


def parse_iso_datetime(text: str) -> dt.datetime:
    """The aware datetime of ISO 8601 ``text``; naive text is taken as UTC."""
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=dt.UTC)
    return value


def flat_row(fixed: dict[str, Any], properties: dict[str, Any]) -> dict[str, Any]:
    """One dict of a row's fixed fields and its properties, for the ``read_rows`` helpers.

    A property named like a fixed field (a source column called ``id``, say) is kept under
    ``"property:<name>"`` rather than hiding the field or being hidden by it.
    """
    row = dict(fixed)
    for name, value in properties.items():
        row[f"property:{name}" if name in fixed else name] = value
    return row

"""Neutral-value helpers shared by the files connectors (kinds, ISO text, string limits)."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from connectors.core import RecordError

__all__ = ["check_value_lengths", "flat_row", "iso_datetime", "neutral_kind", "parse_iso_datetime"]


def neutral_kind(name: str, value: Any, *, primary_key: str | None = None) -> str | None:
    """The neutral kind of ``value``: ``bool``, ``int``, ``float``, ``str``, ``date``, ``datetime``, ``list``.

    Returns None for None. Destinations call it before writing so a non-neutral value becomes a
    ``RecordError`` for that record instead of a corrupt row.

    Raises:
        RecordError: ``value`` is not a neutral value (a dict, a NaN, a naive datetime, ...).
    """
    if value is None:
        return None
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

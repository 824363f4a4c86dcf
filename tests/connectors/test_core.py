"""The contract module: auth classification, error descriptions, neutral types, the registry."""

from __future__ import annotations

import datetime as dt

import pytest

from connectors.core import (
    AuthError,
    DestinationHTTPError,
    RateLimited,
    Record,
    auth_error_in_chain,
    describe_error,
    neutral_type_error,
)
from connectors.registry import destination_names, discover, load_destination, load_source, source_names


@pytest.mark.parametrize(
    ("err", "expected"),
    [
        (DestinationHTTPError(401, "Notion POST /v1/pages -> 401: unauthorized"), True),
        (DestinationHTTPError(403, "forbidden"), True),
        (DestinationHTTPError(422, "field 403 is invalid"), False),  # a status beats the body
        (DestinationHTTPError(500, "upstream said 401"), False),
        (RuntimeError("token 1234-401e-abcd not found"), False),  # no word-boundary match in a UUID
        (RuntimeError("HTTP 401 from server"), True),
        (RuntimeError("invalid_grant: OAuth grant revoked"), True),
        (RateLimited("GitHub 403 rate limit", retry_after=60), False),
        (AuthError("revoked"), True),
    ],
)
def test_auth_error_in_chain(err, expected):
    assert auth_error_in_chain(err) is expected


def test_auth_error_found_through_cause_and_groups():
    try:
        try:
            raise DestinationHTTPError(401, "nope")
        except DestinationHTTPError as inner:
            raise RuntimeError("wrapper") from inner
    except RuntimeError as outer:
        assert auth_error_in_chain(outer)
    group = ExceptionGroup("many", [ValueError("x"), RuntimeError("Asana: not authorized")])
    assert not auth_error_in_chain(group)
    assert auth_error_in_chain(group, extra_needles=("not authorized",))


def test_describe_error_unwraps_groups_and_dedupes():
    assert describe_error(None) == "unknown error"
    group = ExceptionGroup("g", [ExceptionGroup("inner", [ValueError("bad")]), ValueError("bad")])
    assert describe_error(group) == "ValueError: bad"
    assert describe_error(AuthError("token revoked")) == "token revoked"


def test_neutral_types():
    ok = ["s", 1, 1.5, True, None, ["a"], dt.date(2024, 1, 1), dt.datetime(2024, 1, 1, tzinfo=dt.UTC)]
    assert all(neutral_type_error("p", v) is None for v in ok)
    assert "no timezone" in neutral_type_error("p", dt.datetime(2024, 1, 1))
    assert "unsupported type dict" in neutral_type_error("p", {"a": 1})


def test_record_is_durable_sync_compatible():
    r = Record("1", {"a": 1})
    assert (r.primary_key, r.properties, r.body) == ("1", {"a": 1}, None)


def test_registry_discovers_entry_points():
    assert "files" in source_names()
    assert {"sqlite", "jsonl"} <= set(destination_names())
    assert load_source("files").__name__ == "FilesSource"
    assert load_destination("sqlite").__name__ == "SQLiteDestination"
    with pytest.raises(LookupError, match="installed: "):
        load_source("nope")
    info = {i.name: i for i in discover()}
    assert info["files"].kinds == "source"
    assert info["files"].distribution == "durable-sync-dagster"

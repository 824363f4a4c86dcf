"""Pure functions of the Notion connector: text splitting, body chunking, values, decoding, schema."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from connectors.core import ConfigError, Record, RecordError
from connectors.notion.decode import SKIP, decode_date, decode_properties, decode_property
from connectors.notion.encode import (
    BODY,
    body_blocks,
    chunk_blocks,
    date_value,
    encode_properties,
    encode_value,
    payload_size,
    split_text,
    utf16_len,
)
from connectors.notion.schema import Kind, Role, infer_schema, schema_to_properties
from connectors.notion.settings import MAX_RICH_TEXT_CHARS, PAYLOAD_BUDGET_BYTES

SCHEMA = {
    "T": {"id": "title", "name": "T", "type": "title", "title": {}},
    "S": {"id": "s", "name": "S", "type": "select", "select": {"options": [{"name": "a"}]}},
    "St": {"id": "st", "name": "St", "type": "status", "status": {"options": [{"name": "Done"}]}},
    "P": {"id": "p", "name": "P", "type": "people", "people": {}},
    "F": {"id": "f", "name": "F", "type": "formula", "formula": {"expression": "1"}},
}


def test_split_text_never_cuts_an_astral_character_in_half():
    text = "a" + "🚀" * 1500
    pieces, truncated = split_text(text)
    assert not truncated and "".join(pieces) == text
    assert all(utf16_len(p) <= MAX_RICH_TEXT_CHARS for p in pieces)
    assert utf16_len(pieces[0]) == 1999  # the next rocket would straddle the limit


def test_split_text_keeps_at_most_100_pieces():
    pieces, truncated = split_text("z" * 200_001)
    assert truncated and len(pieces) == 100


def test_body_blocks_keep_paragraphs_and_lines():
    blocks, truncation = body_blocks("first line\nsame paragraph\n\n\n  \nsecond")
    assert truncation is None
    texts = [[e["text"]["content"] for e in b["paragraph"]["rich_text"]] for b in blocks]
    assert texts == [["first line\nsame paragraph"], ["second"]]


def test_body_blocks_truncate_a_giant_body_and_report_it():
    blocks, truncation = body_blocks("w" * 1_200_000)
    assert truncation is not None and truncation.property == BODY
    assert (truncation.original, truncation.kept) == (1_200_000, 1_000_000)
    assert sum(len(e["text"]["content"]) for b in blocks for e in b["paragraph"]["rich_text"]) == 1_000_000


def test_chunk_blocks_respects_counts_and_bytes():
    blocks, _ = body_blocks("\n\n".join("q" * 1000 for _ in range(900)))
    chunks = chunk_blocks(blocks, first_budget=10_000)
    assert sum(len(c) for c in chunks) == 900
    assert all(len(c) <= 100 for c in chunks)
    assert payload_size(chunks[0]) <= 10_000
    assert all(payload_size(c) <= PAYLOAD_BUDGET_BYTES for c in chunks)


def test_chunk_blocks_may_leave_the_create_without_children():
    blocks, _ = body_blocks("q" * 5000)
    first, *rest = chunk_blocks(blocks, first_budget=100)
    assert first == [] and len(rest) == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (dt.date(2024, 2, 29), {"start": "2024-02-29"}),
        (dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC), {"start": "2024-05-01T12:00:00+00:00"}),
        (
            dt.datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
            {"start": "2024-05-01T12:00:00.123-05:00"},
        ),
        ("2024-05-01", {"start": "2024-05-01"}),
        ("2024-05-01T12:00:00Z", {"start": "2024-05-01T12:00:00+00:00"}),
        ("", None),
        (None, None),
    ],
)
def test_date_values(value, expected):
    assert date_value("D", value) == expected


@pytest.mark.parametrize("value", ["tomorrow", "2024-13-01", "2024-05-01T12:00:00", 3, ["2024-05-01"], True])
def test_date_values_that_are_no_dates(value):
    with pytest.raises(RecordError, match="'D'"):
        date_value("D", value)


def test_status_options_are_never_created():
    with pytest.raises(RecordError, match="only be added in Notion"):
        encode_value("St", SCHEMA["St"], "Blocked", create_missing_options=True)
    assert encode_value("St", SCHEMA["St"], "Done") == ({"status": {"name": "Done"}}, [], [])


def test_multi_select_over_100_options_is_truncated_and_reported():
    prop = {"type": "multi_select", "multi_select": {"options": []}}
    value, truncations, new = encode_value("M", prop, [f"o{i}" for i in range(120)], create_missing_options=True)
    assert len(value["multi_select"]) == 100 and len(new) == 100
    assert truncations[0].unit == "options" and truncations[0].original == 120


def test_encode_properties_drops_unknown_and_unwritable_properties():
    encoded = encode_properties({"T": "x", "P": ["ann"], "F": 1, "Nope": 2, "S": "a"}, SCHEMA)
    assert set(encoded.properties) == {"T", "S"}
    assert dict(encoded.dropped).keys() == {"P", "F", "Nope"}
    assert "computed by Notion" in dict(encoded.dropped)["F"]


def test_decode_every_kind_of_property_value():
    props: dict[str, dict[str, Any]] = {
        "f": {"type": "formula", "formula": {"type": "number", "number": 3}},
        "fd": {"type": "formula", "formula": {"type": "date", "date": {"start": "2024-05-01"}}},
        "r": {
            "type": "rollup",
            "rollup": {"type": "array", "array": [{"type": "title", "title": [{"plain_text": "a"}]}]},
        },
        "p": {"type": "people", "people": [{"id": "u1", "name": "Ann"}, {"id": "u2"}]},
        "rel": {"type": "relation", "relation": [{"id": "p1"}]},
        "u": {"type": "unique_id", "unique_id": {"prefix": "TASK", "number": 12}},
        "d": {"type": "date", "date": {"start": "2024-05-01T12:00:00.000", "time_zone": "Europe/Berlin"}},
        "b": {"type": "button", "button": {}},
        "t": {"type": "title", "title": []},
    }
    decoded = decode_properties(props)
    assert decoded["f"] == 3 and decoded["fd"] == dt.date(2024, 5, 1)
    assert decoded["r"] == ["a"] and decoded["p"] == ["Ann", "u2"] and decoded["rel"] == ["p1"]
    assert decoded["u"] == "TASK-12"
    assert decoded["d"].utcoffset() == dt.timedelta(hours=2)
    assert "b" not in decoded and decoded["t"] is None
    assert decode_property({"type": "verification", "verification": {}}) is SKIP
    assert decode_date("2024-05-01T12:00:00.000Z") == dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)


def test_infer_schema_follows_durable_sync_rules():
    records = [
        Record(
            "1",
            {
                "Name": "a",
                "stars": 1,
                "ok": True,
                "tags": ["x"],
                "at": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
                "day": dt.date(2024, 1, 1),
                "empty": None,
                "mixed": 1,
            },
        ),
        Record("2", {"Name": "b", "stars": 2.5, "ok": False, "tags": ["y", "x"], "mixed": "one", "home": "https://x"}),
    ]
    schema = infer_schema(
        records, title="Name", key="Key", synced="Synced", overrides={"home": "URL", "extra": "select"}
    )
    by = schema.by_name()
    assert [c.name for c in schema] == [
        "Name",
        "Key",
        "stars",
        "ok",
        "tags",
        "at",
        "day",
        "mixed",
        "home",
        "extra",
        "Synced",
    ]
    assert by["Name"].role is Role.TITLE and by["Key"].kind is Kind.TEXT
    assert by["stars"].kind is Kind.NUMBER and by["ok"].kind is Kind.CHECKBOX
    assert by["tags"].kind is Kind.MULTI_SELECT and by["tags"].options == ("x", "y")
    assert by["at"].kind is Kind.DATE and by["at"].has_time and not by["day"].has_time
    assert by["mixed"].kind is Kind.TEXT and by["home"].kind is Kind.URL and by["extra"].kind is Kind.SELECT
    assert by["Synced"].kind is Kind.DATE and by["Synced"].role is Role.SYNCED
    assert "empty" not in by
    properties = schema_to_properties(schema)
    assert properties["Name"] == {"title": {}} and properties["Key"] == {"rich_text": {}}
    assert properties["tags"] == {"multi_select": {"options": [{"name": "x"}, {"name": "y"}]}}
    assert properties["home"] == {"url": {}}
    with pytest.raises(ValueError, match="unknown column kind"):
        infer_schema(records, title="Name", overrides={"x": "blob"})


def test_schema_without_a_title_cannot_become_a_database():
    schema = infer_schema([], title="Name")
    object.__setattr__(schema, "columns", tuple(c for c in schema if c.role is not Role.TITLE))
    with pytest.raises(ConfigError, match="title"):
        schema_to_properties(schema)

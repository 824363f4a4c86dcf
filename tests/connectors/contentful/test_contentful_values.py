"""encode.py / decode.py: neutral values <-> Contentful field values, and keys <-> entry ids (pure)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from connectors.contentful import (
    ContentTypeSpec,
    FieldSpec,
    decode_value,
    encode_fields,
    encode_value,
    entry_id_for,
    key_for_entry_id,
    merge_fields,
    pick_locale,
    rich_text_plain,
)
from connectors.contentful.encode import check_prefix, is_hashed_id
from connectors.core import ConfigError, RecordError

UTC = dt.UTC
PLUS2 = dt.timezone(dt.timedelta(hours=2))


def spec(kind: str, **extra: Any) -> FieldSpec:
    if kind.startswith("Array<"):
        items = kind[6:-1]
        return FieldSpec("f", "F", "Array", items_type=items, link_type=extra.get("link_type"))
    return FieldSpec("f", "F", kind, **extra)


@pytest.mark.parametrize(
    ("kind", "value", "expected", "decoded"),
    [
        ("Symbol", "hello", "hello", "hello"),
        ("Symbol", 12, "12", "12"),
        ("Symbol", True, "true", "true"),
        ("Symbol", dt.date(2024, 5, 1), "2024-05-01", "2024-05-01"),
        ("Symbol", ["a", "b"], "a, b", "a, b"),
        ("Text", "line\nline", "line\nline", "line\nline"),
        ("Integer", 7, 7, 7),
        ("Integer", 7.0, 7, 7),
        ("Number", 1.5, 1.5, 1.5),
        ("Number", 2, 2, 2.0),
        ("Boolean", False, False, False),
        ("Date", dt.date(2024, 5, 1), "2024-05-01", dt.date(2024, 5, 1)),
        (
            "Date",
            dt.datetime(2024, 5, 1, 9, 30, tzinfo=PLUS2),
            "2024-05-01T09:30:00+02:00",
            dt.datetime(2024, 5, 1, 9, 30, tzinfo=PLUS2),
        ),
        (
            "Date",
            dt.datetime(2024, 5, 1, 9, 30, 0, 250_000, tzinfo=UTC),
            "2024-05-01T09:30:00.250+00:00",
            dt.datetime(2024, 5, 1, 9, 30, 0, 250_000, tzinfo=UTC),
        ),
        ("Date", "2024-05-01T09:30Z", "2024-05-01T09:30Z", dt.datetime(2024, 5, 1, 9, 30, tzinfo=UTC)),
        ("Array<Symbol>", ["x", "y"], ["x", "y"], ["x", "y"]),
        ("Array<Symbol>", "x", ["x"], ["x"]),
        ("Array<Symbol>", [], [], []),
    ],
)
def test_values_encode_by_field_type_and_decode_back(kind: str, value: Any, expected: Any, decoded: Any):
    field = spec(kind)
    encoded = encode_value(field, value)
    assert encoded == expected and type(encoded) is type(expected)
    back = decode_value(field, encoded)
    assert back == decoded and type(back) is type(decoded)


def test_links_encode_ids_and_decode_back():
    link = spec("Link", link_type="Asset")
    assert encode_value(link, "img-1") == {"sys": {"type": "Link", "linkType": "Asset", "id": "img-1"}}
    links = spec("Array<Link>", link_type="Entry")
    encoded = encode_value(links, ["a", "b"])
    assert [v["sys"]["id"] for v in encoded] == ["a", "b"] and decode_value(links, encoded) == ["a", "b"]
    assert decode_value(link, encode_value(link, "img-1")) == "img-1"


def test_rich_text_is_a_document_of_paragraphs_and_reads_back_as_text():
    field = spec("RichText")
    document = encode_value(field, "First para\nstill first\n\nSecond")
    assert document["nodeType"] == "document" and len(document["content"]) == 2
    assert rich_text_plain(document) == "First para\nstill first\n\nSecond"
    assert decode_value(field, document) == "First para\nstill first\n\nSecond"


@pytest.mark.parametrize(
    ("kind", "value", "match"),
    [
        ("Symbol", "x" * 257, "257 characters, over the limit of 256"),
        ("Text", "x" * 50_001, "over the limit of 50000"),
        ("Symbol", {"a": 1}, "cannot write a dict"),
        ("Integer", 1.5, "whole number"),
        ("Integer", True, "whole number"),
        ("Integer", "12", "whole number"),
        ("Integer", 2**53 + 1, "beyond"),
        ("Number", float("nan"), "needs a number"),
        ("Number", False, "needs a number"),
        ("Boolean", "yes", "true or false"),
        ("Date", "yesterday", "not a date"),
        ("Date", dt.datetime(2024, 5, 1, 9, 30), "no timezone"),
        ("Date", 20240501, "not a date"),
        ("Array<Symbol>", [1, 2], "list of strings"),
        ("Array<Symbol>", ["x" * 300], "an item of 300 characters"),
        ("Link", "not an id!", "not a Contentful id"),
        ("RichText", 3, "needs text"),
        ("Location", "52,13", "cannot be written"),
    ],
)
def test_values_that_do_not_fit_are_record_errors(kind: str, value: Any, match: str):
    with pytest.raises(RecordError, match=match) as raised:
        encode_value(spec(kind), value, name="Prop", primary_key="k1")
    assert raised.value.primary_key == "k1" and "'Prop'" in str(raised.value)


def test_none_removes_only_the_written_locale_and_merge_keeps_everything_else():
    fields = {
        "title": FieldSpec("title", "Title", "Symbol", localized=True),
        "views": FieldSpec("views", "Views", "Integer"),
    }
    content_type = ContentTypeSpec("article", "Article", "title", fields)
    encoded = encode_fields(
        {"Title": None, "Views": 3, "Other": "x"}, {"Title": "title", "Views": "views"}, content_type
    )
    assert encoded == {"title": None, "views": 3}
    current = {"title": {"en-US": "Old", "de-DE": "Alt"}, "human": {"en-US": "kept"}}
    merged = merge_fields(current, encoded, {"title": "en-US", "views": "en-US"})
    assert merged == {"title": {"de-DE": "Alt"}, "human": {"en-US": "kept"}, "views": {"en-US": 3}}
    assert current["title"] == {"en-US": "Old", "de-DE": "Alt"}  # not mutated
    assert merge_fields({"title": {"en-US": "x"}}, {"title": None}, {"title": "en-US"}) == {}
    with pytest.raises(ConfigError, match="no field 'nope'"):
        encode_fields({"A": 1}, {"A": "nope"}, content_type)


def test_pick_locale_falls_back_in_order_then_to_the_first_present():
    assert pick_locale({"en-US": "a", "de-DE": "b"}, ["de-DE", "en-US"]) == "b"
    assert pick_locale({"fr-FR": "c"}, ["de-DE", "en-US"]) == "c"
    assert pick_locale({}, ["en-US"]) is pick_locale(None, ["en-US"])


@pytest.mark.parametrize(
    ("key", "prefix", "entry_id", "inverse"),
    [
        ("12345", "ds-", "ds-12345", "12345"),
        ("acme_widgets-2.0", "gh-", "gh-acme_widgets-2.0", "acme_widgets-2.0"),
        (
            "1a2b3c4d-0000-4000-8000-000000000000",
            "",
            "1a2b3c4d-0000-4000-8000-000000000000",
            "1a2b3c4d-0000-4000-8000-000000000000",
        ),
        ("acme/widgets", "ds-", None, None),  # "/" cannot be in an id: hashed
        ("x" * 62, "ds-", None, None),  # too long with the prefix: hashed
        (".hidden", "ds-", None, None),  # would look like a hashed id: hashed
        ("über", "ds-", None, None),
    ],
)
def test_entry_ids_are_deterministic_valid_and_invertible_when_direct(key, prefix, entry_id, inverse):
    made = entry_id_for(key, prefix)
    assert made == entry_id_for(key, prefix)  # the same key, the same id: a retried create cannot duplicate
    assert 1 <= len(made) <= 64 and all(c.isalnum() or c in "._-" for c in made) and made.isascii()
    if entry_id is not None:
        assert made == entry_id and not is_hashed_id(made, prefix)
        assert key_for_entry_id(made, prefix) == inverse
    else:
        assert made.startswith(prefix + ".") and len(made) == len(prefix) + 41 and is_hashed_id(made, prefix)
        assert key_for_entry_id(made, prefix) is None
    assert key_for_entry_id("5KsDBWseXY6QegucYAoacS", "ds-") is None  # not one of ours


def test_prefixes_are_checked():
    assert check_prefix("") == "" and check_prefix("gh.repo-") == "gh.repo-"
    for bad in ("has space", ".x", "x" * 21, "ü-"):
        with pytest.raises(ConfigError):
            check_prefix(bad)

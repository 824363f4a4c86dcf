"""ADF <-> text: what a Jira description reads as, and what a record body is written as."""

from __future__ import annotations

from connectors.jira import adf_to_text, normalize_text, text_to_adf


def text(value: str, **marks) -> dict:
    return {"type": "text", "text": value, **marks}


def para(*nodes: dict) -> dict:
    return {"type": "paragraph", "content": list(nodes)}


def item(*blocks: dict) -> dict:
    return {"type": "listItem", "content": list(blocks)}


def doc(*blocks: dict) -> dict:
    return {"type": "doc", "version": 1, "content": list(blocks)}


def test_paragraphs_headings_and_hard_breaks_read_as_blocks_and_lines():
    value = doc(
        {"type": "heading", "attrs": {"level": 2}, "content": [text("Steps")]},
        para(text("First line", marks=[{"type": "strong"}]), {"type": "hardBreak"}, text("second line")),
        para(text("Last.")),
    )
    assert adf_to_text(value) == "Steps\n\nFirst line\nsecond line\n\nLast."


def test_lists_nest_and_ordered_lists_count_from_their_order():
    value = doc(
        {
            "type": "bulletList",
            "content": [
                item(para(text("one"))),
                item(
                    para(text("two")),
                    {
                        "type": "orderedList",
                        "attrs": {"order": 3},
                        "content": [item(para(text("a"))), item(para(text("b")))],
                    },
                ),
            ],
        }
    )
    assert adf_to_text(value) == "- one\n- two\n  3. a\n  4. b"


def test_code_blocks_mentions_emoji_cards_dates_and_statuses_keep_their_text():
    value = doc(
        {"type": "codeBlock", "attrs": {"language": "python"}, "content": [text("print('hi')\nx = 1")]},
        para(
            text("ping "),
            {"type": "mention", "attrs": {"id": "5b10", "text": "@Alice"}},
            text(" "),
            {"type": "emoji", "attrs": {"shortName": ":smile:", "text": "😄"}},
            text(" see "),
            {"type": "inlineCard", "attrs": {"url": "https://example.com/x"}},
            text(" by "),
            {"type": "date", "attrs": {"timestamp": "1714521600000"}},
            text(" "),
            {"type": "status", "attrs": {"text": "IN PROGRESS", "color": "blue"}},
        ),
    )
    assert (
        adf_to_text(value) == "print('hi')\nx = 1\n\nping @Alice 😄 see https://example.com/x by 2024-05-01 IN PROGRESS"
    )


def test_quotes_rules_tables_and_panels_read_as_text_and_media_is_left_out():
    table = {
        "type": "table",
        "content": [
            {
                "type": "tableRow",
                "content": [
                    {"type": "tableHeader", "content": [para(text("k"))]},
                    {"type": "tableHeader", "content": [para(text("v"))]},
                ],
            },
            {
                "type": "tableRow",
                "content": [
                    {"type": "tableCell", "content": [para(text("a"))]},
                    {"type": "tableCell", "content": [para(text("1"))]},
                ],
            },
        ],
    }
    value = doc(
        {"type": "blockquote", "content": [para(text("quoted"))]},
        {"type": "rule"},
        table,
        {"type": "panel", "attrs": {"panelType": "info"}, "content": [para(text("note"))]},
        {"type": "mediaSingle", "content": [{"type": "media", "attrs": {"id": "x", "type": "file"}}]},
        {"type": "taskList", "content": [{"type": "taskItem", "attrs": {"state": "DONE"}, "content": [text("done")]}]},
    )
    assert adf_to_text(value) == "> quoted\n\n---\n\nk | v\na | 1\n\nnote\n\n[x] done"


def test_nothing_and_plain_strings():
    assert adf_to_text(None) is None
    assert adf_to_text(doc()) is None
    assert adf_to_text(doc(para())) is None
    assert adf_to_text("a v2 plain description") == "a v2 plain description"


def test_text_becomes_paragraphs_with_hard_breaks_and_reads_back():
    body = "Title line\nsecond line\n\n\n\nNext paragraph\r\n\x00with a control char"
    value = text_to_adf(body)
    assert value == {
        "type": "doc",
        "version": 1,
        "content": [
            {"type": "paragraph", "content": [text("Title line"), {"type": "hardBreak"}, text("second line")]},
            {
                "type": "paragraph",
                "content": [text("Next paragraph"), {"type": "hardBreak"}, text("with a control char")],
            },
        ],
    }
    assert (
        adf_to_text(value) == normalize_text(body) == "Title line\nsecond line\n\nNext paragraph\nwith a control char"
    )


def test_empty_text_is_no_document():
    assert text_to_adf(None) is None
    assert text_to_adf(" \n\n \n") is None
    assert normalize_text("") is None


def test_blank_lines_inside_a_paragraph_never_make_empty_text_nodes():
    value = text_to_adf("a\n \nb\n\n\nc\n")
    for block in value["content"]:
        for node in block["content"]:
            assert node["type"] == "hardBreak" or node["text"]

"""Atlassian Document Format (ADF) <-> plain text, for Jira descriptions (pure functions).

Jira REST v3 takes and returns ``description`` (and comment bodies, ``environment``, multi-line
custom fields) as ADF JSON: ``{"type": "doc", "version": 1, "content": [<block nodes>]}``.

Reading (``adf_to_text``) keeps the words and the shape of the text, not the styling:

- paragraphs, headings, code blocks, quotes, panels, expands: one block each, separated by a blank line;
- ``hardBreak`` -> a newline; bullet lists -> ``- item`` lines, ordered lists -> ``1. item`` (from the
  list's ``order``), nested lists indented, task lists -> ``[ ]`` / ``[x]``;
- mentions, emoji, statuses -> their text (``@Alice``, ``:smile:``, ``IN PROGRESS``), inline/block cards
  -> their URL, dates -> ``YYYY-MM-DD``, a rule -> ``---``, tables -> ``cell | cell`` rows;
- media (attachments, images) are left out; a plain string (a v2-style description) passes through.

Writing (``text_to_adf``): one paragraph per blank-line-separated block of the text, its lines joined
with ``hardBreak`` nodes, so ``adf_to_text(text_to_adf(t))`` gives ``t`` back with runs of blank lines
collapsed and control characters dropped.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any

from connectors.http import Json

__all__ = ["adf_to_text", "normalize_text", "text_to_adf"]

_PARAGRAPH_SPLIT = re.compile(r"\n[ \t]*\n+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTAINERS = frozenset(
    {"panel", "expand", "nestedExpand", "layoutSection", "layoutColumn", "bodiedExtension", "extensionFrame"}
)
_SKIPPED = frozenset({"mediaSingle", "mediaGroup", "media", "mediaInline", "extension", "inlineExtension"})


# --------------------------------------------------------------------------------------------------
# ADF -> text


def adf_to_text(value: Any) -> str | None:
    """The plain text of an ADF document (or a plain string); None when there is no text."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value
    elif isinstance(value, dict):
        if value.get("type") == "doc" or "content" in value:
            text = "\n\n".join(_blocks(value.get("content")))
        else:
            text = _block(value) or ""
    else:
        return None
    text = text.replace("\r\n", "\n").strip("\n")
    return text if text.strip() else None


def _nodes(value: Any) -> list[Json]:
    return [n for n in value if isinstance(n, dict)] if isinstance(value, list) else []


def _blocks(content: Any) -> list[str]:
    out: list[str] = []
    for node in _nodes(content):
        text = _block(node)
        if text:
            out.append(text)
    return out


def _block(node: Json) -> str | None:
    kind = node.get("type")
    raw_attrs = node.get("attrs")
    attrs: Json = raw_attrs if isinstance(raw_attrs, dict) else {}
    if kind in ("paragraph", "heading"):
        return _inline(node.get("content"))
    if kind == "codeBlock":
        return "".join(str(n.get("text", "")) for n in _nodes(node.get("content")))
    if kind in ("bulletList", "orderedList"):
        return _list(node, ordered=kind == "orderedList")
    if kind == "taskList":
        return "\n".join(
            _prefixed(_inline(item.get("content")) or "", "[x] " if _attr(item, "state") == "DONE" else "[ ] ")
            for item in _nodes(node.get("content"))
        )
    if kind == "decisionList":
        return "\n".join(_prefixed(_inline(item.get("content")) or "", "- ") for item in _nodes(node.get("content")))
    if kind == "blockquote":
        inner = "\n\n".join(_blocks(node.get("content")))
        return "\n".join(f"> {line}" if line else ">" for line in inner.split("\n")) if inner else None
    if kind == "rule":
        return "---"
    if kind == "table":
        return _table(node)
    if kind in ("blockCard", "embedCard"):
        url = attrs.get("url")
        return str(url) if url else None
    if kind in _SKIPPED:
        return None
    if kind in _CONTAINERS or "content" in node:
        parts = _blocks(node.get("content"))
        title = attrs.get("title")
        if title:
            parts.insert(0, str(title))
        return "\n\n".join(parts) or None
    if "text" in node:
        return str(node["text"])
    return None


def _attr(node: Json, name: str) -> Any:
    attrs = node.get("attrs")
    return attrs.get(name) if isinstance(attrs, dict) else None


def _prefixed(text: str, marker: str) -> str:
    """``text`` with ``marker`` before its first line and the others indented to match."""
    pad = " " * len(marker)
    lines = text.split("\n") if text else [""]
    return "\n".join([marker + lines[0], *(pad + line if line else line for line in lines[1:])])


def _list(node: Json, *, ordered: bool) -> str | None:
    start = _attr(node, "order")
    number = start if isinstance(start, int) and not isinstance(start, bool) else 1
    lines: list[str] = []
    for item in _nodes(node.get("content")):
        marker = f"{number}. " if ordered else "- "
        number += 1
        # Blocks inside one item (a paragraph, then a nested list) stay on consecutive lines.
        lines.append(_prefixed("\n".join(_blocks(item.get("content"))), marker))
    return "\n".join(lines) or None


def _table(node: Json) -> str | None:
    rows: list[str] = []
    for row in _nodes(node.get("content")):
        cells = [" ".join(" ".join(_blocks(cell.get("content"))).split("\n")) for cell in _nodes(row.get("content"))]
        if any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows) or None


def _inline(content: Any) -> str | None:
    parts: list[str] = []
    for node in _nodes(content):
        kind = node.get("type")
        if kind == "text":
            parts.append(str(node.get("text", "")))
        elif kind == "hardBreak":
            parts.append("\n")
        elif kind in ("mention", "emoji", "status", "placeholder"):
            text = _attr(node, "text") or (_attr(node, "shortName") if kind == "emoji" else None)
            if text:
                parts.append(str(text))
        elif kind == "inlineCard":
            url = _attr(node, "url")
            if url:
                parts.append(str(url))
        elif kind == "date":
            parts.append(_date_text(_attr(node, "timestamp")))
        elif kind in _SKIPPED:
            continue
        elif "content" in node:
            parts.append(_inline(node.get("content")) or "")
        elif "text" in node:
            parts.append(str(node["text"]))
    text = "".join(parts)
    return text if text else None


def _date_text(timestamp: Any) -> str:
    """ADF dates are epoch milliseconds (as a string) at midnight UTC."""
    try:
        return dt.datetime.fromtimestamp(int(timestamp) / 1000, dt.UTC).date().isoformat()
    except (TypeError, ValueError, OverflowError, OSError):
        return str(timestamp or "")


# --------------------------------------------------------------------------------------------------
# text -> ADF


def _paragraphs(text: str) -> Iterable[list[str]]:
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    for block in _PARAGRAPH_SPLIT.split(text):
        lines = block.strip("\n").split("\n")
        if any(line.strip() for line in lines):
            yield lines


def text_to_adf(text: str | None) -> Json | None:
    """An ADF document with one paragraph per blank-line-separated block; None for empty text."""
    if text is None:
        return None
    content: list[Json] = []
    for lines in _paragraphs(str(text)):
        nodes: list[Json] = []
        for i, line in enumerate(lines):
            if i:
                nodes.append({"type": "hardBreak"})
            if line:
                nodes.append({"type": "text", "text": line})
        content.append({"type": "paragraph", "content": nodes})
    if not content:
        return None
    return {"type": "doc", "version": 1, "content": content}


def normalize_text(text: str | None) -> str | None:
    """The text as Jira will hold it after ``text_to_adf`` (what its length limit is checked against)."""
    if text is None:
        return None
    out = "\n\n".join("\n".join(lines) for lines in _paragraphs(str(text)))
    return out or None

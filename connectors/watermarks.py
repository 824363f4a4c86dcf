"""Incremental state per spec, kept as JSON text in a mapping the caller may make durable.

The incremental sources (Notion REST and MCP, Contentful, YouTube) each remember a little state per
spec between passes: a newest edit time, a sync token, when the last full pass ran. They all keep it
the same way — a JSON object per spec key in a ``MutableMapping[str, str]`` (in memory by default;
the state store's key/value mapping in production) — and they had written the same reading, writing
and forgetting five times. ``PendingWatermarks`` is that code once.

Why *pending*: a source that advances its watermark while a pass is still running would, on a dry
run or a pass that fails half-way, skip changes it never wrote. So a pass *holds* the new state and the
engine calls ``commit(spec_key)`` once the pass succeeded; ``save`` is for state that is true the
moment it is learnt (a resolved id, a quota counter, the MCP source's own immediate bookkeeping).

Unreadable state (not JSON, not an object) is logged and read as ``{}``: the next pass starts over,
which is always safe, rather than failing every pass until someone edits the store by hand.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Awaitable, MutableMapping
from typing import Any

from connectors.core import Record, SourceSpec
from connectors.http import drain_pages

__all__ = ["PendingWatermarks", "WatermarkMembers", "WatermarkedPagedSource", "parse_time"]

logger = logging.getLogger(__name__)


def parse_time(value: Any) -> dt.datetime | None:
    """An aware datetime from ISO 8601 text (``2024-05-01T17:00:00.000Z``); None if not one.

    Args:
        value: Anything; only a non-empty string can parse. A time without an offset is taken as UTC.
    """
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


class PendingWatermarks:
    """A JSON object per spec key over a string mapping, with new values held until committed.

    Args:
        store: Where the state lives (default: a new in-memory dict). Values are JSON text.
        owner: Who the state belongs to, for the warning about unreadable state (e.g. ``"Notion source
            notion"``); never a secret.
    """

    def __init__(self, store: MutableMapping[str, str] | None = None, *, owner: str) -> None:
        """Remember the store; nothing is read yet."""
        self.store: MutableMapping[str, str] = store if store is not None else {}
        self.owner = owner
        self._pending: dict[str, str] = {}

    def load(self, spec_key: str) -> dict[str, Any]:
        """The stored (committed) state of a spec, ``{}`` when there is none or it is unreadable.

        Args:
            spec_key: The spec's key.
        """
        raw = self.store.get(spec_key)
        if not raw:
            return {}
        try:
            state = json.loads(raw)
        except ValueError:
            logger.warning("%s: unreadable state of %s; starting over", self.owner, spec_key)
            return {}
        return state if isinstance(state, dict) else {}

    def hold(self, spec_key: str, state: dict[str, Any]) -> None:
        """Keep ``state`` as the spec's pending value; ``commit`` stores it.

        Args:
            spec_key: The spec's key.
            state: The new state (JSON-serialisable).
        """
        self._pending[spec_key] = json.dumps(state, sort_keys=True)

    def save(self, spec_key: str, state: dict[str, Any]) -> None:
        """Store ``state`` for the spec now (no commit needed).

        Args:
            spec_key: The spec's key.
            state: The new state (JSON-serialisable).
        """
        self.store[spec_key] = json.dumps(state, sort_keys=True)

    def commit(self, spec_key: str) -> None:
        """Store the spec's pending value, if any (the pass that made it completed).

        Args:
            spec_key: The spec's key.
        """
        pending = self._pending.pop(spec_key, None)
        if pending is not None:
            self.store[spec_key] = pending

    def reset(self, spec_key: str | None = None) -> None:
        """Forget the stored and pending state of one spec, or of every spec when ``spec_key`` is None.

        Args:
            spec_key: The spec's key, or None for all.
        """
        if spec_key is None:
            self.store.clear()
            self._pending.clear()
        else:
            self.store.pop(spec_key, None)
            self._pending.pop(spec_key, None)


class WatermarkMembers:
    """The ``watermarks`` member of a source that keeps its per-spec state in a ``PendingWatermarks``.

    The subclass sets ``self._state`` in its constructor.
    """

    _state: PendingWatermarks

    @property
    def watermarks(self) -> MutableMapping[str, str]:
        """The mapping the per-spec state is kept in (the one given to the constructor, else a dict)."""
        return self._state.store


class WatermarkedPagedSource(WatermarkMembers):
    """``commit`` and ``fetch`` of a paged source whose passes hold their new watermark until committed.

    The subclass sets ``self._state`` and implements ``fetch_page``; a pass ``hold``-s its new state.
    """

    def fetch_page(
        self, spec: SourceSpec, only_items: list[str] | None, cursor: str | None
    ) -> Awaitable[tuple[list[Record], str | None]]:
        """One page of records and the next cursor (None at the end); the subclass implements it."""
        raise NotImplementedError

    def commit(self, spec_key: str) -> None:
        """Store the watermark of the pass that just completed.

        The engine calls this after a successful pass that was not a dry run; ``fetch`` after a full drain.

        Args:
            spec_key: The spec whose pass completed.
        """
        self._state.commit(spec_key)

    async def fetch(self, spec: SourceSpec, only_items: list[str] | None = None) -> list[Record]:
        """Every record of one pass of the spec (a drain over ``fetch_page``); a whole pass commits.

        Args:
            spec: The spec to read.
            only_items: Only these primary keys (None: all, which is a whole pass).
        """
        records = await drain_pages(self.fetch_page, spec, only_items)
        if only_items is None:
            self.commit(spec.key)  # a drain is a whole pass
        return records

"""The planning step of a page: what each record of a page needs, decided without a single write.

A page goes through two steps. Planning (this module) transforms, validates and dedupes the records
(``prepare_page``), hashes them (``hash_page``) and, given the link map's entries for their keys,
classifies each one as a create, an update, unchanged, adopted or deferred (``classify_page``). It
does no I/O: the only thing it awaits is the route's transform, which may be async. The engine looks
the links up (claiming the creates in the same transaction) between the two, and the writing step
(``sync_assets._write``) sends what the plan says. Keeping them apart lets a plan (the dry run)
share every decision with a real pass, and lets the decisions be tested without a destination.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from connectors.core import Record, describe_error
from sync_assets._records import content_hash, validate_record

__all__ = ["LinkLike", "PagePlan", "PreparedPage", "classify_page", "hash_page", "prepare_page", "raw_key"]

AsyncTransform = Callable[[Record], Awaitable[Record | None]]


class LinkLike(Protocol):
    """What planning reads of a link map entry (``sync_assets.state.Link``).

    Attributes:
        state: ``linked`` once the row exists, else an intent (a create in flight).
        destination_id: The row's id in the destination, when known.
        content_hash: The hash of what was last written.
    """

    @property
    def state(self) -> str:
        """``linked`` once the row exists."""
        ...

    @property
    def destination_id(self) -> str | None:
        """The row's id in the destination."""
        ...

    @property
    def content_hash(self) -> str | None:
        """The hash of what was last written."""
        ...


@dataclass
class PreparedPage:
    """A page after transform, validation and in-page dedupe.

    Attributes:
        records: Valid records by primary key, in page order (a key seen twice keeps its last record,
            at the position of that last occurrence).
        failures: ``(key, why)`` of the records that failed to transform or validate.
        seen: Raw items read.
        skipped: Records the transform dropped (returned None).
        deduplicated: Records replaced by a later one with the same key.
    """

    records: dict[str, Record] = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)
    seen: int = 0
    skipped: int = 0
    deduplicated: int = 0


def raw_key(item: Any) -> Any:
    """The ``primary_key`` of a raw item as a source returned it (which may not be a ``Record``), or None."""
    return getattr(item, "primary_key", None)


async def prepare_page(
    page: PreparedPage,
    raw: Sequence[Any],
    *,
    transform: AsyncTransform | None,
    max_value_length: int | None,
    page_number: int,
    asked: set[str] | None = None,
) -> None:
    """Transform, validate and dedupe ``raw`` into ``page`` (filled as it goes, so counts survive an error).

    Args:
        page: Where the records, failures and counts go.
        raw: The items a source returned for one page.
        transform: The route's transform and field ownership, or None.
        max_value_length: The destination's longest string value, or None.
        page_number: The page's number in the pass, for the names of rows without a key.
        asked: A targeted pass's keys not yet returned by the source; the page's keys are removed.
    """
    records = page.records
    for i, item in enumerate(raw):
        page.seen += 1
        if asked is not None:
            asked.discard(raw_key(item))
        record = item
        if transform is not None:
            try:
                record = await transform(item)
            except Exception as err:
                key = raw_key(item) or f"(page {page_number} row {i + 1})"
                page.failures.append((str(key), f"transform failed: {describe_error(err)}"))
                continue
            if record is None:
                page.skipped += 1
                continue
        valid, problem = validate_record(record, max_value_length=max_value_length)
        if valid is None:
            key = raw_key(record)
            key = key.strip() if isinstance(key, str) else ""
            page.failures.append((key or f"(empty key: page {page_number} row {i + 1})", problem or "invalid"))
            continue
        if valid.primary_key in records:
            page.deduplicated += 1
            del records[valid.primary_key]  # last wins, and keeps its position
        records[valid.primary_key] = valid


def hash_page(records: Mapping[str, Record], create_only: frozenset[str]) -> dict[str, str]:
    """The content hash of every record, create-only properties excluded (what an update would send)."""
    return {key: content_hash(record, create_only) for key, record in records.items()}


@dataclass
class PagePlan:
    """What a page needs, record by record.

    Attributes:
        creates: ``(record, hash)`` of records with no row yet.
        updates: ``(record, destination_id, hash)`` of linked records whose content changed (or all
            linked ones in a full refresh).
        unchanged: Keys of linked records whose hash matches: no call.
        adopted: Keys of rows this pass's crashed predecessor created, found by the listing with the
            content it sent: counted as created, no call.
        deferred: ``key -> (record, why)``: creates another partition's pass has claimed, kept for a
            retry at the end of the pass.
        failures: ``(key, why)`` of deferred creates beyond the room for them: retried next pass.
    """

    creates: list[tuple[Record, str]] = field(default_factory=list)
    updates: list[tuple[Record, str, str]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    deferred: dict[str, tuple[Record, str]] = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)


def classify_page(
    records: Mapping[str, Record],
    hashes: Mapping[str, str],
    links: Mapping[str, LinkLike],
    *,
    full_refresh: bool = False,
    deferred: Mapping[str, str] | None = None,
    deferred_held: Collection[str] = (),
    deferred_limit: int = 0,
    listing: Mapping[str, str] | None = None,
    adopted_keys: set[str] | frozenset[str] = frozenset(),
) -> PagePlan:
    """Classify a page's records against the link map (no I/O, nothing mutated).

    Args:
        records: The prepared records by key.
        hashes: Their content hashes (``hash_page``).
        links: The link map's entries for their keys.
        full_refresh: Update every linked record, whatever its hash.
        deferred: ``key -> why`` of keys another pass is creating: not created now.
        deferred_held: Keys the pass already keeps for a retry.
        deferred_limit: How many keys the pass may keep for a retry in all; a deferred key that
            finds no room fails for this pass instead.
        listing: A plan's destination listing (``key -> destination_id``): a key it holds that the
            link map does not is an update, not a create.
        adopted_keys: Keys of rows a crashed predecessor of this pass created (see ``PagePlan``).

    Returns:
        The plan; a deferred key appears in no other bucket.
    """
    plan = PagePlan()
    held = len(deferred_held)
    for key, why in (deferred or {}).items():
        if held < deferred_limit:
            plan.deferred[key] = (records[key], why)
            if key not in deferred_held:
                held += 1
        else:
            plan.failures.append((key, f"{why}; retried on the next pass"))
    for key, record in records.items():
        if deferred is not None and key in deferred:
            continue
        h = hashes[key]
        link = links.get(key)
        if listing is not None and link is None and key in listing:
            plan.updates.append((record, listing[key], h))
        elif link is not None and link.state == "linked" and link.destination_id:
            if full_refresh or link.content_hash != h:
                plan.updates.append((record, link.destination_id, h))
            elif key in adopted_keys:
                plan.adopted.append(key)
            else:
                plan.unchanged.append(key)
        else:
            plan.creates.append((record, h))
    return plan

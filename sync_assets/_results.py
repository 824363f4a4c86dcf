"""What a pass is asked to do and what it reports: options, running stats, the result, ``Paused``.

Plain data, shared by the engine, the Dagster asset (``sync_assets.factory``) and the CLI; kept apart
from the pass's machinery so those read it without the engine's imports. Re-exported by
``sync_assets.engine``, which is where callers import them from.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from connectors.core import SyncError

__all__ = ["PassOptions", "PassResult", "PassStats", "Paused"]


class Paused(SyncError):
    """The partition, its route or one of its credentials is paused; nothing was called.

    Attributes:
        scope: The pause scope that stopped it (``partition:…``, ``route:…``, ``credential:…``).
    """

    def __init__(self, message: str, *, scope: str) -> None:
        """A pause of ``scope``, described by ``message``."""
        super().__init__(message)
        self.scope = scope


@dataclass(frozen=True)
class PassOptions:
    """How to run a pass.

    Attributes:
        plan: Dry run: classify every record, write nothing (not even state).
        full_refresh: Update every linked record, whatever its hash; reconcile first.
        only_items: Targeted sync of these primary keys; does not touch a full pass's checkpoint.
        reconcile: True forces a destination listing (unless one ran in the last 10 minutes),
            False forbids it, None decides (first pass, intents pending, ``reconcile_every``).
        run_id: Stored with the pass history (the Dagster run id) and on the partition's lease.
        lease_seconds: How long the partition's lease lasts without renewal (it is renewed every
            third of it); a pass that dies loses it this long after its last renewal. Default
            ``DURABLE_SYNC_LEASE_SECONDS`` or 20.
        lease_wait: How long a pass waits for a partition another pass holds before it ends with
            ``PartitionBusy``, writing nothing. Default ``DURABLE_SYNC_LEASE_WAIT`` or 1.25 times
            the lease plus a second (so a dead holder's lease runs out while it waits).
    """

    plan: bool = False
    full_refresh: bool = False
    only_items: tuple[str, ...] | None = None
    reconcile: bool | None = None
    run_id: str | None = None
    lease_seconds: float | None = None
    lease_wait: float | None = None

    @property
    def mode(self) -> str:
        """The pass's mode as stored in its history: ``plan``, ``targeted``, ``full_refresh`` or ``full``."""
        if self.plan:
            return "plan"
        if self.only_items is not None:
            return "targeted"
        return "full_refresh" if self.full_refresh else "full"


@dataclass
class PassStats:
    """The running counts of a pass, checkpointed with every page (a resumed pass goes on from them).

    Attributes:
        created: Rows created (or, in a plan, that would be).
        updated: Rows updated (or that would be).
        unchanged: Linked records whose content hash matched: no call.
        skipped: Records the transform dropped, or writes the destination skipped.
        failed: Records that failed on their own (validation, a refused write).
        deduplicated: Records replaced by a later one with the same key in the same page.
        records: Records read from the source.
        pages: Pages read.
        listed: Rows the destination listing returned.
        adopted: Listed rows linked by the reconcile (created but never linked).
        gone: Linked rows missing from an authoritative listing (deleted by hand).
        duplicates: Keys the listing showed more than once.
        destination_calls: Creates and updates sent.
        seconds: Time spent, over every attempt of the pass.
        resumed_from: The page a resumed pass went on from.
        reconciled: Whether the pass listed the destination (or used a listing that served it).
        not_found: Targeted: keys asked for that the source did not return.
        conflicts: Two-way: fields edited on both sides since the last pass (resolved by the policy).
        conflict_sample: Two-way: ``key: field (side X won)`` of the first 20 conflicts.
        missing_marked: ``on_missing``: rows marked as gone from the source by this pass.
        missing_cleared: ``on_missing``: rows whose key came back, the mark taken off.
    """

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    deduplicated: int = 0
    records: int = 0
    pages: int = 0
    listed: int = 0
    adopted: int = 0
    gone: int = 0
    duplicates: int = 0
    destination_calls: int = 0
    seconds: float = 0.0
    resumed_from: int | None = None
    reconciled: bool = False
    not_found: list[str] = field(default_factory=list)  # targeted: keys asked for the source did not return
    conflicts: int = 0
    conflict_sample: list[str] = field(default_factory=list)  # "key: field (side X won)", at most 20
    missing_marked: int = 0
    missing_cleared: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The stats as a JSON-ready dict (stored with the checkpoint and the pass history)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PassStats:
        """Stats read back from ``as_dict`` output; unknown keys (of another version) are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class PassResult:
    """What a pass did.

    Attributes:
        route: The route's name.
        partition: The partition key.
        mode: ``PassOptions.mode``.
        stats: The final counts.
        failures: ``(key, why)`` of failed records, at most 100.
        planned: A plan's keys per bucket (``create``, ``update``, ``unchanged``, ``failed``), at most
            20 each; empty for a real pass.
        duplicate_keys: Keys the listing showed more than once, with their destination ids.
        extra: The connectors' ``pass_metadata()``, prefixed with their names.
        conflicts: Two-way: ``(key, field, winning side)`` of conflicts, at most 50.
    """

    route: str
    partition: str
    mode: str
    stats: PassStats
    failures: list[tuple[str, str]] = field(default_factory=list)
    planned: dict[str, list[str]] = field(default_factory=dict)
    duplicate_keys: list[tuple[str, list[str]]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # the connectors' pass_metadata()
    conflicts: list[tuple[str, str, str]] = field(default_factory=list)

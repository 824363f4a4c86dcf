"""The ``no_conflicts`` check of a two-way route's sync asset (``sync_assets.routes.TwoWayRoute``).

A conflict is a field edited on both sides since the pair last agreed. The pass resolves it by the
route's policy (the owner, or the later modification time) and counts it; this check shows the count
of the partition's last complete pass and which fields went which way, as a WARN: nothing was lost
that the policy did not choose to drop, but someone's edit was overwritten.
"""

from __future__ import annotations

import dagster as dg

from sync_assets.routes import Route
from sync_assets.state import StateStore

__all__ = ["NO_CONFLICTS", "conflicts_result", "no_conflicts_spec"]

NO_CONFLICTS = "no_conflicts"


def no_conflicts_spec(asset_key: dg.AssetKey) -> dg.AssetCheckSpec:
    """The ``no_conflicts`` check of a two-way route's asset.

    Args:
        asset_key: The route's sync asset.

    Returns:
        The check's spec.
    """
    return dg.AssetCheckSpec(
        NO_CONFLICTS,
        asset=asset_key,
        description="No field was edited on both sides since the last pass (two-way routes).",
    )


def conflicts_result(route: Route, partition: str, store: StateStore, asset_key: dg.AssetKey) -> dg.AssetCheckResult:
    """The ``no_conflicts`` verdict of a partition: the conflicts of its last finished pass.

    Args:
        route: The route (one of a ``TwoWayRoute``'s two).
        partition: The partition key.
        store: The state store.
        asset_key: The route's sync asset.

    Returns:
        The check's result (WARN when the last pass resolved conflicts).
    """
    passes = [p for p in store.last_passes(route.name, partition, limit=5) if p.status == "success"]
    stats = passes[0].stats if passes else {}
    count = int(stats.get("conflicts", 0) or 0)
    sample = [str(s) for s in stats.get("conflict_sample", [])]
    policy = route.two_way.policy if route.two_way is not None else "n/a"
    metadata: dict[str, dg.RawMetadataValue] = {"conflicts": count, "policy": policy}
    if sample:
        metadata["resolved"] = dg.MetadataValue.md("\n".join(f"- {line}" for line in sample))
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=NO_CONFLICTS,
        passed=count == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata=metadata,
        description=(
            f"The last pass of {route.name}/{partition} resolved {count} conflict(s) by its policy ({policy})."
            if count
            else f"The last pass of {route.name}/{partition} found no field edited on both sides."
        ),
    )

"""The sync asset's checks, and how a paused partition shows in the Dagster UI.

The run that meets a pause logs it (the factory); the dispatcher, which skips a paused partition,
reports it and its end outside any run (the sensors). Both go through ``pause_events`` here, so the
UI reads the same verdict whoever found the pause, and neither module needs the other.

Severity: a pause by a rejected credential is an ERROR (it needs a human); a pause set by hand is
somebody's decision, a WARN, until it has lasted ``DURABLE_SYNC_PAUSE_ESCALATE_AFTER`` (default one
hour): then it is an ERROR too (``sync_assets.escalation`` reports that without a run).
"""

import datetime as dt
import warnings
from typing import Any

import dagster as dg

from sync_assets.notify import format_duration, pause_escalate_after
from sync_assets.state import Pause, utcnow

__all__ = ["NOT_PAUSED", "NO_DUPLICATE_KEYS", "NO_FAILED_RECORDS", "not_paused_spec", "pause_events", "pause_verdict"]

NO_FAILED_RECORDS = "no_failed_records"
NO_DUPLICATE_KEYS = "no_duplicate_keys"
NOT_PAUSED = "not_paused"


def not_paused_spec(asset_key: dg.AssetKey, partitions_def: dg.PartitionsDefinition) -> dg.AssetCheckSpec:
    """The ``not_paused`` check, per partition.

    A pause stops one partition (or every partition of a credential); an unpartitioned check would
    show only the partition that ran last.

    Args:
        asset_key: The route's sync asset.
        partitions_def: The route's partitions.

    Returns:
        The check's spec.
    """
    # A partitioned check spec is a preview API in Dagster 1.13: its warning would print on every
    # load of the definitions, i.e. on every CLI command and code-server start.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.AssetCheckSpec(
            NOT_PAUSED,
            asset=asset_key,
            partitions_def=partitions_def,
            description="The partition is not paused (by hand, or by a rejected credential).",
        )


def pause_verdict(
    route_name: str,
    partition: str,
    pause: Pause | None,
    fallback: str = "",
    *,
    now: dt.datetime | None = None,
) -> tuple[bool, dg.AssetCheckSeverity, str, dict[str, Any]]:
    """The ``not_paused`` verdict of one partition.

    Args:
        route_name: The route.
        partition: The partition key.
        pause: The pause that stops the partition, or None.
        fallback: Why the partition is paused when ``pause`` is None (the pause was lifted since).
        now: The current time, to tell a pause that lasts (default: now).

    Returns:
        Whether the check passes, its severity, its description and its metadata.
    """
    if pause is None and not fallback:
        return True, dg.AssetCheckSeverity.WARN, f"{route_name}/{partition} is not paused.", {"paused": False}
    fix = f"durable-sync resume {route_name}"
    if pause is None:  # lifted between the engine's look and ours: still say what stopped the run
        return False, dg.AssetCheckSeverity.WARN, fallback, {"paused": True, "resume_with": fix}
    since = pause.paused_at.isoformat(timespec="seconds")
    after = pause_escalate_after()
    lasting = (now or utcnow()) - pause.paused_at >= after
    longer = f", longer than {format_duration(after)}," if lasting else ""
    description = f"{route_name}/{partition} is paused ({pause.scope}) since {since}{longer}: {pause.reason}"
    if fix not in pause.reason:
        description += f". Nothing syncs until it is lifted: {fix}"
    # A rejected credential needs a human; a pause set by hand is somebody's decision, until it lasts.
    severity = dg.AssetCheckSeverity.ERROR if pause.source == "auth" or lasting else dg.AssetCheckSeverity.WARN
    metadata: dict[str, Any] = {
        "paused": True,
        "scope": pause.scope,
        "reason": pause.reason,
        "paused_by": "a rejected credential" if pause.source == "auth" else pause.source,
        "paused_since": since,
        "lasting": lasting,
        "resume_with": fix,
    }
    return False, severity, description, metadata


def pause_events(
    route_name: str,
    partition: str,
    pause: Pause | None,
    *,
    fallback: str = "",
    asset_key: dg.AssetKey | None = None,
    runless: bool = False,
) -> list[dg.AssetCheckEvaluation | dg.AssetObservation]:
    """How a partition's pause shows in the Dagster UI: a ``not_paused`` check result and an observation.

    The run that meets the pause logs both (``context.log_event``). Anything else that learns of a
    pause or of its end — a sensor skipping the partition (``SensorResult(asset_events=...)``), the
    CLI (``instance.report_runless_asset_event``) — reports with ``runless=True``: the observation
    only, which the partition's page shows. (Dagster 1.13 stores a runless result of a partitioned
    check at most once per partition: its index on asset, check, run id and partition is unique, and
    every runless event has the run id "", so a second pause of the same partition would fail.)

    Args:
        route_name: The route (its asset key unless ``asset_key`` is given).
        partition: The partition key.
        pause: The pause that stops the partition: the check fails with its scope, reason and the
            command that lifts it. None: the partition is not paused (the check passes), unless
            ``fallback`` says why it is.
        fallback: Why the partition is paused when ``pause`` is None (e.g. the engine's message, the
            pause having been lifted since).
        asset_key: The route's asset key.
        runless: Leave out the check result (for reports outside a run).
    """
    asset_key = asset_key or dg.AssetKey([route_name])
    passed, severity, description, metadata = pause_verdict(route_name, partition, pause, fallback)
    observation = dg.AssetObservation(
        asset_key=asset_key, partition=partition, description=description, metadata=metadata
    )
    if runless:
        return [observation]
    return [
        dg.AssetCheckEvaluation(
            asset_key=asset_key,
            check_name=NOT_PAUSED,
            passed=passed,
            severity=severity,
            description=description,
            metadata=metadata,
            partition=partition,
        ),
        observation,
    ]

"""The sync asset's checks, and how a paused partition shows in the Dagster UI.

The run that meets a pause logs it (the factory); the dispatcher, which skips a paused partition,
reports it and its end outside any run (the sensors). Both go through ``pause_events`` here, so the
UI reads the same verdict whoever found the pause, and neither module needs the other.

Severity: a pause by a rejected credential is an ERROR (it needs a human); a pause set by hand is
somebody's decision, a WARN, until it has lasted ``DURABLE_SYNC_PAUSE_ESCALATE_AFTER`` (default one
hour): then it is an ERROR too (``sync_assets.escalation`` reports that without a run).
"""

import datetime as dt
import json
import warnings
from collections.abc import Callable
from typing import Any

import dagster as dg

from connectors.core import DESCRIPTION_LIMIT
from sync_assets.notify import format_duration, pause_escalate_after
from sync_assets.state import Pause, utcnow

__all__ = [
    "IN_A_RUN",
    "NOT_PAUSED",
    "NO_DUPLICATE_KEYS",
    "NO_FAILED_RECORDS",
    "ChangedVerdicts",
    "not_paused_spec",
    "pause_events",
    "pause_verdict",
    "shown_verdict",
]

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


# ------------------------------------------------------------------ route-wide checks without a run

IN_A_RUN = "(a run is evaluating it)"


def shown_verdict(instance: dg.DagsterInstance, check_key: dg.AssetCheckKey) -> str | None:
    """The verdict the UI shows for a route-wide check (its ``verdict`` metadata), or None.

    None when the check was never evaluated, or when a run planned it and ended without a result
    (the UI then says the check did not execute); ``IN_A_RUN`` while a run that planned it is under
    way (that run's result replaces it when the run ends).
    """
    record = instance.get_latest_asset_check_evaluation_record(check_key)
    if record is None:
        return None
    evaluation = record.event.asset_check_evaluation if record.event is not None else None
    if evaluation is None:  # planned by a run (the row's event is the plan)
        run = instance.get_run_by_id(record.run_id) if record.run_id else None
        return IN_A_RUN if run is not None and not run.is_finished else None
    value = evaluation.metadata.get("verdict")
    return str(getattr(value, "value", value)) if value is not None else None


class ChangedVerdicts:
    """What a sensor reporting a route-wide check without a run sends: a verdict only when it changed.

    The comparison is with what the UI shows (the check's latest stored result), so a run's result in
    between counts; the sensor's cursor keeps what it last reported, used while a run that planned the
    check is under way.

    Args:
        context: The sensor's evaluation context (its instance and cursor).
        check_name: The check's name.
    """

    def __init__(self, context: dg.SensorEvaluationContext, check_name: str) -> None:
        """Start from the cursor's last reported verdicts."""
        self.instance = context.instance
        self.check_name = check_name
        self.emitted: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        self.events: list[dg.AssetCheckEvaluation] = []

    def offer(
        self, route: str, asset_key: dg.AssetKey, key: str, evaluation: Callable[[], dg.AssetCheckEvaluation]
    ) -> None:
        """Report ``evaluation()`` when the route's verdict ``key`` differs from the one shown."""
        shown = shown_verdict(self.instance, dg.AssetCheckKey(asset_key, self.check_name))
        if shown == IN_A_RUN:  # its result comes at the run's end: meanwhile, report only a change
            shown = self.emitted.get(route)
        if shown != key:
            self.events.append(evaluation())
            self.emitted[route] = key

    def result(self, summary: str) -> dg.SensorResult:
        """The sensor's result: the changed verdicts, a one-line summary, the cursor."""
        if self.events:
            summary = f"reported {len(self.events)} changed verdict(s); {summary}"
        return dg.SensorResult(
            asset_events=self.events,
            skip_reason=summary[:DESCRIPTION_LIMIT],
            cursor=json.dumps(self.emitted, sort_keys=True),
        )

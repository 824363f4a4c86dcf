"""Freshness: a partition not synced within twice its interval shows as overdue in the UI.

The verdict is per route, over its partitions: the ``not_overdue`` check of the route's asset fails
(severity WARN) when any partition that is not paused has not completed a full pass within twice its
spec's ``interval_minutes``, and its metadata lists those partitions with their last sync (a
markdown table). A partition that never synced is overdue once it has existed for twice its
interval, counted from when this module first saw its spec (kept in the state store's blobs,
namespace ``freshness``, so runs and the sensor agree across processes).

Who evaluates it:

- **The ``durable_sync_freshness`` sensor** (every 60 s): a stalled sync produces no runs, so the
  verdict has to come from outside any run (``SensorResult(asset_events=[AssetCheckEvaluation])``;
  Dagster stores a runless result of an unpartitioned check as often as it is reported). It emits
  only when the verdict differs from what the UI shows — the check's latest stored evaluation (its
  ``verdict`` metadata), or a run that planned the check and ended without it — so an unchanged
  verdict adds no row to the event log, however long it lasts. A run can change what the UI shows
  between two ticks, so the stored evaluation, not the cursor, is what the sensor compares against;
  the cursor keeps what the sensor reported last, the comparison while a run that planned the check
  is under way (a long pass must not hide a partition stalling meanwhile).
- **Every run of the route**: a check declared on an asset must be yielded by each materialization
  (``output_required=False`` does not cover check outputs: the step fails with
  ``DagsterStepOutputNotFoundError``), so the run reports the same route-wide verdict; otherwise its
  "planned" row would hide the sensor's verdict.

Why WARN and not ERROR: an overdue partition still holds correct, older data, and what stalls it
usually carries its own signal (a failed run, the ``not_paused`` check's ERROR for a rejected
credential). ERROR stays for what is wrong (``no_duplicate_keys``) or needs a human at once.

Why no ``FreshnessPolicy`` on the asset: Dagster 1.13's ``FreshnessPolicy.time_window`` is evaluated
(``TimeWindowFreshnessPolicyEvaluator``) against the asset's latest materialization of *any*
partition, so one healthy partition keeps a route green while another has been stalled for days —
the very case this check is for. A route-wide policy would contradict the check, so there is none.

No ``from __future__ import annotations`` here: Dagster reads the sensor's annotations at runtime.
"""

import datetime as dt
import functools
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg
import sqlalchemy as sa

from connectors.core import DESCRIPTION_LIMIT, SourceSpec, describe_error
from sync_assets.checks import ChangedVerdicts
from sync_assets.resources import SyncStateResource
from sync_assets.routes import Route
from sync_assets.runs import RouteDefs
from sync_assets.state import StateStore, passes, utcnow

__all__ = [
    "FRESHNESS_INTERVAL_SECONDS",
    "NOT_OVERDUE",
    "FreshnessVerdict",
    "Overdue",
    "freshness_result",
    "freshness_sensor",
    "freshness_verdict",
    "last_synced",
    "not_overdue_spec",
    "note_partitions",
]

log = logging.getLogger(__name__)

NOT_OVERDUE = "not_overdue"
FRESHNESS_INTERVAL_SECONDS = 60
OVERDUE_FACTOR = 2  # overdue when not synced within this many intervals (the texts say "twice")
SEVERITY = dg.AssetCheckSeverity.WARN  # see the module docstring
FULL_MODES = ("full", "full_refresh")  # a targeted pass syncs only the items it names
_FIRST_SEEN = "freshness"  # blob namespace: route -> {partition: when first seen}
_TABLE_ROWS = 50


def not_overdue_spec(asset_key: dg.AssetKey) -> dg.AssetCheckSpec:
    """The ``not_overdue`` check of a route's asset (one verdict over all its partitions).

    Args:
        asset_key: The route's sync asset.

    Returns:
        The check's spec.
    """
    # Unpartitioned on purpose: Dagster 1.13 stores a runless result of a partitioned check at most
    # once per partition (see ``checks.pause_events``), and this one is mostly reported by a sensor.
    return dg.AssetCheckSpec(
        NOT_OVERDUE,
        asset=asset_key,
        description="Every partition not paused completed a full pass within twice its interval.",
    )


@dataclass(frozen=True, slots=True)
class Overdue:
    """A partition that has not completed a pass within twice its interval.

    Attributes:
        partition: The partition key.
        interval_minutes: Its spec's interval.
        last_synced_at: When its last successful full pass finished (None: never, as far as the
            pass history goes).
        since: What the window counts from: ``last_synced_at``, else when the partition was first seen.
        note: What may stall it (the last failure, a rate-limit wait, an unfinished pass), or "".
    """

    partition: str
    interval_minutes: int
    last_synced_at: dt.datetime | None
    since: dt.datetime
    note: str = ""

    @property
    def overdue_at(self) -> dt.datetime:
        """When the partition became overdue."""
        return self.since + dt.timedelta(minutes=OVERDUE_FACTOR * self.interval_minutes)


@dataclass(frozen=True, slots=True)
class FreshnessVerdict:
    """A route's freshness: which of its partitions are overdue.

    Attributes:
        route: The route's name.
        checked: How many partitions were looked at (paused ones excluded).
        overdue: The overdue partitions, most overdue first.
        paused: The partitions left out because they are paused.
        evaluated_at: When the verdict was reached.
    """

    route: str
    checked: int
    overdue: tuple[Overdue, ...]
    paused: tuple[str, ...]
    evaluated_at: dt.datetime

    @property
    def passed(self) -> bool:
        """Whether no partition is overdue."""
        return not self.overdue

    @property
    def key(self) -> str:
        """What identifies the verdict (a change of it is worth an event): pass, or the overdue partitions."""
        return "fail:" + ",".join(sorted(o.partition for o in self.overdue)) if self.overdue else "pass"

    @property
    def description(self) -> str:
        """One line for the UI."""
        skipped = f"; {len(self.paused)} paused partition(s) not counted" if self.paused else ""
        if self.passed and not self.checked:
            return f"No partition of {self.route} to check{skipped}."
        if self.passed:
            return (
                f"Every partition of {self.route} ({self.checked}) completed a full pass within "
                f"twice its interval{skipped}."
            )
        names = ", ".join(
            f"{o.partition} (last synced {_when(o.last_synced_at)})" if o.last_synced_at else f"{o.partition} (never)"
            for o in self.overdue
        )
        text = (
            f"{len(self.overdue)} of {self.checked} partition(s) of {self.route} not synced within "
            f"twice their interval: {names}{skipped}. See `durable-sync status {self.route}`."
        )
        return text if len(text) <= DESCRIPTION_LIMIT else text[: DESCRIPTION_LIMIT - 1] + "…"

    @property
    def metadata(self) -> dict[str, Any]:
        """The check's metadata: counts, the verdict key, and a table of the overdue partitions."""
        md: dict[str, Any] = {
            "verdict": self.key,
            "partitions_checked": self.checked,
            "overdue": len(self.overdue),
            "evaluated_at": _when(self.evaluated_at),
        }
        if self.paused:
            md["paused_not_counted"] = ", ".join(self.paused)
        if self.overdue:
            md["overdue_partitions"] = dg.MetadataValue.md(_table(self.overdue))
        return md

    def evaluation(self, asset_key: dg.AssetKey) -> dg.AssetCheckEvaluation:
        """The verdict as a runless check evaluation (what the sensor reports)."""
        return dg.AssetCheckEvaluation(
            asset_key=asset_key,
            check_name=NOT_OVERDUE,
            passed=self.passed,
            severity=SEVERITY,
            description=self.description,
            metadata=self.metadata,
        )

    def result(self, asset_key: dg.AssetKey) -> dg.AssetCheckResult:
        """The verdict as a check result (what a run of the route yields)."""
        return dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=NOT_OVERDUE,
            passed=self.passed,
            severity=SEVERITY,
            description=self.description,
            metadata=self.metadata,
        )


def _when(t: dt.datetime | None) -> str:
    return t.astimezone(dt.UTC).isoformat(timespec="seconds") if t is not None else "never"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:200]


def _table(overdue: Sequence[Overdue]) -> str:
    lines = [
        "| partition | every | last synced | overdue since | what may stall it |",
        "|---|---|---|---|---|",
    ]
    for o in overdue[:_TABLE_ROWS]:
        last = _when(o.last_synced_at) if o.last_synced_at else f"never (seen since {_when(o.since)})"
        lines.append(
            f"| `{o.partition}` | {o.interval_minutes} min | {last} | {_when(o.overdue_at)} | {_cell(o.note) or '—'} |"
        )
    if len(overdue) > _TABLE_ROWS:
        lines.append(f"| … and {len(overdue) - _TABLE_ROWS} more | | | | |")
    return "\n".join(lines)


def _aware(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)  # SQLite hands back naive UTC


def last_synced(store: StateStore, route: str) -> dict[str, dt.datetime]:
    """When each partition of ``route`` last completed a full pass successfully (one query).

    Targeted passes do not count: they sync only the items they name. The pass history is bounded
    (200 passes per partition), so a partition whose last 200 passes all failed counts as never synced.

    Args:
        store: The state store.
        route: The route's name.

    Returns:
        Partition key -> when its latest successful full pass finished.
    """
    q = (
        sa.select(passes.c.partition, sa.func.max(passes.c.finished_at))
        .where(passes.c.route == route, passes.c.status == "success", passes.c.mode.in_(FULL_MODES))
        .group_by(passes.c.partition)
    )
    with store.db.read() as conn:
        return {p: _aware(t) for p, t in conn.execute(q)}


def _read_first_seen(store: StateStore, route: str) -> dict[str, dt.datetime]:
    raw = store.get_blob(_FIRST_SEEN, route)
    if not raw:
        return {}
    try:
        return {k: dt.datetime.fromisoformat(v) for k, v in json.loads(raw).items()}
    except (ValueError, TypeError, AttributeError):
        log.warning("%s: unreadable first-seen times in the state store; starting them over", route)
        return {}


def note_partitions(
    store: StateStore, route: str, partitions: Sequence[str], now: dt.datetime
) -> dict[str, dt.datetime]:
    """Remember when each partition was first seen; forget the ones that are gone.

    Writes only when the set of partitions changed (the sensor calls this every tick).

    Args:
        store: The state store.
        route: The route's name.
        partitions: The route's partitions now.
        now: The current time (a new partition's first sighting).

    Returns:
        Partition key -> when it was first seen.
    """
    known = _read_first_seen(store, route)
    current = {p: known.get(p, now) for p in partitions}
    if current != known:
        blob = json.dumps({p: t.isoformat() for p, t in sorted(current.items())})
        store.put_blob(_FIRST_SEEN, route, blob.encode())
    return current


def _note(store: StateStore, route: str, partition: str, now: dt.datetime) -> str:
    """What may keep an overdue partition from syncing, from what the state store knows."""
    state = store.partition_state(route, partition)
    notes = []
    not_before = state.get("not_before")
    if not_before is not None and not_before > now:
        notes.append(f"rate limited until {_when(not_before)}")
    cp = store.get_checkpoint(route, partition)
    if cp is not None:
        notes.append(f"unfinished pass since {_when(cp.started_at)} ({cp.stats.get('pages', 0)} pages done)")
    if state.get("last_failure"):
        notes.append(f"last failure: {state['last_failure']}")
    return "; ".join(notes)


def freshness_verdict(
    route: Route,
    store: StateStore,
    *,
    specs: Mapping[str, SourceSpec] | None = None,
    first_seen: Mapping[str, dt.datetime] | None = None,
    now: dt.datetime | None = None,
) -> FreshnessVerdict:
    """Which partitions of ``route`` have not completed a full pass within twice their interval.

    Paused partitions (any of their pause scopes) are left out: the ``not_paused`` check reports them.

    Args:
        route: The route (its source's specs are its partitions).
        store: The state store.
        specs: The route's specs by partition (default: ``route.specs_by_partition()``).
        first_seen: When each partition was first seen (default: as the sensor stored it, read only;
            a partition not in it counts as seen now).
        now: The current time (default: now).

    Returns:
        The verdict.
    """
    now = now or utcnow()
    specs = route.specs_by_partition() if specs is None else specs
    seen = _read_first_seen(store, route.name) if first_seen is None else first_seen
    pauses = store.pauses()
    synced = last_synced(store, route.name)
    overdue: list[Overdue] = []
    paused: list[str] = []
    for key, spec in sorted(specs.items()):
        if any(s in pauses for s in route.pause_scopes(key)):
            paused.append(key)
            continue
        last = synced.get(key)
        since = last if last is not None else seen.get(key, now)
        if now - since >= dt.timedelta(minutes=OVERDUE_FACTOR * spec.interval_minutes):
            overdue.append(Overdue(key, spec.interval_minutes, last, since))
    overdue.sort(key=lambda o: (o.overdue_at, o.partition))
    overdue = [
        Overdue(o.partition, o.interval_minutes, o.last_synced_at, o.since, _note(store, route.name, o.partition, now))
        for o in overdue
    ]
    return FreshnessVerdict(
        route=route.name,
        checked=len(specs) - len(paused),
        overdue=tuple(overdue),
        paused=tuple(paused),
        evaluated_at=now,
    )


def freshness_result(route: Route, store: StateStore, asset_key: dg.AssetKey) -> dg.AssetCheckResult:
    """The ``not_overdue`` result a run of the route yields (the route-wide verdict, as the sensor's).

    Args:
        route: The route.
        store: The state store.
        asset_key: The route's asset key.

    Returns:
        The check result; a failed WARN naming the error when the verdict cannot be reached (e.g.
        the source's specs do not load).
    """
    try:
        return freshness_verdict(route, store).result(asset_key)
    except Exception as err:  # the run's own outcome matters more than this check
        return dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=NOT_OVERDUE,
            passed=False,
            severity=SEVERITY,
            description=f"{route.name}: freshness could not be evaluated: {describe_error(err)}"[:DESCRIPTION_LIMIT],
            metadata={"verdict": "unknown"},
        )


def freshness_sensor(route_defs: Sequence[RouteDefs]) -> dg.SensorDefinition:
    """The sensor that reports each route's ``not_overdue`` verdict without a run (module docstring).

    Args:
        route_defs: The routes of this code location.

    Returns:
        The sensor, running by default every 60 s.
    """

    @dg.sensor(
        name="durable_sync_freshness",
        minimum_interval_seconds=FRESHNESS_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Fails a route's {NOT_OVERDUE} check when a partition that is not paused has not completed "
            f"a full pass within twice its interval; reports only when the verdict changes."
        ),
    )
    def _freshness(context: dg.SensorEvaluationContext, sync_state: SyncStateResource) -> dg.SensorResult:
        store = sync_state.store()
        now = utcnow()
        report = ChangedVerdicts(context, NOT_OVERDUE)
        overdue: list[str] = []
        for rd in route_defs:
            name = rd.route.name
            try:
                specs = rd.route.specs_by_partition()
                seen = note_partitions(store, name, sorted(specs), now)
                verdict = freshness_verdict(rd.route, store, specs=specs, first_seen=seen, now=now)
            except Exception as err:  # one broken route must not hide the others' verdicts
                context.log.warning(f"{name}: freshness not evaluated: {describe_error(err)}")
                continue
            if not verdict.passed:
                overdue += [f"{name}/{o.partition}" for o in verdict.overdue]
            report.offer(name, rd.asset_key, verdict.key, functools.partial(verdict.evaluation, rd.asset_key))
        return report.result(f"overdue: {', '.join(overdue)}" if overdue else "no partition is overdue")

    return _freshness

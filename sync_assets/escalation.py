"""A pause that lasts escalates, once: an ERROR check on the route, and a webhook notification.

A pause stops partitions without a run, so nothing else would say that a credential rejected at
02:00 still holds every partition at 09:00. After ``DURABLE_SYNC_PAUSE_ESCALATE_AFTER`` (default one
hour; ``sync_assets.notify.pause_escalate_after``) a pause — by a rejected credential or by hand —
escalates:

- **The check.** The route's ``no_lasting_pause`` check fails with severity ERROR, listing each
  lasting pause (scope, since when, why, the partitions it holds, how to lift it). It is one verdict
  per route, not per partition: Dagster 1.13 stores a runless result of a partitioned check at most
  once per partition (see ``checks.pause_events``), and this one is reported without a run. The
  partition's own ``not_paused`` check turns ERROR too wherever it is evaluated (``checks.pause_verdict``).
- **The notification.** One ``pause_escalated`` webhook per pause (``sync_assets.notify``): its
  scope and start identify it in the state store, so a restarted daemon or a second code location
  does not send it again.

Who evaluates it: **the ``durable_sync_pause_escalation`` sensor** (every 60 s, no run): it reports
the check only when the verdict differs from what the UI shows (the check's latest stored evaluation,
as the freshness sensor does), sends the notices, and forgets the notices of pauses that ended. And
**every run of the route** yields the same route-wide verdict (a declared check must be yielded).

No ``from __future__ import annotations`` here: Dagster reads the sensor's annotations at runtime.
"""

import datetime as dt
import functools
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg

from connectors.core import DESCRIPTION_LIMIT, SourceSpec, describe_error
from sync_assets.checks import ChangedVerdicts
from sync_assets.notify import (
    forget_ended_notices,
    format_duration,
    notify_escalation,
    notify_once,
    pause_escalate_after,
    pause_identity,
)
from sync_assets.resources import SyncStateResource
from sync_assets.routes import Route
from sync_assets.runs import RouteDefs
from sync_assets.state import Pause, StateStore, utcnow

__all__ = [
    "ESCALATION_INTERVAL_SECONDS",
    "NO_LASTING_PAUSE",
    "LastingPause",
    "LastingPauseVerdict",
    "escalation_sensor",
    "lasting_pause_result",
    "lasting_pause_spec",
    "lasting_pause_verdict",
]

NO_LASTING_PAUSE = "no_lasting_pause"
ESCALATION_INTERVAL_SECONDS = 60
SEVERITY = dg.AssetCheckSeverity.ERROR
ESCALATED = "pause_escalated"  # the notice's event name
_TABLE_ROWS = 50


def lasting_pause_spec(asset_key: dg.AssetKey) -> dg.AssetCheckSpec:
    """The ``no_lasting_pause`` check of a route's asset (one verdict over all its partitions).

    Args:
        asset_key: The route's sync asset.

    Returns:
        The check's spec.
    """
    return dg.AssetCheckSpec(
        NO_LASTING_PAUSE,
        asset=asset_key,
        description="No pause has held a partition longer than DURABLE_SYNC_PAUSE_ESCALATE_AFTER (default 1 h).",
    )


@dataclass(frozen=True, slots=True)
class LastingPause:
    """A pause that has lasted past the escalation time, and what it holds of one route.

    Attributes:
        pause: The pause (scope, reason, since when, by whom).
        partitions: The route's partitions it stops.
    """

    pause: Pause
    partitions: tuple[str, ...]

    @property
    def key(self) -> str:
        """What identifies the pause (``notify.pause_identity``), short."""
        return hashlib.sha256(pause_identity(self.pause).encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class LastingPauseVerdict:
    """A route's ``no_lasting_pause`` verdict.

    Attributes:
        route: The route's name.
        lasting: The pauses that have lasted past ``after``, oldest first.
        after: The escalation time.
        evaluated_at: When the verdict was reached.
    """

    route: str
    lasting: tuple[LastingPause, ...]
    after: dt.timedelta
    evaluated_at: dt.datetime

    @property
    def passed(self) -> bool:
        """Whether no pause lasts."""
        return not self.lasting

    @property
    def key(self) -> str:
        """What identifies the verdict (a change of it is worth an event): pass, or the lasting pauses."""
        return "fail:" + ",".join(sorted(lp.key for lp in self.lasting)) if self.lasting else "pass"

    @property
    def description(self) -> str:
        """One line for the UI."""
        after = format_duration(self.after)
        if self.passed:
            return f"No pause has held a partition of {self.route} for longer than {after}."
        parts = []
        for lp in self.lasting:
            lasted = format_duration(self.evaluated_at - lp.pause.paused_at)
            parts.append(f"{lp.pause.scope} for {lasted} ({len(lp.partitions)} partition(s)): {lp.pause.reason}")
        text = (
            f"{len(self.lasting)} pause(s) have held partitions of {self.route} for longer than {after}: "
            f"{'; '.join(parts)}. Lift with: durable-sync resume {self.route}"
        )
        return text if len(text) <= DESCRIPTION_LIMIT else text[: DESCRIPTION_LIMIT - 1] + "…"

    @property
    def metadata(self) -> dict[str, Any]:
        """The check's metadata: the verdict key, counts, and a table of the lasting pauses."""
        md: dict[str, Any] = {
            "verdict": self.key,
            "lasting_pauses": len(self.lasting),
            "escalate_after_seconds": int(self.after.total_seconds()),
            "evaluated_at": _when(self.evaluated_at),
        }
        if self.lasting:
            md["paused_partitions"] = sum(len(lp.partitions) for lp in self.lasting)
            md["pauses"] = dg.MetadataValue.md(_table(self.lasting, self.evaluated_at))
            md["resume_with"] = f"durable-sync resume {self.route}"
        return md

    def evaluation(self, asset_key: dg.AssetKey) -> dg.AssetCheckEvaluation:
        """The verdict as a runless check evaluation (what the sensor reports)."""
        return dg.AssetCheckEvaluation(
            asset_key=asset_key,
            check_name=NO_LASTING_PAUSE,
            passed=self.passed,
            severity=SEVERITY,
            description=self.description,
            metadata=self.metadata,
        )

    def result(self, asset_key: dg.AssetKey) -> dg.AssetCheckResult:
        """The verdict as a check result (what a run of the route yields)."""
        return dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=NO_LASTING_PAUSE,
            passed=self.passed,
            severity=SEVERITY,
            description=self.description,
            metadata=self.metadata,
        )


def _when(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat(timespec="seconds")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:200]


def _table(lasting: Sequence[LastingPause], now: dt.datetime) -> str:
    lines = ["| scope | paused by | since | for | partitions | why |", "|---|---|---|---|---|---|"]
    for lp in lasting[:_TABLE_ROWS]:
        p = lp.pause
        shown = ", ".join(f"`{k}`" for k in lp.partitions[:10]) + (" …" if len(lp.partitions) > 10 else "")
        lines.append(
            f"| `{_cell(p.scope)}` | {p.source} | {_when(p.paused_at)} | {format_duration(now - p.paused_at)} "
            f"| {shown} | {_cell(p.reason)} |"
        )
    return "\n".join(lines)


def lasting_pause_verdict(
    route: Route,
    pauses: Mapping[str, Pause],
    *,
    specs: Mapping[str, SourceSpec] | None = None,
    now: dt.datetime | None = None,
    after: dt.timedelta | None = None,
) -> LastingPauseVerdict:
    """Which pauses have held partitions of ``route`` for longer than the escalation time.

    Args:
        route: The route (its source's specs are its partitions).
        pauses: Every pause, by scope (``StateStore.pauses()``).
        specs: The route's specs by partition (default: ``route.specs_by_partition()``).
        now: The current time (default: now).
        after: The escalation time (default: ``pause_escalate_after()``).

    Returns:
        The verdict.
    """
    now = now or utcnow()
    after = pause_escalate_after() if after is None else after
    specs = route.specs_by_partition() if specs is None else specs
    held: dict[str, list[str]] = {}
    for key in sorted(specs):
        for scope in dict.fromkeys(route.pause_scopes(key)):  # both ends may share one credential
            pause = pauses.get(scope)
            if pause is not None and now - pause.paused_at >= after:
                held.setdefault(scope, []).append(key)
    lasting = sorted(
        (LastingPause(pauses[scope], tuple(keys)) for scope, keys in held.items()),
        key=lambda lp: (lp.pause.paused_at, lp.pause.scope),
    )
    return LastingPauseVerdict(route=route.name, lasting=tuple(lasting), after=after, evaluated_at=now)


def lasting_pause_result(route: Route, store: StateStore, asset_key: dg.AssetKey) -> dg.AssetCheckResult:
    """The ``no_lasting_pause`` result a run of the route yields (the route-wide verdict, as the sensor's).

    Args:
        route: The route.
        store: The state store.
        asset_key: The route's asset key.

    Returns:
        The check result; a failed one naming the error when the verdict cannot be reached (e.g. the
        source's specs do not load).
    """
    try:
        return lasting_pause_verdict(route, store.pauses()).result(asset_key)
    except Exception as err:  # the run's own outcome matters more than this check
        return dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=NO_LASTING_PAUSE,
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            description=f"{route.name}: lasting pauses could not be evaluated: {describe_error(err)}"[
                :DESCRIPTION_LIMIT
            ],
            metadata={"verdict": "unknown"},
        )


def escalation_sensor(route_defs: Sequence[RouteDefs]) -> dg.SensorDefinition:
    """The sensor that escalates lasting pauses without a run (module docstring).

    Args:
        route_defs: The routes of this code location.

    Returns:
        The sensor, running by default every 60 s.
    """

    @dg.sensor(
        name="durable_sync_pause_escalation",
        minimum_interval_seconds=ESCALATION_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Fails a route's {NO_LASTING_PAUSE} check (ERROR) and sends one webhook per pause once a pause "
            "has lasted DURABLE_SYNC_PAUSE_ESCALATE_AFTER (default 1 h); reports only when the verdict changes."
        ),
    )
    def _escalate(context: dg.SensorEvaluationContext, sync_state: SyncStateResource) -> dg.SensorResult:
        store = sync_state.store()
        now = utcnow()
        after = pause_escalate_after()
        pauses = store.pauses()
        report = ChangedVerdicts(context, NO_LASTING_PAUSE)
        held: dict[str, dict[str, list[str]]] = {}  # scope -> route -> partitions
        for rd in route_defs:
            name = rd.route.name
            try:
                verdict = lasting_pause_verdict(rd.route, pauses, now=now, after=after)
            except Exception as err:  # one broken route must not hide the others' verdicts
                context.log.warning(f"{name}: lasting pauses not evaluated: {describe_error(err)}")
                continue
            for lp in verdict.lasting:
                held.setdefault(lp.pause.scope, {})[name] = list(lp.partitions)
            report.offer(name, rd.asset_key, verdict.key, functools.partial(verdict.evaluation, rd.asset_key))
        sent = []
        for scope, routes in sorted(held.items()):
            pause = pauses[scope]
            if notify_once(store, ESCALATED, pause, functools.partial(notify_escalation, pause, routes, now=now)):
                sent.append(scope)
        if sent:
            context.log.info(f"escalated lasting pause(s): {', '.join(sent)}")
        forget_ended_notices(store)
        summary = (
            f"lasting pause(s): {', '.join(sorted(held))}"
            if held
            else f"no pause has lasted longer than {format_duration(after)}"
        )
        return report.result(summary)

    return _escalate

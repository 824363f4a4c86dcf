"""Triggers: the dispatcher, the sync-now inbox, auth resume, failure notes, the reconcile schedule.

- **Dispatcher** (one per route, running by default): keeps the route's dynamic partitions equal to
  ``source.specs()`` and requests a run for every partition that is due: never synced, or its last
  full pass started at least ``interval_minutes`` ago. ``run_key = key@bucket`` (the interval bucket,
  offset per key so partitions spread over the interval) makes a due partition run once per bucket
  however often the sensor ticks. Paused, not-before and in-flight partitions are skipped.
- **Sync now** drains the state store's ``requests`` inbox (CLI, code, webhooks): all pending
  requests of one partition merge into one run; a full or full-refresh request wins over targeted
  ones (durable-sync silently downgraded it). Requests for paused partitions wait. The inbox is
  shared by every code location of a deployment: each location takes only its own routes' requests
  (the CLI refuses a route no module defines, so none is left for nobody).
- **Auth resume** clears an automatic auth pause once the credential's fingerprint changes (a new
  token was configured) and requests a catch-up run of every partition that uses it.
- **Failure sensor** stores each failed sync run's root cause per partition (``durable-sync status``
  and an observation on the asset partition). It reads the step failure's error chain, not the run
  failure message: after the retry policy gives up, the step's own error says "Exceeded max_retries
  of 3" and only its cause holds the 503 that made every attempt fail. A run refused by a credential
  sends the ``credential_paused`` webhook once per pause, not once per failed partition run
  (``sync_assets.notify``); a pause that lasts is ``sync_assets.escalation``'s.
- **Reconcile schedule** (daily per route) requests a pass with a destination listing.

No ``from __future__ import annotations`` here: Dagster reads the context annotations at runtime.
"""

import datetime as dt
import functools
import json
import re
import time
import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

import dagster as dg

from connectors.core import DESCRIPTION_LIMIT, redact_error_text
from sync_assets.checks import pause_events
from sync_assets.engine import credential_fingerprint
from sync_assets.notify import notify_once, notify_pause
from sync_assets.resources import SyncStateResource
from sync_assets.runs import PARTITION_TAG, RouteDefs, SyncConfig, route_of_run, run_tags
from sync_assets.state import StateStore, utcnow

if TYPE_CHECKING:  # a private module of Dagster: named for the type checker only
    from dagster._utils.error import SerializableErrorInfo

__all__ = [
    "auth_resume_sensor",
    "describe_step_error",
    "dispatcher_sensor",
    "failure_sensor",
    "reconcile_schedule",
    "sync_now_sensor",
]

DISPATCH_INTERVAL_SECONDS = 30
SYNC_NOW_INTERVAL_SECONDS = 5
AUTH_RESUME_INTERVAL_SECONDS = 30
# An auth pause of a credential without a fingerprint is lifted for a probing pass this long after it began.
AUTH_PROBE_AFTER = dt.timedelta(hours=1)

IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def in_flight_partitions(instance: dg.DagsterInstance, route_defs: Sequence[RouteDefs]) -> set[str]:
    """``route/partition`` of every queued or running sync run, however it was launched.

    Args:
        instance: The Dagster instance.
        route_defs: The routes to look at (their ``<route>_sync`` runs, and runs of Dagster's asset
            job that the UI, a backfill or ``dagster asset materialize`` launched for their assets).

    Returns:
        ``route/partition`` of each such run.
    """
    busy: set[str] = set()
    names = {rd.route.name for rd in route_defs}
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=IN_FLIGHT)):
        tag = run.tags.get(PARTITION_TAG)
        if tag and tag.split("/", 1)[0] in names:
            busy.add(tag)
            continue
        partition = run.tags.get("dagster/partition")
        rd = route_of_run(run, route_defs) if partition else None
        if rd is not None:
            busy.add(f"{rd.route.name}/{partition}")
    return busy


# A run in these still waits for the run coordinator: the sync-now sensor adds no second one behind it.
WAITING = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED]


def _waiting_partitions(instance: dg.DagsterInstance, route_defs: Sequence[RouteDefs]) -> set[str]:
    """``route/partition`` of every sync run still in the run queue (not dequeued yet)."""
    names = {rd.route.name for rd in route_defs}
    out: set[str] = set()
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=WAITING)):
        tag = run.tags.get(PARTITION_TAG)
        if tag and tag.split("/", 1)[0] in names:
            out.add(tag)
    return out


def _paused(store_pauses: dict, scopes: Sequence[str]) -> bool:
    return any(s in store_pauses for s in scopes)


def _run_config(rd: RouteDefs, config: SyncConfig) -> dg.RunConfig:
    return dg.RunConfig(ops={rd.asset.op.name: config})


def dispatcher_sensor(rd: RouteDefs) -> dg.SensorDefinition:
    """The route's dispatcher: keeps its partitions equal to the source's specs and runs the due ones.

    A partition is due when it was never synced or its last full pass started ``interval_minutes``
    ago or more; paused, not-before and in-flight partitions are skipped (see the module docstring).

    Args:
        rd: The route's definitions.

    Returns:
        A sensor, running by default, that targets the route's sync job.
    """
    route = rd.route

    @dg.sensor(
        name=f"{route.name}_dispatcher",
        job=rd.job,
        minimum_interval_seconds=DISPATCH_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Keeps {route.name}'s partitions equal to its specs and syncs each on its interval.",
    )
    def _dispatch(context: dg.SensorEvaluationContext, sync_state: SyncStateResource) -> dg.SensorResult:
        store = sync_state.store()
        specs = route.specs_by_partition()
        existing = set(context.instance.get_dynamic_partitions(rd.route.name))
        to_add = sorted(set(specs) - existing)
        to_delete = sorted(existing - set(specs))
        busy = in_flight_partitions(context.instance, [rd])
        pauses = store.pauses()
        not_before = store.not_before_map(route.name)
        last_started = store.last_pass_starts(route.name)
        now = time.time()
        requests: list[dg.RunRequest] = []
        skipped: list[str] = []
        # A pause set between runs starts no run, so nothing would show it: report it (and its end)
        # on the partition once, as an observation. The cursor remembers what was reported.
        reported: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        now_paused: dict[str, str] = {}
        asset_events: list[dg.AssetCheckEvaluation | dg.AssetObservation] = []
        for key, spec in sorted(specs.items()):
            pause = next((pauses[s] for s in route.pause_scopes(key) if s in pauses), None)
            if pause is not None:
                mark = f"{pause.scope}@{pause.paused_at.isoformat()}"
                now_paused[key] = mark
                if reported.get(key) != mark:
                    asset_events += pause_events(route.name, key, pause, asset_key=rd.asset_key, runless=True)
                skipped.append(f"{key}: paused")
                continue
            if key in reported:
                asset_events += pause_events(route.name, key, None, asset_key=rd.asset_key, runless=True)
            if f"{route.name}/{key}" in busy:
                continue
            nb = not_before.get(key)
            if nb is not None and nb.timestamp() > now:
                skipped.append(f"{key}: rate limited until {nb.isoformat(timespec='seconds')}")
                continue
            interval = spec.interval_minutes * 60
            last = last_started.get(key)
            if last is not None and last.timestamp() + interval > now:
                continue
            offset = zlib.crc32(f"{route.name}/{key}".encode()) % interval
            bucket = int((now + offset) // interval)
            requests.append(
                dg.RunRequest(
                    run_key=f"{key}@{bucket}",
                    partition_key=key,
                    tags=run_tags(route, key, "interval"),
                )
            )
        partition_requests: list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest] = []
        if to_add:
            partition_requests.append(rd.partitions_def.build_add_request(to_add))
        if to_delete:
            partition_requests.append(rd.partitions_def.build_delete_request(to_delete))
        skip = None
        if not requests:
            skip = "; ".join(skipped) if skipped else "no partition is due"
        return dg.SensorResult(
            run_requests=requests,
            dynamic_partitions_requests=partition_requests,
            skip_reason=skip,
            asset_events=asset_events,
            cursor=json.dumps(now_paused, sort_keys=True),
        )

    return _dispatch


def sync_now_sensor(route_defs: Sequence[RouteDefs]) -> dg.SensorDefinition:
    """The sync-now sensor: drains the state store's request inbox for these routes.

    The pending requests of one partition merge into one run (a full request wins over targeted
    ones); requests of paused partitions wait, and so do those of a partition whose last run is
    still queued (the next run takes them all); other code locations' routes are left alone.

    Args:
        route_defs: The routes of this code location.

    Returns:
        A sensor, running by default, that targets their sync jobs.
    """
    by_name = {rd.route.name: rd for rd in route_defs}

    @dg.sensor(
        name="durable_sync_sync_now",
        jobs=[rd.job for rd in route_defs],
        minimum_interval_seconds=SYNC_NOW_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Turns sync-now requests (durable-sync sync, code, webhooks) into runs.",
    )
    def _sync_now(context: dg.SensorEvaluationContext, sync_state: SyncStateResource) -> dg.SensorResult:
        store = sync_state.store()
        pauses = store.pauses()
        grouped: dict[tuple[str, str], list] = {}
        for req in store.pending_requests():
            # Only this code location's routes: the inbox is shared by every location of the
            # deployment, and a request for another location's route is that location's to take.
            if req.route in by_name:
                grouped.setdefault((req.route, req.partition), []).append(req)
        run_requests = []
        partition_requests = []
        waiting = _waiting_partitions(context.instance, route_defs) if grouped else set()
        for (route_name, partition), reqs in grouped.items():
            rd = by_name[route_name]
            ids = [r.id for r in reqs]
            specs = rd.route.specs_by_partition()
            if partition not in specs:
                context.log.warning(f"dropping sync requests {ids}: {route_name} has no spec {partition!r}")
                store.take_requests(ids, run_key="unknown-spec")
                continue
            if _paused(pauses, rd.route.pause_scopes(partition)):
                continue  # kept: it runs once the pause is lifted
            if f"{route_name}/{partition}" in waiting:
                # Kept until that run leaves the queue: then one new run takes everything that came
                # meanwhile. A run per tick would queue behind one another (one run per partition
                # at a time), each launched on its own, and a steady stream of webhooks outpaces them.
                continue
            full_refresh = any(r.full_refresh for r in reqs)
            if full_refresh or any(r.only_items is None for r in reqs):
                config = SyncConfig(full_refresh=full_refresh)
            else:
                items = sorted({i for r in reqs for i in (r.only_items or [])})
                config = SyncConfig(only_items=items)
            run_key = f"request:{route_name}:{partition}:{max(ids)}"
            existing = set(context.instance.get_dynamic_partitions(rd.route.name))
            if partition not in existing:
                partition_requests.append(rd.partitions_def.build_add_request([partition]))
            run_requests.append(
                dg.RunRequest(
                    run_key=run_key,
                    job_name=rd.job_name,
                    partition_key=partition,
                    run_config=_run_config(rd, config),
                    tags=run_tags(rd.route, partition, reqs[-1].reason),
                )
            )
            store.take_requests(ids, run_key=run_key)
        return dg.SensorResult(
            run_requests=run_requests,
            dynamic_partitions_requests=partition_requests,
            skip_reason=None if run_requests else "no pending sync requests",
        )

    return _sync_now


def _sides(rd: RouteDefs) -> list[tuple[str, object]]:
    return [(rd.route.destination_scope, rd.route.destination), (rd.route.source_scope, rd.route.source)]


def auth_resume_sensor(route_defs: Sequence[RouteDefs]) -> dg.SensorDefinition:
    """The auth-resume sensor: lifts an auth pause once the credential changes, then catches up.

    Args:
        route_defs: The routes of this code location.

    Returns:
        A sensor, running by default, that requests a catch-up run of every partition the pause held.
    """

    @dg.sensor(
        name="durable_sync_auth_resume",
        jobs=[rd.job for rd in route_defs],
        minimum_interval_seconds=AUTH_RESUME_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Clears a credential's auth pause once the credential changes, then catches up.",
    )
    def _auth_resume(context: dg.SensorEvaluationContext, sync_state: SyncStateResource) -> dg.SensorResult:
        store = sync_state.store()
        run_requests = []
        for scope, pause in store.pauses().items():
            if pause.source != "auth":
                continue
            users = [rd for rd in route_defs if any(s == scope for s, _ in _sides(rd))]
            current = None
            for rd in users:
                for s, side in _sides(rd):
                    if s == scope:
                        current = credential_fingerprint(side)
                        break
                if current is not None:
                    break
            if current is None and pause.fingerprint is None and users:
                # Nothing can tell this credential changed (a connector with no fingerprint, e.g. an
                # OAuth source of a ported connector): lift the pause for a probing pass now and
                # then; a credential still refused pauses again on its first call.
                if utcnow() - pause.paused_at < AUTH_PROBE_AFTER:
                    continue
                store.resume(scope)
                context.log.info(f"credential {scope} cannot be fingerprinted: pause lifted for a probing pass")
                run_requests += catch_up_requests(store, users, reason="auth_resume", stamp=pause.paused_at.timestamp())
                continue
            if current is None or current == pause.fingerprint:
                continue
            store.resume(scope)
            context.log.info(f"credential {scope} changed: pause cleared, catching up")
            run_requests += catch_up_requests(store, users, reason="auth_resume", stamp=pause.paused_at.timestamp())
        return dg.SensorResult(
            run_requests=run_requests, skip_reason=None if run_requests else "no paused credential changed"
        )

    return _auth_resume


def catch_up_requests(
    store: StateStore, route_defs: Sequence[RouteDefs], *, reason: str, stamp: float
) -> list[dg.RunRequest]:
    """A run for every unpaused partition of ``route_defs`` (after a pause is lifted).

    Args:
        store: The state store (for the pauses).
        route_defs: The routes to catch up.
        reason: The runs' trigger tag, and the start of their run keys.
        stamp: When the pause was set: with ``reason``, it makes the run keys unique per lifted pause.

    Returns:
        One run request per partition.
    """
    pauses = store.pauses()
    out = []
    for rd in route_defs:
        for key in sorted(rd.route.specs_by_partition()):
            if _paused(pauses, rd.route.pause_scopes(key)):
                continue
            out.append(
                dg.RunRequest(
                    run_key=f"{reason}:{int(stamp)}:{rd.route.name}:{key}",
                    job_name=rd.job_name,
                    partition_key=key,
                    tags=run_tags(rd.route, key, reason),
                )
            )
    return out


# Dagster's wrappers around a step's error: their message says how Dagster gave up, not why.
_DAGSTER_WRAPPERS = frozenset(
    {
        "RetryRequestedFromPolicy",
        "RetryRequested",
        "DagsterExecutionStepExecutionError",
        "DagsterUserCodeExecutionError",
        "DagsterMaxRetriesExceededError",
    }
)
_MAX_RETRIES_RE = re.compile(r"Exceeded max_retries of (\d+)")
_CHAIN_DEPTH = 20


def _error_line(info: "SerializableErrorInfo") -> str:
    """One serialized error as ``describe_error`` writes a live one.

    Our errors read as their message, foreign ones as ``Cls: message``; both redacted.
    """
    message = " ".join((info.message or "").split())
    cls = info.cls_name or "Error"
    # ``traceback.format_exception_only`` wrote "package.module.Cls: text" (or just the name).
    qualified, sep, text = message.partition(": ")
    if not sep and message.rsplit(".", 1)[-1] == cls:
        qualified, text = message, ""
    elif qualified.rsplit(".", 1)[-1] != cls:
        qualified, text = "", message
    ours = qualified.startswith(("connectors.", "sync_assets."))
    text = redact_error_text(text, foreign=not ours)
    if ours:
        return text or cls
    return f"{cls}: {text}" if text else cls


def describe_step_error(error: "SerializableErrorInfo | None") -> str | None:
    """The cause of a step failure, from its serialized error chain (``.cause``, else ``.context``).

    It names the first error that is not a Dagster wrapper, and the root cause when it differs.
    For example, ``Exceeded max_retries of 3`` ← ``RuntimeError: fetching page 2 failed`` ← ``GitHub GET
    /orgs/acme/repos -> 503: service unavailable`` reads ``RuntimeError: fetching page 2 failed (root
    cause: GitHub GET /orgs/acme/repos -> 503: service unavailable); gave up after 3 retries``.

    Args:
        error: The step failure's serialized error.

    Returns:
        One redacted line of at most ``DESCRIPTION_LIMIT`` characters, or None without an error.
    """
    chain: list[SerializableErrorInfo] = []
    seen: set[int] = set()
    current = error
    while current is not None and id(current) not in seen and len(chain) < _CHAIN_DEPTH:
        seen.add(id(current))
        chain.append(current)
        current = current.cause or current.context
    if not chain:
        return None
    retries = None
    for link in chain:
        m = _MAX_RETRIES_RE.search(link.message or "")
        if m and link.cls_name in _DAGSTER_WRAPPERS:
            retries = int(m.group(1))
            break
    own = [link for link in chain if link.cls_name not in _DAGSTER_WRAPPERS]
    if not own:
        return _error_line(chain[-1])
    outer, root = _error_line(own[0]), _error_line(own[-1])
    line = outer
    if len(own) > 1:
        bare = root.split(": ", 1)[1] if root.startswith(f"{own[-1].cls_name}: ") else root
        if bare not in outer:
            line = f"{outer} (root cause: {root})"
    if retries is not None:
        line += f"; gave up after {retries} retries"
    return line[:DESCRIPTION_LIMIT]


def failure_sensor(route_defs: Sequence[RouteDefs]) -> dg.SensorDefinition:
    """The failure sensor: stores the root cause of every failed sync run, per partition.

    Args:
        route_defs: The routes whose runs it watches.

    Returns:
        A run-failure sensor, running by default.
    """
    names = {rd.route.name for rd in route_defs}

    @dg.run_failure_sensor(
        name="durable_sync_failures",
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Stores the root cause of every failed sync run per partition.",
    )
    def _on_failure(context: dg.RunFailureSensorContext, sync_state: SyncStateResource) -> None:
        run = context.dagster_run
        rd = route_of_run(run, route_defs)  # a UI launch carries only dagster/partition
        route = rd.route.name if rd is not None else None
        partition = run.tags.get("dagster/partition")
        if route not in names or not partition:
            return
        messages = []
        paused_scope = None
        for event in context.get_step_failure_events():
            data = event.step_failure_data
            user = data.user_failure_data
            if user is not None and user.description:
                messages.append(user.description)
                md = {k: getattr(v, "value", v) for k, v in (user.metadata or {}).items()}
                if md.get("reason") == "auth":
                    paused_scope = str(md.get("scope") or "")
            elif (cause := describe_step_error(data.error)) is not None:
                messages.append(cause)
        message = "; ".join(dict.fromkeys(messages)) or (context.failure_event.message or "run failed")
        store = sync_state.store()
        store.record_failure(route, partition, message, run_id=run.run_id)
        # Shown on the asset partition in the UI, next to its materializations.
        context.instance.report_runless_asset_event(
            dg.AssetObservation(
                asset_key=dg.AssetKey([route]),
                partition=partition,
                metadata={"last_failure": message[:2000], "failed_run_id": run.run_id},
            )
        )
        if paused_scope:
            # Once per pause: the other partitions' runs refused on the same credential add nothing.
            pause = store.pauses().get(paused_scope)
            if pause is None:
                context.log.info(f"{paused_scope} was resumed before its pause was notified")
                return
            send = functools.partial(
                notify_pause,
                scope=paused_scope,
                route=route,
                partition=partition,
                reason=message,
                run_id=run.run_id,
                paused_since=pause.paused_at,
            )
            notify_once(store, "credential_paused", pause, send)

    return _on_failure


def reconcile_schedule(rd: RouteDefs) -> dg.ScheduleDefinition:
    """The route's daily reconcile: a pass with a destination listing, between 02:00 and 04:59.

    Args:
        rd: The route's definitions.

    Returns:
        A schedule, running by default, that asks for one listing for the route.
    """
    route = rd.route
    # Spread routes over 02:00-04:59 so they do not all list their destinations at once.
    crc = zlib.crc32(route.name.encode())
    cron = f"{crc % 60} {2 + crc % 3} * * *"

    @dg.schedule(
        name=f"{route.name}_reconcile",
        cron_schedule=cron,
        job=rd.job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Daily destination listing of {route.name} (one pass of one partition lists for the route).",
    )
    def _reconcile(context: dg.ScheduleEvaluationContext, sync_state: SyncStateResource):
        # The listing is of the whole destination and merges into the whole route's link map: one
        # pass lists for every partition (a listing per partition would list the same rows N times).
        store = sync_state.store()
        pauses = store.pauses()
        busy = in_flight_partitions(context.instance, [rd])
        existing = set(context.instance.get_dynamic_partitions(rd.route.name))
        stamp = int(context.scheduled_execution_time.timestamp())
        for key in sorted(route.specs_by_partition()):
            if key not in existing or _paused(pauses, route.pause_scopes(key)) or f"{route.name}/{key}" in busy:
                continue
            return [
                dg.RunRequest(
                    run_key=f"reconcile:{stamp}",
                    partition_key=key,
                    run_config=_run_config(rd, SyncConfig(reconcile=True)),
                    tags=run_tags(route, key, "reconcile"),
                )
            ]
        return dg.SkipReason("no partition to reconcile")

    return _reconcile

"""Route -> Dagster definitions: asset, partitions, checks, job, sensors, schedule (DESIGN §6).

One asset per route, partitioned by the source's spec keys (a ``DynamicPartitionsDefinition`` named
after the route), downstream of an external asset for the source system. Its body runs one engine
pass; its value is the route's link map (``LinkMapIOManager``). Failures map onto Dagster as:

- transient errors → the asset's ``RetryPolicy`` (exponential backoff, jitter); the retried step
  resumes at the page in flight;
- a short rate-limit wait → ``RetryRequested(seconds_to_wait=…)``; a long one → the partition gets a
  stored not-before time and the run ends (no worker sleeps for 15 minutes);
- an auth failure → the credential is paused in the state store and the run fails without retry,
  naming the fix;
- a paused partition → the run fails at once without calling anything.

No ``from __future__ import annotations`` here: Dagster reads the context annotation at runtime.
"""

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import os
import re
import time
from collections.abc import Sequence
from typing import Any

import dagster as dg

from connectors.core import AuthError, ConfigError, RateLimited, describe_error
from connectors.http import backoff_scope
from sync_assets.checks import (
    NO_DUPLICATE_KEYS,
    NO_FAILED_RECORDS,
    NOT_PAUSED,
    not_paused_spec,
    pause_events,
    pause_verdict,
)
from sync_assets.conflicts import conflicts_result, no_conflicts_spec
from sync_assets.engine import LeaseLost, PartitionBusy, PassOptions, PassResult, PassStats, Paused, run_pass
from sync_assets.escalation import escalation_sensor, lasting_pause_result, lasting_pause_spec
from sync_assets.freshness import freshness_result, freshness_sensor, not_overdue_spec
from sync_assets.io_managers import LinkMapIOManager
from sync_assets.monitor import stale_run_sensor
from sync_assets.resources import SyncStateResource
from sync_assets.routes import Route, credential_key
from sync_assets.runs import PARTITION_TAG, ROUTE_TAG, TRIGGER_TAG, RouteDefs, SyncConfig, run_tags
from sync_assets.sensors import (
    auth_resume_sensor,
    dispatcher_sensor,
    failure_sensor,
    reconcile_schedule,
    sync_now_sensor,
)
from sync_assets.state import LinkMap, StateStore, utcnow
from sync_assets.systems import bind_route, resource_keys

__all__ = [
    "NOT_PAUSED",
    "NO_DUPLICATE_KEYS",
    "NO_FAILED_RECORDS",
    "PARTITION_TAG",
    "ROUTE_TAG",
    "SYNC_RETRY_POLICY",
    "TRIGGER_TAG",
    "RouteDefs",
    "SyncConfig",
    "asset_retry_policy",
    "build_definitions",
    "build_route",
    "link_report_asset",
    "pause_events",
    "pool_name",
    "run_tags",
]

log = logging.getLogger(__name__)

SHORT_WAIT_SECONDS = 120  # rate-limit waits up to this sleep in the run; longer ones defer the partition
RATE_LIMIT_RETRIES = 5
PROGRESS_EVERY_PAGES = 50  # each context.log call is an event-log row: log progress sparingly
PROGRESS_EVERY_SECONDS = 30.0

SYNC_RETRY_POLICY = dg.RetryPolicy(max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
_DAGSTER_BACKOFF = {"exponential": dg.Backoff.EXPONENTIAL, "linear": dg.Backoff.LINEAR, "constant": None}


def asset_retry_policy(route: Route, default: dg.RetryPolicy | None = SYNC_RETRY_POLICY) -> dg.RetryPolicy | None:
    """The retry policy of a route's sync asset: the route's own, else ``default``, shaped by its ``backoff``.

    Args:
        route: The route (``Route.retry_policy`` wins over ``default``; ``Route.backoff`` sets the
            policy's backoff: ``exponential``, ``linear``, or ``constant``, i.e. none).
        default: The deployment's policy (None: no retries, and a route's ``backoff`` alone adds none).

    Returns:
        The policy, or None for no retries.
    """
    policy: dg.RetryPolicy | None = route.retry_policy if route.retry_policy is not None else default
    if policy is None or route.backoff is None or policy.delay is None:
        return policy  # without a delay there is nothing to grow (Dagster refuses a backoff without one)
    return dg.RetryPolicy(
        max_retries=policy.max_retries,
        delay=policy.delay,
        backoff=_DAGSTER_BACKOFF[route.backoff],
        jitter=policy.jitter,
    )


def shared_limits_enabled() -> bool:
    """Whether runs pace credentials by the state store's shared schedules (the default).

    ``DURABLE_SYNC_SHARED_LIMITS`` set to ``0``, ``false``, ``no`` or ``off`` turns them off: each run
    then paces itself.
    """
    return os.environ.get("DURABLE_SYNC_SHARED_LIMITS", "").strip().lower() not in ("0", "false", "no", "off")


def _config_failure(where: str, err: ConfigError) -> dg.Failure:
    """The run's failure for a configuration error: not retried (no retry changes a configuration)."""
    return dg.Failure(description=f"{where}: {err}", metadata={"reason": "config"}, allow_retries=False)


def pool_name(route: Route) -> str:
    """One Dagster pool per destination credential, so runs sharing a rate limit queue together."""
    key = credential_key(route.destination)
    safe = re.sub(r"[^A-Za-z0-9_]", "_", key)[:40]
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    return f"ds_{safe}_{digest}" if safe != key else f"ds_{safe}"


class _Progress:
    """Logs a progress line every N pages or M seconds (not per record)."""

    def __init__(self, context: dg.AssetExecutionContext, route: str, partition: str) -> None:
        self.context, self.route, self.partition = context, route, partition
        self.last_pages = 0
        self.last_time = time.monotonic()

    def __call__(self, stats: PassStats) -> None:
        now = time.monotonic()
        if stats.pages - self.last_pages < PROGRESS_EVERY_PAGES and now - self.last_time < PROGRESS_EVERY_SECONDS:
            return
        self.last_pages, self.last_time = stats.pages, now
        self.context.log.info(
            f"{self.route}/{self.partition}: page {stats.pages}, {stats.records} records "
            f"(created {stats.created}, updated {stats.updated}, unchanged {stats.unchanged}, "
            f"failed {stats.failed})"
        )


def _failures_markdown(rows: Sequence[tuple[str, str, int]]) -> str:
    lines = ["| key | attempts | error |", "|---|---|---|"]
    for key, error, attempts in rows:
        safe = error.replace("|", "\\|").replace("\n", " ")[:300]
        lines.append(f"| `{key}` | {attempts} | {safe} |")
    return "\n".join(lines)


def _check_results(
    route: Route, partition: str, store: StateStore, asset_key: dg.AssetKey
) -> list[dg.AssetCheckResult]:
    failed = store.failed_records(route.name, partition, limit=20)
    failed_total = store.failed_count(route.name, partition) if failed else 0
    checks = [
        dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=NO_FAILED_RECORDS,
            passed=not failed,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "failed": failed_total,
                **(
                    {
                        "failures": dg.MetadataValue.md(
                            _failures_markdown([(o.primary_key, o.error, o.attempts) for o in failed])
                        )
                    }
                    if failed
                    else {}
                ),
            },
            description="Records that failed validation or whose write failed; retried every pass.",
        )
    ]
    if route.two_way is not None:
        checks.append(conflicts_result(route, partition, store, asset_key))
    when, dups, dup_keys = store.last_reconcile(route.name)
    dup_md = "\n".join(f"- `{k}`: {', '.join(ids)}" for k, ids in dup_keys)
    checks.append(
        dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=NO_DUPLICATE_KEYS,
            passed=dups == 0,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "keys_listed_twice": dups,
                "last_reconciled_at": when.isoformat() if when else "never",
                **({"duplicates": dg.MetadataValue.md(dup_md)} if dup_md else {}),
            },
            description="The last destination listing found at most one row per primary key.",
        )
    )
    # A pause set while this pass ran (e.g. another partition's credential was rejected) shows at once.
    passed, severity, description, metadata = pause_verdict(
        route.name, partition, store.paused(route.pause_scopes(partition))
    )
    checks.append(
        dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=NOT_PAUSED,
            passed=passed,
            severity=severity,
            metadata=metadata,
            description=description,
        )
    )
    # The route-wide verdicts the freshness and escalation sensors report: a declared check must
    # come from every run.
    checks.append(freshness_result(route, store, asset_key))
    checks.append(lasting_pause_result(route, store, asset_key))
    return checks


def _log_checks_before_failing(
    context: dg.AssetExecutionContext,
    route: Route,
    partition: str,
    store: StateStore,
    asset_key: dg.AssetKey,
    *,
    paused: str | None = None,
) -> None:
    """Log the checks as the state store has them, from a run about to fail.

    Otherwise Dagster shows every check of the failed run as "execution failed" — a red
    ``no_duplicate_keys`` after a configuration error although nothing was listed — and the UI keeps
    the partition's last green materialization.

    Args:
        context: The asset's execution context.
        route: The route.
        partition: The partition key.
        store: The state store.
        asset_key: The route's asset key.
        paused: Why the run stopped when the partition is paused (the engine's message): then the
            ``not_paused`` check fails with the pause and an observation on the partition says what
            to run; otherwise only the check is logged.
    """
    pause = store.paused(route.pause_scopes(partition))
    others = [r for r in _check_results(route, partition, store, asset_key) if r.check_name != NOT_PAUSED]
    for result in others:
        context.log_event(_as_evaluation(result))
    for event in pause_events(route.name, partition, pause, fallback=paused or "", asset_key=asset_key):
        if paused is not None or isinstance(event, dg.AssetCheckEvaluation):
            context.log_event(event)


def _as_evaluation(result: dg.AssetCheckResult) -> dg.AssetCheckEvaluation:
    """A check result as an event a step can log before it fails (unpartitioned checks only)."""
    assert result.asset_key is not None and result.check_name is not None
    return dg.AssetCheckEvaluation(
        asset_key=result.asset_key,
        check_name=result.check_name,
        passed=result.passed,
        metadata=result.metadata,
        severity=result.severity,
        description=result.description,
    )


def _metadata(route: Route, result: PassResult, store: StateStore) -> dict[str, Any]:
    s = result.stats
    md: dict[str, Any] = {
        "mode": result.mode,
        "created": s.created,
        "updated": s.updated,
        "unchanged": s.unchanged,
        "skipped": s.skipped,
        "failed": s.failed,
        "records": s.records,
        "pages": s.pages,
        "destination_calls": s.destination_calls,
        "seconds": dg.MetadataValue.float(float(s.seconds)),
        "links": store.link_count(route.name, result.partition),
    }
    md["reconciled"] = s.reconciled
    if s.reconciled:
        md.update(listed=s.listed, adopted=s.adopted, gone=s.gone, keys_listed_twice=s.duplicates)
    if s.resumed_from is not None:
        md["resumed_from_page"] = s.resumed_from
    if s.not_found:
        md["not_found_at_source"] = ", ".join(s.not_found)
    describe = getattr(route.destination, "describe", None)
    if describe is not None:
        where = str(describe())
        md["destination"] = dg.MetadataValue.url(where) if where.startswith("http") else where
    md.update(result.extra)
    if result.failures:
        md["failed_records"] = dg.MetadataValue.md(_failures_markdown([(k, e, 1) for k, e in result.failures[:20]]))
    return md


def build_route(
    route: Route,
    source_key: dg.AssetKey,
    downstream: Sequence[dg.AssetsDefinition | dg.AssetSpec] = (),
    *,
    retry_policy: dg.RetryPolicy | None = SYNC_RETRY_POLICY,
) -> RouteDefs:
    """The partitioned asset of one route and its sync job.

    Args:
        route: The route.
        source_key: The asset key of the route's source system (the asset's upstream).
        downstream: Other assets; those partitioned like the route and depending on it run in the
            same job.
        retry_policy: The asset's retry policy for transient failures (None: no retries); the
            route's own ``retry_policy`` and ``backoff`` win (``asset_retry_policy``).

    Returns:
        The route's partitions, asset and job.
    """
    route_def = route
    partitions_def = dg.DynamicPartitionsDefinition(name=route.name)
    asset_key = dg.AssetKey([route.name])
    destination_kind = re.sub(r"[^a-z0-9]", "", route.destination.name.lower()) or "destination"
    source_kind = re.sub(r"[^a-z0-9]", "", route.source.name.lower()) or "source"

    @dg.asset(
        key=asset_key,
        group_name=route.name,
        deps=[source_key],
        partitions_def=partitions_def,
        kinds={source_kind, destination_kind} if source_kind != destination_kind else {source_kind},
        description=route.description
        or f"Records of {route.source.name} mirrored into {route.destination.name}; one partition per spec.",
        check_specs=[
            *([no_conflicts_spec(asset_key)] if route.two_way is not None else []),
            dg.AssetCheckSpec(NO_FAILED_RECORDS, asset=asset_key, description="No record failed to sync."),
            dg.AssetCheckSpec(NO_DUPLICATE_KEYS, asset=asset_key, description="One destination row per primary key."),
            not_paused_spec(asset_key, partitions_def),
            not_overdue_spec(asset_key),
            lasting_pause_spec(asset_key),
        ],
        retry_policy=asset_retry_policy(route, retry_policy),
        # The resources the route's ends are built from (routes declared in YAML), shown in the UI.
        required_resource_keys={"sync_state", *resource_keys(route)},
        # A pass that finds its partition held by another one ends without a materialization.
        output_required=False,
        io_manager_key="link_map_io_manager",
        pool=pool_name(route),
        tags={"durable_sync/route": route.name},
    )
    def _sync(
        context: dg.AssetExecutionContext, config: SyncConfig
    ):  # -> MaterializeResult carrying the LinkMap (annotating it would make the output type Nothing)
        sync_state: SyncStateResource = context.resources.sync_state
        try:
            store = sync_state.store()
        except ConfigError as err:  # e.g. the state database needs `durable-sync migrate`: no retry helps
            raise _config_failure(route_def.name, err) from None
        partition = context.partition_key
        route = bind_route(route_def, context.resources)
        options = PassOptions(
            full_refresh=config.full_refresh,
            only_items=tuple(config.only_items) if config.only_items else None,
            reconcile=True if config.reconcile else None,
            run_id=context.run.run_id,
        )
        progress = _Progress(context, route.name, partition)
        try:
            spec = route.spec_for(partition)
            # The route's backoff reaches the HTTP retries of every client the pass builds, and every
            # credential is paced by the schedule all runs share (the state store's), unless
            # DURABLE_SYNC_SHARED_LIMITS=0.
            shared = shared_limits_enabled()
            with backoff_scope(route.http_backoff), store.shared_rate_limits() if shared else contextlib.nullcontext():
                result = asyncio.run(run_pass(route, partition, store, options, spec=spec, progress=progress))
        except Paused as err:
            _log_checks_before_failing(context, route, partition, store, asset_key, paused=str(err))
            raise dg.Failure(
                description=str(err), metadata={"reason": "paused", "scope": err.scope}, allow_retries=False
            ) from None
        except AuthError as err:
            # The pause this run just set shows on the partition at once (check + observation).
            _log_checks_before_failing(context, route, partition, store, asset_key, paused=describe_error(err))
            raise dg.Failure(
                description=(
                    f"{route.name}/{partition}: credential rejected — {describe_error(err)}. "
                    f"Every partition using it is paused. Renew the credential; the pause then clears "
                    f"itself, or run: durable-sync resume {route.name}"
                ),
                metadata={"reason": "auth", "scope": err.credential or route.destination_scope},
                allow_retries=False,
            ) from None
        except RateLimited as err:
            if err.retry_after <= SHORT_WAIT_SECONDS:
                raise dg.RetryRequested(
                    max_retries=RATE_LIMIT_RETRIES, seconds_to_wait=max(1.0, err.retry_after)
                ) from err
            until = utcnow() + dt.timedelta(seconds=err.retry_after)
            store.set_not_before(route.name, partition, until)
            _log_checks_before_failing(context, route, partition, store, asset_key)
            raise dg.Failure(
                description=(
                    f"{route.name}/{partition}: rate limited for {int(err.retry_after)} s; the dispatcher "
                    f"resumes this partition after {until.isoformat(timespec='seconds')}"
                ),
                metadata={"reason": "rate_limited", "not_before": until.isoformat()},
                allow_retries=False,
            ) from None
        except ConfigError as err:
            _log_checks_before_failing(context, route, partition, store, asset_key)
            raise _config_failure(f"{route.name}/{partition}", err) from None
        except (PartitionBusy, LeaseLost) as err:
            # Another pass holds the partition (a second launch from the UI, the CLI, a backfill):
            # nothing was written, and that pass brings the partition up to date. Not a failure to
            # chase: no materialization, the checks as the state store has them now.
            context.log.info(str(err))
            yield from _check_results(route, partition, store, asset_key)
            return
        store.set_not_before(route.name, partition, None)
        store.clear_failure(route.name, partition)
        yield dg.MaterializeResult(
            value=LinkMap(store, route.name, partition),
            metadata=_metadata(route, result, store),
            check_results=_check_results(route, partition, store, asset_key),
        )

    selection: dg.AssetSelection = dg.AssetSelection.assets(_sync)
    for extra in downstream:
        if isinstance(extra, dg.AssetsDefinition) and extra.partitions_def == partitions_def:
            deps = {dep.asset_key for spec in extra.specs for dep in spec.deps}
            if asset_key in deps:
                selection = selection | dg.AssetSelection.assets(extra)
    job = dg.define_asset_job(
        f"{route.name}_sync",
        selection=selection,
        executor_def=dg.in_process_executor,
        description=f"One sync pass of one partition of {route.name}.",
        tags={ROUTE_TAG: route.name},
    )
    return RouteDefs(route=route, partitions_def=partitions_def, asset=_sync, job=job)


def link_report_asset(route: Route, *, name: str | None = None) -> dg.AssetsDefinition:
    """A downstream asset that reads the route's link map and reports it (count and a preview).

    It shows how a downstream asset consumes a link map: as an input, partition by partition,
    streamed from the state store.

    Args:
        route: The route whose link map it reads.
        name: The asset's name (default: ``<route>_link_report``).

    Returns:
        The asset, partitioned like the route.
    """
    partitions_def = dg.DynamicPartitionsDefinition(name=route.name)
    report_key = dg.AssetKey([name or f"{route.name}_link_report"])

    @dg.asset(
        key=report_key,
        group_name=route.name,
        ins={"links": dg.AssetIn(key=dg.AssetKey([route.name]))},
        partitions_def=partitions_def,
        kinds={"python"},
        description=f"Report over the link map of {route.name}: how many records are linked, and a preview.",
    )
    def _report(context: dg.AssetExecutionContext, links: LinkMap) -> dg.MaterializeResult:
        preview: list[tuple[str, str]] = []
        total = 0
        for key, dest_id in links:
            total += 1
            if len(preview) < 10:
                preview.append((key, dest_id))
        md = "\n".join(["| primary key | destination id |", "|---|---|"] + [f"| `{k}` | `{v}` |" for k, v in preview])
        return dg.MaterializeResult(metadata={"linked": total, "preview": dg.MetadataValue.md(md)})

    return _report


def build_definitions(
    routes: Sequence[Route],
    *,
    assets: Sequence[dg.AssetsDefinition | dg.AssetSpec] = (),
    state: SyncStateResource | None = None,
    resources: dict[str, Any] | None = None,
    retry_policy: dg.RetryPolicy | None = SYNC_RETRY_POLICY,
    shared_sensors: bool = True,
) -> dg.Definitions:
    """The Dagster definitions of a deployment's routes.

    Args:
        routes: The routes; disabled ones are left out (``durable-sync status`` reports them).
        assets: Extra assets, e.g. downstream consumers of link maps. Those partitioned like a route
            (same dynamic partitions) and depending on it run in that route's sync job.
        state: The state store resource (default: from ``DURABLE_SYNC_STATE_URL`` / ``DAGSTER_HOME``).
        resources: Extra resources.
        retry_policy: The sync assets' retry policy for transient failures.
        shared_sensors: Add the deployment-wide sensors (sync-now, auth-resume, failures, stale runs);
            False for one route's definitions merged with others' (``RouteComponent.build_defs``).
    """
    enabled = [r for r in routes if r.enabled]
    seen: dict[str, Route] = {}
    for r in enabled:
        if r.name in seen:
            raise ConfigError(f"two routes are named {r.name!r}; give one of them Route(name=...)")
        seen[r.name] = r
    state = state or SyncStateResource()

    source_specs: dict[str, dg.AssetSpec] = {}
    for r in enabled:
        if r.source.name not in source_specs:
            source_specs[r.source.name] = dg.AssetSpec(
                key=dg.AssetKey([r.source.name]),
                group_name="sources",
                kinds={re.sub(r"[^a-z0-9]", "", r.source.name.lower()) or "source"},
                description=f"The {r.source.name} system: records are read from it by the routes downstream.",
            )
        if r.source.name in seen:
            raise ConfigError(f"route name {r.source.name!r} collides with the source system asset of that name")

    route_defs = [build_route(r, source_specs[r.source.name].key, assets, retry_policy=retry_policy) for r in enabled]
    jobs = [rd.job for rd in route_defs]
    sensors = [dispatcher_sensor(rd) for rd in route_defs]
    if route_defs and shared_sensors:
        sensors += [
            sync_now_sensor(route_defs),
            auth_resume_sensor(route_defs),
            failure_sensor(route_defs),
            stale_run_sensor(route_defs),
            freshness_sensor(route_defs),
            escalation_sensor(route_defs),
        ]
    schedules = [reconcile_schedule(rd) for rd in route_defs]
    all_resources: dict[str, Any] = {
        "sync_state": state,
        "link_map_io_manager": LinkMapIOManager(state=state),
        **(resources or {}),
    }
    return dg.Definitions(
        assets=[*source_specs.values(), *(rd.asset for rd in route_defs), *assets],
        jobs=jobs,
        sensors=sensors,
        schedules=schedules,
        resources=all_resources,
    )

"""Test helpers: materialize a route in one line, isolated, failing fast, naming the root cause.

    from sync_assets.testing import materialize_route

    def test_my_route(tmp_path):
        run = materialize_route(build_my_route(out_dir=tmp_path))
        assert run.success and run.stats.created == 3

Each call runs the real asset through ``dagster.materialize`` (checks, metadata and all) after
registering the partition. Three defaults differ from a deployment, because a test must be
repeatable and quick:

- **Isolated.** Unless a ``store``/``state_url`` or an ``instance`` is given, the run gets a fresh state
  store in a temporary directory and an ephemeral Dagster instance: it never reads or writes the state
  under ``DAGSTER_HOME`` or ``DURABLE_SYNC_STATE_URL``, so a second test run starts from the same
  nothing as the first. (The route's destination is the test's to isolate: build the route on
  ``tmp_path``, or on a fake.) ``RouteRun.store`` is that store, to pass to a second call.
- **No retries.** A deployment retries transient errors with backoff (``SYNC_RETRY_POLICY``: about a
  minute of real waiting before it gives up); a test wants the error now. Pass ``retry_policy=`` to
  exercise retries (e.g. ``dg.RetryPolicy(max_retries=3, delay=0.01)``).
- **The root cause.** ``RouteRun.failure`` is the error that stopped the pass (``TransientError: POST
  … -> 503``, the pause reason, the credential that was rejected), not Dagster's wrapper around it
  ("Exceeded max_retries of 3").
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from connectors.http import keep_local_limits
from connectors.memory import MemoryDestination, MemorySource
from sync_assets.engine import PassStats
from sync_assets.factory import SyncConfig, build_route
from sync_assets.io_managers import LinkMapIOManager
from sync_assets.resources import SyncStateResource
from sync_assets.routes import Route
from sync_assets.state import StateStore

__all__ = ["MemoryDestination", "MemorySource", "RouteRun", "materialize_route", "temporary_state_store"]


@dataclass
class RouteRun:
    """The outcome of ``materialize_route``.

    Attributes:
        result: Dagster's result of the in-process run.
        route: The route.
        partition: The partition that ran.
        store: The state store the run used (pass it to the next call to continue from this run).
        instance: The Dagster instance the run was recorded in.
    """

    result: dg.ExecuteInProcessResult
    route: Route
    partition: str
    store: StateStore
    instance: dg.DagsterInstance

    @property
    def success(self) -> bool:
        """Whether the run succeeded."""
        return self.result.success

    @property
    def metadata(self) -> dict[str, Any]:
        """The materialization's metadata as plain values ({} when the run did not materialize)."""
        mats = self.result.asset_materializations_for_node(self.route.name)
        if not mats:
            return {}
        return {k: getattr(v, "value", v) for k, v in mats[-1].metadata.items()}

    @property
    def stats(self) -> PassStats:
        """The pass's stats; raises AssertionError naming the failure when the run did not materialize."""
        md = self.metadata
        if not md:
            raise AssertionError(f"{self.route.name}/{self.partition} did not materialize: {self.failure}")
        return PassStats.from_dict(md)

    def _logged(self, event_type: dg.DagsterEventType) -> list[dg.EventLogEntry]:
        # Read from the instance: events a failing step logged (a pause's check and observation)
        # are stored there but missing from the in-process result's event list.
        return list(self.instance.all_logs(self.result.run_id, of_type=event_type))

    @property
    def checks(self) -> dict[str, dg.AssetCheckEvaluation]:
        """The run's asset check evaluations by check name (the last one of each)."""
        found: dict[str, dg.AssetCheckEvaluation] = {}
        for entry in self._logged(dg.DagsterEventType.ASSET_CHECK_EVALUATION):
            data = entry.dagster_event.event_specific_data if entry.dagster_event else None
            if isinstance(data, dg.AssetCheckEvaluation):
                found[data.check_name] = data
        return found

    @property
    def observations(self) -> list[dg.AssetObservation]:
        """The asset observations the run recorded (e.g. the reason a partition is paused)."""
        return [
            entry.asset_observation
            for entry in self._logged(dg.DagsterEventType.ASSET_OBSERVATION)
            if entry.asset_observation is not None
        ]

    @property
    def failure(self) -> str | None:
        """Why the run failed, at the root: the error the pass raised, or the message of a ``Failure``.

        Dagster wraps an error that exhausted the retry policy ("Exceeded max_retries of 3"); the
        cause chain is followed to the error the connector or engine raised.
        """
        for event in self.result.all_events:
            if event.is_step_failure and event.step_failure_data is not None:
                data = event.step_failure_data
                if data.user_failure_data is not None and data.user_failure_data.description:
                    return data.user_failure_data.description
                if data.error is None:
                    return "step failed"
                root = data.error
                while root.cause is not None:
                    root = root.cause
                message = root.message.strip()
                if root is not data.error and data.error.message.startswith("Exceeded max_retries"):
                    message += f" ({data.error.message.strip().lower()})"
                return message
        return None

    @property
    def event_types(self) -> list[str]:
        """The run's event types in order (``STEP_START``, ``ASSET_MATERIALIZATION``…)."""
        return [e.event_type_value for e in self.result.all_events]


def temporary_state_store() -> StateStore:
    """A fresh SQLite state store in a temporary directory, removed when the interpreter exits."""
    tmp = Path(tempfile.mkdtemp(prefix="durable-sync-test-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    return StateStore(f"sqlite:///{tmp / 'state.sqlite3'}")


def materialize_route(
    route: Route,
    partition: str | None = None,
    *,
    store: StateStore | None = None,
    state_url: str | None = None,
    config: SyncConfig | None = None,
    instance: dg.DagsterInstance | None = None,
    assets: Sequence[dg.AssetsDefinition] = (),
    raise_on_error: bool = False,
    tags: dict[str, str] | None = None,
    retry_policy: dg.RetryPolicy | None = None,
    shared_limits: bool = False,
) -> RouteRun:
    """Materialize one partition of a route through Dagster, as a test would.

    Args:
        route: The route. Build it on the test's ``tmp_path`` (or on a fake API): this helper isolates
            the state store and the Dagster instance, not the route's destination.
        partition: The partition key (the spec's key, sanitised to ``[A-Za-z0-9:_.-]``); default: the
            route's only spec. Required when the source has several specs.
        store: A state store to run against, e.g. ``RouteRun.store`` of an earlier call, to see the
            second pass over the same state.
        state_url: Or the SQLAlchemy URL of one (``sqlite:///…``, ``postgresql://…``).
            Default (neither given): a new temporary SQLite store (``temporary_state_store``), never the
            one of ``DURABLE_SYNC_STATE_URL`` / ``DAGSTER_HOME``.
        config: Run config: ``SyncConfig(only_items=[…])``, ``full_refresh=True``, ``reconcile=True``.
        instance: A Dagster instance to record the run in; default: a new ephemeral (in-memory) one.
        assets: Downstream assets (partitioned like the route, depending on it) to materialize in the
            same run, e.g. ``link_report_asset(route)``.
        raise_on_error: Raise the step's error instead of returning a failed ``RouteRun``.
        tags: Run tags (e.g. the ones the dispatcher sets, ``factory.run_tags``).
        retry_policy: The asset's retry policy; default None: no retries, so a failing test fails at
            once and ``RouteRun.failure`` names the error. Give one to test retries.
        shared_limits: Pace the clients by the rate limits every process shares, kept in the state
            store, as a real run does; default False: each client's in-process limiter.

    Returns:
        A ``RouteRun``: ``success``, ``stats``, ``metadata``, ``checks``, ``observations``, ``failure``,
        ``store``, and Dagster's ``result``.
    """
    if store is None:
        store = StateStore.shared(state_url) if state_url is not None else temporary_state_store()
    # The asset's resource looks the store up by URL: make it this very object (a test's fixture).
    StateStore._shared[store.url] = store
    specs = route.specs_by_partition()
    if partition is None:
        if len(specs) != 1:
            raise ValueError(f"{route.name} has {len(specs)} specs; pass partition= one of {sorted(specs)}")
        partition = next(iter(specs))
    rd = build_route(route, dg.AssetKey([route.source.name]), assets, retry_policy=retry_policy)
    instance = instance or dg.DagsterInstance.ephemeral()
    if partition not in instance.get_dynamic_partitions(route.name):
        instance.add_dynamic_partitions(route.name, [partition])
    state = SyncStateResource(url=store.url)
    run_config = dg.RunConfig(ops={rd.asset.op.name: config}) if config is not None else None
    # A test's clients keep their in-process limiter (and its fake clock) unless it asks for the
    # schedule every process shares, which a real run installs.
    with contextlib.nullcontext() if shared_limits else keep_local_limits():
        result = dg.materialize(
            [rd.asset, *assets],
            partition_key=partition,
            resources={
                "sync_state": state,
                "link_map_io_manager": LinkMapIOManager(state=state),
            },
            instance=instance,
            run_config=run_config,
            raise_on_error=raise_on_error,
            tags=tags,
        )
    return RouteRun(result=result, route=route, partition=partition, store=store, instance=instance)

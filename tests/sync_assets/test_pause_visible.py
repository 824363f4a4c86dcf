"""A paused partition is visible where Dagster users look: the asset's checks and the partition's events.

Before, a run of a paused partition failed with a message in the run's log only; the asset kept its
last green materialization, its checks said nothing, and the partition's page showed no reason.
"""

from __future__ import annotations

import dagster as dg

from connectors.memory import MemoryDestination, MemorySource
from sync_assets.factory import NO_DUPLICATE_KEYS, NO_FAILED_RECORDS, NOT_PAUSED, pause_events
from sync_assets.routes import Route
from sync_assets.testing import materialize_route
from tests.sync_assets.helpers import memory_route, records


def test_a_partition_paused_by_hand_fails_its_not_paused_check_with_the_reason_and_the_fix(sqlite_store):
    route = memory_route()
    instance = dg.DagsterInstance.ephemeral()
    run = materialize_route(route, store=sqlite_store, instance=instance)
    ok = run.checks[NOT_PAUSED]
    assert ok.passed and ok.partition == "all"

    sqlite_store.pause(f"partition:{route.name}/all", "frozen for the audit", source="manual")
    run = materialize_route(route, store=sqlite_store, instance=instance)
    assert not run.success and "paused" in run.failure
    check = run.checks[NOT_PAUSED]
    assert not check.passed and check.partition == "all"
    assert check.severity == dg.AssetCheckSeverity.WARN  # somebody chose it: a warning, not an error
    assert "frozen for the audit" in check.description
    assert f"durable-sync resume {route.name}" in check.description
    assert check.metadata["resume_with"].value == f"durable-sync resume {route.name}"
    # The other checks keep their stored state instead of reading "execution failed".
    assert run.checks[NO_FAILED_RECORDS].passed and run.checks[NO_DUPLICATE_KEYS].passed
    (obs,) = run.observations
    assert obs.partition == "all" and obs.asset_key == dg.AssetKey([route.name])
    assert obs.metadata["reason"].value == "frozen for the audit"
    assert obs.metadata["scope"].value == f"partition:{route.name}/all"

    # The partition's latest check result, as the UI reads it, is the failure.
    key = dg.AssetCheckKey(dg.AssetKey([route.name]), NOT_PAUSED)
    (latest,) = instance.event_log_storage.get_asset_check_execution_history(key, limit=1)
    assert latest.status.value == "FAILED" and latest.partition == "all"

    sqlite_store.resume(f"partition:{route.name}/all")
    run = materialize_route(route, store=sqlite_store, instance=instance)
    assert run.success and run.checks[NOT_PAUSED].passed


def test_a_credential_paused_by_another_partitions_auth_failure_is_an_error_on_this_partition(sqlite_store):
    source = MemorySource({"a": records(5), "b": records(5, prefix="b")})
    dest = MemoryDestination()
    route = Route(source, dest)
    instance = dg.DagsterInstance.ephemeral()
    for partition in ("a", "b"):
        assert materialize_route(route, partition, store=sqlite_store, instance=instance).success
    dest.credential = None
    source.records["a"] = records(5, version=1)
    assert not materialize_route(route, "a", store=sqlite_store, instance=instance).success  # pauses the credential

    run = materialize_route(route, "b", store=sqlite_store, instance=instance)
    check = run.checks[NOT_PAUSED]
    assert not check.passed and check.partition == "b"
    assert check.severity == dg.AssetCheckSeverity.ERROR  # a human must renew the credential
    assert "credential:memory" in check.description and "401" in check.description
    assert check.metadata["paused_by"].value == "a rejected credential"
    assert [o.partition for o in run.observations] == ["b"]


def test_a_pause_set_while_a_pass_runs_fails_the_check_of_that_successful_run(sqlite_store):
    route = memory_route()

    def pause_on_first_record(record):
        if not sqlite_store.pauses():
            sqlite_store.pause(route.destination_scope, "401 from the destination (another partition)", source="auth")
        return record

    paused_mid_pass = Route(route.source, route.destination, transform=pause_on_first_record)
    run = materialize_route(paused_mid_pass, store=sqlite_store)
    assert run.success and run.stats.created == 250  # the engine looks at pauses when a pass starts
    check = run.checks[NOT_PAUSED]
    assert not check.passed and "another partition" in check.description


def test_pause_events_reported_without_a_run_land_on_the_partition(sqlite_store):
    """What a sensor or the CLI reports when it learns of a pause or its end (no run happens)."""
    route = memory_route({"a": records(2), "b": records(2)})
    instance = dg.DagsterInstance.ephemeral()
    for partition in ("a", "b"):
        materialize_route(route, partition, store=sqlite_store, instance=instance)
    key = dg.AssetKey([route.name])

    def newest_observation() -> dg.AssetObservation:
        return instance.fetch_observations(key, limit=1).records[0].asset_observation

    for round_ in range(2):  # pausing the same partition twice works (a runless check result would not)
        sqlite_store.pause(f"route:{route.name}", f"migration {round_}", source="manual")
        for event in pause_events(route.name, "b", sqlite_store.paused(route.pause_scopes("b")), runless=True):
            instance.report_runless_asset_event(event)
        obs = newest_observation()
        assert obs.partition == "b" and obs.metadata["reason"].value == f"migration {round_}"
        assert obs.metadata["resume_with"].value == f"durable-sync resume {route.name}"

        sqlite_store.resume(f"route:{route.name}")
        for event in pause_events(route.name, "b", sqlite_store.paused(route.pause_scopes("b")), runless=True):
            instance.report_runless_asset_event(event)
        assert newest_observation().metadata["paused"].value is False

    # Inside a run both go out: the failed check and the observation.
    sqlite_store.pause(f"route:{route.name}", "migration 3", source="manual")
    events = pause_events(route.name, "b", sqlite_store.paused(route.pause_scopes("b")))
    assert [type(e).__name__ for e in events] == ["AssetCheckEvaluation", "AssetObservation"]
    assert events[0].check_name == NOT_PAUSED and not events[0].passed and events[0].partition == "b"


def test_building_a_route_warns_nothing_about_the_partitioned_check():
    """The CLI and the code server build the definitions on every start: no preview warning each time."""
    import warnings

    from sync_assets.factory import build_route

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rd = build_route(memory_route(), dg.AssetKey(["memory"]))
    assert not [w for w in caught if issubclass(w.category, dg.PreviewWarning)], [str(w.message) for w in caught]
    assert dg.AssetCheckKey(rd.asset_key, NOT_PAUSED) in rd.asset.check_keys


def test_the_run_whose_credential_is_rejected_shows_the_pause_it_set(sqlite_store):
    route = memory_route()
    materialize_route(route, store=sqlite_store)
    route.destination.credential = None
    route.source.records["all"] = records(250, version=1)
    run = materialize_route(route, store=sqlite_store)
    assert not run.success and "credential rejected" in run.failure
    check = run.checks[NOT_PAUSED]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR and check.partition == "all"
    assert "credential:memory" in check.description and "durable-sync resume" in check.description
    assert run.checks[NO_FAILED_RECORDS].passed
    assert [o.partition for o in run.observations] == ["all"]


def test_a_configuration_error_run_leaves_the_checks_it_did_not_measure_green(sqlite_store):
    from connectors.core import ConfigError

    route = memory_route()
    materialize_route(route, store=sqlite_store)

    def broken(*_args, **_kwargs):
        raise ConfigError("the source's settings are wrong")

    route.source.fetch_page = broken
    with dg.instance_for_test() as instance:
        run = materialize_route(route, store=sqlite_store, instance=instance)
        assert not run.success and "settings are wrong" in run.failure
        for name in (NO_DUPLICATE_KEYS, NO_FAILED_RECORDS):
            history = instance.event_log_storage.get_asset_check_execution_history(
                dg.AssetCheckKey(dg.AssetKey(route.name), name), limit=1
            )
            assert history[0].status.value == "SUCCEEDED", (name, history[0].status)

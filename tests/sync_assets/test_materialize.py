"""Routes materialized through Dagster with ``materialize_route``."""

from __future__ import annotations

import pytest

from connectors.core import Record, RecordError, TransientError
from sync_assets.factory import NO_DUPLICATE_KEYS, NO_FAILED_RECORDS, SyncConfig
from sync_assets.testing import materialize_route
from tests.sync_assets.helpers import FAST_RETRY, memory_route, records


def test_user_unit_test_is_three_lines(store):
    route = memory_route()
    result = materialize_route(route, store=store)
    assert result.success and result.stats.created == 250


def test_second_materialization_writes_nothing_and_checks_pass(store):
    route = memory_route()
    materialize_route(route, store=store)
    run = materialize_route(route, store=store)
    assert run.stats.unchanged == 250 and run.stats.destination_calls == 0
    assert run.metadata["links"] == 250
    assert run.checks[NO_FAILED_RECORDS].passed and run.checks[NO_DUPLICATE_KEYS].passed
    assert route.destination.duplicates() == {}


def test_failed_record_shows_in_check_metadata_and_is_retried(store):
    broken = {"k0007"}
    route = memory_route(fail=lambda op, r: RecordError("400 bad value") if r.primary_key in broken else None)
    run = materialize_route(route, store=store)
    assert run.success  # one bad record does not fail the run
    assert run.stats.failed == 1 and run.stats.created == 249
    check = run.checks[NO_FAILED_RECORDS]
    assert not check.passed and check.severity.value == "WARN"
    assert "k0007" in check.metadata["failures"].value
    assert "k0007" in run.metadata["failed_records"]
    broken.clear()
    run = materialize_route(route, store=store)
    assert run.stats.created == 1 and run.checks[NO_FAILED_RECORDS].passed


def test_transient_failure_is_retried_in_the_run_and_resumes_at_the_page(store):
    route = memory_route(page_size=50)
    route.source.fail_at_page = {3: TransientError("GET /items -> 503")}
    run = materialize_route(route, store=store, retry_policy=FAST_RETRY)
    assert run.success
    assert "STEP_UP_FOR_RETRY" in run.event_types
    assert run.metadata["resumed_from_page"] == 3
    assert len(route.destination.rows) == 250 and route.destination.duplicates() == {}


def test_auth_error_pauses_and_fails_without_retry(store):
    route = memory_route()
    materialize_route(route, store=store)
    route.destination.credential = None
    route.source.records["all"] = records(250, version=1)
    run = materialize_route(route, store=store, retry_policy=FAST_RETRY)
    assert not run.success
    assert "STEP_UP_FOR_RETRY" not in run.event_types
    assert run.event_types.count("STEP_FAILURE") == 1
    assert "credential rejected" in run.failure and "durable-sync resume" in run.failure
    assert "credential:memory" in store.pauses()
    calls = route.destination.counters.calls
    run = materialize_route(route, store=store)  # a manual run while paused calls nothing
    assert not run.success and "paused" in run.failure
    assert route.destination.counters.calls == calls


def test_targeted_and_full_refresh_config(store):
    route = memory_route()
    materialize_route(route, store=store)
    route.source.records["all"] = records(250, version=3)
    run = materialize_route(route, store=store, config=SyncConfig(only_items=["k0001", "k0002"]))
    assert run.stats.updated == 2 and run.metadata["mode"] == "targeted"
    run = materialize_route(route, store=store, config=SyncConfig(full_refresh=True))
    assert run.stats.updated == 250 and run.metadata["mode"] == "full_refresh"


def test_downstream_asset_reads_the_link_map(store):
    from sync_assets.factory import link_report_asset

    route = memory_route()
    report = link_report_asset(route)
    run = materialize_route(route, store=store, assets=[report])
    assert run.success
    (mat,) = run.result.asset_materializations_for_node(f"{route.name}_link_report")
    assert mat.metadata["linked"].value == 250
    assert "k0000" in mat.metadata["preview"].value


def test_neutral_types_arrive_typed_in_sqlite_through_dagster(store, tmp_path):
    import datetime as dt

    from connectors.files import SQLiteDestination
    from connectors.memory import MemorySource
    from sync_assets.routes import Route

    values = {
        "Due": dt.date(2024, 5, 1),
        "At": dt.datetime(2024, 5, 1, 9, 30, tzinfo=dt.UTC),
        "Tags": ["x", "y"],
        "Done": False,
        "Points": 5,
        "Gone": None,
    }
    dest = SQLiteDestination(tmp_path / "out.sqlite3", table="things")
    route = Route(MemorySource({"all": [Record("a", dict(values), body="notes")]}), dest)
    assert materialize_route(route, store=store).success
    (row,) = dest.read_rows()
    assert {k: row[k] for k in values} == values
    assert type(row["Due"]) is dt.date and row["At"].tzinfo is not None and row["body"] == "notes"


@pytest.mark.parametrize("bad", ["", "a|b/c d"])
def test_partition_keys_are_sanitised(store, bad):
    from connectors.memory import MemorySource
    from sync_assets.routes import Route, partition_key_for

    if not bad:
        with pytest.raises(Exception, match="non-empty"):
            MemorySource({bad: records(1)}).specs()
        return
    route = Route(MemorySource({bad: records(3)}), memory_route().destination)
    key = partition_key_for(bad)
    assert key == "a_b_c_d"
    assert materialize_route(route, key, store=store).stats.created == 3


def test_progress_is_logged_every_n_pages_not_per_record(store):
    import dagster as dg

    route = memory_route({"all": records(6000)}, page_size=50)  # 120 pages
    instance = dg.DagsterInstance.ephemeral()
    run = materialize_route(route, store=store, instance=instance)
    assert run.success
    messages = [e.user_message for e in instance.all_logs(run.result.run_id) if e.dagster_event is None]
    progress = [m for m in messages if ": page " in m]
    assert 1 <= len(progress) <= 4, progress  # at pages 50 and 100 (and on the 30 s clock), never per record
    assert "page 50, 2500 records" in progress[0]

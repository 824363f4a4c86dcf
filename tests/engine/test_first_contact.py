"""Engine regressions found by first contact (issue: real traffic and a new user)."""

from __future__ import annotations

import httpx
import pytest

from connectors.core import Record, RecordError
from connectors.memory import MemoryDestination, MemorySource
from sync_assets.engine import PassOptions, run_pass
from sync_assets.routes import Route


def recs(n: int) -> list[Record]:
    return [Record(f"k{i:04d}", {"Name": f"item {i}"}) for i in range(n)]


def _wrapped_connect_error(op: str, record: Record) -> BaseException | None:
    if record.primary_key == "k0003":
        try:
            raise httpx.ConnectError("connection refused")
        except httpx.ConnectError as err:
            try:
                raise RuntimeError("creating the page failed") from err
            except RuntimeError as wrapper:
                return wrapper
    return None


def _grouped_connect_error(op: str, record: Record) -> BaseException | None:
    if record.primary_key == "k0003":
        return ExceptionGroup("writes failed", [httpx.ConnectError("connection refused")])
    return None


@pytest.mark.parametrize("fail", [_wrapped_connect_error, _grouped_connect_error], ids=["from", "group"])
async def test_a_wrapped_transport_error_stops_the_pass_instead_of_failing_a_record(store, fail):
    dest = MemoryDestination(fail=fail, max_concurrency=1)
    route = Route(MemorySource({"all": recs(10)}, page_size=5), dest)
    with pytest.raises((RuntimeError, ExceptionGroup)):
        await run_pass(route, "all", store)
    # Nothing was recorded as the record's own failure: the outage is retried as a whole pass.
    assert store.failed_count(route.name, "all") == 0
    dest.fail = None
    result = await run_pass(route, "all", store)
    assert result.stats.failed == 0
    assert len(dest.rows) == 10 and dest.duplicates() == {}


async def test_a_record_error_wrapping_a_transport_error_is_still_the_records_own(store):
    def fail(op: str, record: Record) -> BaseException | None:
        if record.primary_key == "k0003":
            try:
                raise httpx.ConnectError("refused")
            except httpx.ConnectError as err:
                try:
                    raise RecordError("k0003: the API refused this record") from err
                except RecordError as rec_err:
                    return rec_err
        return None

    route = Route(MemorySource({"all": recs(10)}, page_size=5), MemoryDestination(fail=fail))
    result = await run_pass(route, "all", store)
    assert result.stats.failed == 1 and result.stats.created == 9


class FetchOnly:
    """A source with only fetch(): counts how often it is read."""

    name = "fetchonly"

    def __init__(self, n: int) -> None:
        self.records = recs(n)
        self.reads = 0

    def specs(self):
        from connectors.core import SourceSpec

        return [SourceSpec("all")]

    async def fetch(self, spec, only_items=None):
        self.reads += 1
        if only_items is not None:
            return [r for r in self.records if r.primary_key in set(only_items)]
        return list(self.records)


async def test_a_fetch_only_source_is_read_once_per_pass(store):
    source = FetchOnly(5_000)
    route = Route(source, MemoryDestination())
    result = await run_pass(route, "all", store)
    assert result.stats.created == 5_000 and result.stats.pages == 10  # written in chunks of 500
    assert source.reads == 1


async def test_plan_reports_what_the_destination_would_refuse(tmp_path, store):
    from connectors.files import SQLiteDestination

    path = tmp_path / "out" / "plan.sqlite3"
    dest = SQLiteDestination(path, table="t", key_column="key", types={"Rank": "int"})
    rows = [Record("a", {"Rank": 1}), Record("b", {"Rank": "high"}), Record("c", {"Rank": 3})]
    route = Route(MemorySource({"all": rows}), dest)
    result = await run_pass(route, "all", store, PassOptions(plan=True))
    assert result.stats.created == 2 and result.stats.failed == 1
    assert [k for k, _ in result.failures] == ["b"]
    assert not path.parent.exists()  # a plan writes nothing anywhere

"""Through the engine: a source hook's error fails its record only; the rest of the page is written."""

from __future__ import annotations

from connectors.core import Record
from connectors.memory import MemoryDestination
from sync_assets.engine import run_pass
from sync_assets.routes import Route
from tests.fakes.notion import FakeNotion


async def test_a_failing_hook_is_one_failed_record_and_the_pass_writes_the_others(
    make_source, fake: FakeNotion, ds_id, sqlite_store
):
    pages = [fake.add_page(ds_id, {"Name": f"row {i}", "Key": str(i)}) for i in range(4)]
    bad = pages[2].id

    def tag(record: Record, ctx) -> Record:  # type: ignore[no-untyped-def]  # a sync hook works too
        if record.primary_key == bad:
            raise ValueError("no tag for this one")
        return Record(record.primary_key, {**record.properties, "Tag": ctx.source})

    dest = MemoryDestination()
    route = Route(make_source(enrich=tag, incremental=False), dest, owns=frozenset({"Name", "Tag"}))
    (partition,) = route.specs_by_partition()
    result = await run_pass(route, partition, sqlite_store)
    assert result.stats.created == 3 and result.stats.failed == 1
    ((key, why),) = result.failures
    assert key == bad and "enrich hook failed: ValueError: no tag for this one" in why
    assert sorted(r.properties["Tag"] for r in dest.rows.values()) == ["notion"] * 3

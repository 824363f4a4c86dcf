"""What every source's ``enrich`` hook test checks (shared by the per-connector test modules)."""

from __future__ import annotations

from collections.abc import Sequence

from connectors.core import EnrichContext, EnrichFailed, Record, neutral_type_error


def check_enriched(records: Sequence[Record], failed_key: str, added: str) -> None:
    """Every record but ``failed_key`` carries ``added``; ``failed_key``'s values all stand for the error."""
    assert records, "the page is empty"
    failed = [r for r in records if r.primary_key == failed_key]
    assert len(failed) == 1, f"{failed_key} missing: the failed record must reach the engine, not vanish"
    values = list(failed[0].properties.values())
    assert values and all(isinstance(v, EnrichFailed) for v in values)
    problem = neutral_type_error("x", values[0])
    assert problem is not None and "enrich hook failed" in problem and "RuntimeError: boom" in problem
    others = [r for r in records if r.primary_key != failed_key]
    assert others and all(added in r.properties for r in others)


def failing_on(key: str, add: str, value_of):  # type: ignore[no-untyped-def]
    """An async hook: ``add`` = ``await value_of(record, ctx)``; raises for the record ``key``."""

    async def hook(record: Record, ctx: EnrichContext) -> Record:
        if record.primary_key == key:
            raise RuntimeError("boom")
        return Record(record.primary_key, {**record.properties, add: await value_of(record, ctx)}, record.body)

    return hook

"""The Luma source and destination as contract-suite cases (``tests/contract``), wired to the fake Luma API.

``tests/contract/cases.py`` registers them. Luma cannot hold our key (``stores_keys = False``), so
the suite skips its listing assertions for this destination — ``test_luma_engine.py`` covers the
same behaviours through the engine's link map.
Luma stores a name and times, so the destination case reads back ``Name`` and ``Updated`` (the start).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from connectors.core import Record
from connectors.http import HttpSettings
from connectors.luma import LumaDestination, LumaSource
from tests.connectors.luma.helpers import FAST, NO_JITTER, START
from tests.contract.cases import DestinationHarness, SourceHarness, sample_records
from tests.fakes.github import FakeClock
from tests.fakes.luma import FakeLuma

__all__ = ["luma_destination", "luma_source"]


def _options(fake: FakeLuma, clock: FakeClock) -> dict[str, Any]:
    return {
        "token": fake.key,
        "http": HttpSettings(
            transport=httpx.ASGITransport(app=fake.app), retry=NO_JITTER, sleep=clock.sleep, clock=clock.clock
        ),
        "rate": FAST,
    }


def _served(fake: FakeLuma) -> Any:
    return lambda status: fake.count(status=status)


@asynccontextmanager
async def luma_source(tmp_path: Path) -> AsyncIterator[SourceHarness]:
    """LumaSource on 7 events, 3 to a page (``next_cursor``), hosts read with ``event/get``."""
    clock = FakeClock(start=START)
    fake = FakeLuma(clock=clock.clock)
    for i in range(7):
        fake.add_event(
            f"Meetup {i}",
            dt.datetime(2024, 5, 1 + 4 * i, 17, 0, tzinfo=dt.UTC),
            hosts=["Ada Lovelace"] if i % 2 else ["Ada Lovelace", "Grace Hopper"],
            description_md=f"Agenda {i}",
        )

    def make() -> LumaSource:
        return LumaSource(
            page_size=3, now=lambda: dt.datetime.fromtimestamp(clock.now, dt.UTC), **_options(fake, clock)
        )

    source = make()
    yield SourceHarness(
        source,
        source.specs()[0],
        7,
        make,
        missing_item="evt-doesnotexist00",
        inject_failures=lambda n, status: fake.fail_next(n, status),
        revoke=fake.revoke_key,
        forbid=lambda: fake.fail_next(1, 403, message="Forbidden: this key cannot read the calendar."),
        rate_limit=lambda retry_after: fake.fail_next(1, 429, retry_after=int(retry_after)),
        served=_served(fake),
        sleeps=clock.sleeps,
    )


@asynccontextmanager
async def luma_destination(tmp_path: Path) -> AsyncIterator[DestinationHarness]:
    """LumaDestination with the sample records' ``Updated`` as the start; rows read back from the fake,
    keyed by name (Luma holds no key of ours; the sample names are unique)."""
    clock = FakeClock(start=START)
    fake = FakeLuma(clock=clock.clock)
    dest = LumaDestination(start_property="Updated", end_property=None, **_options(fake, clock))
    records = sample_records()
    key_by_name = {str(r.properties["Name"]): r.primary_key for r in records}

    async def rows() -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for event in fake.events.values():
            key = key_by_name.get(event.name, event.name)
            if key in out:
                raise AssertionError(f"key {key!r} is stored in more than one event")
            out[key] = {"Name": event.name, "Updated": event.start}
        return out

    def expected(record: Record) -> dict[str, Any]:
        return {"Name": record.properties["Name"], "Updated": record.properties["Updated"]}

    yield DestinationHarness(
        dest,
        records,
        rows,
        expected=expected,
        cleared=None,  # Luma keeps a name and times: there is no optional property to clear
        inject_failures=lambda n, status: fake.fail_next(n, status, method="POST"),
        revoke=fake.revoke_key,
        forbid=lambda: fake.fail_next(1, 403, method="POST", message="Forbidden: this key cannot edit the calendar."),
        rate_limit=lambda retry_after: fake.fail_next(1, 429, method="POST", retry_after=int(retry_after)),
        served=_served(fake),
        sleeps=clock.sleeps,
    )

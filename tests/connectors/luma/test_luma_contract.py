"""The shared contract suite (``tests/contract``) run against the Luma source and destination.

The tests are the suite's own functions, collected here with this folder's harnesses. The destination
tests that compare the destination's listing with what was created are left out: Luma cannot list our
keys (see ``cases.py``); ``test_luma_engine.py`` covers idempotency through the link map instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.connectors.luma.cases import luma_destination, luma_source
from tests.contract import test_destination_contract as destination_suite
from tests.contract import test_source_contract as source_suite
from tests.contract.cases import DestinationHarness, SourceHarness

LISTING_TESTS = {
    "test_the_listing_names_every_created_row_by_key_and_id",
    "test_an_update_with_the_same_record_changes_nothing",
    "test_a_429_on_a_write_is_waited_out",
    "test_a_second_pass_writes_nothing_and_a_change_is_exactly_one_update",
}

globals().update({f"{name}__source": fn for name, fn in vars(source_suite).items() if name.startswith("test_")})
globals().update(
    {
        f"{name}__destination": fn
        for name, fn in vars(destination_suite).items()
        if name.startswith("test_") and name not in LISTING_TESTS
    }
)


@pytest.fixture
async def harness(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[SourceHarness | DestinationHarness]:
    make = luma_destination if request.node.name.split("[")[0].endswith("__destination") else luma_source
    async with make(tmp_path) as h:
        yield h

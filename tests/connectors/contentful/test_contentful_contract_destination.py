"""The shared destination contract (``tests/contract/test_destination_contract.py``) run against
ContentfulDestination.

Every ``test_*`` of the suite is collected here with this module's ``harness`` fixture, so the suite
runs unchanged; see ``contract_cases.py`` for registering the case in the suite itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.connectors.contentful.contract_cases import contentful_destination
from tests.contract import test_destination_contract as _suite
from tests.contract.cases import DestinationHarness

globals().update({name: test for name, test in vars(_suite).items() if name.startswith("test_")})


@pytest.fixture
async def harness(tmp_path) -> AsyncIterator[DestinationHarness]:
    async with contentful_destination(tmp_path) as h:
        yield h

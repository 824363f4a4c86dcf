"""The shared source contract (``tests/contract/test_source_contract.py``) run against ContentfulSource.

Every ``test_*`` of the suite is collected here with this module's ``harness`` fixture, so the suite
runs unchanged; see ``contract_cases.py`` for registering the case in the suite itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.connectors.contentful.contract_cases import contentful_source
from tests.contract import test_source_contract as _suite
from tests.contract.cases import SourceHarness

globals().update({name: test for name, test in vars(_suite).items() if name.startswith("test_")})


@pytest.fixture
async def harness(tmp_path) -> AsyncIterator[SourceHarness]:
    async with contentful_source(tmp_path) as h:
        yield h

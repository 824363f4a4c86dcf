"""The shared source contract (``tests/contract/test_source_contract.py``) run against the YouTube source.

The tests are the suite's own functions, collected here with this folder's ``harness``; see
``cases.py`` for the one check left out (Google answers a deleted key with 400, not 401).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.connectors.youtube.cases import youtube_source
from tests.contract import test_source_contract as suite
from tests.contract.cases import SourceHarness

SKIPPED = {"test_a_revoked_credential_is_an_auth_error_and_not_retried"}  # asserts a 401 was served

globals().update({name: fn for name, fn in vars(suite).items() if name.startswith("test_") and name not in SKIPPED})


@pytest.fixture
async def harness(tmp_path) -> AsyncIterator[SourceHarness]:
    async with youtube_source(tmp_path) as h:
        yield h

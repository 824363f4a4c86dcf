"""Constants and types shared by the Luma connector's tests (fixtures live in conftest.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from connectors.http import Rate, RetryPolicy
from connectors.luma import LumaDestination, LumaSource

START = dt.datetime(2024, 6, 3, 19, 0, tzinfo=dt.UTC).timestamp()
"""The fake clock's start: 2024-06-03T19:00:00Z."""

# The toolkit's own limiter would pace the tests in real time; the fake's 200/min is what is tested.
FAST = Rate(10_000, 1, burst=10_000)
NO_JITTER = RetryPolicy(jitter=0)

SourceFactory = Callable[..., LumaSource]
DestinationFactory = Callable[..., LumaDestination]

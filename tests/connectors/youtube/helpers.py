"""Constants and types shared by the YouTube connector's tests (fixtures live in conftest.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from connectors.http import Rate, RetryPolicy
from connectors.youtube import YouTubeSource

# 2024-06-03T19:00:00Z = 12:00 PDT on a Monday: far from the quota reset, far from a DST switch.
START = dt.datetime(2024, 6, 3, 19, 0, tzinfo=dt.UTC).timestamp()

# The toolkit's own limiter would pace the tests in real time; the fake's quota is what is tested.
FAST = Rate(10_000, 1, burst=10_000)
NO_JITTER = RetryPolicy(jitter=0)

SourceFactory = Callable[..., YouTubeSource]
"""``make_source(channels=[...], ...)``: a YouTubeSource wired to the fake (see conftest.py)."""

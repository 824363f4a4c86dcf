"""What durable-sync's connectors use of ``temporalio.activity``, for ported connectors.

durable-sync's GitHub, Luma and YouTube sources (and contrib's) heartbeat with
``if activity.in_activity(): activity.heartbeat(detail)``. A pass here is not a Temporal activity: the
engine keeps its own lease fresh with every page. A connector ports by importing
``from connectors.compat import activity`` instead of ``from temporalio import activity`` (or keeps
temporalio installed: outside a worker those calls do nothing either).
"""

from __future__ import annotations

import logging

__all__ = ["heartbeat", "in_activity", "logger"]

logger = logging.getLogger("connectors.compat.activity")
"""Where ``activity.logger`` lines go (a run's event log shows ``connectors.*`` at INFO)."""


def in_activity() -> bool:
    """False: a pass is not a Temporal activity (so ported code skips its heartbeats)."""
    return False


def heartbeat(*details: object) -> None:
    """Does nothing: the engine's pass lease is renewed per page, not by heartbeats."""

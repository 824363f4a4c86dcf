"""Link maps as asset values.

A sync asset's value is its link map (primary key → destination id). The engine already commits
links page by page, so ``handle_output`` stores nothing — a crashed run loses no links and no map is
ever serialised whole. ``load_input`` hands downstream assets a lazy ``LinkMap`` view backed by the
state store: a relation between two synced databases, a report, the reverse route of a two-way sync.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from sync_assets.resources import SyncStateResource
from sync_assets.state import LinkMap

__all__ = ["LinkMapIOManager"]


class LinkMapIOManager(dg.ConfigurableIOManager):
    """Persists nothing itself; loads a route's link map from the state store."""

    state: SyncStateResource

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        """Store nothing: the engine committed the links page by page. Anything but a link map is refused.

        Raises:
            DagsterInvariantViolationError: The asset returned something other than a ``LinkMap``.
        """
        if obj is not None and not isinstance(obj, LinkMap):
            raise dg.DagsterInvariantViolationError(
                f"LinkMapIOManager stores link maps only; {context.asset_key} returned "
                f"{type(obj).__name__}. Give that asset another io_manager_key."
            )

    def load_input(self, context: dg.InputContext) -> LinkMap:
        """The upstream route's link map (of the input's partition, or of every partition), read lazily."""
        route = context.asset_key.path[-1]
        partition = context.asset_partition_key if context.has_asset_partitions else None
        return LinkMap(self.state.store(), route, partition)

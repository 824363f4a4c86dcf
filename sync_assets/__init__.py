"""durable-sync on Dagster: routes from sources to destinations, made durable.

The public surface is small: describe routes, build definitions, test them.

    from sync_assets import Route, build_definitions
    defs = build_definitions([Route(my_source, my_destination)])
"""

from sync_assets.engine import PassOptions, PassResult, PassStats, run_pass
from sync_assets.factory import SyncConfig, build_definitions, link_report_asset
from sync_assets.routes import Route, TwoWayRoute, compose, restrict_to_owned
from sync_assets.state import LinkMap, StateStore

__all__ = [
    "LinkMap",
    "PassOptions",
    "PassResult",
    "PassStats",
    "Route",
    "StateStore",
    "SyncConfig",
    "TwoWayRoute",
    "build_definitions",
    "compose",
    "link_report_asset",
    "restrict_to_owned",
    "run_pass",
]

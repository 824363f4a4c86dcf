"""What one pass of one partition carries from step to step: its route, store, options, stats, leases.

``sync_assets.engine._Pass`` is assembled from steps that share this state: the page steps
(``sync_assets._page``), the reconcile steps (``sync_assets._reconcile``) and the pass's own loop
(``sync_assets.engine``). The connectors' optional members are looked up here, once per pass, with
``isinstance`` against the capability protocols of ``connectors.core``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

from connectors.core import (
    ConcurrentDestination,
    ConfigError,
    DestinationSession,
    KeyStoringDestination,
    LengthLimitedDestination,
    Record,
    SourceSpec,
)
from sync_assets._pass_leases import PassLeases
from sync_assets._results import PassOptions, PassStats
from sync_assets.routes import Route
from sync_assets.state import Fence, StateStore, utcnow

__all__ = ["DEFAULT_MAX_CONCURRENCY", "LEASE_SECONDS", "PassState", "ProgressFn"]

DEFAULT_MAX_CONCURRENCY = 4
LEASE_SECONDS = 20.0  # a dead pass's partition is taken over this long after its last renewal

ProgressFn = Callable[[PassStats], None]


def _env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number of seconds") from None
    if value <= 0 or not math.isfinite(value):
        raise ConfigError(f"{name} must be a positive number of seconds, got {raw!r}")
    return value


class PassState:
    """The state of one pass of one partition, shared by its steps.

    Args:
        route: The route.
        partition: The partition key.
        spec: The partition's spec.
        store: The state store.
        options: How to run the pass.
        progress: Called with the running stats after every page.
    """

    def __init__(
        self,
        route: Route,
        partition: str,
        spec: SourceSpec,
        store: StateStore,
        options: PassOptions,
        progress: ProgressFn | None,
    ) -> None:
        """The state of a pass not yet started (``_Pass.run`` starts it)."""
        self.route = route
        self.name = route.name
        self.partition = partition
        self.spec = spec
        self.store = store
        self.options = options
        self.progress = progress
        self.dest = route.destination
        self.source = route.source
        dest = self.dest
        # The connectors' optional members, looked up once (``connectors.core`` capabilities).
        self.create_only = frozenset(dest.create_only_properties or ())
        self.max_value_length = dest.max_value_length if isinstance(dest, LengthLimitedDestination) else None
        concurrency = dest.max_concurrency if isinstance(dest, ConcurrentDestination) else DEFAULT_MAX_CONCURRENCY
        self.concurrency = max(1, int(concurrency or 1))
        self.stores_keys = dest.stores_keys if isinstance(dest, KeyStoringDestination) else None
        self.transform = route.build_transform()
        self.failures: list[tuple[str, str]] = []
        self.planned: dict[str, list[str]] = {"create": [], "update": [], "unchanged": [], "failed": []}
        self.plan_listing: dict[str, str] = {}
        self.duplicate_keys: list[tuple[str, list[str]]] = []
        self.had_failures = store.failed_count(route.name, partition) > 0 if not options.plan else False
        lease_seconds = float(options.lease_seconds or _env_seconds("DURABLE_SYNC_LEASE_SECONDS", LEASE_SECONDS))
        # Long enough to outlast a dead holder's lease (a retried run right after a crash takes
        # over instead of giving up), short enough that a duplicate launch ends soon.
        default_wait = lease_seconds * 1.25 + 1
        lease_wait = float(
            options.lease_wait
            if options.lease_wait is not None
            else _env_seconds("DURABLE_SYNC_LEASE_WAIT", default_wait)
        )
        self.leases = PassLeases(
            store, self.name, partition, run_id=options.run_id, seconds=lease_seconds, wait=lease_wait
        )
        self.fence: Fence | None = None
        self.lease_taken_at = utcnow()
        self.deferred: dict[str, tuple[Record, str]] = {}  # creates another partition's pass has claimed
        self.deferred_stale = False  # a claim taken over from a dead pass: list before creating it
        self.adopted_keys: set[str] = set()  # our own creates found by the listing: count as created
        self.fetched: tuple[tuple[str, ...] | None, list[Any]] | None = None  # fetch()-only: read once
        self.asked: set[str] | None = set(options.only_items) if options.only_items is not None else None
        self.session: DestinationSession
        self.stats = PassStats()
        self.pass_id = ""
        self.started_at = self.synced_at = self.lease_taken_at
        self.full_refresh = options.full_refresh
        self.cp_options: dict[str, Any] = {}
        self.conflicts: list[tuple[str, str, str]] = []  # two-way: (key, field, winning side), a sample
        self.two_way_raw: dict[str, Record] = {}  # two-way: deferred creates as their source gave them
        # on_missing: the keys a complete full pass saw (None: not tracked, e.g. a resumed pass).
        self.seen_keys: set[str] | None = None

"""The state store's shape: one façade over concern classes that neither shadow nor need each other."""

from __future__ import annotations

import inspect

import sync_assets.state as state
from sync_assets.state import ControlStore, LeaseStore, LinkStore, StateStore

# Every name callers import from ``sync_assets.state`` (the package replaced one module of that name).
_IMPORTED_BY_CALLERS = (
    "StateStore",
    "LinkMap",
    "Fence",
    "LeaseLost",
    "LeaseInfo",
    "LISTING_LEASE",
    "SCHEMA_VERSION",
    "DEFAULT_STATE_FILE",
    "Checkpoint",
    "Claims",
    "Link",
    "Outcome",
    "PassRecord",
    "Pause",
    "ReconcileResult",
    "SyncRequest",
    "SharedBlobs",
    "BlobMapping",
    "default_state_url",
    "utcnow",
    "metadata",
    "links",
    "listing",
    "route_state",
    "leases",
    "outcomes",
    "checkpoints",
    "passes",
    "pauses",
    "requests",
    "partition_state",
    "tokens",
    "blobs",
    "locks",
    "meta",
)


def test_every_name_callers_import_is_exported():
    missing = [n for n in _IMPORTED_BY_CALLERS if n not in state.__all__ or not hasattr(state, n)]
    assert missing == []
    # A table, not a submodule of the same name (the concern modules are private: ``_links``…).
    assert state.links.name == "ds_links" and state.leases.name == "ds_leases" and state.tokens.name == "ds_tokens"


def _own_public(cls: type) -> set[str]:
    return {n for n in vars(cls) if not n.startswith("_")}


def test_no_concern_shadows_another():
    """The façade inherits every concern: a name defined by two would silently hide one of them."""
    concerns = [c for c in StateStore.__mro__[1:] if c.__module__.startswith("sync_assets.state._")]
    assert len(concerns) >= 7
    seen: dict[str, str] = {}
    clashes = []
    for cls in concerns:
        for name in _own_public(cls):
            if name in seen:
                clashes.append(f"{name}: {seen[name]} and {cls.__name__}")
            seen[name] = cls.__name__
    assert clashes == []


def test_concerns_never_call_each_other_through_self():
    """Cross-concern work goes through module functions taking the connection, not ``self.<other>``."""
    concerns = [c for c in StateStore.__mro__[1:] if c.__module__.startswith("sync_assets.state._")]
    owner = {name: cls for cls in concerns for name in _own_public(cls)}
    offences = []
    for cls in concerns:
        source = inspect.getsource(cls)
        for name, other in owner.items():
            if other is not cls and f"self.{name}(" in source:
                offences.append(f"{cls.__name__} calls {other.__name__}.{name}")
    assert offences == []


def test_a_concern_works_alone_over_the_shared_database(store):
    ControlStore(store.db).pause("route:x", "credentials refused", source="auth")
    assert store.paused(["route:x"]).reason == "credentials refused"
    store.commit_page("r", "p", linked=[("k", "id-1", "h")])
    assert LinkStore(store.db).get_links("r", ["k"])["k"].destination_id == "id-1"
    leases = LeaseStore(store.db)
    taken, previous = leases.acquire_lease("r", "p", "me", seconds=30)
    assert taken and previous is None and store.lease("r", "p").holder == "me"

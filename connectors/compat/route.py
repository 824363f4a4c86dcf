"""``durable_sync.route`` for ported apps: ``Route(source, destination, transform, owns)`` as durable-sync took it.

``Route`` returns this platform's route (``sync_assets.routes.Route``, whose positional order is
source, destination, *name*, transform): durable-sync's order is kept, and every keyword of ours
(``name``, ``reconcile_every``, ``description``, ...) may follow. The ends are wrapped in
``CompatSource`` / ``CompatDestination`` unless they are this platform's own connectors, the
destination's link stores are bound to the deployment's state store under the route's name, ported
OAuth destinations read the deployment's token store, and both ends' contract requirement is checked.

This is the one module of ``connectors.compat`` that reaches the platform: durable-sync's ``route.py``
was its platform edge too (it ran the Temporal worker). ``sync_assets`` is imported when ``Route`` is
called, never at import, so the rest of the layer stays plain Python without Dagster.
"""

from __future__ import annotations

import importlib
from typing import Any

from connectors.compat.adapters import CompatDestination, CompatSource
from connectors.compat.auth.oauth import token as _token
from connectors.compat.core import check_contract
from connectors.core import BlobStore, ConfigError, Transform

__all__ = ["Route", "compose", "restrict_to_owned", "run_route"]


def _platform(module: str) -> Any:
    # Deliberately dynamic: see the module docstring.
    return importlib.import_module(module)


def _native(obj: object) -> bool:
    module = type(obj).__module__
    return module.startswith("connectors.") and not module.startswith("connectors.compat")


def Route(
    source: Any,
    destination: Any,
    transform: Transform | None = None,
    owns: set[str] | frozenset[str] | None = None,
    *,
    legacy_values: bool = False,
    blobs: BlobStore | None = None,
    **options: Any,
) -> Any:
    """This platform's route for durable-sync's ``Route(source, destination, transform, owns)``.

    Args:
        source: A ported (or native) source.
        destination: A ported (or native) destination.
        transform: Record -> Record or None (dropped), sync or async.
        owns: The properties this route may write.
        legacy_values: Deliver dates and datetimes to the destination as ISO text (durable-sync's
            payloads did); for a ported destination that formats them with ``str()``.
        blobs: Where the destination's link stores keep their links (default: the deployment's
            state store, ``DURABLE_SYNC_STATE_URL``).
        **options: ``sync_assets.routes.Route``'s other keywords (``name``, ``reconcile_every``, ...).

    Returns:
        A ``sync_assets.routes.Route``.

    Raises:
        ConfigError: A connector needs a newer contract, or the route is invalid.
    """
    check_contract(source, destination)
    routes = _platform("sync_assets.routes")
    src = source if _native(source) else CompatSource(source)
    dst = destination if _native(destination) else CompatDestination(destination, legacy_values=legacy_values)
    if legacy_values and _native(destination):
        raise ConfigError(f"Route: legacy_values is for ported destinations; {destination!r} is native")
    route = routes.Route(src, dst, transform=transform, owns=owns, **options)
    if isinstance(dst, CompatDestination) and dst.link_stores:
        dst.bind_link_stores(blobs if blobs is not None else _platform("sync_assets.state").SharedBlobs(), route.name)
    if _token.token_store() is None:
        _token.use_token_store(_platform("sync_assets.tokens").SharedTokenStore())
    return route


def restrict_to_owned(owned: set[str]) -> Transform:
    """A transform keeping only the ``owned`` properties (durable-sync's, on our records)."""
    fn: Transform = _platform("sync_assets.routes").restrict_to_owned(owned)
    return fn


def compose(*transforms: Transform | None) -> Transform | None:
    """Transforms chained left to right; None from one drops the record."""
    fn: Transform | None = _platform("sync_assets.routes").compose(*transforms)
    return fn


async def run_route(route: Any, *, task_queue: str | None = None) -> None:
    """durable-sync ran a route's Temporal worker here; Dagster runs routes instead.

    Raises:
        ConfigError: Always, naming what replaces it.
    """
    raise ConfigError(
        "run_route has no counterpart: pass the routes to sync_assets.build_definitions and run "
        "`dagster dev` (or the deployment's daemon); see the README's 'Coming from durable-sync'"
    )

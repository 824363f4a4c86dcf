"""durable-sync 0.3's public modules, on this platform: a ported connector changes only its imports.

Replace ``durable_sync`` with ``connectors.compat`` in a durable-sync connector's imports and it runs
here (the README's "Coming from durable-sync" says what else to expect)::

    durable_sync                          -> connectors.compat            (Record, SourceSpec, protocols)
    durable_sync.core                     -> connectors.compat.core       (+ auth_error_in_chain, CONTRACT_VERSION)
    durable_sync.http                     -> connectors.compat.http       (request_with_retry)
    durable_sync.linkstore                -> connectors.compat.linkstore  (kept in the state store)
    durable_sync.schema                   -> connectors.compat.schema
    durable_sync.connectors.content       -> connectors.compat.connectors.content
    durable_sync.connectors.multi         -> connectors.compat.connectors.multi (MultiSource)
    durable_sync.auth.oauth.token         -> connectors.compat.auth.oauth.token (current_access_token)
    durable_sync.route                    -> connectors.compat.route      (Route: our Route, adapted ends)
    durable_sync.registry                 -> connectors.compat.registry   (durable-sync's entry-point groups)
    from temporalio import activity       -> from connectors.compat import activity (heartbeats: no-ops)

Temporal itself has no counterpart: ``durable_sync.worker``, ``bootstrap``, ``workflows`` and
``activities`` are replaced by Dagster (``sync_assets``).
"""

from __future__ import annotations

from connectors.compat.core import (
    CONTRACT_VERSION,
    Destination,
    DestinationSession,
    Record,
    Source,
    SourceSpec,
)

__all__ = ["CONTRACT_VERSION", "Destination", "DestinationSession", "Record", "Source", "SourceSpec"]

__version__ = "0.3.0"  # the durable-sync release whose surface this mirrors

"""``durable_sync.auth.oauth.token.current_access_token`` on this platform's OAuth tokens.

``current_access_token(workflow_id)`` answers a valid access token of the account ``workflow_id`` in
the token store (refreshed under the store's lock when it is about to expire), or of the provider
registered for that id (``register_token_provider``: a deployment that names its accounts otherwise).
``connectors.compat.route.Route`` points the default store at the deployment's encrypted store; a
test or a script calls ``use_token_store``.
"""

from __future__ import annotations

from typing import Protocol

from connectors.auth.provider import TokenProvider
from connectors.auth.tokens import TokenStore
from connectors.core import AuthError

__all__ = ["current_access_token", "register_token_provider", "use_token_store"]


class _AccessTokenProvider(Protocol):
    async def access_token(self) -> str: ...


_store: TokenStore | None = None
_providers: dict[str, _AccessTokenProvider] = {}


def use_token_store(store: TokenStore | None) -> None:
    """Read accounts from ``store`` (None: none configured)."""
    global _store
    _store = store


def register_token_provider(workflow_id: str, provider: _AccessTokenProvider) -> None:
    """Answer ``current_access_token(workflow_id)`` from ``provider`` (a ``TokenProvider``)."""
    _providers[workflow_id] = provider


def token_store() -> TokenStore | None:
    """The token store accounts are read from, if one is configured."""
    return _store


async def current_access_token(workflow_id: str) -> str:
    """A valid access token for ``workflow_id`` (an account of the token store, or a registered provider).

    Raises:
        AuthError: No provider is registered and no token store is configured, or the account has no
            login (run ``durable-sync login <account>``), or its refresh was refused.
    """
    provider = _providers.get(workflow_id)
    if provider is None:
        if _store is None:
            raise AuthError(
                f"no token for {workflow_id!r}: no token store configured (connectors.compat.route.Route "
                "configures the deployment's; or call use_token_store / register_token_provider)",
                credential=f"oauth:{workflow_id}",
            )
        provider = TokenProvider(_store, workflow_id)
    token = await provider.access_token()
    if not token:
        raise AuthError(f"empty access token for {workflow_id!r}", credential=f"oauth:{workflow_id}")
    return token

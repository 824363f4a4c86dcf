"""OAuth tokens and where they are kept: the ``TokenStore`` protocol.

The platform implements ``TokenStore`` (``sync_assets.state.StateStore.token_store()``: encrypted
at rest with AES-GCM under ``DURABLE_SYNC_ENC_KEY``). Connectors and the OAuth toolkit only see the
protocol, so they stay plain Python and testable with an in-memory store.

Versions make rotation safe: every save names the version it replaces (compare-and-swap), so two
processes that both refreshed cannot silently overwrite each other's rotated refresh token; and
``refresh_lock`` serialises refreshes of one account across processes, so the second one finds the
token the first one stored instead of replaying an already-rotated refresh token (which revokes
the whole grant at Notion).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from connectors.core import SyncError

__all__ = ["MemoryTokenStore", "OAuthToken", "StaleToken", "TokenStore"]


class StaleToken(SyncError):
    """A compare-and-swap save lost: someone stored a newer token version first."""


@dataclass(frozen=True)
class OAuthToken:
    """One account's OAuth grant and what is needed to refresh it.

    Attributes:
        access_token: The bearer token.
        refresh_token: The (rotating) refresh token, if the grant has one.
        expires_at: When the access token expires (aware), if known.
        token_endpoint: Where to refresh.
        client_id: The (dynamically registered) client.
        client_secret: Only for confidential clients; public PKCE clients have none.
        resource: The protected resource the grant is for (e.g. ``https://mcp.notion.com/mcp``).
        scope: Granted scope, if reported.
        obtained_at: When this access token was issued (for ``auth status``).
        refreshed_at: When the grant was last refreshed.
    """

    access_token: str
    refresh_token: str | None = None
    expires_at: dt.datetime | None = None
    token_type: str = "Bearer"
    token_endpoint: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    resource: str | None = None
    scope: str | None = None
    obtained_at: dt.datetime | None = None
    refreshed_at: dt.datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        """Names the client, resource and expiry: never a secret."""
        exp = self.expires_at.isoformat() if self.expires_at else None
        return f"OAuthToken(client_id={self.client_id!r}, resource={self.resource!r}, expires_at={exp!r})"

    def expires_within(self, seconds: float, *, now: dt.datetime | None = None) -> bool:
        """Whether the access token expires within ``seconds`` of ``now`` (never, without an expiry)."""
        if self.expires_at is None:
            return False
        now = now or dt.datetime.now(dt.UTC)
        return (self.expires_at - now).total_seconds() <= seconds

    def to_json(self) -> str:
        """The token as JSON, secrets included: for a token store, never for a log."""
        data = dataclasses.asdict(self)
        for k in ("expires_at", "obtained_at", "refreshed_at"):
            if data[k] is not None:
                data[k] = data[k].isoformat()
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, raw: str) -> OAuthToken:
        """A token from ``to_json``'s output; keys this version does not know are dropped."""
        data = json.loads(raw)
        for k in ("expires_at", "obtained_at", "refreshed_at"):
            if data.get(k):
                data[k] = dt.datetime.fromisoformat(data[k])
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@runtime_checkable
class TokenStore(Protocol):
    """Where OAuth grants live (one per account name, e.g. ``notion-mcp``)."""

    def load(self, account: str) -> tuple[OAuthToken, int] | None:
        """The account's token and its version, or None."""
        ...

    def save(self, account: str, token: OAuthToken, *, expected_version: int | None) -> int:
        """Store ``token`` if the stored version is still ``expected_version``.

        A new login, which must take effect whatever is stored, uses ``replace`` instead.

        Args:
            account: The account name.
            token: The token to store.
            expected_version: The version the caller loaded; None: no token may be stored yet.

        Returns:
            The new version.

        Raises:
            StaleToken: The stored version is not ``expected_version`` (another process refreshed first).
        """
        ...

    def replace(self, account: str, token: OAuthToken) -> int:
        """Store ``token`` whatever is stored (a new login always takes effect); returns the version."""
        ...

    def delete(self, account: str) -> bool:
        """Forget the account's token; returns whether there was one."""
        ...

    def refresh_lock(self, account: str) -> AbstractContextManager[None]:
        """Hold the account's refresh lock (across processes) for the block."""
        ...


class MemoryTokenStore:
    """A ``TokenStore`` in memory (tests, and single-process embedding)."""

    def __init__(self) -> None:
        """Start with no token."""
        self._tokens: dict[str, tuple[OAuthToken, int]] = {}
        self._lock = threading.Lock()
        self._refresh_locks: dict[str, threading.Lock] = {}

    def load(self, account: str) -> tuple[OAuthToken, int] | None:
        """The account's token and its version, or None."""
        with self._lock:
            return self._tokens.get(account)

    def save(self, account: str, token: OAuthToken, *, expected_version: int | None) -> int:
        """Store ``token`` if the stored version is still ``expected_version`` (see ``TokenStore.save``)."""
        with self._lock:
            current = self._tokens.get(account)
            current_version = current[1] if current else None
            if current_version != expected_version:
                raise StaleToken(f"token of {account!r} is at version {current_version}, not {expected_version}")
            version = (current_version or 0) + 1
            self._tokens[account] = (token, version)
            return version

    def replace(self, account: str, token: OAuthToken) -> int:
        """Store ``token`` whatever is stored; returns the new version."""
        with self._lock:
            current = self._tokens.get(account)
            version = (current[1] if current else 0) + 1
            self._tokens[account] = (token, version)
            return version

    def delete(self, account: str) -> bool:
        """Forget the account's token; returns whether there was one."""
        with self._lock:
            return self._tokens.pop(account, None) is not None

    @contextmanager
    def refresh_lock(self, account: str) -> Iterator[None]:
        """Hold the account's refresh lock (this process only) for the block."""
        with self._lock:
            lock = self._refresh_locks.setdefault(account, threading.Lock())
        with lock:
            yield

"""``durable_sync.linkstore`` for ported connectors: link stores kept in the platform's state store.

durable-sync's destinations that cannot hold our key (Luma events) remember "primary key -> their id"
in a ``LinkStore``. Its ``InMemoryLinkStore`` forgets everything when the process ends — on Temporal a
long-lived worker, here every run is a new process — so a ported destination would create every row
again on every run. Here both ``InMemoryLinkStore`` and ``SqliteLinkStore`` keep their map in the
state store's blobs (``ds_blobs``, one blob per key, so concurrent writes never lose one), under the
namespace ``compat-links:<route>``.

A store is *bound* to a ``BlobStore`` and a route before use: ``connectors.compat.route.Route`` binds
the stores of the destination it is given to the deployment's state store and the route's name; a
test or a script calls ``bind`` itself. An unbound store refuses to work (a ``ConfigError``): silently
falling back to memory is exactly the duplicate-per-run bug this replaces.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol, runtime_checkable

from connectors.core import BlobStore, ConfigError

__all__ = ["InMemoryLinkStore", "LinkStore", "SqliteLinkStore", "StateLinkStore", "link_stores_of"]

log = logging.getLogger("connectors.compat")

NAMESPACE_PREFIX = "compat-links:"


@runtime_checkable
class LinkStore(Protocol):
    """durable-sync's seam: a durable map of source primary key -> destination object id."""

    async def get_all(self) -> dict[str, str]:
        """Every link."""
        ...

    async def put(self, primary_key: str, dest_id: str) -> None:
        """Remember one link."""
        ...


class _ListingBlobStore(BlobStore, Protocol):
    def blob_keys(self, namespace: str) -> list[str]: ...


class StateLinkStore:
    """A ``LinkStore`` over the state store's blobs (the base of both durable-sync names).

    Args:
        route: The namespace's route part; None: the route the store is bound to.
    """

    def __init__(self, *, route: str | None = None) -> None:
        """An unbound store; ``bind`` (or ``connectors.compat.route.Route``) gives it its state store."""
        self._route = route
        self._blobs: _ListingBlobStore | None = None
        self._namespace: str | None = None
        # Links put by this process, so a create can hand the engine the id it just stored.
        self.recent: dict[str, str] = {}

    @property
    def namespace(self) -> str | None:
        """The blob namespace (``compat-links:<route>``), once bound."""
        return self._namespace

    @property
    def bound(self) -> bool:
        """Whether the store has its state store."""
        return self._blobs is not None

    def bind(self, blobs: BlobStore, route: str) -> None:
        """Keep the links in ``blobs`` (it must also list keys: ``blob_keys``) for ``route``.

        Raises:
            ConfigError: ``blobs`` cannot list its keys, or the store is already bound elsewhere.
        """
        if not callable(getattr(blobs, "blob_keys", None)):
            raise ConfigError(f"{type(self).__name__}.bind: {blobs!r} has no blob_keys(namespace)")
        namespace = NAMESPACE_PREFIX + (self._route or route)
        if self._namespace is not None and self._namespace != namespace:
            raise ConfigError(
                f"{type(self).__name__} is bound to {self._namespace!r} already; give each route its own link store"
            )
        self._blobs = blobs  # type: ignore[assignment]
        self._namespace = namespace

    def _store(self) -> tuple[_ListingBlobStore, str]:
        if self._blobs is None or self._namespace is None:
            raise ConfigError(
                f"{type(self).__name__} is not bound to the state store: build the route with "
                "connectors.compat.route.Route, or call bind(blobs, route) (an in-memory map would "
                "duplicate every row on every run)"
            )
        return self._blobs, self._namespace

    async def get_all(self) -> dict[str, str]:
        """Every link of the route (read from the state store)."""
        blobs, namespace = self._store()
        return await asyncio.to_thread(_read_all, blobs, namespace)

    async def put(self, primary_key: str, dest_id: str) -> None:
        """Remember ``primary_key -> dest_id`` durably (at once, one blob)."""
        blobs, namespace = self._store()
        await asyncio.to_thread(blobs.put_blob, namespace, str(primary_key), str(dest_id).encode())
        self.recent[str(primary_key)] = str(dest_id)


def _read_all(blobs: _ListingBlobStore, namespace: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key in blobs.blob_keys(namespace):
        value = blobs.get_blob(namespace, key)
        if value is not None:
            out[key] = value.decode()
    return out


class InMemoryLinkStore(StateLinkStore):
    """durable-sync's ``InMemoryLinkStore``, made durable: its links live in the state store."""

    def __init__(self) -> None:
        """Same signature as durable-sync's (no arguments)."""
        super().__init__()


class SqliteLinkStore(StateLinkStore):
    """durable-sync's ``SqliteLinkStore(path, route=...)``, kept in the state store instead of ``path``.

    Args:
        path: Accepted for compatibility and ignored: the state store (SQLite or PostgreSQL, shared
            by every run) replaces the file.
        route: durable-sync's namespace; its default, ``"default"``, means "the bound route".
    """

    def __init__(self, path: str, *, route: str = "default") -> None:
        """Same signature as durable-sync's; nothing is opened."""
        super().__init__(route=None if route == "default" else route)
        self.path = path


def link_stores_of(obj: object) -> list[StateLinkStore]:
    """The compat link stores an object holds in its attributes (a destination's ``link_store``)."""
    found: list[StateLinkStore] = []
    for value in vars(obj).values() if hasattr(obj, "__dict__") else ():
        if isinstance(value, StateLinkStore) and value not in found:
            found.append(value)
    return found

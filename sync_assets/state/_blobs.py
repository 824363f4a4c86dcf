"""Blobs and locks: the small durable key-value store connectors borrow, and named cross-process locks.

Blobs (``ds_blobs``) implement ``connectors.core.BlobStore``: opaque bytes under ``(namespace, key)``
for connector caches that must outlive one process (each Dagster run is a new process), e.g. GitHub's
ETag bodies or a source's incremental watermarks (``BlobMapping``).

Locks (``ds_locks``) guard rare critical sections across processes (an OAuth token refresh): on
PostgreSQL a ``SELECT … FOR UPDATE`` of the lock's row, on SQLite ``BEGIN IMMEDIATE`` (the whole
database is the lock, which is fine for what it guards). OAuth tokens themselves (``ds_tokens``) are
``sync_assets.tokens``' business: it encrypts them and works in this store's transactions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, MutableMapping
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sync_assets.state._db import Part, utcnow
from sync_assets.state._schema import blobs, locks


class BlobLockStore(Part):
    """Connector blobs and named locks."""

    def get_blob(self, namespace: str, key: str) -> bytes | None:
        """``connectors.core.BlobStore``: a connector cache entry, or None."""
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(blobs.c.value).where(blobs.c.namespace == namespace, blobs.c.key == key)
            ).first()
        return bytes(row[0]) if row is not None else None

    def put_blob(self, namespace: str, key: str, value: bytes) -> None:
        """Store (or replace) a blob."""
        with self.db.write() as conn:
            self.db.upsert(
                conn,
                blobs,
                [{"namespace": namespace, "key": key, "value": value, "updated_at": utcnow()}],
                ["namespace", "key"],
            )

    def delete_blob(self, namespace: str, key: str) -> None:
        """Delete a blob (a no-op when there is none)."""
        with self.db.write() as conn:
            conn.execute(blobs.delete().where(blobs.c.namespace == namespace, blobs.c.key == key))

    def blob_keys(self, namespace: str) -> list[str]:
        """The keys of a namespace's blobs."""
        with self.db.read() as conn:
            return list(conn.execute(sa.select(blobs.c.key).where(blobs.c.namespace == namespace)).scalars())

    @contextlib.contextmanager
    def locked(self, name: str) -> Iterator[Connection]:
        """Hold an exclusive, cross-process lock named ``name`` for the block (one transaction).

        PostgreSQL: ``SELECT … FOR UPDATE`` on the lock's row; SQLite: ``BEGIN IMMEDIATE`` (the
        whole database is the lock, which is fine for the rare refreshes it guards).

        Yields:
            The transaction holding the lock; work done in it commits with the lock's release.
        """
        with self.db.write() as conn:
            self.db.upsert(conn, locks, [{"name": name, "taken_at": None}], ["name"], update=[])
        with self.db.write() as conn:
            q = sa.select(locks.c.name).where(locks.c.name == name)
            if self.db.dialect == "postgresql":
                q = q.with_for_update()
            conn.execute(q).first()
            conn.execute(locks.update().where(locks.c.name == name).values(taken_at=utcnow()))
            yield conn


class _Blobs(Protocol):
    def get_blob(self, namespace: str, key: str) -> bytes | None: ...

    def put_blob(self, namespace: str, key: str, value: bytes) -> None: ...

    def delete_blob(self, namespace: str, key: str) -> None: ...

    def blob_keys(self, namespace: str) -> list[str]: ...


class BlobMapping(MutableMapping[str, str]):
    """A ``MutableMapping[str, str]`` kept in the state store's blobs.

    For connector state that must outlive a run's process (a source's incremental watermarks).

    Args:
        blobs: The store (``StateStore`` or ``SharedBlobs``).
        namespace: The blob namespace the mapping lives in.
    """

    def __init__(self, blobs: _Blobs, namespace: str) -> None:
        """A mapping over ``blobs``' namespace ``namespace``."""
        self.blobs = blobs
        self.namespace = namespace

    def __getitem__(self, key: str) -> str:
        """The value of ``key`` (``KeyError`` when absent)."""
        raw = self.blobs.get_blob(self.namespace, key)
        if raw is None:
            raise KeyError(key)
        return raw.decode()

    def __setitem__(self, key: str, value: str) -> None:
        """Store ``value`` under ``key`` (durably, at once)."""
        self.blobs.put_blob(self.namespace, key, value.encode())

    def __delitem__(self, key: str) -> None:
        """Delete ``key`` (``KeyError`` when absent)."""
        if key not in self:
            raise KeyError(key)
        self.blobs.delete_blob(self.namespace, key)

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` has a value."""
        return isinstance(key, str) and self.blobs.get_blob(self.namespace, key) is not None

    def __iter__(self) -> Iterator[str]:
        """The keys (read once, when iteration starts)."""
        return iter(self.blobs.blob_keys(self.namespace))

    def __len__(self) -> int:
        """How many keys there are."""
        return len(self.blobs.blob_keys(self.namespace))

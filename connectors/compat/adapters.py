"""Adapters that run a ported durable-sync connector on this platform's engine.

``connectors.compat.route.Route`` wraps each end of a route in one of these; they can also be used
directly (``Route(CompatSource(src), CompatDestination(dst), ...)``). What they add:

``CompatSource``
    Records built with durable-sync's own ``Record`` class (a connector that still imports the
    installed ``durable_sync``) become this platform's ``Record``; a source without ``fetch_page``
    is read as one page (as durable-sync's spine did); auth errors are classified by durable-sync's
    rule; the credential is named and fingerprinted from the connector's ``token_env`` (its own or its
    config's), so a pause on it lifts once the secret changes.
``CompatDestination``
    Writes one record at a time unless the destination says otherwise (``max_concurrency``: durable-sync
    wrote sequentially, and its destinations' pacing assumes it); binds the destination's compat link
    stores to the state store; hands the engine the id a create stored in its link store (so the row
    is linked at once); and, opt-in (``legacy_values=True``), delivers dates and datetimes as ISO text,
    as durable-sync's Temporal payloads did.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from connectors.auth import env_secret
from connectors.compat.core import auth_error_in_chain
from connectors.compat.linkstore import StateLinkStore, link_stores_of
from connectors.core import BlobStore, Record, SourceSpec

__all__ = ["CompatDestination", "CompatSource", "as_record", "legacy_record", "token_env_of"]


def as_record(obj: Any) -> Record | None:
    """``obj`` as this platform's ``Record``: itself, a copy of a durable-sync ``Record``, or None.

    A durable-sync record is recognised by shape (a class named ``Record`` with ``primary_key``,
    ``properties`` and ``body``), so the installed ``durable_sync`` is never imported.
    """
    if isinstance(obj, Record):
        return obj
    if type(obj).__name__ != "Record":
        return None
    try:
        key, props, body = obj.primary_key, obj.properties, obj.body
    except AttributeError:
        return None
    if not isinstance(props, dict):
        return None
    return Record(key, dict(props), body)


def _iso(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value


def legacy_record(record: Record) -> Record:
    """``record`` with dates and datetimes as ISO 8601 text (what durable-sync's destinations received)."""
    if not any(isinstance(v, (dt.date, tuple)) for v in record.properties.values()):
        return record
    return dataclasses.replace(record, properties={k: _iso(v) for k, v in record.properties.items()})


def token_env_of(connector: object) -> str | None:
    """The environment variable a durable-sync connector reads its secret from, when it says.

    durable-sync's connectors keep it as ``token_env`` on themselves (destinations) or on their config
    (``GitHubConfig.token_env``, ``LumaConfig.token_env``).
    """
    for holder in (connector, getattr(connector, "_config", None), getattr(connector, "config", None)):
        value = getattr(holder, "token_env", None) if holder is not None else None
        if isinstance(value, str) and value:
            return value
    return None


class _Credential:
    """The members that name and fingerprint a wrapped connector's credential."""

    inner: Any

    @property
    def name(self) -> str:
        """The wrapped connector's name."""
        return str(self.inner.name)

    @property
    def credential_key(self) -> str:
        """``<name>:<token_env>`` (the pause scope), or the connector's own ``credential_key``/name."""
        own = getattr(self.inner, "credential_key", None)
        if isinstance(own, str) and own:
            return own
        env = token_env_of(self.inner)
        return f"{self.name}:{env}" if env else self.name

    def credential_fingerprint(self) -> str | None:
        """A digest of the current secret (from ``token_env``), so a pause on it lifts when it changes."""
        own = getattr(self.inner, "credential_fingerprint", None)
        if callable(own):
            value = own()
            return None if value is None else str(value)
        secret = env_secret(token_env_of(self.inner))
        return hashlib.sha256(secret.encode()).hexdigest()[:32] if secret else None

    def is_auth_error(self, err: BaseException) -> bool:
        """The connector's own ``is_auth_error`` when it has one, else durable-sync's shared rule."""
        own = getattr(self.inner, "is_auth_error", None)
        if callable(own):
            return bool(own(err))
        return auth_error_in_chain(err)


def _records(page: Sequence[Any]) -> list[Any]:
    # Anything not record-shaped is passed on as is: the engine rejects it and says what it was.
    out = []
    for item in page:
        record = as_record(item)
        out.append(item if record is None else record)
    return out


class CompatSource(_Credential):
    """A durable-sync source on this engine (see the module docstring).

    Args:
        inner: The ported source.
    """

    def __init__(self, inner: Any) -> None:
        """Wrap ``inner``."""
        self.inner = inner

    def __repr__(self) -> str:
        """Names the wrapped source."""
        return f"CompatSource({self.inner!r})"

    def specs(self) -> list[SourceSpec]:
        """The wrapped source's specs."""
        return list(self.inner.specs())

    async def fetch(self, spec: SourceSpec, only_items: list[str] | None = None) -> list[Record]:
        """Every record of ``spec``, as this platform's records."""
        return _records(await self.inner.fetch(spec, only_items))

    async def fetch_page(
        self, spec: SourceSpec, only_items: list[str] | None, cursor: str | None
    ) -> tuple[list[Record], str | None]:
        """One page; a source without ``fetch_page`` answers everything as one page, as on durable-sync."""
        fetch_page = getattr(self.inner, "fetch_page", None)
        if callable(fetch_page):
            page, next_cursor = await fetch_page(spec, only_items, cursor)
            return _records(page), next_cursor
        return await self.fetch(spec, only_items), None


class CompatDestination(_Credential):
    """A durable-sync destination on this engine (see the module docstring).

    Args:
        inner: The ported destination.
        legacy_values: Deliver dates and datetimes as ISO text (durable-sync's payloads did; a ported
            destination calling ``str()`` on a datetime would otherwise send ``2024-05-01 10:00:00+00:00``).
        max_concurrency: Writes in flight at once (default: the destination's own, else 1, as
            durable-sync wrote).
    """

    def __init__(self, inner: Any, *, legacy_values: bool = False, max_concurrency: int | None = None) -> None:
        """Wrap ``inner``."""
        self.inner = inner
        self.legacy_values = legacy_values
        self.max_concurrency = max_concurrency or int(getattr(inner, "max_concurrency", 1) or 1)
        self.link_stores: list[StateLinkStore] = link_stores_of(inner)

    def __repr__(self) -> str:
        """Names the wrapped destination."""
        return f"CompatDestination({self.inner!r})"

    def bind_link_stores(self, blobs: BlobStore, route: str) -> None:
        """Keep the wrapped destination's link stores in ``blobs`` under ``route`` (unless bound already)."""
        for store in self.link_stores:
            if not store.bound:
                store.bind(blobs, route)

    @property
    def create_only_properties(self) -> set[str]:
        """The wrapped destination's create-only properties."""
        return set(getattr(self.inner, "create_only_properties", None) or set())

    @property
    def configured(self) -> bool:
        """The wrapped destination's ``configured`` (True when it has none)."""
        return bool(getattr(self.inner, "configured", True))

    @property
    def config_hint(self) -> str:
        """The wrapped destination's ``config_hint``."""
        return str(getattr(self.inner, "config_hint", "") or "")

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[CompatSession]:
        """A session of the wrapped destination, adapted."""
        async with self.inner.connect() as session:
            yield CompatSession(session, self)


class CompatSession:
    """A session of a ported destination: legacy values on request, created ids from its link store."""

    def __init__(self, inner: Any, destination: CompatDestination) -> None:
        """Wrap ``inner``, a session of ``destination.inner``."""
        self.inner = inner
        self._d = destination

    def _out(self, record: Record) -> Record:
        return legacy_record(record) if self._d.legacy_values else record

    async def query_existing_ids(self) -> dict[str, str]:
        """The wrapped session's map of primary key -> destination id."""
        return dict(await self.inner.query_existing_ids())

    async def create(self, record: Record, synced_at: dt.datetime) -> str | bool:
        """Create a row; the id the destination put in its link store, when it did, else its answer."""
        for store in self._d.link_stores:
            store.recent.pop(record.primary_key, None)  # only a link this create puts counts
        created = await self.inner.create(self._out(record), synced_at)
        if created is True:
            for store in self._d.link_stores:
                dest_id = store.recent.get(record.primary_key)
                if dest_id:
                    return dest_id
        return bool(created) if not isinstance(created, str) else created

    async def update(self, existing_id: str, record: Record, synced_at: dt.datetime) -> bool:
        """Update a row."""
        return bool(await self.inner.update(existing_id, self._out(record), synced_at))

"""The durable state store: link maps, checkpoints, outcomes, pauses, the sync-now inbox, tokens.

SQLAlchemy Core over SQLite (the embedded default, a file under ``DAGSTER_HOME``) or PostgreSQL (by
URL, ``DURABLE_SYNC_STATE_URL``; it can share Dagster's own database: every table is prefixed
``ds_``). Nothing here imports Dagster: the engine and the CLI use it directly, the Dagster
resources wrap it.

Layout. One private module per concern, each a small class over one shared ``Database`` (the engine
and its transactions, ``_db``), and the tables in ``_schema``::

    _links     LinkStore     the link map, claims of creates, the per-page commit (the hot path)
    _listing   ListingStore  destination listings and their merge into the link map (reconcile)
    _passes    PassStore     checkpoints and the history of passes
    _outcomes  OutcomeStore  failed records
    _control   ControlStore  pauses, the sync-now inbox, partition backoff and last failure
    _leases    LeaseStore    partition and listing leases, and the fence of a write transaction
    _blobs     BlobLockStore connector blobs and named cross-process locks
    _limits    RateLimitStore the rate limit per credential every process shares (GCRA rows)

``StateStore`` is the one façade: it *is* each of them (it inherits them all, over one
``Database``), so callers keep one object and one import, a call costs no delegation hop on the
engine's per-page path, and no method signature is written twice. The concerns never call each
other through ``self``: what one transaction needs of another concern (the fence, a checkpoint, the
failure counts) is a module function taking the connection, so each class reads — and type-checks —
alone. Everything is re-exported here; import from ``sync_assets.state``, not from the modules.

Schema. The tables are in ``_schema``; a database gets there through the alembic revisions in
``migrations/`` (own version table ``ds_alembic_version``, never Dagster's ``alembic_version``).
Opening a store creates an empty database at the head revision and refuses one at an older revision
with ``StateSchemaError`` naming the fix, ``durable-sync migrate`` (``_migrate`` has the whole table
of cases, the adoption of databases from before migrations, and the locking).

Transactions. SQLite runs in WAL mode and every write transaction starts ``BEGIN IMMEDIATE`` (a
deferred transaction that reads and then writes can fail at once under a concurrent writer, whatever
the busy timeout); reads start a plain deferred ``BEGIN``. On PostgreSQL, ``locked()`` takes a row
lock with ``SELECT … FOR UPDATE``.
"""

from __future__ import annotations

import threading

from sync_assets.state._blobs import BlobLockStore, BlobMapping
from sync_assets.state._control import ControlStore, Pause, SyncRequest
from sync_assets.state._db import DEFAULT_STATE_FILE, Database, default_state_url, redact, utcnow
from sync_assets.state._db import normalise_url as _normalise_url
from sync_assets.state._leases import Fence, LeaseInfo, LeaseLost, LeaseStore
from sync_assets.state._limits import RateLimitRow, RateLimitStore
from sync_assets.state._links import Claims, Link, LinkMap, LinkStore
from sync_assets.state._listing import ListingStore, ReconcileResult
from sync_assets.state._migrate import (
    SchemaStatus,
    StateSchemaError,
    ensure_schema,
    head_revision,
    migrate_command,
    schema_status,
)
from sync_assets.state._migrate import migrate as migrate_state
from sync_assets.state._outcomes import Outcome, OutcomeStore
from sync_assets.state._pairs import MissingStore, Pair, PairStore
from sync_assets.state._passes import Checkpoint, PassRecord, PassStore
from sync_assets.state._schema import (
    LISTING_LEASE,
    SCHEMA_VERSION,
    VERSION_TABLE,
    blobs,
    checkpoints,
    leases,
    links,
    listing,
    locks,
    meta,
    metadata,
    missing,
    outcomes,
    pairs,
    partition_state,
    passes,
    pauses,
    rate_limits,
    requests,
    route_state,
    tokens,
)

__all__ = [
    "DEFAULT_STATE_FILE",
    "LISTING_LEASE",
    "SCHEMA_VERSION",
    "VERSION_TABLE",
    "BlobLockStore",
    "BlobMapping",
    "Checkpoint",
    "Claims",
    "ControlStore",
    "Database",
    "Fence",
    "LeaseInfo",
    "LeaseLost",
    "LeaseStore",
    "Link",
    "LinkMap",
    "LinkStore",
    "ListingStore",
    "MissingStore",
    "Outcome",
    "OutcomeStore",
    "Pair",
    "PairStore",
    "PassRecord",
    "PassStore",
    "Pause",
    "RateLimitRow",
    "RateLimitStore",
    "ReconcileResult",
    "SchemaStatus",
    "SharedBlobs",
    "StateSchemaError",
    "StateStore",
    "SyncRequest",
    "blobs",
    "checkpoints",
    "default_state_url",
    "head_revision",
    "leases",
    "links",
    "listing",
    "locks",
    "meta",
    "metadata",
    "migrate_command",
    "migrate_state",
    "missing",
    "outcomes",
    "pairs",
    "partition_state",
    "passes",
    "pauses",
    "rate_limits",
    "requests",
    "route_state",
    "schema_status",
    "tokens",
    "utcnow",
]

# Tables every route's data lives in (``forget_route`` empties them for one route).
_ROUTE_TABLES = (
    links,
    listing,
    route_state,
    outcomes,
    checkpoints,
    passes,
    requests,
    partition_state,
    leases,
    missing,
)


class StateStore(
    LinkStore,
    ListingStore,
    PassStore,
    OutcomeStore,
    ControlStore,
    LeaseStore,
    BlobLockStore,
    RateLimitStore,
    PairStore,
    MissingStore,
):
    """The one state store. Create with ``StateStore(url)`` or ``StateStore.shared(url)``.

    Args:
        url: A SQLAlchemy URL (``sqlite:///path``, ``postgresql://…``); default from the environment
            (``default_state_url``).
        auto_migrate: Upgrade a database at an older schema revision instead of refusing it
            (``StateSchemaError``: run ``durable-sync migrate``); for embedded and development use.
    """

    _shared: dict[str, StateStore] = {}
    _shared_lock = threading.Lock()

    def __init__(self, url: str | None = None, *, auto_migrate: bool = False) -> None:
        """Open the state database at ``url``: create it when empty, refuse it at another revision."""
        db = Database(url)
        super().__init__(db)
        self.url = db.url
        self.dialect = db.dialect
        self.engine = db.engine
        try:
            ensure_schema(db, auto_migrate=auto_migrate)
        except BaseException:
            db.engine.dispose()
            raise

    @classmethod
    def shared(cls, url: str | None = None) -> StateStore:
        """One store (and connection pool) per URL per process."""
        key = _normalise_url(url or default_state_url())
        with cls._shared_lock:
            store = cls._shared.get(key)
            if store is None:
                store = cls._shared[key] = cls(key)
            return store

    def __repr__(self) -> str:
        """The store and its URL, without the password."""
        return f"StateStore({redact(self.url)})"

    @property
    def display_url(self) -> str:
        """The URL without its password."""
        return redact(self.url)

    def forget_route(self, route: str) -> None:
        """Delete everything stored for a route (tests and `durable-sync` maintenance)."""
        with self.db.write() as conn:
            for table in _ROUTE_TABLES:
                conn.execute(table.delete().where(table.c.route == route))

    def dispose(self) -> None:
        """Close the connection pool."""
        self.engine.dispose()


class SharedBlobs:
    """``BlobStore`` over the deployment's shared state store, resolved at first use.

    Not at import, so definitions can be built before the environment is read.
    """

    def _store(self) -> StateStore:
        return StateStore.shared()

    def get_blob(self, namespace: str, key: str) -> bytes | None:
        """A connector cache entry, or None."""
        return self._store().get_blob(namespace, key)

    def put_blob(self, namespace: str, key: str, value: bytes) -> None:
        """Store (or replace) a blob."""
        self._store().put_blob(namespace, key, value)

    def delete_blob(self, namespace: str, key: str) -> None:
        """Delete a blob (a no-op when there is none)."""
        self._store().delete_blob(namespace, key)

    def blob_keys(self, namespace: str) -> list[str]:
        """The keys of a namespace's blobs."""
        return self._store().blob_keys(namespace)

    def mapping(self, namespace: str) -> BlobMapping:
        """A durable ``str -> str`` mapping in ``namespace`` (e.g. a source's watermarks)."""
        return BlobMapping(self, namespace)

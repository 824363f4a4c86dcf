"""The durable state store: link maps, checkpoints, outcomes, pauses, the sync-now inbox, tokens.

SQLAlchemy Core over SQLite (the embedded default, a file under ``DAGSTER_HOME``) or PostgreSQL (by
URL, ``DURABLE_SYNC_STATE_URL``; it can share Dagster's own database: every table is prefixed
``ds_``). Nothing here imports Dagster: the engine and the CLI use it directly, the Dagster
resources wrap it.

Keys. Every table is keyed by route, so two routes never collide. The link map is keyed by
``(route, primary_key)``, not by partition: two specs of one route that both yield a key (a repo in
an org spec and in a named-repos spec) must map to one destination row. ``partition`` on a link is
the spec that last wrote it, used for per-partition counts and the link map handed downstream.

Link states::

    creating  an intent: a create is about to be (or was) sent; no destination id known yet
    linked    destination_id known; content_hash is what we last wrote (NULL after an adoption)
    gone      a reconcile found the row missing from the destination; the next sight re-creates it

Transactions. SQLite runs in WAL mode and every write transaction starts ``BEGIN IMMEDIATE`` (a
deferred transaction that reads and then writes can fail at once under a concurrent writer, whatever
the busy timeout); reads start a plain deferred ``BEGIN``. On PostgreSQL, ``locked()`` takes a row
lock with ``SELECT … FOR UPDATE``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

__all__ = [
    "DEFAULT_STATE_FILE",
    "Checkpoint",
    "Claims",
    "Fence",
    "LeaseInfo",
    "LeaseLost",
    "Link",
    "LinkMap",
    "Outcome",
    "PassRecord",
    "Pause",
    "ReconcileResult",
    "StateStore",
    "SyncRequest",
    "default_state_url",
    "utcnow",
]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
LISTING_LEASE = "*listing"  # partition keys never hold '*' (routes.partition_key_for)
DEFAULT_STATE_FILE = "durable_sync_state.sqlite3"
_BATCH = 500  # rows per IN (...) list / executemany chunk: well under SQLite's variable limit

metadata = sa.MetaData()

links = sa.Table(
    "ds_links",
    metadata,
    sa.Column("route", sa.String(200), primary_key=True),
    sa.Column("primary_key", sa.String(1024), primary_key=True),
    sa.Column("partition", sa.String(300), nullable=True),
    sa.Column("destination_id", sa.String(1024), nullable=True),
    sa.Column("content_hash", sa.String(64), nullable=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("synced_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ds_links_partition", "route", "partition"),
    sa.Index("ds_links_state", "route", "state"),
)

listing = sa.Table(
    "ds_listing",
    metadata,
    sa.Column("route", sa.String(200), nullable=False),
    sa.Column("reconcile_id", sa.String(40), nullable=False),
    sa.Column("primary_key", sa.String(1024), nullable=False),
    sa.Column("destination_id", sa.String(1024), nullable=False),
    sa.Index("ds_listing_key", "route", "reconcile_id", "primary_key"),
)

route_state = sa.Table(
    "ds_route_state",
    metadata,
    sa.Column("route", sa.String(200), primary_key=True),
    sa.Column("last_reconciled_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("reconcile_id", sa.String(40), nullable=True),
    sa.Column("listed", sa.Integer, nullable=True),
    sa.Column("duplicates", sa.Integer, nullable=False, default=0),
    # Schema 2: when the last complete listing started, and (some of) the keys it found twice, kept
    # here so that status and checks never re-scan ds_listing.
    sa.Column("listing_started_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("duplicate_keys", sa.Text, nullable=True),
)

# A lease per (route, name): ``name`` is a partition key (one pass of a partition at a time) or
# LISTING_LEASE (one destination listing of a route at a time). Time-bounded: a holder renews it
# while it works; one that stops renewing (killed, cut off from the database) loses it after the
# lease's seconds, and the next pass takes it over and resumes from the checkpoint.
leases = sa.Table(
    "ds_leases",
    metadata,
    sa.Column("route", sa.String(200), primary_key=True),
    sa.Column("name", sa.String(300), primary_key=True),
    sa.Column("holder", sa.String(64), nullable=False),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("renewed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
)

outcomes = sa.Table(
    "ds_record_outcomes",
    metadata,
    sa.Column("route", sa.String(200), primary_key=True),
    sa.Column("partition", sa.String(300), primary_key=True),
    sa.Column("primary_key", sa.String(1024), primary_key=True),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("first_failed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
)

checkpoints = sa.Table(
    "ds_checkpoints",
    metadata,
    sa.Column("route", sa.String(200), primary_key=True),
    sa.Column("partition", sa.String(300), primary_key=True),
    sa.Column("pass_id", sa.String(40), nullable=False),
    sa.Column("cursor", sa.Text, nullable=True),
    sa.Column("stats", sa.Text, nullable=False),
    sa.Column("options", sa.Text, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

passes = sa.Table(
    "ds_passes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("route", sa.String(200), nullable=False),
    sa.Column("partition", sa.String(300), nullable=False),
    sa.Column("pass_id", sa.String(40), nullable=False),
    sa.Column("mode", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("stats", sa.Text, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Index("ds_passes_partition", "route", "partition", "id"),
)

pauses = sa.Table(
    "ds_pauses",
    metadata,
    sa.Column("scope", sa.String(400), primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("paused_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("fingerprint", sa.String(128), nullable=True),
    sa.Column("source", sa.String(20), nullable=False),  # "auth" (automatic) or "manual"
)

requests = sa.Table(
    "ds_requests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("route", sa.String(200), nullable=False),
    sa.Column("partition", sa.String(300), nullable=False),
    sa.Column("only_items", sa.Text, nullable=True),
    sa.Column("full_refresh", sa.Boolean, nullable=False, default=False),
    sa.Column("reason", sa.String(40), nullable=False, default="manual"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("taken_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("run_key", sa.String(300), nullable=True),
    sa.Index("ds_requests_pending", "taken_at", "id"),
)

partition_state = sa.Table(
    "ds_partition_state",
    metadata,
    sa.Column("route", sa.String(200), primary_key=True),
    sa.Column("partition", sa.String(300), primary_key=True),
    sa.Column("not_before", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_failure", sa.Text, nullable=True),
    sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_failure_run_id", sa.String(64), nullable=True),
)

tokens = sa.Table(
    "ds_tokens",
    metadata,
    sa.Column("account", sa.String(200), primary_key=True),
    sa.Column("ciphertext", sa.LargeBinary, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

blobs = sa.Table(
    "ds_blobs",
    metadata,
    sa.Column("namespace", sa.String(100), primary_key=True),
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("value", sa.LargeBinary, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

locks = sa.Table(
    "ds_locks",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("taken_at", sa.DateTime(timezone=True), nullable=True),
)

meta = sa.Table(
    "ds_meta",
    metadata,
    sa.Column("key", sa.String(50), primary_key=True),
    sa.Column("value", sa.String(200), nullable=False),
)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    # SQLite hands back naive datetimes; everything we store is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def _chunks(items: Sequence[Any], size: int = _BATCH) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# --------------------------------------------------------------------------------------------------
# Value types


@dataclass(frozen=True, slots=True)
class Link:
    primary_key: str
    destination_id: str | None
    content_hash: str | None
    state: str
    partition: str | None


@dataclass(frozen=True, slots=True)
class Checkpoint:
    pass_id: str
    cursor: str | None
    stats: dict[str, Any]
    options: dict[str, Any]
    started_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Outcome:
    primary_key: str
    error: str
    attempts: int
    first_failed_at: dt.datetime
    last_seen: dt.datetime


@dataclass(frozen=True, slots=True)
class PassRecord:
    pass_id: str
    mode: str
    status: str
    started_at: dt.datetime
    finished_at: dt.datetime
    stats: dict[str, Any]
    error: str | None
    run_id: str | None


@dataclass(frozen=True, slots=True)
class Pause:
    scope: str
    reason: str
    paused_at: dt.datetime
    fingerprint: str | None
    source: str


@dataclass(frozen=True, slots=True)
class SyncRequest:
    id: int
    route: str
    partition: str
    only_items: list[str] | None
    full_refresh: bool
    reason: str
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class ReconcileResult:
    listed: int
    adopted: int
    gone: int
    duplicates: int
    duplicate_keys: list[tuple[str, list[str]]]
    adopted_intents: int = 0  # of ``adopted``: creates whose link was lost (any partition's)
    adopted_keys: tuple[str, ...] = ()  # the listing partition's own such creates (at most 10,000)


@dataclass(frozen=True, slots=True)
class LeaseInfo:
    """Who holds (or last held) a lease."""

    route: str
    name: str
    holder: str
    run_id: str | None
    acquired_at: dt.datetime
    renewed_at: dt.datetime
    expires_at: dt.datetime
    released_at: dt.datetime | None

    def live(self, now: dt.datetime | None = None) -> bool:
        """Held and renewed recently enough."""
        return self.released_at is None and self.expires_at > (now or utcnow())


@dataclass(frozen=True, slots=True)
class Fence:
    """The lease a write must still hold: every fenced transaction renews it first and fails with
    ``LeaseLost`` (rolling back) when another pass has taken it over."""

    name: str
    holder: str
    seconds: float


class LeaseLost(RuntimeError):
    """This pass's lease was taken over (it stopped renewing for longer than the lease's seconds):
    it must stop writing at once; the new holder resumes from the last committed page."""


@dataclass(frozen=True, slots=True)
class Claims:
    """The outcome of claiming a page's creates (``StateStore.claim_creates``)."""

    links: dict[str, Link]  # what the map held for the page's keys before the claim
    deferred: dict[str, str]  # key -> why it must not be created now (another pass is creating it…)
    stale: frozenset[str] = frozenset()  # of ``deferred``: taken over from a dead pass; list first


# --------------------------------------------------------------------------------------------------


def default_state_url() -> str:
    """``DURABLE_SYNC_STATE_URL``, else a SQLite file under ``DAGSTER_HOME`` (or ``./.dagster_home``)."""
    url = os.environ.get("DURABLE_SYNC_STATE_URL", "").strip()
    if url:
        return url
    home = os.environ.get("DAGSTER_HOME", "").strip()
    if not home:
        home = str(Path.cwd() / ".dagster_home")
        log.warning(
            "Neither DURABLE_SYNC_STATE_URL nor DAGSTER_HOME is set: keeping sync state in %s",
            Path(home) / DEFAULT_STATE_FILE,
        )
    return f"sqlite:///{Path(home).resolve() / DEFAULT_STATE_FILE}"


def _normalise_url(url: str) -> str:
    # SQLAlchemy 2.1 maps a bare postgresql:// URL to psycopg (v3); dagster-postgres only brings
    # psycopg2. Use psycopg2 unless the user named a driver.
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        rest = url.split("://", 1)[1]
        try:
            import psycopg  # noqa: F401
        except ImportError:
            return f"postgresql+psycopg2://{rest}"
        return f"postgresql+psycopg://{rest}"
    return url


def _redact(url: str) -> str:
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable state url>"


class StateStore:
    """The one state store. Create with ``StateStore(url)`` or ``StateStore.shared(url)``.

    Args:
        url: A SQLAlchemy URL (``sqlite:///path``, ``postgresql://…``); default from the environment
            (``default_state_url``).
    """

    _shared: dict[str, StateStore] = {}
    _shared_lock = threading.Lock()

    def __init__(self, url: str | None = None) -> None:
        self.url = _normalise_url(url or default_state_url())
        self.dialect = sa.engine.make_url(self.url).get_backend_name()
        self._upserts: dict[tuple[str, tuple[str, ...], tuple[str, ...]], Any] = {}
        self.engine = self._make_engine()
        self._ensure_schema()

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
        return f"StateStore({_redact(self.url)})"

    @property
    def display_url(self) -> str:
        return _redact(self.url)

    # ---------------------------------------------------------------------------------- engine

    def _make_engine(self) -> Engine:
        if self.dialect != "sqlite":
            return sa.create_engine(self.url, pool_pre_ping=True, future=True)
        db = sa.engine.make_url(self.url).database
        kwargs: dict[str, Any] = {"connect_args": {"timeout": 60, "check_same_thread": False}}
        if not db or db == ":memory:":
            kwargs["poolclass"] = sa.pool.StaticPool
        else:
            Path(db).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(self.url, **kwargs)

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Take transaction control from pysqlite so that BEGIN IMMEDIATE is possible.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            if db and db != ":memory:":
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            mode = conn.get_execution_options().get("ds_begin", "IMMEDIATE")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect().execution_options(ds_begin="DEFERRED") as conn:
            yield conn
            conn.rollback()

    # ------------------------------------------------------------- hot paths (raw DB-API SQL)
    #
    # The per-page statements run once per 100 records; SQLAlchemy's per-row parameter handling
    # cost more than SQLite itself there. These use the driver directly with SQL both SQLite
    # (>= 3.24) and PostgreSQL accept; everything else goes through SQLAlchemy Core.

    _LINK_COLS = ("route", "primary_key", "partition", "destination_id", "content_hash", "state", "synced_at")

    def _ph(self, n: int) -> str:
        mark = "?" if self.dialect == "sqlite" else "%s"
        return ", ".join([mark] * n)

    def _db_time(self, value: dt.datetime | None) -> Any:
        if value is None or self.dialect != "sqlite":
            return value
        # The format SQLAlchemy's SQLite DateTime type reads back (stored as naive UTC).
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

    def _raw_upsert_links(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        cols = ", ".join(self._LINK_COLS)
        updates = ", ".join(f"{c} = excluded.{c}" for c in self._LINK_COLS[2:])
        head = f"INSERT INTO ds_links ({cols}) VALUES "
        tail = f" ON CONFLICT (route, primary_key) DO UPDATE SET {updates}"
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if self.dialect == "postgresql":
                from psycopg2.extras import execute_values

                execute_values(cursor, head + "%s" + tail, rows, page_size=_BATCH)
            else:
                cursor.executemany(head + f"({self._ph(len(self._LINK_COLS))})" + tail, rows)
        finally:
            cursor.close()

    def _ensure_schema(self) -> None:
        metadata.create_all(self.engine, checkfirst=True)
        with self._write() as conn:
            q = sa.select(meta.c.value).where(meta.c.key == "schema_version")
            if self.dialect == "postgresql":
                q = q.with_for_update()  # one process upgrades; the others wait and see the new version
            row = conn.execute(q).first()
            if row is None:
                self._upsert(conn, meta, [{"key": "schema_version", "value": str(SCHEMA_VERSION)}], ["key"])
            elif int(row[0]) > SCHEMA_VERSION:
                raise RuntimeError(
                    f"the state database {self.display_url} has schema version {row[0]}, newer than "
                    f"this durable-sync ({SCHEMA_VERSION}); upgrade durable-sync-dagster"
                )
            elif int(row[0]) < SCHEMA_VERSION:
                self._upgrade(conn, int(row[0]))

    def _upgrade(self, conn: Connection, version: int) -> None:
        """Bring an older state database up to SCHEMA_VERSION (new tables come from create_all)."""
        if version < 2:
            # 2: route-level listing facts (ds_leases is a new table).
            for column, kind in (("listing_started_at", "TIMESTAMP WITH TIME ZONE"), ("duplicate_keys", "TEXT")):
                if self.dialect == "sqlite":
                    kind = "DATETIME" if column.endswith("_at") else "TEXT"
                conn.exec_driver_sql(f"ALTER TABLE ds_route_state ADD COLUMN {column} {kind}")
        conn.execute(meta.update().where(meta.c.key == "schema_version").values(value=str(SCHEMA_VERSION)))
        log.info("state database %s upgraded from schema %d to %d", self.display_url, version, SCHEMA_VERSION)

    def _upsert(
        self,
        conn: Connection,
        table: sa.Table,
        rows: Sequence[dict[str, Any]],
        index: list[str],
        update: list[str] | None = None,
    ) -> None:
        if not rows:
            return
        cols = tuple(update if update is not None else [c for c in rows[0] if c not in index])
        cache_key = (table.name, tuple(index), cols)
        stmt = self._upserts.get(cache_key)
        if stmt is None:
            # Built once per shape: constructing an upsert (its `excluded` namespace) costs more
            # than executing it for a page of rows.
            from sqlalchemy.dialects import postgresql, sqlite

            insert: Any = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
            stmt = insert(table)
            stmt = (
                stmt.on_conflict_do_update(index_elements=index, set_={c: stmt.excluded[c] for c in cols})
                if cols
                else stmt.on_conflict_do_nothing(index_elements=index)
            )
            self._upserts[cache_key] = stmt
        for chunk in _chunks(rows):
            conn.execute(stmt, list(chunk))

    # ----------------------------------------------------------------------------------- leases
    #
    # Every statement on ds_leases is index-driven (its primary key). Times are the writers' clocks:
    # the lease's seconds (tens) are far above any sane clock skew between workers.

    def acquire_lease(
        self,
        route: str,
        name: str,
        holder: str,
        *,
        seconds: float,
        run_id: str | None = None,
        now: dt.datetime | None = None,
    ) -> tuple[bool, LeaseInfo | None]:
        """Take the lease ``(route, name)`` for ``holder`` if it is free, released, expired or already
        its own. Returns ``(taken, previous)``: ``previous`` is the lease as it was before (None when
        there was none) — on failure, the live holder."""
        now = now or utcnow()
        from sqlalchemy.dialects import postgresql, sqlite

        insert: Any = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        row = {
            "route": route,
            "name": name,
            "holder": holder,
            "run_id": run_id,
            "acquired_at": now,
            "renewed_at": now,
            "expires_at": now + dt.timedelta(seconds=seconds),
            "released_at": None,
        }
        stmt = insert(leases).values(**row)
        stmt = stmt.on_conflict_do_update(
            index_elements=["route", "name"],
            set_={c: stmt.excluded[c] for c in row if c not in ("route", "name")},
            where=sa.or_(
                leases.c.released_at.is_not(None),
                leases.c.expires_at < now,
                leases.c.holder == holder,
            ),
        )
        with self._write() as conn:
            q = self._lease_query(route, name)
            if self.dialect == "postgresql":
                q = q.with_for_update()
            before = conn.execute(q).first()
            previous = self._lease_info(before) if before is not None else None
            conn.execute(stmt)
            after = conn.execute(self._lease_query(route, name)).first()
        taken = after is not None and after.holder == holder
        return taken, previous

    def renew_lease(self, route: str, fence: Fence, *, now: dt.datetime | None = None) -> bool:
        """Extend a held lease; False when it is no longer ``fence.holder``'s."""
        with self._write() as conn:
            return self._renew(conn, route, fence, now or utcnow())

    def release_lease(self, route: str, fence: Fence, *, now: dt.datetime | None = None) -> None:
        """Give a lease back (a no-op when it was taken over meanwhile)."""
        now = now or utcnow()
        with self._write() as conn:
            conn.execute(
                leases.update()
                .where(leases.c.route == route, leases.c.name == fence.name, leases.c.holder == fence.holder)
                .values(released_at=now, expires_at=now)
            )

    def lease(self, route: str, name: str) -> LeaseInfo | None:
        """The lease ``(route, name)`` as stored (held, expired or released), or None."""
        with self._read() as conn:
            row = conn.execute(self._lease_query(route, name)).first()
        return self._lease_info(row) if row is not None else None

    def leases(self, route: str | None = None) -> list[LeaseInfo]:
        """Every lease row (of one route, or all)."""
        q = self._lease_query(None, None)
        if route is not None:
            q = q.where(leases.c.route == route)
        with self._read() as conn:
            return [self._lease_info(r) for r in conn.execute(q.order_by(leases.c.route, leases.c.name))]

    def _renew(self, conn: Connection, route: str, fence: Fence, now: dt.datetime) -> bool:
        # Raw SQL: this runs twice per page (every fenced transaction), where building and
        # compiling a Core statement each time would cost more than the update itself.
        ph = "?" if self.dialect == "sqlite" else "%s"
        sql = (
            f"UPDATE ds_leases SET renewed_at = {ph}, expires_at = {ph} "
            f"WHERE route = {ph} AND name = {ph} AND holder = {ph} AND released_at IS NULL"
        )
        expires = now + dt.timedelta(seconds=fence.seconds)
        params = (self._db_time(now), self._db_time(expires), route, fence.name, fence.holder)
        return bool(conn.exec_driver_sql(sql, params).rowcount)

    def _fence(self, conn: Connection, route: str, fence: Fence | None) -> None:
        # First statement of a fenced transaction: on PostgreSQL it also row-locks the lease until
        # the commit, so a takeover waits for (and then follows) the holder's last commit.
        if fence is not None and not self._renew(conn, route, fence, utcnow()):
            raise LeaseLost(f"route {route}: the lease {fence.name!r} was taken over by another pass")

    @staticmethod
    def _lease_query(route: str | None, name: str | None) -> Any:
        q = sa.select(
            leases.c.route,
            leases.c.name,
            leases.c.holder,
            leases.c.run_id,
            leases.c.acquired_at,
            leases.c.renewed_at,
            leases.c.expires_at,
            leases.c.released_at,
        )
        if route is not None:
            q = q.where(leases.c.route == route, leases.c.name == name)
        return q

    @staticmethod
    def _lease_info(row: Any) -> LeaseInfo:
        return LeaseInfo(
            route=row[0],
            name=row[1],
            holder=row[2],
            run_id=row[3],
            acquired_at=_aware(row[4]),  # type: ignore[arg-type]
            renewed_at=_aware(row[5]),  # type: ignore[arg-type]
            expires_at=_aware(row[6]),  # type: ignore[arg-type]
            released_at=_aware(row[7]),
        )

    def live_partitions(self, conn: Connection, route: str, now: dt.datetime) -> set[str]:
        """Partitions of ``route`` whose pass holds a live lease right now."""
        q = sa.select(leases.c.name).where(
            leases.c.route == route,
            leases.c.name != LISTING_LEASE,
            leases.c.released_at.is_(None),
            leases.c.expires_at > now,
        )
        return set(conn.execute(q).scalars())

    # ------------------------------------------------------------------------------------ links

    def get_links(self, route: str, keys: Iterable[str]) -> dict[str, Link]:
        """The links of ``keys`` (one query per 500 keys; never the whole map)."""
        keys = list(dict.fromkeys(keys))
        out: dict[str, Link] = {}
        with self._read() as conn:
            self._select_links(conn, route, keys, out)
        return out

    def claim_creates(
        self,
        route: str,
        partition: str,
        hashes: Mapping[str, str],
        *,
        fence: Fence | None = None,
        now: dt.datetime | None = None,
    ) -> Claims:
        """Look up a page's keys and claim, in the same transaction, the ones about to be created.

        A claim is an intent row (state ``creating``, this partition, the content hash about to be
        sent), written before any create goes out: a crash then leaves the intent for a listing to
        resolve, and an adopted row whose content is what we sent is linked as unchanged.

        The claim is exclusive per (route, key): a key another partition's live pass is creating,
        or one a concurrent transaction claimed first, is *deferred* (the caller retries it after its
        page, when the other pass has linked it). An intent left by a pass whose lease died is taken
        over but deferred too: the row may exist, so only a listing may decide to create it.

        Args:
            hashes: ``{primary_key: content_hash}`` of the page's valid records.
            fence: The partition lease this pass must still hold.

        Returns:
            The links found before the claim, and the deferred keys with the reason.
        """
        now = now or utcnow()
        keys = list(hashes)
        out: dict[str, Link] = {}
        deferred: dict[str, str] = {}
        stale: set[str] = set()
        with self._write() as conn:
            self._fence(conn, route, fence)
            self._select_links(conn, route, keys, out)
            new: list[str] = []
            regain: list[str] = []
            foreign: list[Link] = []
            for k in keys:
                link = out.get(k)
                if link is None:
                    new.append(k)
                elif link.state == "linked" and link.destination_id:
                    continue
                elif link.state == "creating" and link.partition and link.partition != partition:
                    foreign.append(link)
                else:
                    regain.append(k)  # our own earlier intent, a row gone from the destination
            if foreign:
                live = self.live_partitions(conn, route, now)
                for link in foreign:
                    if link.partition in live:
                        deferred[link.primary_key] = f"being created by partition {link.partition}"
                        continue
                    taken = conn.execute(
                        links.update()
                        .where(
                            links.c.route == route,
                            links.c.primary_key == link.primary_key,
                            links.c.state == "creating",
                            links.c.partition == link.partition,
                        )
                        .values(partition=partition)
                    ).rowcount
                    if taken:
                        stale.add(link.primary_key)
                    deferred[link.primary_key] = (
                        f"left unconfirmed by an interrupted pass of partition {link.partition}; "
                        "the destination is listed before it is created"
                        if taken
                        else "being created by another partition"
                    )
            for k in regain:
                won = conn.execute(
                    links.update()
                    .where(
                        links.c.route == route,
                        links.c.primary_key == k,
                        sa.or_(
                            links.c.state == "gone",
                            sa.and_(links.c.state == "creating", links.c.partition == partition),
                            links.c.destination_id.is_(None),
                        ),
                    )
                    .values(state="creating", partition=partition, destination_id=None, content_hash=hashes[k])
                ).rowcount
                if not won:
                    deferred[k] = "claimed by another partition meanwhile"
            if new:
                rows = [(route, k, partition, None, hashes[k], "creating", None) for k in new]
                inserted = self._raw_insert_intents(conn, rows)
                for k in new:
                    if k not in inserted:
                        deferred[k] = "claimed by another partition meanwhile"
        return Claims(out, deferred, frozenset(stale))

    def _raw_insert_intents(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> set[str]:
        """Insert intents that do not exist yet; the keys actually inserted."""
        cols = ", ".join(self._LINK_COLS)
        head = f"INSERT INTO ds_links ({cols}) VALUES "
        tail = " ON CONFLICT (route, primary_key) DO NOTHING"
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if self.dialect == "postgresql":
                from psycopg2.extras import execute_values

                # READ COMMITTED: a concurrent claim of the same key makes this insert wait, then
                # skip the row; RETURNING says which rows were ours.
                got = execute_values(cursor, head + "%s" + tail + " RETURNING primary_key", rows, fetch=True)
                return {r[0] for r in got}
            # SQLite: BEGIN IMMEDIATE serialises writers, so the lookup before this is still true.
            cursor.executemany(head + f"({self._ph(len(self._LINK_COLS))})" + tail, rows)
            return {r[1] for r in rows}
        finally:
            cursor.close()

    def _select_links(self, conn: Connection, route: str, keys: list[str], out: dict[str, Link]) -> None:
        for chunk in _chunks(keys):
            sql = (
                "SELECT primary_key, destination_id, content_hash, state, partition FROM ds_links "
                f"WHERE route = {self._ph(1)} AND primary_key IN ({self._ph(len(chunk))})"
            )
            for pk, did, h, st, part in conn.exec_driver_sql(sql, (route, *chunk)):
                out[pk] = Link(pk, did, h, st, part)

    def record_intents(self, route: str, partition: str, keys: Sequence[str]) -> None:
        """Mark ``keys`` as about to be created (before the create calls go out)."""
        rows = [(route, k, partition, None, None, "creating", None) for k in keys]
        with self._write() as conn:
            self._raw_upsert_links(conn, rows)

    def link_count(self, route: str, partition: str | None = None) -> int:
        q = sa.select(sa.func.count()).select_from(links).where(links.c.route == route)
        q = q.where(links.c.state == "linked")
        if partition is not None:
            q = q.where(links.c.partition == partition)
        with self._read() as conn:
            return int(conn.execute(q).scalar_one())

    def pending_intents(self, route: str, partition: str | None = None) -> int:
        q = sa.select(sa.func.count()).select_from(links)
        q = q.where(links.c.route == route, links.c.state == "creating")
        if partition is not None:
            q = q.where(links.c.partition == partition)
        with self._read() as conn:
            return int(conn.execute(q).scalar_one())

    def iter_links(self, route: str, partition: str | None = None, *, batch: int = 1000) -> Iterator[tuple[str, str]]:
        """``(primary_key, destination_id)`` of every linked row, streamed in key order."""
        after = ""
        while True:
            q = sa.select(links.c.primary_key, links.c.destination_id).where(
                links.c.route == route, links.c.state == "linked", links.c.primary_key > after
            )
            if partition is not None:
                q = q.where(links.c.partition == partition)
            with self._read() as conn:
                rows = conn.execute(q.order_by(links.c.primary_key).limit(batch)).all()
            if not rows:
                return
            yield from rows
            after = rows[-1][0]

    def commit_page(
        self,
        route: str,
        partition: str,
        *,
        linked: Sequence[tuple[str, str, str | None]] = (),
        unlinked_hashes: Sequence[tuple[str, str]] = (),
        dropped_intents: Sequence[str] = (),
        failures: Sequence[tuple[str, str]] = (),
        succeeded: Sequence[str] = (),
        checkpoint: Checkpoint | None = None,
        fence: Fence | None = None,
        now: dt.datetime | None = None,
    ) -> None:
        """Commit one page's outcome in one transaction.

        Args:
            linked: ``(primary_key, destination_id, content_hash)`` written this page.
            unlinked_hashes: ``(primary_key, content_hash)`` of creates that returned no id
                (durable-sync's ``True``); they stay intents until a reconcile finds their id.
            dropped_intents: keys whose create definitely did not happen (skipped or rejected).
            failures: ``(primary_key, error)``; attempts are counted.
            succeeded: keys that wrote (or were unchanged) and so no longer fail.
            checkpoint: the pass's new checkpoint (cursor of the next page), or None to leave it.
            fence: the partition lease the pass must still hold (else ``LeaseLost``, nothing written).
        """
        now = now or utcnow()
        with self._write() as conn:
            self._fence(conn, route, fence)
            if linked:
                stamp = self._db_time(now)
                self._raw_upsert_links(conn, [(route, pk, partition, did, h, "linked", stamp) for pk, did, h in linked])
            for pk, h in unlinked_hashes:
                conn.execute(
                    links.update()
                    .where(links.c.route == route, links.c.primary_key == pk, links.c.state == "creating")
                    .values(content_hash=h, synced_at=now)
                )
            for chunk in _chunks(list(dropped_intents)):
                conn.execute(
                    links.delete().where(
                        links.c.route == route,
                        links.c.state == "creating",
                        links.c.partition == partition,
                        links.c.primary_key.in_(chunk),
                    )
                )
            if failures:
                self._record_failures(conn, route, partition, failures, now)
            for chunk in _chunks(list(succeeded)):
                conn.execute(
                    outcomes.delete().where(
                        outcomes.c.route == route,
                        outcomes.c.partition == partition,
                        outcomes.c.primary_key.in_(chunk),
                    )
                )
            if checkpoint is not None:
                self._put_checkpoint(conn, route, partition, checkpoint)

    def _record_failures(
        self,
        conn: Connection,
        route: str,
        partition: str,
        failures: Sequence[tuple[str, str]],
        now: dt.datetime,
    ) -> None:
        keys = [k for k, _ in failures]
        prior: dict[str, tuple[int, dt.datetime]] = {}
        for chunk in _chunks(keys):
            q = sa.select(outcomes.c.primary_key, outcomes.c.attempts, outcomes.c.first_failed_at).where(
                outcomes.c.route == route,
                outcomes.c.partition == partition,
                outcomes.c.primary_key.in_(chunk),
            )
            for pk, attempts, first in conn.execute(q):
                prior[pk] = (attempts, first)
        rows = []
        for pk, error in failures:
            attempts, first = prior.get(pk, (0, now))
            rows.append(
                {
                    "route": route,
                    "partition": partition,
                    "primary_key": pk,
                    "error": error[:2000],
                    "attempts": attempts + 1,
                    "first_failed_at": first,
                    "last_seen": now,
                }
            )
        self._upsert(conn, outcomes, rows, ["route", "partition", "primary_key"])

    # ------------------------------------------------------------------------------- reconcile

    def begin_listing(self, route: str) -> str:
        return uuid.uuid4().hex

    def add_listing(self, route: str, reconcile_id: str, pairs: Sequence[tuple[str, str]]) -> None:
        rows = [
            {"route": route, "reconcile_id": reconcile_id, "primary_key": pk, "destination_id": did}
            for pk, did in pairs
        ]
        with self._write() as conn:
            for chunk in _chunks(rows):
                conn.execute(listing.insert(), list(chunk))

    def finish_listing(
        self,
        route: str,
        reconcile_id: str,
        *,
        authoritative: bool,
        partition: str | None = None,
        started_at: dt.datetime | None = None,
        fence: Fence | None = None,
        now: dt.datetime | None = None,
    ) -> ReconcileResult:
        """Merge a finished listing of the destination into the link map.

        Adopts rows created but never linked (a crash between create and link) and rows the map
        does not know; re-points links whose row was re-created. With ``authoritative`` (the
        destination lists every row it holds): marks linked rows absent from the listing ``gone``
        — only rows linked before the listing started, since another partition may have created
        rows meanwhile — and drops ``partition``'s intents whose create never landed (another
        partition's intents may be in flight). Counts keys listed more than once.

        Only one listing of a route runs at a time: the caller holds the route's listing lease and
        passes it as ``fence``; a listing whose lease was taken over merges nothing (``LeaseLost``).
        """
        now = now or utcnow()
        started_at = started_at or now
        lst = listing.alias("l")
        in_listing = sa.and_(
            lst.c.route == route,
            lst.c.reconcile_id == reconcile_id,
            lst.c.primary_key == links.c.primary_key,
        )
        with self._write() as conn:
            self._fence(conn, route, fence)
            listed = conn.execute(
                sa.select(sa.func.count(sa.distinct(listing.c.primary_key))).where(
                    listing.c.route == route, listing.c.reconcile_id == reconcile_id
                )
            ).scalar_one()
            dup_q = (
                sa.select(listing.c.primary_key, sa.func.count())
                .where(listing.c.route == route, listing.c.reconcile_id == reconcile_id)
                .group_by(listing.c.primary_key)
                .having(sa.func.count() > 1)
            )
            dup_rows = conn.execute(dup_q.order_by(listing.c.primary_key)).all()
            dup_keys: list[tuple[str, list[str]]] = []
            for pk, _n in dup_rows[:50]:
                ids = conn.execute(
                    sa.select(listing.c.destination_id)
                    .where(
                        listing.c.route == route,
                        listing.c.reconcile_id == reconcile_id,
                        listing.c.primary_key == pk,
                    )
                    .order_by(listing.c.destination_id)
                ).scalars()
                dup_keys.append((pk, list(ids)))

            # Intents whose key is listed: our create landed but its link was lost. The intent
            # carries the hash of what was sent, so the row is linked as unchanged (no re-send).
            same_id = sa.exists().where(in_listing, lst.c.destination_id == links.c.destination_id)
            listed_id = sa.select(sa.func.min(lst.c.destination_id)).where(in_listing).scalar_subquery()
            mine: tuple[str, ...] = ()
            if partition is not None:
                mine = tuple(
                    conn.execute(
                        sa.select(links.c.primary_key)
                        .where(
                            links.c.route == route,
                            links.c.state == "creating",
                            links.c.partition == partition,
                            sa.exists().where(in_listing),
                        )
                        .limit(10_000)
                    ).scalars()
                )
            adopted_intents = conn.execute(
                links.update()
                .where(links.c.route == route, links.c.state == "creating", sa.exists().where(in_listing))
                .values(destination_id=listed_id, state="linked")
                .execution_options(synchronize_session=False)
            ).rowcount
            # Other links that are not (linked to an id the listing has for their key) but whose
            # key is listed: adopt the listed id. Content hash unknown -> the next sight updates.
            adopted = conn.execute(
                links.update()
                .where(
                    links.c.route == route,
                    sa.exists().where(in_listing),
                    sa.or_(links.c.state != "linked", links.c.destination_id.is_(None), ~same_id),
                )
                .values(destination_id=listed_id, state="linked", content_hash=sa.null())
                .execution_options(synchronize_session=False)
            ).rowcount
            # Listed keys the map has never seen.
            unknown = (
                sa.select(
                    listing.c.route,
                    listing.c.primary_key,
                    sa.func.min(listing.c.destination_id),
                    sa.literal("linked"),
                )
                .where(
                    listing.c.route == route,
                    listing.c.reconcile_id == reconcile_id,
                    ~sa.exists().where(links.c.route == route, links.c.primary_key == listing.c.primary_key),
                )
                .group_by(listing.c.route, listing.c.primary_key)
            )
            inserted = conn.execute(
                links.insert().from_select(["route", "primary_key", "destination_id", "state"], unknown)
            ).rowcount
            gone = 0
            if authoritative:
                not_listed = ~sa.exists().where(in_listing)
                gone = conn.execute(
                    links.update()
                    .where(
                        links.c.route == route,
                        links.c.state == "linked",
                        sa.or_(links.c.synced_at.is_(None), links.c.synced_at < started_at),
                        not_listed,
                    )
                    .values(state="gone", content_hash=None)
                ).rowcount
                if partition is not None:
                    conn.execute(
                        links.delete().where(
                            links.c.route == route,
                            links.c.partition == partition,
                            links.c.state == "creating",
                            not_listed,
                        )
                    )
            conn.execute(listing.delete().where(listing.c.route == route, listing.c.reconcile_id != reconcile_id))
            self._upsert(
                conn,
                route_state,
                [
                    {
                        "route": route,
                        "last_reconciled_at": now,
                        "reconcile_id": reconcile_id,
                        "listed": int(listed),
                        "duplicates": len(dup_rows),
                        "listing_started_at": started_at,
                        "duplicate_keys": json.dumps(dup_keys) if dup_keys else None,
                    }
                ],
                ["route"],
            )
        return ReconcileResult(
            listed=int(listed),
            adopted=int(adopted_intents or 0) + int(adopted or 0) + int(inserted or 0),
            gone=int(gone or 0),
            duplicates=len(dup_rows),
            duplicate_keys=dup_keys,
            adopted_intents=int(adopted_intents or 0),
            adopted_keys=mine,
        )

    def discard_listing(self, route: str, reconcile_id: str) -> None:
        with self._write() as conn:
            conn.execute(listing.delete().where(listing.c.route == route, listing.c.reconcile_id == reconcile_id))

    def last_reconcile(self, route: str) -> tuple[dt.datetime | None, int, list[tuple[str, list[str]]]]:
        """When the route was last reconciled, how many keys it listed twice, and (some of) which.

        One primary-key lookup: the duplicate keys were stored when the listing finished, so this
        never scans ds_listing (a query grouping the listing planned as a nested loop over it).
        """
        with self._read() as conn:
            row = conn.execute(
                sa.select(
                    route_state.c.last_reconciled_at, route_state.c.duplicates, route_state.c.duplicate_keys
                ).where(route_state.c.route == route)
            ).first()
        if row is None:
            return None, 0, []
        when, dups, keys = row
        pairs = [(str(k), list(ids)) for k, ids in json.loads(keys)] if keys else []
        return _aware(when), int(dups or 0), pairs

    def last_listing(self, route: str) -> tuple[dt.datetime | None, dt.datetime | None]:
        """``(started_at, finished_at)`` of the route's last complete listing (None, None if never)."""
        with self._read() as conn:
            row = conn.execute(
                sa.select(route_state.c.listing_started_at, route_state.c.last_reconciled_at).where(
                    route_state.c.route == route
                )
            ).first()
        if row is None:
            return None, None
        return _aware(row[0]), _aware(row[1])

    # ------------------------------------------------------------------------------ checkpoints

    def _put_checkpoint(self, conn: Connection, route: str, partition: str, cp: Checkpoint) -> None:
        self._upsert(
            conn,
            checkpoints,
            [
                {
                    "route": route,
                    "partition": partition,
                    "pass_id": cp.pass_id,
                    "cursor": cp.cursor,
                    "stats": json.dumps(cp.stats),
                    "options": json.dumps(cp.options),
                    "started_at": cp.started_at,
                    "updated_at": cp.updated_at,
                }
            ],
            ["route", "partition"],
        )

    def save_checkpoint(self, route: str, partition: str, cp: Checkpoint) -> None:
        with self._write() as conn:
            self._put_checkpoint(conn, route, partition, cp)

    def get_checkpoint(self, route: str, partition: str) -> Checkpoint | None:
        with self._read() as conn:
            row = conn.execute(
                sa.select(
                    checkpoints.c.pass_id,
                    checkpoints.c.cursor,
                    checkpoints.c.stats,
                    checkpoints.c.options,
                    checkpoints.c.started_at,
                    checkpoints.c.updated_at,
                ).where(checkpoints.c.route == route, checkpoints.c.partition == partition)
            ).first()
        if row is None:
            return None
        return Checkpoint(
            pass_id=row[0],
            cursor=row[1],
            stats=json.loads(row[2]),
            options=json.loads(row[3]),
            started_at=_aware(row[4]),  # type: ignore[arg-type]
            updated_at=_aware(row[5]),  # type: ignore[arg-type]
        )

    def clear_checkpoint(self, route: str, partition: str) -> None:
        with self._write() as conn:
            conn.execute(checkpoints.delete().where(checkpoints.c.route == route, checkpoints.c.partition == partition))

    # ---------------------------------------------------------------------------------- passes

    def finish_pass(
        self,
        route: str,
        partition: str,
        *,
        pass_id: str,
        mode: str,
        status: str,
        started_at: dt.datetime,
        stats: dict[str, Any],
        error: str | None = None,
        run_id: str | None = None,
        clear_checkpoint: bool = True,
        forget_unseen_failures: bool = False,
        fence: Fence | None = None,
        now: dt.datetime | None = None,
    ) -> None:
        """Record a finished pass; optionally clear its checkpoint and forget failures of records
        that a complete pass no longer saw (they left the source). With ``fence``, nothing is written
        unless the pass still holds its lease (``LeaseLost``)."""
        now = now or utcnow()
        with self._write() as conn:
            self._fence(conn, route, fence)
            conn.execute(
                passes.insert().values(
                    route=route,
                    partition=partition,
                    pass_id=pass_id,
                    mode=mode,
                    status=status,
                    started_at=started_at,
                    finished_at=now,
                    stats=json.dumps(stats),
                    error=error,
                    run_id=run_id,
                )
            )
            if clear_checkpoint:
                conn.execute(
                    checkpoints.delete().where(checkpoints.c.route == route, checkpoints.c.partition == partition)
                )
            if forget_unseen_failures:
                conn.execute(
                    outcomes.delete().where(
                        outcomes.c.route == route,
                        outcomes.c.partition == partition,
                        outcomes.c.last_seen < started_at,
                    )
                )
            # Keep a bounded history per partition.
            cutoff = (
                sa.select(passes.c.id)
                .where(passes.c.route == route, passes.c.partition == partition)
                .order_by(passes.c.id.desc())
                .offset(200)
                .limit(1)
                .scalar_subquery()
            )
            conn.execute(
                passes.delete().where(passes.c.route == route, passes.c.partition == partition, passes.c.id <= cutoff)
            )

    def last_passes(self, route: str, partition: str, limit: int = 1) -> list[PassRecord]:
        q = (
            sa.select(
                passes.c.pass_id,
                passes.c.mode,
                passes.c.status,
                passes.c.started_at,
                passes.c.finished_at,
                passes.c.stats,
                passes.c.error,
                passes.c.run_id,
            )
            .where(passes.c.route == route, passes.c.partition == partition)
            .order_by(passes.c.id.desc())
            .limit(limit)
        )
        with self._read() as conn:
            return [
                PassRecord(
                    pass_id=r[0],
                    mode=r[1],
                    status=r[2],
                    started_at=_aware(r[3]),  # type: ignore[arg-type]
                    finished_at=_aware(r[4]),  # type: ignore[arg-type]
                    stats=json.loads(r[5]),
                    error=r[6],
                    run_id=r[7],
                )
                for r in conn.execute(q)
            ]

    def last_pass_starts(self, route: str) -> dict[str, dt.datetime]:
        """When the latest finished pass of each partition of ``route`` started (one query)."""
        q = (
            sa.select(passes.c.partition, sa.func.max(passes.c.started_at))
            .where(passes.c.route == route, passes.c.mode.in_(("full", "full_refresh")))
            .group_by(passes.c.partition)
        )
        with self._read() as conn:
            return {p: _aware(t) for p, t in conn.execute(q)}  # type: ignore[misc]

    # --------------------------------------------------------------------------------- outcomes

    def failed_records(self, route: str, partition: str | None = None, limit: int = 100) -> list[Outcome]:
        q = sa.select(
            outcomes.c.primary_key,
            outcomes.c.error,
            outcomes.c.attempts,
            outcomes.c.first_failed_at,
            outcomes.c.last_seen,
        ).where(outcomes.c.route == route)
        if partition is not None:
            q = q.where(outcomes.c.partition == partition)
        q = q.order_by(outcomes.c.primary_key).limit(limit)
        with self._read() as conn:
            return [
                Outcome(pk, err, n, _aware(first), _aware(seen))  # type: ignore[arg-type]
                for pk, err, n, first, seen in conn.execute(q)
            ]

    def failed_keys(self, route: str, partition: str, *, seen_before: dt.datetime, limit: int = 500) -> list[str]:
        """Keys of failed records not seen since ``seen_before`` (oldest attempts first)."""
        q = (
            sa.select(outcomes.c.primary_key)
            .where(
                outcomes.c.route == route,
                outcomes.c.partition == partition,
                outcomes.c.last_seen < seen_before,
            )
            .order_by(outcomes.c.last_seen, outcomes.c.primary_key)
            .limit(limit)
        )
        with self._read() as conn:
            return list(conn.execute(q).scalars())

    def failed_count(self, route: str, partition: str | None = None) -> int:
        q = sa.select(sa.func.count()).select_from(outcomes).where(outcomes.c.route == route)
        if partition is not None:
            q = q.where(outcomes.c.partition == partition)
        with self._read() as conn:
            return int(conn.execute(q).scalar_one())

    # ----------------------------------------------------------------------------------- pauses

    def pause(self, scope: str, reason: str, *, fingerprint: str | None = None, source: str = "manual") -> None:
        with self._write() as conn:
            self._upsert(
                conn,
                pauses,
                [
                    {
                        "scope": scope,
                        "reason": reason[:2000],
                        "paused_at": utcnow(),
                        "fingerprint": fingerprint,
                        "source": source,
                    }
                ],
                ["scope"],
            )

    def resume(self, scope: str) -> bool:
        with self._write() as conn:
            return bool(conn.execute(pauses.delete().where(pauses.c.scope == scope)).rowcount)

    def pauses(self) -> dict[str, Pause]:
        with self._read() as conn:
            rows = conn.execute(
                sa.select(
                    pauses.c.scope,
                    pauses.c.reason,
                    pauses.c.paused_at,
                    pauses.c.fingerprint,
                    pauses.c.source,
                )
            ).all()
        return {r[0]: Pause(r[0], r[1], _aware(r[2]), r[3], r[4]) for r in rows}  # type: ignore[arg-type]

    def paused(self, scopes: Iterable[str]) -> Pause | None:
        """The first of ``scopes`` that is paused, if any."""
        scopes = [s for s in scopes if s]
        if not scopes:
            return None
        found = {p.scope: p for p in self.pauses().values() if p.scope in scopes}
        for s in scopes:
            if s in found:
                return found[s]
        return None

    # --------------------------------------------------------------------------------- requests

    def enqueue_request(
        self,
        route: str,
        partition: str,
        *,
        only_items: Sequence[str] | None = None,
        full_refresh: bool = False,
        reason: str = "manual",
    ) -> int:
        with self._write() as conn:
            res = conn.execute(
                requests.insert().values(
                    route=route,
                    partition=partition,
                    only_items=json.dumps(list(only_items)) if only_items else None,
                    full_refresh=bool(full_refresh),
                    reason=reason,
                    created_at=utcnow(),
                )
            )
            return int(res.inserted_primary_key[0])  # type: ignore[index]

    def pending_requests(self, route: str | None = None) -> list[SyncRequest]:
        q = sa.select(
            requests.c.id,
            requests.c.route,
            requests.c.partition,
            requests.c.only_items,
            requests.c.full_refresh,
            requests.c.reason,
            requests.c.created_at,
        ).where(requests.c.taken_at.is_(None))
        if route is not None:
            q = q.where(requests.c.route == route)
        with self._read() as conn:
            return [
                SyncRequest(
                    id=r[0],
                    route=r[1],
                    partition=r[2],
                    only_items=json.loads(r[3]) if r[3] else None,
                    full_refresh=bool(r[4]),
                    reason=r[5],
                    created_at=_aware(r[6]),  # type: ignore[arg-type]
                )
                for r in conn.execute(q.order_by(requests.c.id))
            ]

    def take_requests(self, ids: Sequence[int], run_key: str) -> None:
        with self._write() as conn:
            for chunk in _chunks(list(ids)):
                conn.execute(
                    requests.update()
                    .where(requests.c.id.in_(chunk), requests.c.taken_at.is_(None))
                    .values(taken_at=utcnow(), run_key=run_key)
                )

    # -------------------------------------------------------------------------- partition state

    def partition_state(self, route: str, partition: str) -> dict[str, Any]:
        with self._read() as conn:
            row = conn.execute(
                sa.select(
                    partition_state.c.not_before,
                    partition_state.c.last_failure,
                    partition_state.c.last_failure_at,
                    partition_state.c.last_failure_run_id,
                ).where(partition_state.c.route == route, partition_state.c.partition == partition)
            ).first()
        if row is None:
            return {
                "not_before": None,
                "last_failure": None,
                "last_failure_at": None,
                "last_failure_run_id": None,
            }
        return {
            "not_before": _aware(row[0]),
            "last_failure": row[1],
            "last_failure_at": _aware(row[2]),
            "last_failure_run_id": row[3],
        }

    def not_before_map(self, route: str) -> dict[str, dt.datetime]:
        with self._read() as conn:
            rows = conn.execute(
                sa.select(partition_state.c.partition, partition_state.c.not_before).where(
                    partition_state.c.route == route, partition_state.c.not_before.is_not(None)
                )
            ).all()
        return {p: _aware(nb) for p, nb in rows}  # type: ignore[misc]

    def set_not_before(self, route: str, partition: str, when: dt.datetime | None) -> None:
        with self._write() as conn:
            self._upsert(
                conn,
                partition_state,
                [{"route": route, "partition": partition, "not_before": when}],
                ["route", "partition"],
            )

    def record_failure(self, route: str, partition: str, message: str, run_id: str | None = None) -> None:
        with self._write() as conn:
            self._upsert(
                conn,
                partition_state,
                [
                    {
                        "route": route,
                        "partition": partition,
                        "last_failure": message[:4000],
                        "last_failure_at": utcnow(),
                        "last_failure_run_id": run_id,
                    }
                ],
                ["route", "partition"],
            )

    def clear_failure(self, route: str, partition: str) -> None:
        with self._write() as conn:
            conn.execute(
                partition_state.update()
                .where(partition_state.c.route == route, partition_state.c.partition == partition)
                .values(last_failure=None, last_failure_at=None, last_failure_run_id=None)
            )

    # ------------------------------------------------------------------------------------ blobs

    def get_blob(self, namespace: str, key: str) -> bytes | None:
        """``connectors.core.BlobStore``: a connector cache entry, or None."""
        with self._read() as conn:
            row = conn.execute(
                sa.select(blobs.c.value).where(blobs.c.namespace == namespace, blobs.c.key == key)
            ).first()
        return bytes(row[0]) if row is not None else None

    def put_blob(self, namespace: str, key: str, value: bytes) -> None:
        with self._write() as conn:
            self._upsert(
                conn,
                blobs,
                [{"namespace": namespace, "key": key, "value": value, "updated_at": utcnow()}],
                ["namespace", "key"],
            )

    def delete_blob(self, namespace: str, key: str) -> None:
        with self._write() as conn:
            conn.execute(blobs.delete().where(blobs.c.namespace == namespace, blobs.c.key == key))

    def blob_keys(self, namespace: str) -> list[str]:
        with self._read() as conn:
            return list(conn.execute(sa.select(blobs.c.key).where(blobs.c.namespace == namespace)).scalars())

    # ------------------------------------------------------------------------------------ locks

    @contextlib.contextmanager
    def locked(self, name: str) -> Iterator[Connection]:
        """Hold an exclusive, cross-process lock named ``name`` for the block (one transaction).

        PostgreSQL: ``SELECT … FOR UPDATE`` on the lock's row; SQLite: ``BEGIN IMMEDIATE`` (the
        whole database is the lock, which is fine for the rare refreshes it guards).
        """
        with self._write() as conn:
            self._upsert(conn, locks, [{"name": name, "taken_at": None}], ["name"], update=[])
        with self._write() as conn:
            q = sa.select(locks.c.name).where(locks.c.name == name)
            if self.dialect == "postgresql":
                q = q.with_for_update()
            conn.execute(q).first()
            conn.execute(locks.update().where(locks.c.name == name).values(taken_at=utcnow()))
            yield conn

    # ------------------------------------------------------------------------------ maintenance

    def forget_route(self, route: str) -> None:
        """Delete everything stored for a route (tests and `durable-sync` maintenance)."""
        with self._write() as conn:
            for table in (
                links,
                listing,
                route_state,
                outcomes,
                checkpoints,
                passes,
                requests,
                partition_state,
                leases,
            ):
                conn.execute(table.delete().where(table.c.route == route))

    def dispose(self) -> None:
        self.engine.dispose()


class LinkMap:
    """A read-only view of a route's link map (one partition, or all): what downstream assets get.

    It never holds the whole map in memory: ``len`` is a count query, iteration streams pages of
    1,000 links in key order, ``get`` is a point lookup.
    """

    def __init__(self, store: StateStore, route: str, partition: str | None = None) -> None:
        self.store = store
        self.route = route
        self.partition = partition

    def __repr__(self) -> str:
        where = f"{self.route}/{self.partition}" if self.partition else self.route
        return f"LinkMap({where})"

    def __len__(self) -> int:
        return self.store.link_count(self.route, self.partition)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return self.store.iter_links(self.route, self.partition)

    def items(self) -> Iterator[tuple[str, str]]:
        return iter(self)

    def get(self, primary_key: str) -> str | None:
        link = self.store.get_links(self.route, [primary_key]).get(primary_key)
        if link is None or link.state != "linked":
            return None
        if self.partition is not None and link.partition != self.partition:
            return None
        return link.destination_id

    def to_dict(self) -> dict[str, str]:
        """The whole map in memory: for small maps only."""
        return dict(iter(self))


class SharedBlobs:
    """``BlobStore`` over the deployment's shared state store, resolved at first use (not at import,
    so definitions can be built before the environment is read)."""

    def _store(self) -> StateStore:
        return StateStore.shared()

    def get_blob(self, namespace: str, key: str) -> bytes | None:
        return self._store().get_blob(namespace, key)

    def put_blob(self, namespace: str, key: str, value: bytes) -> None:
        self._store().put_blob(namespace, key, value)

    def delete_blob(self, namespace: str, key: str) -> None:
        self._store().delete_blob(namespace, key)

    def blob_keys(self, namespace: str) -> list[str]:
        return self._store().blob_keys(namespace)

    def mapping(self, namespace: str) -> BlobMapping:
        """A durable ``str -> str`` mapping in ``namespace`` (e.g. a source's watermarks)."""
        return BlobMapping(self, namespace)


class BlobMapping(MutableMapping[str, str]):
    """A ``MutableMapping[str, str]`` kept in the state store's blobs, for connector state that must
    outlive a run's process (a source's incremental watermarks)."""

    def __init__(self, blobs: StateStore | SharedBlobs, namespace: str) -> None:
        self.blobs = blobs
        self.namespace = namespace

    def __getitem__(self, key: str) -> str:
        raw = self.blobs.get_blob(self.namespace, key)
        if raw is None:
            raise KeyError(key)
        return raw.decode()

    def __setitem__(self, key: str, value: str) -> None:
        self.blobs.put_blob(self.namespace, key, value.encode())

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self.blobs.delete_blob(self.namespace, key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.blobs.get_blob(self.namespace, key) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.blobs.blob_keys(self.namespace))

    def __len__(self) -> int:
        return len(self.blobs.blob_keys(self.namespace))

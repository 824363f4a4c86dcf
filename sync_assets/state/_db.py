"""The one engine/connection helper every part of the state store works over.

``Database`` owns the SQLAlchemy engine and the transaction discipline: SQLite runs in WAL mode and
every write transaction starts ``BEGIN IMMEDIATE`` (a deferred transaction that reads and then writes
can fail at once under a concurrent writer, whatever the busy timeout); reads start a plain deferred
``BEGIN``. It also holds the dialect-dependent bits the parts share: the DB-API placeholder and time
format of the raw hot-path SQL, and the cached upsert statements.

Nothing here knows a table: the schema lives in ``_schema``, each concern in its own module.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

# One logger for the whole store, under the name it has always had (logging configuration keys on it).
log = logging.getLogger("sync_assets.state")

DEFAULT_STATE_FILE = "durable_sync_state.sqlite3"
BATCH = 500  # rows per IN (...) list / executemany chunk: well under SQLite's variable limit


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC (every time the store writes is one of these)."""
    return dt.datetime.now(dt.UTC)


def aware(value: dt.datetime | None) -> dt.datetime | None:
    """``value`` as an aware UTC datetime: SQLite hands back naive ones; everything stored is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def chunks(items: Sequence[Any], size: int = BATCH) -> Iterator[Sequence[Any]]:
    """``items`` in slices of at most ``size`` (one statement each)."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


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


def normalise_url(url: str) -> str:
    """The URL with the PostgreSQL driver made explicit.

    SQLAlchemy 2.1 maps a bare postgresql:// URL to psycopg (v3); dagster-postgres only brings
    psycopg2. Use psycopg2 unless the user named a driver (or psycopg is installed).
    """
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        rest = url.split("://", 1)[1]
        try:
            import psycopg  # noqa: F401
        except ImportError:
            return f"postgresql+psycopg2://{rest}"
        return f"postgresql+psycopg://{rest}"
    return url


def redact(url: str) -> str:
    """The URL without its password, for logs and messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable state url>"


def _set_wal(cur: Any) -> None:
    """Switch a new database file to WAL, retrying while it is locked.

    The switch needs the file to itself, and SQLite may refuse it at once ("database is locked", no
    busy wait) while another connection creates the schema.
    """
    for attempt in range(100):
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or attempt == 99:
                raise
            time.sleep(0.05)


def _sqlite_engine(url: str) -> Engine:
    db = sa.engine.make_url(url).database
    kwargs: dict[str, Any] = {"connect_args": {"timeout": 60, "check_same_thread": False}}
    if not db or db == ":memory:":
        kwargs["poolclass"] = sa.pool.StaticPool
    else:
        Path(db).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, **kwargs)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from pysqlite so that BEGIN IMMEDIATE is possible.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout=60000")
        if db and db != ":memory:":
            _set_wal(cur)
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("ds_begin", "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


class Database:
    """The engine, its dialect, and the transactions every part of the store runs in.

    Args:
        url: A SQLAlchemy URL (``sqlite:///path``, ``postgresql://…``); default from the environment
            (``default_state_url``).
    """

    def __init__(self, url: str | None = None) -> None:
        """Create the engine (no connection is made yet)."""
        self.url = normalise_url(url or default_state_url())
        self.dialect = sa.engine.make_url(self.url).get_backend_name()
        self._upserts: dict[tuple[str, tuple[str, ...], tuple[str, ...]], Any] = {}
        if self.dialect == "sqlite":
            self.engine = _sqlite_engine(self.url)
        else:
            self.engine = sa.create_engine(self.url, pool_pre_ping=True, future=True)

    @property
    def display_url(self) -> str:
        """The URL without its password."""
        return redact(self.url)

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite), committed when the block ends."""
        with self.engine.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (a deferred ``BEGIN``), rolled back when the block ends."""
        with self.engine.connect().execution_options(ds_begin="DEFERRED") as conn:
            yield conn
            conn.rollback()

    # ------------------------------------------------------------- hot paths (raw DB-API SQL)
    #
    # The per-page statements run once per 100 records; SQLAlchemy's per-row parameter handling
    # cost more than SQLite itself there. These use the driver directly with SQL both SQLite
    # (>= 3.24) and PostgreSQL accept; everything else goes through SQLAlchemy Core.

    def ph(self, n: int) -> str:
        """``n`` DB-API placeholders, comma-separated, in the driver's style."""
        mark = "?" if self.dialect == "sqlite" else "%s"
        return ", ".join([mark] * n)

    def db_time(self, value: dt.datetime | None) -> Any:
        """``value`` as the driver must receive it in raw SQL."""
        if value is None or self.dialect != "sqlite":
            return value
        # The format SQLAlchemy's SQLite DateTime type reads back (stored as naive UTC).
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

    def rows_by_keys(
        self,
        conn: Connection,
        table: sa.Table,
        columns: Sequence[str],
        where: dict[str, Any],
        key: str,
        keys: Sequence[str],
    ) -> list[Any]:
        """``columns`` of ``table``'s rows whose ``key`` is in ``keys``: one index probe per key.

        Only rows whose ``where`` columns equal their values. On SQLite that is a plain
        ``… AND key IN (…)``. PostgreSQL without statistics (a new database, a route that just grew)
        estimates the rows matching ``where`` at a handful and plans such a list as a filter over all
        of them: a walk of a whole route per page (70 ms a page at 200,000 links, against 3 ms). There
        the keys are an array whose elements are probed one by one, by a lateral subquery that
        ``OFFSET 0`` keeps from being flattened into a join planned the same way.
        """
        found: list[Any] = []
        cond = " AND ".join([*(f"{c} = %s" for c in where), f"{key} = k.key"])
        probe = (
            f"SELECT {', '.join('t.' + c for c in columns)} FROM unnest(%s::text[]) AS k(key) "
            f"CROSS JOIN LATERAL (SELECT {', '.join(columns)} FROM {table.name} WHERE {cond} OFFSET 0) AS t"
        )
        for chunk in chunks(list(keys)):
            if self.dialect == "postgresql":
                found += conn.exec_driver_sql(probe, (list(chunk), *where.values())).all()
            else:
                q = sa.select(*(table.c[c] for c in columns)).where(
                    *(table.c[c] == v for c, v in where.items()), table.c[key].in_(list(chunk))
                )
                found += conn.execute(q).all()
        return found

    def insert(self, table: sa.Table) -> Any:
        """The dialect's ``INSERT`` construct for ``table`` (the one with ``ON CONFLICT``)."""
        from sqlalchemy.dialects import postgresql, sqlite

        return postgresql.insert(table) if self.dialect == "postgresql" else sqlite.insert(table)

    def upsert(
        self,
        conn: Connection,
        table: sa.Table,
        rows: Sequence[dict[str, Any]],
        index: list[str],
        update: list[str] | None = None,
    ) -> None:
        """Insert ``rows``, or update the columns ``update`` (default: all but ``index``) on conflict.

        Args:
            conn: The transaction to write in.
            table: The table.
            rows: Dicts of one shape.
            index: The unique columns that make a conflict.
            update: Columns to overwrite; ``[]`` means insert-or-ignore.
        """
        if not rows:
            return
        cols = tuple(update if update is not None else [c for c in rows[0] if c not in index])
        cache_key = (table.name, tuple(index), cols)
        stmt = self._upserts.get(cache_key)
        if stmt is None:
            # Built once per shape: constructing an upsert (its `excluded` namespace) costs more
            # than executing it for a page of rows.
            stmt = self.insert(table)
            stmt = (
                stmt.on_conflict_do_update(index_elements=index, set_={c: stmt.excluded[c] for c in cols})
                if cols
                else stmt.on_conflict_do_nothing(index_elements=index)
            )
            self._upserts[cache_key] = stmt
        for chunk in chunks(rows):
            conn.execute(stmt, list(chunk))


class Part:
    """Base of every concern of the store: a small class over one shared ``Database``.

    Args:
        db: The shared engine/connection helper.
    """

    def __init__(self, db: Database) -> None:
        """Work over ``db``."""
        self.db = db

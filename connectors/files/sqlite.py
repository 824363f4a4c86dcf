"""``SQLiteDestination``: rows in a local SQLite table, one table per route, typed columns.

Layout of a table (created on first use)::

    id INTEGER PRIMARY KEY AUTOINCREMENT     the destination id (returned as a string)
    "<key_column>" TEXT UNIQUE NOT NULL      Record.primary_key
    body TEXT, synced_at TEXT                Record.body, the engine's timestamp (ISO 8601)
    "<property>" ...                         one column per property, added as properties appear

A metadata table ``_durable_sync_columns(table, property, column, kind)`` maps each property to its
column and neutral kind, so values read back as the Python types that were written: ``bool`` (0/1),
``int``, ``float``, ``str``, ``date`` (ISO text), ``datetime`` (aware, ISO 8601 text) and ``list[str]``
(JSON text). A column takes the kind of the first non-None value written to it; later values of
another kind are a ``RecordError`` for that record (an ``int`` column widens to ``float`` once a
float arrives, and ints are accepted by ``float`` columns).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from connectors.core import ConfigError, Record, RecordError, TransientError, auth_error_in_chain
from connectors.files._values import check_value_lengths, flat_row, iso_datetime, neutral_kind
from connectors.files.settings import (
    RESERVED_SQLITE_COLUMNS,
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SQLITE_LIST_BATCH,
    SQLITE_METADATA_TABLE,
)

__all__ = ["SQLiteDestination"]

logger = logging.getLogger(__name__)

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

_DECLARED_TYPES = {
    None: "",
    "bool": "BOOLEAN",
    "int": "INTEGER",
    "float": "REAL",
    "str": "TEXT",
    # TEXT rather than DATE/DATETIME: those names give NUMERIC affinity, which could coerce text.
    "date": "TEXT",
    "datetime": "TEXT",
    "list": "TEXT",
}


def _quote(identifier: str) -> str:
    """An SQL identifier, quoted: any text is a valid name once its double quotes are doubled."""
    return '"' + identifier.replace('"', '""') + '"'


def _check_name(what: str, name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"SQLiteDestination: {what} must be a non-empty string, got {name!r}")
    if "\x00" in name:
        raise ConfigError(f"SQLiteDestination: {what} {name!r} contains a NUL character")
    return name


def _encode(kind: str | None, value: Any) -> Any:
    if value is None:
        return None
    if kind == "bool":
        return 1 if value else 0
    if kind == "float":
        return float(value)
    if kind == "date":
        return value.isoformat()
    if kind == "datetime":
        return iso_datetime(value)
    if kind == "list":
        return json.dumps(list(value), ensure_ascii=False)
    return value


def _decode(kind: str | None, value: Any) -> Any:
    if value is None:
        return None
    if kind == "bool":
        return bool(value)
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    if kind == "date":
        return dt.date.fromisoformat(value)
    if kind == "datetime":
        return dt.datetime.fromisoformat(value)
    if kind == "list":
        return json.loads(value)
    return value


def _sqlite_error(err: BaseException, where: str) -> BaseException:
    """Map an sqlite3 error onto the error tree (the caller chains it)."""
    text = str(err).lower()
    if isinstance(err, sqlite3.OperationalError):
        # Another process holds the write lock beyond the busy timeout, or the disk hiccupped.
        if any(n in text for n in ("locked", "busy", "disk i/o")):
            return TransientError(f"{where}: {err}")
        if "unable to open" in text or "readonly" in text:
            return ConfigError(f"{where}: {err}")
    if isinstance(err, OverflowError):
        return RecordError(f"{where}: {err}")
    return err


class SQLiteDestination:
    """Rows in one table of a local SQLite file; stores our key, so reconciles see every row.

    Writes run one at a time (``max_concurrency = 1``), each in its own committed transaction, so a
    crash right after a write keeps it. The database uses WAL with ``synchronous=NORMAL``: a committed
    write survives a process crash; a power loss may roll back the last few commits.

    Args:
        path: The SQLite file (parent directories are created).
        table: The table of this route (created on first use).
        key_column: The column holding ``Record.primary_key``.
        create_only_properties: Properties written on create only, never by ``update``.
        max_value_length: Longest string (or list item) accepted; longer is a ``RecordError``.
        name: Destination name.

    Raises:
        ConfigError: A bad table or key column name.
    """

    stores_keys = True
    max_concurrency = 1
    configured = True

    def __init__(
        self,
        path: str | Path,
        table: str,
        *,
        key_column: str = "primary_key",
        create_only_properties: Iterable[str] = (),
        max_value_length: int | None = None,
        name: str = "sqlite",
    ) -> None:
        self.table = _check_name("table", table)
        if table.lower().startswith("sqlite_") or table == SQLITE_METADATA_TABLE:
            raise ConfigError(f"SQLiteDestination: table name {table!r} is reserved")
        self.key_column = _check_name("key_column", key_column)
        if key_column.lower() in RESERVED_SQLITE_COLUMNS:
            raise ConfigError(
                f"SQLiteDestination: key_column {key_column!r} clashes with the built-in columns "
                f"{', '.join(sorted(RESERVED_SQLITE_COLUMNS))}"
            )
        if max_value_length is not None and (isinstance(max_value_length, bool) or max_value_length < 1):
            raise ConfigError(f"SQLiteDestination: max_value_length must be >= 1 or None, got {max_value_length!r}")
        self.path = Path(path).expanduser().resolve()
        self.name = name
        self.create_only_properties = set(create_only_properties)
        self.max_value_length = max_value_length
        self.rate_limit_key = f"sqlite:{self.path}"

    @property
    def config_hint(self) -> str:
        return f"a local SQLite file ({self.path}, table {self.table!r}); no credentials needed"

    def describe(self) -> str:
        """Where the rows are: ``sqlite:///abs/path.sqlite#table``."""
        return f"sqlite://{self.path.as_posix()}#{self.table}"

    @staticmethod
    def is_auth_error(err: BaseException) -> bool:
        return auth_error_in_chain(err)

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[_SQLiteSession]:
        """A session on its own connection, closed at exit."""
        session = await asyncio.to_thread(_SQLiteSession.open, self)
        try:
            yield session
        finally:
            await asyncio.to_thread(session.conn.close)

    def read_rows(self) -> list[dict[str, Any]]:
        """Every row decoded to neutral values, in id order (for tests and demos; loads the table).

        Each dict has ``id`` (str), the key column, ``body``, ``synced_at`` (aware datetime) and one
        entry per property; a property named like one of those four appears as ``"property:<name>"``
        (in the table it has a column with a suffix, ``id__2``).
        """
        if not self.path.exists():
            return []
        conn = sqlite3.connect(f"{self.path.as_uri()}?mode=ro", uri=True, timeout=SQLITE_BUSY_TIMEOUT_SECONDS)
        try:
            if not _table_exists(conn, self.table):
                return []
            mapping = _load_mapping(conn, self.table)
            mapped = list(mapping.items())
            select = ", ".join(
                ["id", _quote(self.key_column), "body", "synced_at"] + [_quote(col) for _, (col, _) in mapped]
            )
            out = []
            for row in conn.execute(f"SELECT {select} FROM {_quote(self.table)} ORDER BY id"):
                fixed = {
                    "id": str(row[0]),
                    self.key_column: row[1],
                    "body": row[2],
                    "synced_at": dt.datetime.fromisoformat(row[3]) if row[3] else None,
                }
                props = {prop: _decode(kind, value) for (prop, (_, kind)), value in zip(mapped, row[4:], strict=True)}
                item = flat_row(fixed, props)
                out.append(item)
            return out
        finally:
            conn.close()


def _table_exists(conn: sqlite3.Connection, table: str) -> bool:
    return (
        conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone() is not None
    )


def _load_mapping(conn: sqlite3.Connection, table: str) -> dict[str, tuple[str, str | None]]:
    """property -> (column, kind) of ``table``."""
    if not _table_exists(conn, SQLITE_METADATA_TABLE):
        return {}
    rows = conn.execute(
        f'SELECT property, "column", kind FROM {_quote(SQLITE_METADATA_TABLE)} WHERE "table" = ? ORDER BY rowid',
        (table,),
    )
    return {prop: (col, kind) for prop, col, kind in rows}


class _SQLiteSession:
    """One connection; every call runs in a worker thread, one at a time."""

    def __init__(self, dest: SQLiteDestination, conn: sqlite3.Connection) -> None:
        self.dest = dest
        self.conn = conn
        self.qtable = _quote(dest.table)
        self.qkey = _quote(dest.key_column)
        self.columns: dict[str, tuple[str, str | None]] = {}
        # Calls are serialised: sqlite3 connections must not be used from two threads at once.
        self.lock = asyncio.Lock()

    # -- setup --

    @classmethod
    def open(cls, dest: SQLiteDestination) -> _SQLiteSession:
        where = f"SQLite {dest.path}"
        try:
            dest.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, so the write lock is taken up
            # front and a check-then-insert cannot race another process.
            conn = sqlite3.connect(
                dest.path, timeout=SQLITE_BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
            )
        except (sqlite3.Error, OSError) as err:
            raise ConfigError(f"{where}: cannot open the database: {err}") from err
        session = cls(dest, conn)
        try:
            try:
                # WAL: readers (a listing, read_rows, a DB browser) never block the writer.
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as err:
                raise _sqlite_error(err, where) from err
            session._transaction(session._ensure_table)
        except BaseException:
            conn.close()
            raise
        return session

    def _transaction(self, fn: Any, *args: Any) -> Any:
        where = f"SQLite {self.dest.path}#{self.dest.table}"
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as err:
            raise _sqlite_error(err, where) from err
        try:
            result = fn(*args)
            self.conn.execute("COMMIT")
            return result
        except BaseException as err:
            # SQLite rolls back by itself after some errors (disk full, I/O); ROLLBACK would then fail.
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            # A rolled-back schema change must not linger in the cache.
            self.columns = _load_mapping(self.conn, self.dest.table)
            if isinstance(err, (sqlite3.Error, OverflowError)):
                raise _sqlite_error(err, where) from err
            raise

    def _ensure_table(self) -> None:
        meta = _quote(SQLITE_METADATA_TABLE)
        self.conn.execute(
            f'CREATE TABLE IF NOT EXISTS {meta} ("table" TEXT NOT NULL, property TEXT NOT NULL, '
            f'"column" TEXT NOT NULL, kind TEXT, PRIMARY KEY ("table", property))'
        )
        self.conn.execute(
            f"CREATE TABLE IF NOT EXISTS {self.qtable} (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            f"{self.qkey} TEXT UNIQUE NOT NULL, body TEXT, synced_at TEXT)"
        )
        existing = self._table_columns()
        if self.dest.key_column not in existing:
            raise ConfigError(
                f"SQLite {self.dest.path}: table {self.dest.table!r} exists without key column "
                f"{self.dest.key_column!r} (columns: {', '.join(existing)})"
            )
        self.columns = _load_mapping(self.conn, self.dest.table)

    def _table_columns(self) -> list[str]:
        return [row[1] for row in self.conn.execute(f"PRAGMA table_info({self.qtable})")]

    # -- schema on write --

    def _column_for(self, prop: str, kind: str | None, primary_key: str) -> tuple[str, str | None]:
        """The (column, kind) a value of ``kind`` is written to, adding or widening the column."""
        known = self.columns.get(prop)
        if known is not None and (kind is None or known[1] == kind or (known[1] == "float" and kind == "int")):
            return known
        # Schema work: another session may have done it since we cached, so look again first.
        self.columns = _load_mapping(self.conn, self.dest.table)
        known = self.columns.get(prop)
        meta = _quote(SQLITE_METADATA_TABLE)
        if known is None:
            if "\x00" in prop:
                raise RecordError(f"property {prop!r}: names cannot contain NUL", primary_key=primary_key)
            column = self._free_column_name(prop)
            self.conn.execute(f"ALTER TABLE {self.qtable} ADD COLUMN {_quote(column)} {_DECLARED_TYPES[kind]}".rstrip())
            self.conn.execute(
                f'INSERT INTO {meta} ("table", property, "column", kind) VALUES (?, ?, ?, ?)',
                (self.dest.table, prop, column, kind),
            )
            logger.info("SQLite %s: added column %s (%s) for property %s", self.dest.table, column, kind, prop)
            self.columns[prop] = (column, kind)
            return column, kind
        column, have = known
        if kind is None or have == kind or (have == "float" and kind == "int"):
            return known
        if have is None or (have == "int" and kind == "float"):
            # First typed value of an all-None column, or ints widening to floats: both lossless.
            self.conn.execute(
                f'UPDATE {meta} SET kind = ? WHERE "table" = ? AND property = ?',
                (kind, self.dest.table, prop),
            )
            self.columns[prop] = (column, kind)
            return column, kind
        raise RecordError(
            f"property {prop!r}: column {column!r} of {self.dest.table!r} holds {have} values, got {kind}",
            primary_key=primary_key,
        )

    def _free_column_name(self, prop: str) -> str:
        # SQLite compares identifiers case-insensitively: "Status" and "status" need two columns.
        taken = {c.lower() for c in self._table_columns()} | {c.lower() for c, _ in self.columns.values()}
        taken |= RESERVED_SQLITE_COLUMNS | {self.dest.key_column.lower()}
        base = prop or "_"
        column, n = base, 1
        while column.lower() in taken:
            n += 1
            column = f"{base}__{n}"
        return column

    def _assignments(self, record: Record, *, skip: set[str]) -> list[tuple[str, Any]]:
        """(quoted column, encoded value) for each property of the record not in ``skip``."""
        out = []
        for prop, value in record.properties.items():
            if prop in skip:
                continue
            kind = neutral_kind(prop, value, primary_key=record.primary_key)
            column, column_kind = self._column_for(prop, kind, record.primary_key)
            out.append((_quote(column), _encode(column_kind, value)))
        return out

    def _check(self, record: Record) -> None:
        for prop, value in record.properties.items():
            kind = neutral_kind(prop, value, primary_key=record.primary_key)
            if kind == "int" and not _INT64_MIN <= value <= _INT64_MAX:
                raise RecordError(
                    f"property {prop!r}: {value} does not fit SQLite's 64-bit integers",
                    primary_key=record.primary_key,
                )
        check_value_lengths(record.properties, self.dest.max_value_length, primary_key=record.primary_key)

    # -- writes (run inside _transaction) --

    def _update_row(self, row_id: int, record: Record, synced_at: dt.datetime) -> int:
        sets = [*self._assignments(record, skip=self.dest.create_only_properties)]
        sets += [("body", record.body), ("synced_at", iso_datetime(synced_at))]
        sql = f"UPDATE {self.qtable} SET {', '.join(f'{c} = ?' for c, _ in sets)} WHERE id = ?"
        return self.conn.execute(sql, [v for _, v in sets] + [row_id]).rowcount

    def _create(self, record: Record, synced_at: dt.datetime) -> str:
        found = self.conn.execute(
            f"SELECT id FROM {self.qtable} WHERE {self.qkey} = ?", (record.primary_key,)
        ).fetchone()
        if found is not None:
            # The key is already here: our earlier create committed but the engine never learned
            # its id (a crash in between). Creating again would break the UNIQUE key, so this is that
            # row, updated like any update (create-only properties were written the first time).
            self._update_row(found[0], record, synced_at)
            logger.info(
                "SQLite %s: create of existing key %s updated row %s",
                self.dest.table,
                record.primary_key,
                found[0],
            )
            return str(found[0])
        cols = [
            (self.qkey, record.primary_key),
            ("body", record.body),
            ("synced_at", iso_datetime(synced_at)),
        ]
        cols += self._assignments(record, skip=set())
        sql = f"INSERT INTO {self.qtable} ({', '.join(c for c, _ in cols)}) VALUES ({', '.join('?' for _ in cols)})"
        cursor = self.conn.execute(sql, [v for _, v in cols])
        return str(cursor.lastrowid)

    def _update(self, existing_id: str, record: Record, synced_at: dt.datetime) -> bool:
        try:
            row_id = int(existing_id)
        except (TypeError, ValueError):
            raise RecordError(
                f"SQLite {self.dest.table}: {existing_id!r} is not a row id", primary_key=record.primary_key
            ) from None
        if self._update_row(row_id, record, synced_at) == 0:
            raise RecordError(f"SQLite {self.dest.table}: row {row_id} not found", primary_key=record.primary_key)
        return True

    def _rows_after(self, last_id: int) -> list[tuple[str, int]]:
        return self.conn.execute(
            f"SELECT {self.qkey}, id FROM {self.qtable} WHERE id > ? ORDER BY id LIMIT ?",
            (last_id, SQLITE_LIST_BATCH),
        ).fetchall()

    # -- the session protocol --

    async def create(self, record: Record, synced_at: dt.datetime) -> str:
        """Insert the record and return its id; a key already present updates that row instead."""
        if not record.primary_key:
            raise RecordError("SQLite: the record has an empty primary key", primary_key=record.primary_key)
        self._check(record)
        async with self.lock:
            return await asyncio.to_thread(self._transaction, self._create, record, synced_at)

    async def update(self, existing_id: str, record: Record, synced_at: dt.datetime) -> bool:
        """Update row ``existing_id`` (create-only properties untouched; None clears a column).

        Raises:
            RecordError: No row has that id, or a value does not fit its column.
        """
        self._check(record)
        async with self.lock:
            return await asyncio.to_thread(self._transaction, self._update, existing_id, record, synced_at)

    async def query_existing_rows(self) -> AsyncIterator[tuple[str, str]]:
        """Every (key, id) in id order, read ``SQLITE_LIST_BATCH`` rows per query."""
        last_id = 0
        while True:
            # The lock is held per batch, not across yields: the caller may write between batches.
            async with self.lock:
                try:
                    batch = await asyncio.to_thread(self._rows_after, last_id)
                except sqlite3.Error as err:
                    raise _sqlite_error(err, f"SQLite {self.dest.path}#{self.dest.table}") from err
            for key, row_id in batch:
                yield key, str(row_id)
            if len(batch) < SQLITE_LIST_BATCH:
                return
            last_id = batch[-1][1]

    async def query_existing_ids(self) -> dict[str, str]:
        """{key: id} of every row."""
        return {key: row_id async for key, row_id in self.query_existing_rows()}

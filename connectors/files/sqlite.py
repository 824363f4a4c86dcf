"""``SQLiteDestination``: rows in a local SQLite table, one table per route.

Layout of a table (created by the first write, never before)::

    id INTEGER PRIMARY KEY AUTOINCREMENT     the destination id (returned as a string)
    "<key_column>" TEXT UNIQUE NOT NULL      Record.primary_key
    body TEXT, synced_at TEXT                Record.body, the engine's timestamp (ISO 8601)
    "<property>" ...                         one column per property, added as properties appear

A metadata table ``_durable_sync_columns(table, property, column, kind, kind_column)`` maps each
property to its column and the neutral kinds written to it, so values read back as the Python types
that were written: ``bool`` (0/1), ``int``, ``float``, ``str``, ``date`` (ISO text), ``datetime``
(aware, ISO 8601 text) and ``list[str]`` (JSON text).

No value decides a column's type for good. A property whose type the route declares (``types=``) gets a
typed column and values of another type are a ``RecordError`` for their record. Any other column is
created without a declared type, so SQLite's type affinity never converts what is stored in it (a
``TEXT`` column would turn a later ``7`` into ``'7'``, an ``INTEGER`` one ``3.0`` into ``3``, a ``REAL``
one ``3`` into ``3.0``): each value keeps its storage class, and an ``int`` reads back as an ``int``
after a ``float`` lands in the same column. Kinds that share a storage class (``str`` and ``date``
are both text; ``bool`` and ``int`` both integers) are told apart, once a column holds more than one
of them, by a companion column holding each row's kind. A column that an older version created with
a declared type is rebuilt without one the first time a value its affinity would convert arrives.

Nothing is created before the first ``create`` or ``update``: ``connect()`` and the listings read an
existing file or report an empty table, so a dry run (``plan``) leaves no file, table or WAL behind.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from connectors.core import ConfigError, Record, RecordError, SchemaChange, TransientError
from connectors.files._local import LocalFileDestination
from connectors.files._values import check_value_lengths, flat_row, iso_datetime, neutral_kind
from connectors.files.settings import (
    COLUMN_TYPES,
    RESERVED_SQLITE_COLUMNS,
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SQLITE_LIST_BATCH,
    SQLITE_METADATA_TABLE,
)

__all__ = ["SQLiteDestination"]

logger = logging.getLogger(__name__)

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

_DECLARED_SQL_TYPES = {
    "bool": "BOOLEAN",
    "int": "INTEGER",
    "float": "REAL",
    "str": "TEXT",
    # TEXT rather than DATE/DATETIME: those names give NUMERIC affinity, which could coerce text.
    "date": "TEXT",
    "datetime": "TEXT",
    "list": "TEXT",
}

_INTEGER_KINDS = frozenset({"bool", "int"})
_TEXT_KINDS = frozenset({"str", "date", "datetime", "list"})
_ALL_KINDS = frozenset(COLUMN_TYPES)

_AFFINITY_KEEPS = {
    # The kinds whose encoded values a column of that affinity stores unchanged. INTEGER and NUMERIC
    # turn integral reals and numeric-looking text into integers; REAL turns integers into reals;
    # TEXT turns numbers into text. BLOB (no declared type) keeps every value as it is given.
    "BLOB": _ALL_KINDS,
    "INTEGER": _INTEGER_KINDS,
    "NUMERIC": _INTEGER_KINDS,
    "REAL": frozenset({"float"}),
    "TEXT": _TEXT_KINDS,
}


def _affinity(declared: str) -> str:
    """The affinity SQLite gives a column of ``declared`` type (the rules of its datatype docs, 3.1)."""
    upper = declared.upper()
    if "INT" in upper:
        return "INTEGER"
    if any(word in upper for word in ("CHAR", "CLOB", "TEXT")):
        return "TEXT"
    if not upper or "BLOB" in upper:
        return "BLOB"
    if any(word in upper for word in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    return "NUMERIC"


def _ambiguous(kinds: frozenset[str]) -> bool:
    """Whether the stored values of a column holding ``kinds`` no longer say which kind each is."""
    return len(kinds & _INTEGER_KINDS) > 1 or len(kinds & _TEXT_KINDS) > 1


def _stored_kind(kinds: frozenset[str], value: Any) -> str | None:
    """The kind of a stored value, from its storage class, in a column that is not ambiguous."""
    if isinstance(value, int):
        if "int" in kinds:
            return "int"
        if "bool" in kinds:
            return "bool"
        # An INTEGER column an older version widened to float: its integral floats are stored as ints.
        return "float" if "float" in kinds else "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        text_kinds = kinds & _TEXT_KINDS
        return next(iter(text_kinds)) if len(text_kinds) == 1 else "str"
    return None


@dataclass(frozen=True)
class _Column:
    """Where a property's values live and what was written to them."""

    column: str
    kinds: frozenset[str]
    kind_column: str | None
    affinity: str

    def takes(self, kind: str | None) -> bool:
        """Whether a value of ``kind`` can be written as things are (no column work needed)."""
        return kind is None or (kind in self.kinds and self.kinds <= _AFFINITY_KEEPS[self.affinity])


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


def _decode_cell(column: _Column, value: Any, row_kind: str | None) -> Any:
    if value is None:
        return None
    return _decode(row_kind or _stored_kind(column.kinds, value), value)


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


class SQLiteDestination(LocalFileDestination["_SQLiteSession"]):
    """Rows in one table of a local SQLite file; stores our key, so reconciles see every row.

    Writes run one at a time (``max_concurrency = 1``), each in its own committed transaction, so a
    crash right after a write keeps it. The database uses WAL with ``synchronous=NORMAL``: a committed
    write survives a process crash; a power loss may roll back the last few commits. The file, its
    directories and the table are created by the first write: connecting and listing create nothing.

    Args:
        path: The SQLite file (parent directories are created by the first write).
        table: The table of this route (created by the first write).
        key_column: The column holding ``Record.primary_key``.
        types: Property name -> declared type (``str``, ``int``, ``float``, ``bool``, ``date``,
            ``datetime``, ``list``; the names of ``FileSpec.types``). The property's column gets that
            type and other values are a ``RecordError`` (an ``int`` is accepted as a ``float``).
            Undeclared properties get columns that accept every neutral value.
        create_only_properties: Properties written on create only, never by ``update``.
        max_value_length: Longest string (or list item) accepted; longer is a ``RecordError``.
        name: Destination name.
        missing_property: The bool property ``on_missing`` sets on a row whose key left the source
            (``mark_missing``), and clears when it returns.

    Raises:
        ConfigError: A bad table or key column name, or an unknown type in ``types``.
    """

    scheme = "sqlite"
    file_kind = "SQLite"

    def __init__(
        self,
        path: str | Path,
        table: str,
        *,
        key_column: str = "primary_key",
        types: Mapping[str, str] | None = None,
        create_only_properties: Iterable[str] = (),
        max_value_length: int | None = None,
        name: str = "sqlite",
        missing_property: str = "Missing at source",
    ) -> None:
        """Check the arguments (see Raises above); the file is opened only when a session first needs it."""
        self.table = _check_name("table", table)
        if table.lower().startswith("sqlite_") or table == SQLITE_METADATA_TABLE:
            raise ConfigError(f"SQLiteDestination: table name {table!r} is reserved")
        self.key_column = _check_name("key_column", key_column)
        if key_column.lower() in RESERVED_SQLITE_COLUMNS:
            raise ConfigError(
                f"SQLiteDestination: key_column {key_column!r} clashes with the built-in columns "
                f"{', '.join(sorted(RESERVED_SQLITE_COLUMNS))}"
            )
        self._init_file(path, name, create_only_properties, max_value_length)
        declared = dict(types or {})
        for prop, type_name in declared.items():
            if type_name not in COLUMN_TYPES:
                raise ConfigError(
                    f"SQLiteDestination: types[{prop!r}] = {type_name!r} is not a known type "
                    f"(one of {', '.join(sorted(COLUMN_TYPES))})"
                )
        self.types: dict[str, str] = declared
        self.missing_property = missing_property

    @property
    def where(self) -> str:
        """The file and the table."""
        return f"{self.path}, table {self.table!r}"

    def describe(self) -> str:
        """Where the rows are: ``sqlite:///abs/path.sqlite#table``."""
        return f"{super().describe()}#{self.table}"

    def _session(self) -> _SQLiteSession:
        # It opens the file when first used and creates it only to write.
        return _SQLiteSession(self)

    async def bootstrap_schema(self, sample: Sequence[Record], *, apply: bool) -> list[SchemaChange]:
        """The table and columns ``sample`` needs that do not exist yet; with ``apply``, create them.

        Columns are otherwise created by the first write of each property; a bootstrap creates them up
        front (declared ``types`` get their SQL type, the others none, as on write). An existing column
        whose declared SQL type would convert a sampled kind is reported (``mismatch``) and left alone.
        Without ``apply`` nothing is created, not even the file.
        """
        kinds: dict[str, str] = {}
        for record in sample:
            for prop, value in record.properties.items():
                try:
                    kind = neutral_kind(prop, value)
                except RecordError:
                    continue  # an invalid value says nothing about the column
                if kind is not None:
                    kinds.setdefault(prop, kind)
        return await asyncio.to_thread(self._bootstrap, kinds, apply)

    def _bootstrap(self, kinds: Mapping[str, str], apply: bool) -> list[SchemaChange]:
        session = _SQLiteSession(self)
        try:
            conn = session._reader()
            exists = conn is not None and _table_exists(conn, self.table)
            if exists:
                assert conn is not None
                session._check_key_column(conn)
            columns = _load_mapping(conn, self.table) if exists and conn is not None else {}
            changes: list[SchemaChange] = []
            if not exists:
                changes.append(SchemaChange("create", self.table, "table", f"in {self.path}"))
            missing: list[tuple[str, str]] = []
            for prop, kind in kinds.items():
                known = columns.get(prop)
                declared = self.types.get(prop)
                if known is None:
                    sql = _DECLARED_SQL_TYPES[declared] if declared else "no declared type"
                    changes.append(SchemaChange("create", prop, declared or kind, sql))
                    missing.append((prop, declared or kind))
                elif kind not in _AFFINITY_KEEPS[known.affinity]:
                    changes.append(SchemaChange("mismatch", prop, kind, f"a column of {known.affinity} affinity"))
            if apply and (missing or not exists):
                session._writer()  # the file, the metadata table and the table
                session._transaction(lambda: [session._column_for(prop, kind) for prop, kind in missing])
            return changes
        finally:
            session.close()

    def check_record(self, record: Record) -> str | None:
        """Why a write of ``record`` would be refused (a ``RecordError``'s message), or None.

        It needs no database: every undeclared column accepts every neutral value, and declared ones
        are known from ``types``. What it cannot foresee is an ``update`` of a row id that is gone.
        """
        try:
            self.kinds_of(record)
        except RecordError as err:
            return str(err)
        return None

    def kinds_of(self, record: Record) -> dict[str, str | None]:
        """Property -> the kind its value is stored as, after checking the record.

        Raises:
            RecordError: An empty key, a value that is not neutral, too long, beyond 64 bits, of a
                type other than the declared one, or a property name holding NUL.
        """
        key = record.primary_key
        if not key:
            raise RecordError("SQLite: the record has an empty primary key", primary_key=key)
        kinds: dict[str, str | None] = {}
        for prop, value in record.properties.items():
            if "\x00" in prop:
                raise RecordError(f"property {prop!r}: names cannot contain NUL", primary_key=key)
            kind = neutral_kind(prop, value, primary_key=key)
            if kind == "int" and not _INT64_MIN <= value <= _INT64_MAX:
                raise RecordError(f"property {prop!r}: {value} does not fit SQLite's 64-bit integers", primary_key=key)
            declared = self.types.get(prop)
            if declared is not None and kind is not None and kind != declared:
                if declared == "float" and kind == "int":
                    kind = "float"  # stored as a real, like every value of a float column
                else:
                    raise RecordError(f"property {prop!r}: declared {declared}, got {kind}", primary_key=key)
            kinds[prop] = kind
        check_value_lengths(record.properties, self.max_value_length, primary_key=key)
        return kinds

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
            mapped = list(_load_mapping(conn, self.table).items())
            selected = ["id", _quote(self.key_column), "body", "synced_at"]
            for _, col in mapped:
                selected += [_quote(col.column), _quote(col.kind_column) if col.kind_column else "NULL"]
            out = []
            for row in conn.execute(f"SELECT {', '.join(selected)} FROM {_quote(self.table)} ORDER BY id"):
                fixed = {
                    "id": str(row[0]),
                    self.key_column: row[1],
                    "body": row[2],
                    "synced_at": dt.datetime.fromisoformat(row[3]) if row[3] else None,
                }
                cells = row[4:]
                props = {
                    prop: _decode_cell(col, cells[2 * i], cells[2 * i + 1]) for i, (prop, col) in enumerate(mapped)
                }
                out.append(flat_row(fixed, props))
            return out
        finally:
            conn.close()


def _table_exists(conn: sqlite3.Connection, table: str) -> bool:
    return (
        conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone() is not None
    )


def _column_names(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({_quote(table)})")]


def _load_mapping(conn: sqlite3.Connection, table: str) -> dict[str, _Column]:
    """Each property's ``_Column`` in ``table`` (empty when nothing was written yet)."""
    if not _table_exists(conn, SQLITE_METADATA_TABLE):
        return {}
    meta = _quote(SQLITE_METADATA_TABLE)
    # Metadata written by an older version has no kind_column: no column of it needed one.
    has_kind_column = "kind_column" in _column_names(conn, SQLITE_METADATA_TABLE)
    kind_column = "kind_column" if has_kind_column else "NULL"
    rows = conn.execute(
        f'SELECT property, "column", kind, {kind_column} FROM {meta} WHERE "table" = ? ORDER BY rowid', (table,)
    ).fetchall()
    declared = {row[1]: row[2] for row in conn.execute(f"PRAGMA table_info({_quote(table)})")}
    return {
        prop: _Column(
            column,
            frozenset(k for k in (kinds or "").split(",") if k),
            kind_col,
            _affinity(declared.get(column) or ""),
        )
        for prop, column, kinds, kind_col in rows
    }


class _SQLiteSession:
    """One connection, opened when first needed; every call runs in a worker thread, one at a time."""

    def __init__(self, dest: SQLiteDestination) -> None:
        self.dest = dest
        self.conn: sqlite3.Connection | None = None
        self.ready_to_write = False  # WAL set, tables created and checked
        self.table_checked = False  # the table exists, with the key column (seen by a listing)
        self.qtable = _quote(dest.table)
        self.qkey = _quote(dest.key_column)
        self.where = f"SQLite {dest.path}#{dest.table}"
        self.columns: dict[str, _Column] = {}
        self.schema_version = -1  # of the database when ``columns`` was loaded
        # Calls are serialised: sqlite3 connections must not be used from two threads at once.
        self.lock = asyncio.Lock()

    # -- connections --

    def _open(self, target: str | Path, *, uri: bool) -> sqlite3.Connection:
        try:
            # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, so the write lock is taken up
            # front and a check-then-insert cannot race another process.
            return sqlite3.connect(
                target, uri=uri, timeout=SQLITE_BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
            )
        except (sqlite3.Error, OSError) as err:
            raise ConfigError(f"SQLite {self.dest.path}: cannot open the database: {err}") from err

    def _reader(self) -> sqlite3.Connection | None:
        """The connection, if the file exists; never creates it (mode=rw fails on a missing file)."""
        if self.conn is None:
            if not self.dest.path.exists():
                return None
            self.conn = self._open(f"{self.dest.path.as_uri()}?mode=rw", uri=True)
        return self.conn

    def _writer(self) -> sqlite3.Connection:
        """The connection, creating the file on the way, in WAL mode."""
        if self.conn is None:
            try:
                self.dest.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise ConfigError(f"SQLite {self.dest.path}: cannot create its directory: {err}") from err
            self.conn = self._open(self.dest.path, uri=False)
        if not self.ready_to_write:
            try:
                # WAL: readers (a listing, read_rows, a DB browser) never block the writer.
                self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as err:
                raise _sqlite_error(err, self.where) from err
            self._transaction(self._ensure_table)
            self.ready_to_write = True
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _transaction(self, fn: Any, *args: Any) -> Any:
        conn = self.conn
        assert conn is not None
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as err:
            raise _sqlite_error(err, self.where) from err
        try:
            result = fn(*args)
            conn.execute("COMMIT")
            return result
        except BaseException as err:
            # SQLite rolls back by itself after some errors (disk full, I/O); ROLLBACK would then fail.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            # A rolled-back schema change must not linger in the cache.
            self.columns = _load_mapping(conn, self.dest.table)
            if isinstance(err, (sqlite3.Error, OverflowError)):
                raise _sqlite_error(err, self.where) from err
            raise

    def _check_key_column(self, conn: sqlite3.Connection) -> None:
        existing = _column_names(conn, self.dest.table)
        if self.dest.key_column not in existing:
            raise ConfigError(
                f"SQLite {self.dest.path}: table {self.dest.table!r} exists without key column "
                f"{self.dest.key_column!r} (columns: {', '.join(existing)})"
            )

    def _ensure_table(self) -> None:
        conn = self.conn
        assert conn is not None
        meta = _quote(SQLITE_METADATA_TABLE)
        conn.execute(
            f'CREATE TABLE IF NOT EXISTS {meta} ("table" TEXT NOT NULL, property TEXT NOT NULL, '
            f'"column" TEXT NOT NULL, kind TEXT, kind_column TEXT, PRIMARY KEY ("table", property))'
        )
        if "kind_column" not in _column_names(conn, SQLITE_METADATA_TABLE):
            conn.execute(f"ALTER TABLE {meta} ADD COLUMN kind_column TEXT")  # made by an older version
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {self.qtable} (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            f"{self.qkey} TEXT UNIQUE NOT NULL, body TEXT, synced_at TEXT)"
        )
        self._check_key_column(conn)
        self.columns = _load_mapping(conn, self.dest.table)

    # -- schema on write --

    def _column_for(self, prop: str, kind: str | None) -> _Column:
        """The column a value of ``kind`` is written to, after adding, retyping or tagging it as needed."""
        known = self.columns.get(prop)
        if known is not None and known.takes(kind):
            return known
        conn = self.conn
        assert conn is not None
        # Schema work: another session may have done it since we cached, so look again first.
        self.columns = _load_mapping(conn, self.dest.table)
        known = self.columns.get(prop)
        meta = _quote(SQLITE_METADATA_TABLE)
        if known is None:
            column = self._free_column_name(prop)
            declared = self.dest.types.get(prop)
            sql_type = _DECLARED_SQL_TYPES[declared] if declared else ""
            conn.execute(f"ALTER TABLE {self.qtable} ADD COLUMN {_quote(column)} {sql_type}".rstrip())
            known = _Column(column, frozenset({kind} if kind else ()), None, _affinity(sql_type))
            conn.execute(
                f'INSERT INTO {meta} ("table", property, "column", kind) VALUES (?, ?, ?, ?)',
                (self.dest.table, prop, column, kind),
            )
            logger.info("SQLite %s: added column %s (%s) for property %s", self.dest.table, column, kind, prop)
            self.columns[prop] = known
            return known
        if known.takes(kind):
            return known
        assert kind is not None
        kinds = known.kinds | {kind}
        if not kinds <= _AFFINITY_KEEPS[known.affinity]:
            # The kinds already there count too: an older version widened INTEGER columns to float.
            known = self._retype(known)
        if _ambiguous(kinds) and known.kind_column is None:
            known = self._add_kind_column(prop, known)
        known = replace(known, kinds=kinds)
        conn.execute(
            f'UPDATE {meta} SET "column" = ?, kind = ?, kind_column = ? WHERE "table" = ? AND property = ?',
            (known.column, ",".join(sorted(kinds)), known.kind_column, self.dest.table, prop),
        )
        self.columns[prop] = known
        return known

    def _retype(self, col: _Column) -> _Column:
        """Rebuild a column with a declared type (an older version's) as one without, values kept."""
        conn = self.conn
        assert conn is not None
        column, temp = _quote(col.column), self._free_column_name(f"{col.column}__retype")
        value = column
        if _stored_kind(col.kinds, 0) == "float":
            # Integral floats an INTEGER column stored as integers become reals again, or they would
            # read back as ints once the column can hold both.
            value = f"CASE WHEN typeof({column}) = 'integer' THEN CAST({column} AS REAL) ELSE {column} END"
        conn.execute(f"ALTER TABLE {self.qtable} ADD COLUMN {_quote(temp)}")
        conn.execute(f"UPDATE {self.qtable} SET {_quote(temp)} = {value}")
        try:
            conn.execute(f"ALTER TABLE {self.qtable} DROP COLUMN {column}")
        except sqlite3.OperationalError as err:
            # SQLite before 3.35 has no DROP COLUMN, and it refuses to drop a column that an index or
            # view of the user's names. The property moves to the new column; the old one stays.
            logger.warning(
                "SQLite %s: property column %s moved to %s; the old column is left as it was (%s)",
                self.dest.table,
                col.column,
                temp,
                err,
            )
            return replace(col, column=temp, affinity="BLOB")
        conn.execute(f"ALTER TABLE {self.qtable} RENAME COLUMN {_quote(temp)} TO {column}")
        logger.info("SQLite %s: column %s no longer has a declared type", self.dest.table, col.column)
        return replace(col, affinity="BLOB")

    def _add_kind_column(self, prop: str, col: _Column) -> _Column:
        """Give a column a companion holding each row's kind, filled in for the rows already there."""
        conn = self.conn
        assert conn is not None
        kind_column = self._free_column_name(f"{col.column}__kind")
        column = _quote(col.column)
        # Until now the stored values were unambiguous: their storage class says their kind.
        as_int, as_text = _stored_kind(col.kinds, 0), _stored_kind(col.kinds, "")
        conn.execute(f"ALTER TABLE {self.qtable} ADD COLUMN {_quote(kind_column)} TEXT")
        conn.execute(
            f"UPDATE {self.qtable} SET {_quote(kind_column)} = CASE typeof({column}) WHEN 'integer' THEN ? "
            f"WHEN 'real' THEN 'float' WHEN 'text' THEN ? END WHERE {column} IS NOT NULL",
            (as_int, as_text),
        )
        logger.info("SQLite %s: property %s holds several kinds; kinds kept in %s", self.dest.table, prop, kind_column)
        return replace(col, kind_column=kind_column)

    def _free_column_name(self, prop: str) -> str:
        assert self.conn is not None
        # SQLite compares identifiers case-insensitively: "Status" and "status" need two columns.
        taken = {c.lower() for c in _column_names(self.conn, self.dest.table)}
        for col in self.columns.values():
            taken |= {col.column.lower(), (col.kind_column or "").lower()}
        taken |= RESERVED_SQLITE_COLUMNS | {self.dest.key_column.lower()}
        base = prop or "_"
        column, n = base, 1
        while column.lower() in taken:
            n += 1
            column = f"{base}__{n}"
        return column

    def _assignments(self, record: Record, kinds: dict[str, str | None], *, skip: set[str]) -> list[tuple[str, Any]]:
        """(quoted column, encoded value) for each property of the record not in ``skip``."""
        out = []
        for prop, value in record.properties.items():
            if prop in skip:
                continue
            kind = kinds[prop]
            col = self._column_for(prop, kind)
            out.append((_quote(col.column), _encode(kind, value)))
            if col.kind_column is not None:
                out.append((_quote(col.kind_column), kind))
        return out

    # -- writes (run inside _transaction) --

    def _update_row(self, row_id: int, record: Record, kinds: dict[str, str | None], synced_at: dt.datetime) -> int:
        assert self.conn is not None
        sets = [*self._assignments(record, kinds, skip=self.dest.create_only_properties)]
        sets += [("body", record.body), ("synced_at", iso_datetime(synced_at))]
        sql = f"UPDATE {self.qtable} SET {', '.join(f'{c} = ?' for c, _ in sets)} WHERE id = ?"
        return self.conn.execute(sql, [v for _, v in sets] + [row_id]).rowcount

    def _create(self, record: Record, kinds: dict[str, str | None], synced_at: dt.datetime) -> str:
        assert self.conn is not None
        found = self.conn.execute(
            f"SELECT id FROM {self.qtable} WHERE {self.qkey} = ?", (record.primary_key,)
        ).fetchone()
        if found is not None:
            # The key is already here: our earlier create committed but the engine never learned
            # its id (a crash in between). Creating again would break the UNIQUE key, so this is that
            # row, updated like any update (create-only properties were written the first time).
            self._update_row(found[0], record, kinds, synced_at)
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
        cols += self._assignments(record, kinds, skip=set())
        sql = f"INSERT INTO {self.qtable} ({', '.join(c for c, _ in cols)}) VALUES ({', '.join('?' for _ in cols)})"
        cursor = self.conn.execute(sql, [v for _, v in cols])
        return str(cursor.lastrowid)

    def _update(self, existing_id: str, record: Record, kinds: dict[str, str | None], synced_at: dt.datetime) -> bool:
        try:
            row_id = int(existing_id)
        except (TypeError, ValueError):
            raise RecordError(
                f"SQLite {self.dest.table}: {existing_id!r} is not a row id", primary_key=record.primary_key
            ) from None
        if self._update_row(row_id, record, kinds, synced_at) == 0:
            raise RecordError(f"SQLite {self.dest.table}: row {row_id} not found", primary_key=record.primary_key)
        return True

    def _write(self, fn: Any, *args: Any) -> Any:
        self._writer()
        return self._transaction(self._with_fresh_schema, fn, *args)

    def _with_fresh_schema(self, fn: Any, *args: Any) -> Any:
        """Run ``fn`` (in a write transaction) with the column map of the database as it is now.

        Another session may have added a kind column or rebuilt a column since we cached the map; a
        write through the stale map would leave its row's kind out. Every such change alters the
        schema, so SQLite's schema version says when to reload: one cheap read per write.
        """
        assert self.conn is not None
        version = self.conn.execute("PRAGMA schema_version").fetchone()[0]
        if version != self.schema_version:
            self.columns = _load_mapping(self.conn, self.dest.table)
            self.schema_version = version
        return fn(*args)

    def _rows_after(self, last_id: int) -> list[tuple[str, int]]:
        conn = self._reader()
        if conn is None:
            return []  # no file yet: nothing was ever written (and a listing must not create it)
        if not (self.ready_to_write or self.table_checked):
            if not _table_exists(conn, self.dest.table):
                return []  # another route's file: this table is created by its first write
            self._check_key_column(conn)
            self.table_checked = True
        return conn.execute(
            f"SELECT {self.qkey}, id FROM {self.qtable} WHERE id > ? ORDER BY id LIMIT ?",
            (last_id, SQLITE_LIST_BATCH),
        ).fetchall()

    # -- the session protocol --

    def check_record(self, record: Record) -> str | None:
        """Why a write of ``record`` would be refused, or None (see ``SQLiteDestination.check_record``)."""
        return self.dest.check_record(record)

    async def create(self, record: Record, synced_at: dt.datetime) -> str:
        """Insert the record and return its id; a key already present updates that row instead."""
        kinds = self.dest.kinds_of(record)
        async with self.lock:
            return await asyncio.to_thread(self._write, self._create, record, kinds, synced_at)

    async def update(self, existing_id: str, record: Record, synced_at: dt.datetime) -> bool:
        """Update row ``existing_id`` (create-only properties untouched; None clears a column).

        Raises:
            RecordError: No row has that id, or a value does not fit its column.
        """
        kinds = self.dest.kinds_of(record)
        async with self.lock:
            return await asyncio.to_thread(self._write, self._update, existing_id, record, kinds, synced_at)

    async def mark_missing(self, destination_id: str, missing: bool) -> None:
        """``on_missing``: set the row's ``missing_property`` (a bool column) to ``missing``; nothing else changes.

        Raises:
            RecordError: No row has that id.
        """
        record = Record(f"row {destination_id}", {self.dest.missing_property: bool(missing)}, None)
        async with self.lock:
            await asyncio.to_thread(self._write, self._set_missing, destination_id, record)

    def _set_missing(self, existing_id: str, record: Record) -> None:
        assert self.conn is not None
        sets = self._assignments(record, {self.dest.missing_property: "bool"}, skip=set())
        sql = f"UPDATE {self.qtable} SET {', '.join(f'{c} = ?' for c, _ in sets)} WHERE id = ?"
        if self.conn.execute(sql, [v for _, v in sets] + [int(existing_id)]).rowcount == 0:
            raise RecordError(f"SQLite {self.dest.table}: row {existing_id} not found", primary_key=record.primary_key)

    async def query_existing_rows(self) -> AsyncIterator[tuple[str, str]]:
        """Every (key, id) in id order, read ``SQLITE_LIST_BATCH`` rows per query (none without a table)."""
        last_id = 0
        while True:
            # The lock is held per batch, not across yields: the caller may write between batches.
            async with self.lock:
                try:
                    batch = await asyncio.to_thread(self._rows_after, last_id)
                except sqlite3.Error as err:
                    raise _sqlite_error(err, self.where) from err
            for key, row_id in batch:
                yield key, str(row_id)
            if len(batch) < SQLITE_LIST_BATCH:
                return
            last_id = batch[-1][1]

    async def query_existing_ids(self) -> dict[str, str]:
        """{key: id} of every row."""
        return {key: row_id async for key, row_id in self.query_existing_rows()}

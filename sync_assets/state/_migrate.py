"""Which revision a state database is at, the check every ``StateStore`` makes at open, the upgrade.

The schema is alembic's business (the revisions are in ``migrations/versions``), with its own version
table, ``ds_alembic_version``: the store may share Dagster's database, and Dagster's migrations keep
theirs in ``alembic_version``, which nothing here reads or writes. What happens to a database::

    state of the database                         StateStore(url)               durable-sync migrate
    empty (no ds_ table)                          created at head               created at head
    at head                                       opens                         nothing to do
    from before migrations, at head               adopted: stamped at head      the same
      (ds_meta schema_version, no version row)
    at an older revision (or older ds_meta)       refused: StateSchemaError     upgraded (stamped first
                                                    "... run `durable-sync          when from before
                                                    migrate`"                      migrations)
    at a revision this code does not know         refused: StateSchemaError     refused
      (a newer durable-sync wrote it)               "... upgrade durable-sync-dagster"

Why refuse an older schema rather than upgrade it on the spot: a schema change is a deploy step (one
process, after a backup, before the new code serves), and the run worker that happens to start first
must not change the schema under older processes still running, which would fail on their first
query. ``StateStore(url, auto_migrate=True)`` upgrades instead, for embedded and development use.
An empty database is created without a step, so that first use (``make demo``, tests) needs none.

Releases before migrations kept ``schema_version`` in ``ds_meta``; its value N maps onto revision
``000N``, and every upgrade still writes the new number there, so that such a release refuses a
database a newer one upgraded instead of failing on its first query.

Concurrency. The check reads first, without a lock: a database at head costs one read transaction.
Anything that changes the schema runs in one write transaction that first takes the schema lock (a
transaction-level advisory lock on PostgreSQL; on SQLite the ``BEGIN IMMEDIATE`` every write starts
with) and reads the state again under it: of two processes opening an empty database at once, one
creates it and the other finds it at head. The revisions run inside that transaction (alembic sees
an external transaction and neither begins nor commits), so an upgrade commits whole or not at all;
PostgreSQL and SQLite both roll DDL back.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import Connection

from connectors.core import ConfigError
from sync_assets.state._db import Database, log
from sync_assets.state._schema import VERSION_TABLE, meta

# Tests point this at a copy holding a revision more (the scenario the check exists for).
SCRIPT_LOCATION = Path(__file__).with_name("migrations")
# Any fixed bigint, the same in every durable-sync process; Dagster takes no advisory locks.
_PG_SCHEMA_LOCK = 0x64735F736368656D  # "ds_schem"
_version = sa.table(VERSION_TABLE, sa.column("version_num", sa.String))  # alembic's layout of it
# alembic's ``context`` and ``op`` are module-level proxies: one migration at a time per process
# (always taken after the database's schema lock, so the two never deadlock).
_ALEMBIC = threading.Lock()


class StateSchemaError(ConfigError, RuntimeError):
    """The state database's schema is not the one this durable-sync needs.

    Older: run ``durable-sync migrate``. Newer (or unknown): upgrade durable-sync-dagster. A
    ``RuntimeError`` too, as the schema check raised before it had a type of its own.
    """


@dataclass(frozen=True)
class SchemaStatus:
    """Where a state database's schema stands against the revisions this code ships.

    Attributes:
        url: The database, without its password.
        current: Its revision; None when the database holds no state-store table yet.
        head: The revision this code needs.
        legacy: It predates migrations: ``current`` comes from ``ds_meta``, not ``ds_alembic_version``.
    """

    url: str
    current: str | None
    head: str
    legacy: bool = False

    @property
    def pending(self) -> bool:
        """An upgrade must run before the store opens it (an empty database needs none)."""
        return self.current is not None and self.current != self.head

    def describe(self) -> str:
        """One line: the revision, and what (if anything) is to be done."""
        where = f"state database {self.url}"
        if self.current is None:
            return f"{where} is empty: it is created at revision {self.head} on first use"
        since = " (schema_version in ds_meta, from before migrations)" if self.legacy else ""
        if self.pending:
            return (
                f"{where} is at revision {self.current}{since}, this durable-sync needs {self.head}: "
                "run `durable-sync migrate`"
            )
        return f"{where} is at revision {self.current}{since}, the head"


@functools.cache
def _script(location: str) -> ScriptDirectory:
    return ScriptDirectory(location)


def script_directory() -> ScriptDirectory:
    """The revisions this code ships (read once per process)."""
    return _script(str(SCRIPT_LOCATION))


def head_revision() -> str:
    """The revision this code needs (the last one)."""
    head = script_directory().get_current_head()
    if head is None:  # pragma: no cover - the package ships its revisions
        raise RuntimeError(f"no state-store revisions in {SCRIPT_LOCATION}")
    return head


def _legacy_revision(conn: Connection, inspector: sa.Inspector) -> str | None:
    """The revision a database from before migrations is at, or None when it has no ds_ table."""
    if inspector.has_table(meta.name):
        value = conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
        if value is not None:
            return f"{int(value):04d}"
    if not inspector.has_table("ds_links"):
        return None
    # Tables but no version: a release before migrations stopped between create_all and writing its
    # version. Schema 2 is the one that has ds_leases.
    return "0002" if inspector.has_table("ds_leases") else "0001"


def _read_status(db: Database, conn: Connection) -> SchemaStatus:
    head = head_revision()
    # Read directly rather than through alembic's MigrationContext, which logs two lines per
    # configure: this runs at every open of the store.
    inspector = sa.inspect(conn)
    heads = (
        tuple(conn.execute(sa.select(_version.c.version_num)).scalars()) if inspector.has_table(VERSION_TABLE) else ()
    )
    if len(heads) > 1:
        raise StateSchemaError(f"state database {db.display_url} is at several revisions at once: {', '.join(heads)}")
    current, legacy = (heads[0], False) if heads else (_legacy_revision(conn, inspector), True)
    if current is None:
        return SchemaStatus(db.display_url, None, head)
    try:
        known = script_directory().get_revision(current) is not None
    except CommandError:  # no file for that id
        known = False
    if not known:
        was = f"schema version {int(current)}" if legacy and current.isdigit() else f"revision {current}"
        raise StateSchemaError(
            f"state database {db.display_url} has {was}, newer than this durable-sync knows "
            f"(its last is {head}): upgrade durable-sync-dagster"
        )
    return SchemaStatus(db.display_url, current, head, legacy)


def schema_status(db: Database) -> SchemaStatus:
    """Read where ``db``'s schema stands (changes nothing).

    Raises:
        StateSchemaError: A newer durable-sync wrote the database.
    """
    with db.read() as conn:
        return _read_status(db, conn)


def _lock(db: Database, conn: Connection) -> None:
    if db.dialect == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_SCHEMA_LOCK})
    # SQLite: the write transaction began IMMEDIATE, which already excludes every other writer.


def _alembic_config(conn: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPT_LOCATION).replace("%", "%%"))
    cfg.attributes["connection"] = conn
    return cfg


def _bring_to_head(db: Database, conn: Connection, status: SchemaStatus) -> None:
    """Stamp a database from before migrations, run the revisions it lacks, note the version."""
    if status.current == status.head and not status.legacy:
        return
    cfg = _alembic_config(conn)
    with _ALEMBIC:
        if status.legacy and status.current is not None:
            command.stamp(cfg, status.current)
        command.upgrade(cfg, status.head)
    if status.head.isdigit():
        db.upsert(conn, meta, [{"key": "schema_version", "value": str(int(status.head))}], ["key"])
    log.info("state database %s: revision %s -> %s", db.display_url, status.current or "(empty)", status.head)


def migrate(db: Database) -> tuple[SchemaStatus, SchemaStatus]:
    """Bring ``db`` to the head revision (``durable-sync migrate``).

    Returns:
        The status before and after.

    Raises:
        StateSchemaError: A newer durable-sync wrote the database.
    """
    with db.write() as conn:
        _lock(db, conn)
        before = _read_status(db, conn)
        _bring_to_head(db, conn, before)
        return before, _read_status(db, conn)


def ensure_schema(db: Database, *, auto_migrate: bool = False) -> None:
    """The check at open: create an empty database, adopt one from before migrations, refuse the rest.

    Args:
        db: The state database.
        auto_migrate: Upgrade an older schema instead of refusing it (embedded and development use).

    Raises:
        StateSchemaError: The schema is older (unless ``auto_migrate``) or newer than this code's.
    """
    status = schema_status(db)
    if status.current == status.head and not status.legacy:
        return
    if status.pending and not auto_migrate:
        raise StateSchemaError(status.describe())
    with db.write() as conn:
        _lock(db, conn)
        status = _read_status(db, conn)  # another process may have got there first
        if status.pending and not auto_migrate:
            raise StateSchemaError(status.describe())
        _bring_to_head(db, conn, status)


def migrate_command(url: str | None, *, check: bool = False) -> tuple[int, str]:
    """``durable-sync migrate [--check]``.

    Args:
        url: The state database (default: ``DURABLE_SYNC_STATE_URL``, else SQLite under ``DAGSTER_HOME``).
        check: Only report; the status is 1 when an upgrade is pending.

    Returns:
        The exit status and the line to print.

    Raises:
        StateSchemaError: A newer durable-sync wrote the database.
    """
    db = Database(url)
    try:
        if check:
            status = schema_status(db)
            return (1 if status.pending else 0), status.describe()
        before, after = migrate(db)
    finally:
        db.engine.dispose()
    where = f"state database {after.url}"
    if before.current is None:
        return 0, f"{where}: created at revision {after.current}"
    if before.current == after.current and not before.legacy:
        return 0, f"{where}: already at revision {after.current}, the head"
    since = " (from before migrations)" if before.legacy else ""
    return 0, f"{where}: upgraded from revision {before.current}{since} to {after.current}"

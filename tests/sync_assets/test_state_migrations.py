"""The state store's schema under alembic: the check at open, ``durable-sync migrate``, old databases.

Each test gets a database of its own (a fresh PostgreSQL database, not the session's shared one: these
build and drop schemas), once on SQLite and once on the real PostgreSQL.
"""

from __future__ import annotations

import shutil
import threading
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import sync_assets.state._migrate as migrate_module
from sync_assets.cli import main
from sync_assets.state import (
    SCHEMA_VERSION,
    VERSION_TABLE,
    Database,
    Fence,
    StateSchemaError,
    StateStore,
    head_revision,
    metadata,
    redact,
)
from tests.conftest import _pg_admin_url

ROUTE = "files_to_jsonl"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request, tmp_path) -> Iterator[str]:
    """An empty state database of this test's own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.sqlite3'}"
        return
    session_db = request.getfixturevalue("pg_database")  # skips when no server answers
    name = f"ds_mig_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(_pg_admin_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.engine.make_url(session_db).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(
                sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name}
            )
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def _engine(url: str) -> sa.Engine:
    return Database(url).engine


def _scalar(url: str, sql: str) -> object:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql(sql).scalar()
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = _engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


# ----------------------------------------------------------------- the release before migrations

# The DDL the schema-1 release's create_all emitted (SQLAlchemy 2, both dialects), written out here
# so that the test does not build "old" databases with the code under test.
_SCHEMA_1 = """
CREATE TABLE ds_links (route VARCHAR(200) NOT NULL, primary_key VARCHAR(1024) NOT NULL,
    partition VARCHAR(300), destination_id VARCHAR(1024), content_hash VARCHAR(64),
    state VARCHAR(16) NOT NULL, synced_at {ts}, PRIMARY KEY (route, primary_key));
CREATE INDEX ds_links_partition ON ds_links (route, partition);
CREATE INDEX ds_links_state ON ds_links (route, state);
CREATE TABLE ds_listing (route VARCHAR(200) NOT NULL, reconcile_id VARCHAR(40) NOT NULL,
    primary_key VARCHAR(1024) NOT NULL, destination_id VARCHAR(1024) NOT NULL);
CREATE INDEX ds_listing_key ON ds_listing (route, reconcile_id, primary_key);
CREATE TABLE ds_route_state (route VARCHAR(200) NOT NULL, last_reconciled_at {ts},
    reconcile_id VARCHAR(40), listed INTEGER, duplicates INTEGER NOT NULL, PRIMARY KEY (route));
CREATE TABLE ds_record_outcomes (route VARCHAR(200) NOT NULL, partition VARCHAR(300) NOT NULL,
    primary_key VARCHAR(1024) NOT NULL, error TEXT NOT NULL, attempts INTEGER NOT NULL,
    first_failed_at {ts} NOT NULL, last_seen {ts} NOT NULL, PRIMARY KEY (route, partition, primary_key));
CREATE TABLE ds_checkpoints (route VARCHAR(200) NOT NULL, partition VARCHAR(300) NOT NULL,
    pass_id VARCHAR(40) NOT NULL, cursor TEXT, stats TEXT NOT NULL, options TEXT NOT NULL,
    started_at {ts} NOT NULL, updated_at {ts} NOT NULL, PRIMARY KEY (route, partition));
CREATE TABLE ds_passes (id {serial}, route VARCHAR(200) NOT NULL, partition VARCHAR(300) NOT NULL,
    pass_id VARCHAR(40) NOT NULL, mode VARCHAR(20) NOT NULL, status VARCHAR(20) NOT NULL,
    started_at {ts} NOT NULL, finished_at {ts} NOT NULL, stats TEXT NOT NULL, error TEXT,
    run_id VARCHAR(64), PRIMARY KEY (id));
CREATE INDEX ds_passes_partition ON ds_passes (route, partition, id);
CREATE TABLE ds_pauses (scope VARCHAR(400) NOT NULL, reason TEXT NOT NULL, paused_at {ts} NOT NULL,
    fingerprint VARCHAR(128), source VARCHAR(20) NOT NULL, PRIMARY KEY (scope));
CREATE TABLE ds_requests (id {serial}, route VARCHAR(200) NOT NULL, partition VARCHAR(300) NOT NULL,
    only_items TEXT, full_refresh BOOLEAN NOT NULL, reason VARCHAR(40) NOT NULL,
    created_at {ts} NOT NULL, taken_at {ts}, run_key VARCHAR(300), PRIMARY KEY (id));
CREATE INDEX ds_requests_pending ON ds_requests (taken_at, id);
CREATE TABLE ds_partition_state (route VARCHAR(200) NOT NULL, partition VARCHAR(300) NOT NULL,
    not_before {ts}, last_failure TEXT, last_failure_at {ts}, last_failure_run_id VARCHAR(64),
    PRIMARY KEY (route, partition));
CREATE TABLE ds_tokens (account VARCHAR(200) NOT NULL, ciphertext {blob} NOT NULL,
    version INTEGER NOT NULL, updated_at {ts} NOT NULL, PRIMARY KEY (account));
CREATE TABLE ds_blobs (namespace VARCHAR(100) NOT NULL, key VARCHAR(200) NOT NULL,
    value {blob} NOT NULL, updated_at {ts} NOT NULL, PRIMARY KEY (namespace, key));
CREATE TABLE ds_locks (name VARCHAR(200) NOT NULL, taken_at {ts}, PRIMARY KEY (name));
CREATE TABLE ds_meta (key VARCHAR(50) NOT NULL, value VARCHAR(200) NOT NULL, PRIMARY KEY (key));
"""

_SCHEMA_1_ROWS = """
INSERT INTO ds_meta (key, value) VALUES ('schema_version', '1');
INSERT INTO ds_links VALUES ('{route}', 'k1', 'p', 'id-1', 'h1', 'linked', {t});
INSERT INTO ds_links VALUES ('{route}', 'k2', 'p', 'id-2', 'h2', 'linked', {t});
INSERT INTO ds_links VALUES ('{route}', 'k3', 'p', NULL, NULL, 'creating', NULL);
INSERT INTO ds_checkpoints VALUES ('{route}', 'p', 'pass-1', 'cursor-7', '{{"created": 2}}', '{{}}', {t}, {t});
INSERT INTO ds_record_outcomes VALUES ('{route}', 'p', 'k9', '400 bad title', 3, {t}, {t});
INSERT INTO ds_route_state VALUES ('{route}', {t}, 'r-1', 2, 0);
INSERT INTO ds_pauses VALUES ('route:{route}', 'maintenance', {t}, NULL, 'manual');
"""


def _create_schema_1_database(url: str) -> None:
    """The tables and some rows as the last release before migrations left them (no version table)."""
    engine = _engine(url)
    pg = engine.dialect.name == "postgresql"
    kinds = {
        "ts": "TIMESTAMP WITH TIME ZONE" if pg else "DATETIME",
        "blob": "BYTEA" if pg else "BLOB",
        "serial": "SERIAL NOT NULL" if pg else "INTEGER NOT NULL",
    }
    when = "'2026-11-20 10:00:00+00'" if pg else "'2026-11-20 10:00:00.000000'"
    script = _SCHEMA_1.format(**kinds) + _SCHEMA_1_ROWS.format(route=ROUTE, t=when)
    try:
        with engine.begin() as conn:
            for statement in filter(str.strip, script.split(";")):
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


def test_a_schema_1_database_is_refused_then_migrate_upgrades_it_keeping_its_data(url, capsys):
    _create_schema_1_database(url)

    with pytest.raises(StateSchemaError) as refused:
        StateStore(url)
    message = str(refused.value)
    assert f"state database {redact(Database(url).url)} is at revision 0001" in message
    assert f"this durable-sync needs {head_revision()}: run `durable-sync migrate`" in message
    assert "ds_leases" not in _tables(url)  # refusing changed nothing

    code, out, _ = _cli(capsys, "migrate", "--url", url)
    assert code == 0
    assert f"upgraded from revision 0001 (from before migrations) to {head_revision()}" in out
    assert _scalar(url, f"SELECT version_num FROM {VERSION_TABLE}") == head_revision()
    assert _scalar(url, "SELECT value FROM ds_meta WHERE key = 'schema_version'") == str(SCHEMA_VERSION)

    store = StateStore(url)
    try:
        links = store.get_links(ROUTE, ["k1", "k2", "k3"])
        assert {k: (v.destination_id, v.content_hash) for k, v in links.items()} == {
            "k1": ("id-1", "h1"),
            "k2": ("id-2", "h2"),
            "k3": (None, None),
        }
        checkpoint = store.get_checkpoint(ROUTE, "p")
        assert checkpoint is not None and (checkpoint.pass_id, checkpoint.cursor) == ("pass-1", "cursor-7")
        assert checkpoint.stats == {"created": 2}
        assert [(o.primary_key, o.error, o.attempts) for o in store.failed_records(ROUTE, "p")] == [
            ("k9", "400 bad title", 3)
        ]
        assert store.paused([f"route:{ROUTE}"]).reason == "maintenance"
        # The store works on it: a link written and read back, and the schema-2 lease table.
        store.commit_page(ROUTE, "p", linked=[("k4", "id-4", "h4")])
        assert store.get_links(ROUTE, ["k4"])["k4"].destination_id == "id-4"
        assert store.link_count(ROUTE) == 3 and store.pending_intents(ROUTE) == 1
        assert store.acquire_lease(ROUTE, "p", "me", seconds=20)[0]
        store.release_lease(ROUTE, Fence("p", "me", 20))
    finally:
        store.dispose()

    code, out, _ = _cli(capsys, "migrate", "--url", url)
    assert code == 0 and f"already at revision {head_revision()}" in out


def test_auto_migrate_upgrades_an_older_database_instead_of_refusing(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    _create_schema_1_database(url)
    store = StateStore(url, auto_migrate=True)
    try:
        assert store.get_links(ROUTE, ["k1"])["k1"].destination_id == "id-1"
        assert _scalar(url, f"SELECT version_num FROM {VERSION_TABLE}") == head_revision()
    finally:
        store.dispose()


def test_a_database_from_before_migrations_at_the_head_schema_is_adopted_on_open(url):
    store = StateStore(url)
    store.commit_page(ROUTE, "p", linked=[("k1", "id-1", "h")])
    with store.engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE {VERSION_TABLE}")  # what that release left: ds_meta alone
    store.dispose()

    reopened = StateStore(url)
    try:
        assert reopened.get_links(ROUTE, ["k1"])["k1"].destination_id == "id-1"
        assert _scalar(url, f"SELECT version_num FROM {VERSION_TABLE}") == head_revision()
    finally:
        reopened.dispose()


def test_tables_without_any_version_count_as_the_schema_they_have(tmp_path, capsys):
    """A release before migrations stopped between creating its tables and writing its version."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    _create_schema_1_database(url)
    engine = _engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM ds_meta")
    engine.dispose()
    with pytest.raises(StateSchemaError, match="at revision 0001"):
        StateStore(url)
    assert _cli(capsys, "migrate", "--url", url)[0] == 0
    StateStore(url).dispose()


# ----------------------------------------------------------------- a release that adds a column

_NEXT_REVISION = '''"""Test only: a release that adds one column.

Revision ID: {new}
Revises: {old}
"""

import sqlalchemy as sa
from alembic import op

revision = "{new}"
down_revision = "{old}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ds_links", sa.Column("note", sa.Text, nullable=True))


def downgrade() -> None:
    op.drop_column("ds_links", "note")
'''


def test_a_database_at_the_old_head_is_refused_by_code_that_adds_a_column_until_migrated(
    url, tmp_path, monkeypatch, capsys
):
    """The issue: an upgrade that adds one column opened without complaint and failed on the first query."""
    store = StateStore(url)
    store.commit_page(ROUTE, "p", linked=[("k1", "id-1", "h")])
    store.dispose()

    # The release after this one: its revision chains on today's head, whatever number that is.
    old = head_revision()
    new = f"{int(old) + 1:04d}"
    newer = tmp_path / "migrations"
    shutil.copytree(migrate_module.SCRIPT_LOCATION, newer, ignore=shutil.ignore_patterns("__pycache__"))
    (newer / "versions" / f"r{new}_note.py").write_text(_NEXT_REVISION.format(old=old, new=new))
    monkeypatch.setattr(migrate_module, "SCRIPT_LOCATION", newer)
    assert head_revision() == new

    with pytest.raises(
        StateSchemaError, match=rf"at revision {old}, this durable-sync needs {new}: run `durable-sync migrate`"
    ):
        StateStore(url)
    # The other commands say so too, in one line, and exit 2 (a configuration error).
    code, _, err = _cli(capsys, "--state-url", url, "status")
    assert code == 2 and "run `durable-sync migrate`" in err

    code, out, _ = _cli(capsys, "migrate", "--check", "--url", url)
    assert code == 1 and f"at revision {old}, this durable-sync needs {new}" in out
    code, out, _ = _cli(capsys, "migrate", "--url", url)
    assert code == 0 and f"upgraded from revision {old} to {new}" in out
    code, out, _ = _cli(capsys, "migrate", "--check", "--url", url)
    assert code == 0 and f"at revision {new}, the head" in out

    engine = _engine(url)
    try:
        assert "note" in {c["name"] for c in sa.inspect(engine).get_columns("ds_links")}
    finally:
        engine.dispose()
    assert _scalar(url, "SELECT value FROM ds_meta WHERE key = 'schema_version'") == str(int(new))
    upgraded = StateStore(url)
    try:
        assert upgraded.get_links(ROUTE, ["k1"])["k1"].destination_id == "id-1"
    finally:
        upgraded.dispose()


# ----------------------------------------------------------------- fresh databases, Dagster's table


def test_a_fresh_database_is_created_at_head_and_dagsters_alembic_version_is_left_alone(url):
    engine = _engine(url)
    with engine.begin() as conn:  # Dagster's own migrations' table, in the same database
        conn.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        conn.exec_driver_sql("INSERT INTO alembic_version VALUES ('dagster-7f2b')")
    engine.dispose()

    StateStore(url).dispose()

    assert _scalar(url, f"SELECT version_num FROM {VERSION_TABLE}") == head_revision()
    assert _scalar(url, "SELECT count(*) FROM alembic_version") == 1
    assert _scalar(url, "SELECT version_num FROM alembic_version") == "dagster-7f2b"
    assert {t.name for t in metadata.sorted_tables} <= _tables(url)


def test_the_revisions_build_exactly_the_tables_the_code_declares(url):
    StateStore(url).dispose()
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={
                    "version_table": VERSION_TABLE,
                    "include_name": lambda name, kind, _p: kind != "table" or name.startswith("ds_"),
                },
            )
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()


def test_every_revision_downgrades_and_upgrades_again(url):
    StateStore(url).dispose()
    engine = _engine(url)
    try:
        with engine.begin() as conn:
            cfg = migrate_module._alembic_config(conn)
            command.downgrade(cfg, "base")
            assert set(sa.inspect(conn).get_table_names()) == {VERSION_TABLE}
            command.upgrade(cfg, "head")
    finally:
        engine.dispose()
    StateStore(url).dispose()
    assert {t.name for t in metadata.sorted_tables} <= _tables(url)


def test_the_last_revision_is_the_schema_version():
    assert int(head_revision()) == SCHEMA_VERSION


def test_stores_opening_a_fresh_database_at_once_create_it_once(url):
    """Each store has its own engine and connections, as separate processes would."""
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def open_store() -> None:
        barrier.wait()
        try:
            StateStore(url).dispose()
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert _scalar(url, f"SELECT count(*) FROM {VERSION_TABLE}") == 1
    assert _scalar(url, f"SELECT version_num FROM {VERSION_TABLE}") == head_revision()


# ----------------------------------------------------------------- migrate --check


def test_migrate_check_reports_and_exits_1_only_when_an_upgrade_is_pending(url, capsys):
    code, out, _ = _cli(capsys, "migrate", "--check", "--url", url)
    assert code == 0 and f"is empty: it is created at revision {head_revision()} on first use" in out
    assert not {t for t in _tables(url) if t.startswith("ds_")}  # a check writes nothing

    _create_schema_1_database(url)
    code, out, _ = _cli(capsys, "migrate", "--check", "--url", url)
    assert code == 1
    assert (
        f"is at revision 0001 (schema_version in ds_meta, from before migrations), this durable-sync needs {head_revision()}"
        in out
    )
    assert "ds_leases" not in _tables(url)

    assert _cli(capsys, "migrate", "--url", url)[0] == 0
    code, out, _ = _cli(capsys, "migrate", "--check", "--url", url)
    assert code == 0 and f"at revision {head_revision()}, the head" in out


def test_migrate_refuses_a_database_a_newer_durable_sync_wrote(url, capsys, monkeypatch):
    StateStore(url).dispose()
    engine = _engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE {VERSION_TABLE} SET version_num = '0042'")
    engine.dispose()
    # The URL from the environment this time, as a deployment runs it.
    monkeypatch.setenv("DURABLE_SYNC_STATE_URL", url)
    for args in (["migrate"], ["migrate", "--check"]):
        code, out, err = _cli(capsys, *args)
        assert code == 2 and out == ""
        assert "revision 0042, newer than this durable-sync knows" in err and "upgrade durable-sync-dagster" in err
    assert _scalar(url, f"SELECT version_num FROM {VERSION_TABLE}") == "0042"

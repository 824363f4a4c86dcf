"""Shared fixtures: a state store on SQLite and, where a server answers, on the real PostgreSQL."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from sync_assets.state import StateStore

PG_URL = os.environ.get("DURABLE_SYNC_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_admin_url() -> str:
    return PG_URL.replace("postgresql://", "postgresql+psycopg2://", 1)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (dropped at the end).

    Skips when no server answers, except under CI=true, where that is a failure.
    """
    try:
        admin = sa.create_engine(_pg_admin_url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text("select 1"))
    except Exception as err:  # pragma: no cover - depends on the machine
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {PG_URL} is required under CI=true: {err}")
        pytest.skip(f"no PostgreSQL at {PG_URL} ({type(err).__name__}); set DURABLE_SYNC_TEST_PG_URL")
    name = f"ds_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        StateStore._shared.clear()
        with admin.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :n AND pid <> pg_backend_pid()"
                ),
                {"n": name},
            )
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture
def sqlite_store(tmp_path) -> Iterator[StateStore]:
    store = StateStore(f"sqlite:///{tmp_path / 'state.sqlite3'}")
    yield store
    store.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path) -> Iterator[StateStore]:
    """The state store, once on SQLite and once on the real PostgreSQL."""
    if request.param == "sqlite":
        s = StateStore(f"sqlite:///{tmp_path / 'state.sqlite3'}")
    else:
        s = StateStore(request.getfixturevalue("pg_database"))
        # One database per session: empty every table so tests start clean.
        from sync_assets.state import metadata

        with s.engine.begin() as conn:
            for table in reversed(metadata.sorted_tables):
                conn.execute(table.delete())
    yield s
    s.dispose()


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Every test gets its own DAGSTER_HOME and state URL; nothing leaks into the repo."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.delenv("DURABLE_SYNC_STATE_URL", raising=False)
    yield


@pytest.fixture(autouse=True)
def _restore_managed_logger_levels() -> Iterator[None]:
    """A run on an instance with ``python_logs`` sets our loggers to INFO for the rest of the process;
    put their levels back so a later test's ``caplog`` at DEBUG sees what it expects whatever ran first."""
    saved = {name: logging.getLogger(name).level for name in ("connectors", "sync_assets")}
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)

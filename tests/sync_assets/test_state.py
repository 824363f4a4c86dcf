"""The state store, on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import logging
import threading
import time

import pytest
import sqlalchemy as sa

from sync_assets.state import LinkMap, StateStore, default_state_url


def test_links_are_namespaced_by_route(store):
    store.commit_page("r1", "p", linked=[("k", "id-1", "h1")])
    store.commit_page("r2", "p", linked=[("k", "id-2", "h2")])
    assert store.get_links("r1", ["k"])["k"].destination_id == "id-1"
    assert store.get_links("r2", ["k"])["k"].destination_id == "id-2"


def test_link_map_streams_in_key_order_without_loading_it_all(store):
    store.commit_page("r", "p", linked=[(f"k{i:05d}", f"id{i}", "h") for i in range(2500)])
    store.commit_page("r", "q", linked=[("other", "x", "h")])
    view = LinkMap(store, "r", "p")
    assert len(view) == 2500
    keys = [k for k, _ in view]
    assert keys == sorted(keys) and len(keys) == 2500
    assert view.get("k00007") == "id7" and view.get("other") is None
    assert len(LinkMap(store, "r")) == 2501


def test_intents_then_reconcile_adopts_and_marks_gone(store):
    store.commit_page("r", "p", linked=[("a", "A", "h"), ("b", "B", "h")])
    store.record_intents("r", "p", ["c", "d"])
    rid = store.begin_listing("r")
    store.add_listing("r", rid, [("a", "A"), ("c", "C"), ("e", "E"), ("e", "E2")])
    result = store.finish_listing("r", rid, authoritative=True, partition="p")
    assert result.listed == 3 and result.duplicates == 1
    links = store.get_links("r", ["a", "b", "c", "d", "e"])
    assert links["b"].state == "gone"
    assert (links["c"].state, links["c"].destination_id) == ("linked", "C")
    assert "d" not in links  # its create never landed
    assert links["e"].destination_id == "E"  # adopted: the smallest id of the two
    when, dups, keys = store.last_reconcile("r")
    assert dups == 1 and keys == [("e", ["E", "E2"])] and when is not None


def test_failures_count_attempts_and_clear_on_success(store):
    store.commit_page("r", "p", failures=[("x", "boom")])
    store.commit_page("r", "p", failures=[("x", "boom again")])
    (o,) = store.failed_records("r", "p")
    assert (o.attempts, o.error) == (2, "boom again")
    store.commit_page("r", "p", succeeded=["x"])
    assert store.failed_records("r", "p") == []


def test_requests_inbox_is_taken_once(store):
    a = store.enqueue_request("r", "p", only_items=["1"])
    b = store.enqueue_request("r", "p", full_refresh=True)
    assert [q.id for q in store.pending_requests()] == [a, b]
    store.take_requests([a, b], run_key="k")
    assert store.pending_requests() == []


def test_pauses(store):
    store.pause("credential:x", "401", fingerprint="fp", source="auth")
    assert store.paused(["partition:r/p", "credential:x"]).fingerprint == "fp"
    assert store.resume("credential:x") and not store.resume("credential:x")
    assert store.paused(["credential:x"]) is None


def test_lock_serialises_holders(store):
    order: list[str] = []

    def holder(name: str) -> None:
        with store.locked("refresh:acct"):
            order.append(f"{name}-in")
            time.sleep(0.2)
            order.append(f"{name}-out")

    threads = [threading.Thread(target=holder, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
        time.sleep(0.05)
    for t in threads:
        t.join()
    assert order in (["a-in", "a-out", "b-in", "b-out"], ["b-in", "b-out", "a-in", "a-out"])


def test_no_dagster_home_falls_back_and_says_where(monkeypatch, tmp_path, caplog):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("DURABLE_SYNC_STATE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.WARNING, logger="sync_assets.state"):
        url = default_state_url()
    assert url == f"sqlite:///{tmp_path / '.dagster_home' / 'durable_sync_state.sqlite3'}"
    assert "keeping sync state in" in caplog.text and str(tmp_path) in caplog.text


def test_postgres_url_uses_psycopg2_without_psycopg3():
    from sync_assets.state import _normalise_url

    try:
        import psycopg  # noqa: F401
    except ImportError:
        assert _normalise_url("postgresql://u:p@h/db") == "postgresql+psycopg2://u:p@h/db"
    assert _normalise_url("postgresql+psycopg2://h/db") == "postgresql+psycopg2://h/db"


def test_password_never_shows_in_repr(pg_database):
    url = pg_database.replace("postgres@", "postgres:s3cretpw@")
    s = StateStore.__new__(StateStore)
    s.url = url
    assert "s3cretpw" not in repr(s) and "s3cretpw" not in s.display_url


def test_newer_schema_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    store = StateStore(url)
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE ds_alembic_version SET version_num = '0099'"))
    store.dispose()
    with pytest.raises(RuntimeError, match="revision 0099, newer than this durable-sync knows"):
        StateStore(url)
    # A release from before migrations only wrote ds_meta: its number is read the same way.
    with store.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE ds_alembic_version"))
        conn.execute(sa.text("UPDATE ds_meta SET value = '99' WHERE key = 'schema_version'"))
    store.dispose()
    with pytest.raises(RuntimeError, match="schema version 99, newer"):
        StateStore(url)

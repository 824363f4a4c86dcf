"""OAuth tokens in the state store: encrypted at rest, versioned, one refresh at a time."""

from __future__ import annotations

import datetime as dt
import os
import threading
import time

import pytest
import sqlalchemy as sa

from connectors.auth.tokens import OAuthToken, StaleToken, TokenStore
from connectors.core import ConfigError
from sync_assets.tokens import ENC_KEY_ENV, EncryptedTokenStore, generate_key

TOKEN = OAuthToken(
    access_token="at-SECRET-aaaa",
    refresh_token="rt-SECRET-bbbb",
    expires_at=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
    token_endpoint="https://auth.example/token",
    client_id="client-1",
)


@pytest.fixture
def key(monkeypatch):
    k = generate_key("k1")
    monkeypatch.setenv(ENC_KEY_ENV, k)
    return k


def raw_rows(store):
    with store.engine.connect() as conn:
        return [bytes(r[0]) for r in conn.execute(sa.text("SELECT ciphertext FROM ds_tokens"))]


def test_roundtrip_and_only_ciphertext_at_rest(store, key):
    tokens = EncryptedTokenStore(store)
    assert isinstance(tokens, TokenStore)
    assert tokens.save("notion-mcp", TOKEN, expected_version=None) == 1
    loaded, version = tokens.load("notion-mcp")
    assert loaded == TOKEN and version == 1
    for blob in raw_rows(store):
        assert b"SECRET" not in blob and blob.startswith(b"DS1")
    assert "SECRET" not in repr(loaded)


def test_versions_are_compare_and_swap(store, key):
    tokens = EncryptedTokenStore(store)
    tokens.save("a", TOKEN, expected_version=None)
    with pytest.raises(StaleToken):
        tokens.save("a", TOKEN, expected_version=None)
    assert tokens.save("a", TOKEN, expected_version=1) == 2
    with pytest.raises(StaleToken):
        tokens.save("a", TOKEN, expected_version=1)  # someone else already rotated it
    assert tokens.replace("a", TOKEN) == 3  # a new login always takes effect


def test_wrong_key_is_a_clear_error_and_nothing_is_overwritten(store, key, monkeypatch):
    tokens = EncryptedTokenStore(store)
    tokens.save("a", TOKEN, expected_version=None)
    before = raw_rows(store)
    monkeypatch.setenv(ENC_KEY_ENV, generate_key("k1"))  # same id, different key
    with pytest.raises(ConfigError, match=ENC_KEY_ENV) as err:
        tokens.load("a")
    assert "SECRET" not in str(err.value)
    monkeypatch.setenv(ENC_KEY_ENV, generate_key("k2"))
    with pytest.raises(ConfigError, match="key id 'k1'"):
        tokens.load("a")
    assert raw_rows(store) == before


def test_malformed_key_names_the_variable(store, monkeypatch):
    monkeypatch.setenv(ENC_KEY_ENV, "k1:not-base64-of-32-bytes")
    with pytest.raises(ConfigError, match=f"{ENC_KEY_ENV}: each key must be 32 bytes"):
        EncryptedTokenStore(store).save("a", TOKEN, expected_version=None)


def test_no_key_refuses_unless_plaintext_is_allowed(store, monkeypatch, caplog):
    monkeypatch.delenv(ENC_KEY_ENV, raising=False)
    tokens = EncryptedTokenStore(store)
    with pytest.raises(ConfigError, match="refusing to store"):
        tokens.save("a", TOKEN, expected_version=None)
    monkeypatch.setenv("DURABLE_SYNC_ALLOW_PLAINTEXT_TOKENS", "1")
    tokens.save("a", TOKEN, expected_version=None)
    assert "UNENCRYPTED" in caplog.text
    assert tokens.load("a")[0] == TOKEN


def test_key_rotation_and_reencrypt(store, monkeypatch):
    old = generate_key("old")
    monkeypatch.setenv(ENC_KEY_ENV, old)
    tokens = EncryptedTokenStore(store)
    tokens.save("a", TOKEN, expected_version=None)
    monkeypatch.setenv(ENC_KEY_ENV, f"{generate_key('new')},{old}")
    assert tokens.load("a")[0] == TOKEN  # the old key still decrypts
    assert tokens.reencrypt() == 1
    new_alone = os.environ[ENC_KEY_ENV].split(",")[0]
    monkeypatch.setenv(ENC_KEY_ENV, new_alone)  # the old key can now be dropped
    assert tokens.load("a")[0] == TOKEN


def test_ciphertext_is_bound_to_its_account(store, key):
    tokens = EncryptedTokenStore(store)
    tokens.save("a", TOKEN, expected_version=None)
    with store.engine.begin() as conn:
        blob = conn.execute(sa.text("SELECT ciphertext FROM ds_tokens WHERE account = 'a'")).scalar_one()
        conn.execute(
            sa.text("INSERT INTO ds_tokens (account, ciphertext, version, updated_at) VALUES ('b', :c, 1, :t)"),
            {"c": blob, "t": dt.datetime.now(dt.UTC)},
        )
    with pytest.raises(ConfigError, match="does not decrypt"):
        tokens.load("b")


def test_refresh_lock_serialises_holders_across_store_instances(store, key):
    order: list[str] = []

    def holder(name: str) -> None:
        # A separate store object per thread, as two processes would have.
        with EncryptedTokenStore(type(store)(store.url)).refresh_lock("acct"):
            order.append(f"{name}-in")
            time.sleep(0.3)
            order.append(f"{name}-out")

    threads = [threading.Thread(target=holder, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
        time.sleep(0.05)
    for t in threads:
        t.join()
    assert order == ["a-in", "a-out", "b-in", "b-out"]

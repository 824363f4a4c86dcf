"""OAuth tokens in the state store, encrypted at rest: the platform's ``TokenStore``.

Ciphertext format (``ds_tokens.ciphertext``)::

    b"DS1" | len(key_id) (1 byte) | key_id | nonce (12 bytes) | AES-256-GCM(token JSON, aad=account)

``DURABLE_SYNC_ENC_KEY`` holds one or more keys, ``id:base64`` separated by commas; the first one
encrypts, all of them decrypt, so a key can be rotated by putting the new one first and running
``durable-sync auth reencrypt``. ``durable-sync auth keygen`` makes a key. The account name is the
associated data, so a ciphertext copied onto another account does not decrypt.

Without a key, tokens are refused, unless ``DURABLE_SYNC_ALLOW_PLAINTEXT_TOKENS=1`` is set for local
development (stored as ``b"PLN0" + JSON``, with a warning each time the store opens).

Refresh lock: PostgreSQL ``pg_advisory_lock`` on a connection held for the block; SQLite an
``flock`` on a file next to the database. Neither holds a database transaction open, so the token
save inside the block (and the pass's own page commits) never wait on the lock's holder.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import fcntl
import hashlib
import logging
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from connectors.auth.tokens import OAuthToken, StaleToken
from connectors.core import ConfigError
from sync_assets.state import StateStore, tokens, utcnow

__all__ = [
    "ALLOW_PLAINTEXT_ENV",
    "ENC_KEY_ENV",
    "EncryptedTokenStore",
    "SharedTokenStore",
    "generate_key",
    "parse_keys",
]

log = logging.getLogger(__name__)

ENC_KEY_ENV = "DURABLE_SYNC_ENC_KEY"
ALLOW_PLAINTEXT_ENV = "DURABLE_SYNC_ALLOW_PLAINTEXT_TOKENS"
MAGIC = b"DS1"
PLAIN = b"PLN0"
NONCE_BYTES = 12


def generate_key(key_id: str | None = None) -> str:
    """A new ``id:base64`` key for ``DURABLE_SYNC_ENC_KEY`` (256 random bits).

    Args:
        key_id: The key's id (default: ``k`` and today's date).

    Returns:
        The key, ready to put first in ``DURABLE_SYNC_ENC_KEY``.
    """
    key_id = key_id or f"k{dt.datetime.now(dt.UTC):%Y%m%d}"
    return f"{key_id}:{base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()}"


def parse_keys(raw: str | None) -> list[tuple[str, bytes]]:
    """The keys of ``DURABLE_SYNC_ENC_KEY``, current first. A bare base64 key gets an id from its hash.

    Args:
        raw: The variable's value: comma-separated ``id:base64`` keys (None or empty: no key).

    Returns:
        ``(key_id, key)`` pairs in the given order.

    Raises:
        ConfigError: A key is not 32 bytes of base64, or its id is longer than 64 bytes.
    """
    out: list[tuple[str, bytes]] = []
    for part in (raw or "").split(","):
        part = part.strip()
        if not part:
            continue
        key_id, _, b64 = part.rpartition(":")
        try:
            key = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
        except ValueError:
            key = b""
        if len(key) != 32:
            raise ConfigError(
                f"{ENC_KEY_ENV}: each key must be 32 bytes in base64 (id:base64, comma-separated); "
                "make one with: durable-sync auth keygen"
            )
        key_id = key_id or hashlib.sha256(key).hexdigest()[:8]
        if len(key_id.encode()) > 64:
            raise ConfigError(f"{ENC_KEY_ENV}: key ids are at most 64 bytes")
        out.append((key_id, key))
    return out


class EncryptedTokenStore:
    """``connectors.auth.tokens.TokenStore`` over the state store's ``ds_tokens`` table."""

    def __init__(self, store: StateStore, *, keys: str | None = None) -> None:
        """Keep ``store``; ``keys`` (the ``DURABLE_SYNC_ENC_KEY`` format) overrides the environment's."""
        self.store = store
        self._keys_raw = keys

    # ------------------------------------------------------------------------------ crypto

    def _keys(self) -> list[tuple[str, bytes]]:
        return parse_keys(self._keys_raw if self._keys_raw is not None else os.environ.get(ENC_KEY_ENV))

    def _plaintext_allowed(self) -> bool:
        return os.environ.get(ALLOW_PLAINTEXT_ENV, "").strip().lower() in ("1", "true", "yes")

    def encrypt(self, account: str, token: OAuthToken) -> bytes:
        """The stored form of ``token``: AES-GCM under the first key, bound to ``account``.

        Raises:
            ConfigError: No key is set and plaintext storage was not allowed.
        """
        keys = self._keys()
        data = token.to_json().encode()
        if not keys:
            if not self._plaintext_allowed():
                raise ConfigError(
                    f"refusing to store the {account!r} token unencrypted: set {ENC_KEY_ENV} "
                    f"(make one with: durable-sync auth keygen), or {ALLOW_PLAINTEXT_ENV}=1 for local development"
                )
            log.warning(
                "storing the %r token UNENCRYPTED (%s=1): for local development only", account, ALLOW_PLAINTEXT_ENV
            )
            return PLAIN + data
        key_id, key = keys[0]
        nonce = secrets.token_bytes(NONCE_BYTES)
        kid = key_id.encode()
        return MAGIC + bytes([len(kid)]) + kid + nonce + AESGCM(key).encrypt(nonce, data, account.encode())

    def decrypt(self, account: str, blob: bytes) -> OAuthToken:
        """The token from its stored form, with whichever configured key its key id names.

        Raises:
            ConfigError: An unknown format, no key, a key id the keys do not hold, or a key that does not
                decrypt it. The message never holds the token.
        """
        if blob.startswith(PLAIN):
            return OAuthToken.from_json(blob[len(PLAIN) :].decode())
        if not blob.startswith(MAGIC):
            raise ConfigError(f"the stored token of {account!r} is not in a format this version reads")
        n = blob[len(MAGIC)]
        kid = blob[len(MAGIC) + 1 : len(MAGIC) + 1 + n].decode()
        rest = blob[len(MAGIC) + 1 + n :]
        nonce, ciphertext = rest[:NONCE_BYTES], rest[NONCE_BYTES:]
        keys = dict(self._keys())
        if not keys:
            raise ConfigError(f"the {account!r} token is encrypted but {ENC_KEY_ENV} is not set")
        if kid not in keys:
            raise ConfigError(
                f"the {account!r} token was encrypted with key id {kid!r}, which {ENC_KEY_ENV} does not hold "
                f"(it has {', '.join(sorted(keys))}); add that key after the current one"
            )
        try:
            data = AESGCM(keys[kid]).decrypt(nonce, ciphertext, account.encode())
        except InvalidTag:
            raise ConfigError(
                f"{ENC_KEY_ENV} key {kid!r} does not decrypt the {account!r} token (a different key with the same id?)"
            ) from None
        return OAuthToken.from_json(data.decode())

    # ------------------------------------------------------------------------------ protocol

    def load(self, account: str) -> tuple[OAuthToken, int] | None:
        """The account's token and its version, or None."""
        with self.store.db.read() as conn:
            row = conn.execute(
                sa.select(tokens.c.ciphertext, tokens.c.version).where(tokens.c.account == account)
            ).first()
        if row is None:
            return None
        return self.decrypt(account, bytes(row[0])), int(row[1])

    def save(self, account: str, token: OAuthToken, *, expected_version: int | None) -> int:
        """Store ``token`` if the stored version is still ``expected_version`` (see ``TokenStore.save``)."""
        blob = self.encrypt(account, token)
        now = utcnow()
        with self.store.db.write() as conn:
            if expected_version is None:
                exists = conn.execute(sa.select(tokens.c.version).where(tokens.c.account == account)).first()
                if exists is not None:
                    raise StaleToken(f"token of {account!r} exists (version {exists[0]})")
                conn.execute(tokens.insert().values(account=account, ciphertext=blob, version=1, updated_at=now))
                return 1
            result = conn.execute(
                tokens.update()
                .where(tokens.c.account == account, tokens.c.version == expected_version)
                .values(ciphertext=blob, version=expected_version + 1, updated_at=now)
            )
            if result.rowcount != 1:
                raise StaleToken(f"token of {account!r} is no longer at version {expected_version}")
            return expected_version + 1

    def replace(self, account: str, token: OAuthToken) -> int:
        """Store ``token`` whatever is stored; returns the new version."""
        blob = self.encrypt(account, token)
        now = utcnow()
        with self.store.db.write() as conn:
            row = conn.execute(sa.select(tokens.c.version).where(tokens.c.account == account)).first()
            if row is None:
                conn.execute(tokens.insert().values(account=account, ciphertext=blob, version=1, updated_at=now))
                return 1
            version = int(row[0]) + 1
            conn.execute(
                tokens.update()
                .where(tokens.c.account == account)
                .values(ciphertext=blob, version=version, updated_at=now)
            )
            return version

    def delete(self, account: str) -> bool:
        """Forget the account's token; returns whether there was one."""
        with self.store.db.write() as conn:
            return bool(conn.execute(tokens.delete().where(tokens.c.account == account)).rowcount)

    def accounts(self) -> list[tuple[str, int, dt.datetime]]:
        """``(account, version, updated_at)`` of every stored token (nothing decrypted)."""
        with self.store.db.read() as conn:
            rows = conn.execute(sa.select(tokens.c.account, tokens.c.version, tokens.c.updated_at)).all()
        out = []
        for account, version, updated in rows:
            if updated is not None and updated.tzinfo is None:
                updated = updated.replace(tzinfo=dt.UTC)
            out.append((account, int(version), updated))
        return sorted(out)

    def reencrypt(self) -> int:
        """Re-encrypt every token with the current key (after a key rotation); returns how many."""
        count = 0
        for account, version, _ in self.accounts():
            loaded = self.load(account)
            if loaded is None:
                continue
            try:
                self.save(account, loaded[0], expected_version=version)
                count += 1
            except StaleToken:
                continue  # refreshed meanwhile, so already written with the current key
        return count

    @contextlib.contextmanager
    def refresh_lock(self, account: str) -> Iterator[None]:
        """Hold the account's refresh lock across processes: a PostgreSQL advisory lock, or a file lock."""
        if self.store.dialect == "postgresql":
            key = int.from_bytes(hashlib.sha256(f"ds-refresh:{account}".encode()).digest()[:8], "big", signed=True)
            with self.store.engine.connect() as conn:
                conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": key})
                conn.commit()
                try:
                    yield
                finally:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()
            return
        database = sa.engine.make_url(self.store.url).database
        if not database or database == ":memory:":
            lock_dir = Path(os.environ.get("DAGSTER_HOME") or ".").resolve()
        else:
            lock_dir = Path(database).resolve().parent
        digest = hashlib.sha256(account.encode()).hexdigest()[:16]
        path = lock_dir / f".ds-refresh-{digest}.lock"
        with path.open("a+") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class SharedTokenStore:
    """The ``TokenStore`` of the deployment's shared state store, resolved at first use.

    Routes can thus be built at import time, before the environment is read.
    """

    def _tokens(self) -> EncryptedTokenStore:
        return EncryptedTokenStore(StateStore.shared())

    def load(self, account: str) -> tuple[OAuthToken, int] | None:
        """The account's token and its version, or None."""
        return self._tokens().load(account)

    def save(self, account: str, token: OAuthToken, *, expected_version: int | None) -> int:
        """Store ``token`` if the stored version is still ``expected_version`` (see ``TokenStore.save``)."""
        return self._tokens().save(account, token, expected_version=expected_version)

    def replace(self, account: str, token: OAuthToken) -> int:
        """Store ``token`` whatever is stored; returns the new version."""
        return self._tokens().replace(account, token)

    def delete(self, account: str) -> bool:
        """Forget the account's token; returns whether there was one."""
        return self._tokens().delete(account)

    def refresh_lock(self, account: str) -> contextlib.AbstractContextManager[None]:
        """Hold the account's refresh lock across processes for the block."""
        return self._tokens().refresh_lock(account)

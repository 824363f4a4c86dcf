"""Per-system credentials: one object that knows where a connector's secret comes from and how it is named.

A source and a destination of the same system answer the same questions about their credential, and
they used to answer them with the same thirty lines each: the token (the given one, else the
environment variable's, read at each use so a token renewed in place is seen), the key the toolkit
shares limits under (``rate_limit_key``, one per token), the slot pauses are keyed on
(``credential_key``, stable across rotations: ``notion:NOTION_TOKEN``), a fingerprint that changes
when the token does, and whether anything is set at all. :class:`TokenCredentials` answers them
once; Jira's ``JiraCredentials`` (site, email and token) is the same idea with three values.

:class:`CredentialMembers` is the mixin that hands those answers to the engine, which reads them
from the connector itself (``rate_limit_key``, ``credential_key``, ``credential_fingerprint()``,
``is_auth_error``). The secret never appears in a key, a fingerprint or a ``repr``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from connectors.auth import env_secret
from connectors.core import auth_error_in_chain

__all__ = ["CredentialMembers", "Credentials", "TokenCredentialMembers", "TokenCredentials", "sha256_hex"]


def sha256_hex(secret: str) -> str:
    """The sha256 hex digest of a secret: safe to store and compare, impossible to use."""
    return hashlib.sha256(secret.encode()).hexdigest()


class Credentials(Protocol):
    """What the engine asks of a connector's credential (see :class:`CredentialMembers`)."""

    @property
    def rate_limit_key(self) -> str:
        """The key limits are shared under (one per secret; never the secret)."""
        ...

    @property
    def credential_key(self) -> str:
        """The slot pauses are keyed on, stable across rotations of the secret."""
        ...

    def credential_fingerprint(self) -> str | None:
        """A digest that changes when the secret does; None without one."""
        ...


class TokenCredentials:
    """One secret (a token or an API key) of one system, read at each use.

    Args:
        system: The system's key prefix (``"notion"``): ``credential_key`` is ``<system>:<token_env>``
            and ``rate_limit_key`` falls back to ``anonymous_key`` or ``system`` without a token.
        token: An explicit secret (tests, or code that manages its own secrets); wins over the variable.
        token_env: The environment variable to read (also ``<NAME>_FILE``, see
            ``connectors.auth.env_secret``); None: read none.
        what: What the secret is, for hints (``"a Notion integration token"``).
        limit_key: The rate-limit key of a secret (the client's ``credential_key(token)``).
        anonymous_key: ``rate_limit_key`` without a secret (default: ``system``).
        digest: The fingerprint of a secret (default: its sha256 hex digest).
        argument: The constructor argument that gives the secret, named by :attr:`hint` when no
            variable is read (``"token"``, ``"cma_token"``).
    """

    def __init__(
        self,
        *,
        system: str,
        token: str | None,
        token_env: str | None,
        what: str,
        limit_key: Callable[[str], str],
        anonymous_key: str | None = None,
        digest: Callable[[str], str] = sha256_hex,
        argument: str = "token",
    ) -> None:
        """Remember where the secret comes from (nothing is read yet)."""
        self.system = system
        self.token_env = token_env
        self.what = what
        self._token = token
        self._limit_key = limit_key
        self._anonymous_key = anonymous_key or system
        self._digest = digest
        self._argument = argument

    def __repr__(self) -> str:
        """Name the variable, never the secret."""
        return f"TokenCredentials(system={self.system!r}, token_env={self.token_env!r})"

    @property
    def explicit(self) -> bool:
        """Whether the secret was given rather than read from the environment."""
        return bool(self._token)

    def token(self) -> str | None:
        """The secret now: the one given, else the environment variable's (so a renewed one is seen)."""
        if self._token:
            return self._token
        return env_secret(self.token_env)

    @property
    def configured(self) -> bool:
        """Whether a secret is set."""
        return bool(self.token())

    @property
    def hint(self) -> str:
        """What to set, naming the variable: ``NOTION_TOKEN (a Notion integration token)``."""
        return f"{self.token_env or self._argument} ({self.what})"

    @property
    def rate_limit_key(self) -> str:
        """The key the toolkit shares limits under: one per secret, ``anonymous_key`` without one."""
        token = self.token()
        return self._limit_key(token) if token else self._anonymous_key

    @property
    def credential_key(self) -> str:
        """The credential slot, stable across rotations (``notion:NOTION_TOKEN``).

        Pauses are keyed on it, so a token renewed in the same variable lifts them; an explicit
        secret has no variable to renew, so its slot is its ``rate_limit_key``.
        """
        if self._token or not self.token_env:
            return self.rate_limit_key
        return f"{self.system}:{self.token_env}"

    def credential_fingerprint(self) -> str | None:
        """The digest of the current secret (changes when the secret does); None without one."""
        token = self.token()
        return self._digest(token) if token else None


C = TypeVar("C", bound=Credentials)


class CredentialMembers(Generic[C]):
    """The credential members the engine reads from a connector, answered by ``self.credentials``.

    A source or destination sets ``self.credentials`` (a :class:`TokenCredentials`, a
    ``JiraCredentials``, ...) and inherits ``rate_limit_key``, ``credential_key``,
    ``credential_fingerprint()`` and ``is_auth_error``::

        class NotionSource(CredentialMembers[TokenCredentials]): ...
    """

    credentials: C

    @property
    def rate_limit_key(self) -> str:
        """The key the toolkit shares limits under (one per secret)."""
        return self.credentials.rate_limit_key

    @property
    def credential_key(self) -> str:
        """The credential slot, stable across rotations: pauses are keyed on it."""
        return self.credentials.credential_key

    def credential_fingerprint(self) -> str | None:
        """A digest that changes when the secret does; None without one."""
        return self.credentials.credential_fingerprint()

    @staticmethod
    def is_auth_error(err: BaseException) -> bool:
        """Whether ``err`` (or an error it chains) says the credential is refused (401/403, auth text)."""
        return auth_error_in_chain(err)


class TokenCredentialMembers(CredentialMembers[TokenCredentials]):
    """:class:`CredentialMembers` for a connector whose only setting to check is one secret.

    Adds ``token()``, ``configured`` and ``config_hint`` (``"configured"``, or ``set <VARIABLE> (<what>)``).
    """

    def token(self) -> str | None:
        """The secret now: the one given, else the environment variable's (so a renewed one is seen)."""
        return self.credentials.token()

    @property
    def configured(self) -> bool:
        """Whether the secret is set."""
        return self.credentials.configured

    @property
    def config_hint(self) -> str:
        """``"configured"``, or what to set."""
        return "configured" if self.configured else f"set {self.credentials.hint}"

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
from typing import ClassVar, Generic, Protocol, TypeVar

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

    A system names its kind of secret with a subclass that sets the class attributes
    (``class NotionCredentials(TokenCredentials): system, what = "notion", "a Notion integration token"``);
    its source and destination each hold one instance.

    Attributes:
        system: The system's key prefix: ``credential_key`` is ``<system>:<token_env>``, and
            ``rate_limit_key`` is ``<limit_prefix or system>:<12 hex of sha256(secret)>``, or ``system``
            without a secret.
        what: What the secret is, for hints (``"a Notion integration token"``).
        limit_prefix: The prefix of ``rate_limit_key`` when it differs from ``system`` (Contentful's
            two APIs have two limits: ``contentful-cda``, ``contentful-cma``).
        argument: The constructor argument that gives the secret, named by :attr:`hint` when no
            variable is read (``"token"``, ``"cma_token"``).

    Args:
        token: An explicit secret (tests, or code that manages its own secrets); wins over the variable.
        token_env: The environment variable to read (also ``<NAME>_FILE``, see
            ``connectors.auth.env_secret``); None: read none.
        what: Overrides the class's ``what`` for this connector's hints.
    """

    system: ClassVar[str] = "token"
    what: str = "a token"
    limit_prefix: ClassVar[str | None] = None
    argument: ClassVar[str] = "token"

    def __init__(self, token: str | None = None, token_env: str | None = None, *, what: str | None = None) -> None:
        """Remember where the secret comes from (nothing is read yet)."""
        self.token_env = token_env
        self._token = token
        if what is not None:
            self.what = what

    def limit_key(self, token: str) -> str:
        """The rate-limit key of a secret: ``<limit_prefix or system>:<12 hex of sha256(secret)>``."""
        return f"{self.limit_prefix or self.system}:{sha256_hex(token)[:12]}"

    def __repr__(self) -> str:
        """Name the variable, never the secret."""
        return f"{type(self).__name__}(token_env={self.token_env!r})"

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
        return f"{self.token_env or self.argument} ({self.what})"

    @property
    def rate_limit_key(self) -> str:
        """The key the toolkit shares limits under: one per secret, ``system`` without one."""
        token = self.token()
        return self.limit_key(token) if token else self.system

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
        return sha256_hex(token) if token else None


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

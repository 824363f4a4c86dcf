"""What the local-file destinations (``JSONLDestination``, ``SQLiteDestination``) share.

Both hold rows in one file under a resolved path, need no credentials, write one row at a time and
store our key; a session is opened per ``connect`` and closed in a worker thread (closing may
compact or checkpoint the file). :class:`LocalFileDestination` is those members once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import ClassVar, Generic, Protocol, TypeVar

from connectors.core import ConfigError, auth_error_in_chain

__all__ = ["LocalFileDestination"]


class _Session(Protocol):
    def close(self) -> None: ...


SessionT = TypeVar("SessionT", bound=_Session)


class LocalFileDestination(Generic[SessionT]):
    """The members of a destination whose rows live in one local file.

    A subclass sets :attr:`scheme` and :attr:`file_kind`, calls :meth:`_init_file` from its constructor
    and builds its session in :meth:`_session`; ``connect`` opens one and closes it in a thread.

    Attributes:
        path: The file, resolved.
        name: Destination name.
        create_only_properties: Properties written on create only, never by ``update``.
        max_value_length: Longest string (or list item) accepted; longer is a ``RecordError``.
        rate_limit_key: ``<scheme>:<path>`` (one file, one writer at a time).
    """

    stores_keys = True
    max_concurrency = 1
    configured = True
    #: The URL scheme of :meth:`describe` and the prefix of ``rate_limit_key`` (``sqlite``).
    scheme: ClassVar[str]
    #: The file's kind in hints (``SQLite``).
    file_kind: ClassVar[str]

    def _init_file(
        self, path: str | Path, name: str, create_only_properties: Iterable[str], max_value_length: int | None
    ) -> None:
        if max_value_length is not None and (isinstance(max_value_length, bool) or max_value_length < 1):
            raise ConfigError(f"{type(self).__name__}: max_value_length must be >= 1 or None, got {max_value_length!r}")
        self.path = Path(path).expanduser().resolve()
        self.name = name
        self.create_only_properties = set(create_only_properties)
        self.max_value_length = max_value_length
        self.rate_limit_key = f"{self.scheme}:{self.path}"

    @property
    def where(self) -> str:
        """The file (and what in it) as hints name it; a subclass adds what it writes to."""
        return str(self.path)

    @property
    def config_hint(self) -> str:
        """What this destination needs: a local file, no credentials."""
        return f"a local {self.file_kind} file ({self.where}); no credentials needed"

    def describe(self) -> str:
        """Where the rows are: ``<scheme>:///abs/path``."""
        return f"{self.scheme}://{self.path.as_posix()}"

    @staticmethod
    def is_auth_error(err: BaseException) -> bool:
        """Whether ``err`` or an error in its chain is an ``AuthError`` (a local file raises none itself)."""
        return auth_error_in_chain(err)

    def _session(self) -> SessionT:
        """A new session (it opens the file when first used)."""
        raise NotImplementedError

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[SessionT]:
        """A session, opened when first used and closed (in a thread) when the block ends."""
        session = self._session()
        try:
            yield session
        finally:
            await asyncio.to_thread(session.close)

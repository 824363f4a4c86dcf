"""``JSONLDestination``: an append-only JSONL log that behaves like a remote API that stores our key.

Each line is the full state of one row after a write::

    {"id": "9f1c...", "key": "T-0001", "properties": {"due": {"$date": "2024-05-01"}, ...},
     "body": "...", "synced_at": "2024-05-01T10:00:00+00:00"}

The last line of an id wins. Values keep their neutral type through tags: ``{"$date": ...}`` and
``{"$datetime": ...}`` (neutral values are never objects, so an object is always a tag); the other
neutral types are JSON as they are.

Like a real API, ``create`` never looks at the key: two creates of one key make two rows, so a
platform bug shows up as a duplicate in ``query_existing_rows`` instead of being papered over.

Nothing is created or rewritten before a session's first ``create`` or ``update``: ``connect()`` and
the listings only read (a missing log lists as empty), so a dry run (``plan``) leaves no file, lock
file or directory behind, and a session that only listed never compacts the log.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from connectors.core import ConfigError, Record, RecordError
from connectors.files._local import LocalFileDestination
from connectors.files._values import check_value_lengths, flat_row, iso_datetime, neutral_kind
from connectors.files.settings import JSONL_COMPACTION_FACTOR

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one writing process at a time is then up to the user.
    fcntl = None  # type: ignore[assignment]

__all__ = ["JSONLDestination"]

logger = logging.getLogger(__name__)

_READ_CHUNK = 1 << 20


def _encode_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"$datetime": iso_datetime(value)}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, tuple):
        return list(value)
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        if "$datetime" in value:
            return dt.datetime.fromisoformat(value["$datetime"])
        if "$date" in value:
            return dt.date.fromisoformat(value["$date"])
    return value


def _decode_row(line: dict[str, Any]) -> dict[str, Any]:
    synced_at = line.get("synced_at")
    fixed = {
        "id": line["id"],
        "key": line["key"],
        "body": line.get("body"),
        "synced_at": dt.datetime.fromisoformat(synced_at) if synced_at else None,
    }
    return flat_row(fixed, {name: _decode_value(v) for name, v in (line.get("properties") or {}).items()})


class _LogState:
    """The live rows of a log file, as raw line objects, kept up to date by reading new lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: dict[str, dict[str, Any]] = {}  # id -> last line; insertion order = creation order
        self.lines = 0  # non-empty lines read, garbage included (what compaction would save)
        self.offset = 0  # bytes consumed, always at a line boundary
        self.torn_tail = False  # the file ends in a partial line (a write cut short by a crash)

    def reset(self) -> None:
        self.rows.clear()
        self.lines = 0
        self.offset = 0
        self.torn_tail = False

    def catch_up(self, fd: int) -> None:
        """Apply the lines appended since the last call (by us or by another process)."""
        size = os.fstat(fd).st_size
        if size < self.offset:
            # Shorter than what we read: not our kind of change (an editor rewrote it). Read it anew.
            self.reset()
        pending = b""
        while self.offset + len(pending) < size:
            chunk = os.pread(fd, min(_READ_CHUNK, size - self.offset - len(pending)), self.offset + len(pending))
            if not chunk:
                break
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                self._apply(line)
                self.offset += len(line) + 1
        self.torn_tail = bool(pending)

    def _apply(self, raw: bytes) -> None:
        text = raw.strip()
        if not text:
            return
        self.lines += 1
        try:
            line = json.loads(text)
            if not isinstance(line.get("id"), str) or not isinstance(line.get("key"), str):
                raise ValueError("missing id or key")
        except (ValueError, AttributeError) as err:
            # A write cut short by a crash (completed by a later append's newline) or a hand edit.
            logger.warning("JSONL %s: skipping unreadable line at byte %s: %s", self.path, self.offset, err)
            return
        self.rows[line["id"]] = line


class JSONLDestination(LocalFileDestination["_JSONLSession"]):
    """Rows in a local append-only JSONL file; stores our key, so reconciles see every row.

    Every write appends one line and is flushed and fsync'd before it returns, so it survives a
    SIGKILL right after. Writes take an advisory lock on ``<path>.lock`` so several processes can
    append safely; each call first reads what others appended.

    Memory: a session holds every live row (its last line, parsed) while it is open, which is what a
    real API holds server-side; about the size of the compacted file.

    The log is compacted (rewritten atomically through a temp file and ``os.replace``) when a session
    closes and it holds more than ``JSONL_COMPACTION_FACTOR`` lines per live row.

    Args:
        path: The JSONL file (it and its parent directories are created by the first write).
        create_only_properties: Properties written on create only, never by ``update``.
        max_value_length: Longest string (or list item) accepted; longer is a ``RecordError``.
        name: Destination name.
    """

    scheme = "jsonl"
    file_kind = "JSONL"

    def __init__(
        self,
        path: str | Path,
        *,
        create_only_properties: Iterable[str] = (),
        max_value_length: int | None = None,
        name: str = "jsonl",
    ) -> None:
        """Check the arguments; nothing is opened or created until a session first writes.

        Raises:
            ConfigError: ``path`` is empty, or ``max_value_length`` is not a positive int or None.
        """
        if not str(path).strip():
            raise ConfigError("JSONLDestination: path must be a file path")
        self._init_file(path, name, create_only_properties, max_value_length)
        self.lock_path = self.path.with_name(self.path.name + ".lock")

    def _session(self) -> _JSONLSession:
        # It holds the live rows; if it wrote, closing compacts the log when the log is mostly history.
        return _JSONLSession(self)

    def check_record(self, record: Record) -> str | None:
        """Why a write of ``record`` would be refused (a ``RecordError``'s message), or None.

        The log takes any neutral value, so only the values themselves are checked: not neutral, or
        longer than ``max_value_length``. What it cannot foresee is an ``update`` of a row id that
        is gone.
        """
        try:
            _encoded(record, set(), self.max_value_length)
        except RecordError as err:
            return str(err)
        return None

    def read_rows(self) -> list[dict[str, Any]]:
        """Every live row decoded to neutral values, in creation order (for tests and demos).

        Each dict has ``id``, ``key``, ``body``, ``synced_at`` (aware datetime) and one entry per
        property; a property named like one of those four appears as ``"property:<name>"``.
        """
        if not self.path.exists():
            return []
        state = _LogState(self.path)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            state.catch_up(fd)
        finally:
            os.close(fd)
        return [_decode_row(line) for line in state.rows.values()]


class _JSONLSession:
    """One log, opened when first used.

    Every call runs in a worker thread, one at a time, under the file lock. Reads open what exists
    and create nothing; the first write creates the files.
    """

    def __init__(self, dest: JSONLDestination) -> None:
        self.dest = dest
        self.state = _LogState(dest.path)
        self.fd = -1
        self.writable = False  # fd was opened for appending (a reading session opens it read-only)
        self.lock_fd = -1
        self.lock_writable = False
        self.wrote = False  # only a session that wrote compacts: a listing (a plan) must write nothing
        self.lock = asyncio.Lock()

    @contextmanager
    def _locked(self, *, write: bool) -> Iterator[None]:
        """Hold the lock, with the log open on its current inode and read to the end.

        A read with no lock file yet (no write ever happened, or one is just starting) goes without
        the lock: appends are whole lines and a torn tail is never applied, so it reads a consistent
        prefix either way.
        """
        try:
            self._open_lock(write=write)
        except OSError as err:
            raise ConfigError(f"JSONL {self.dest.path}: cannot open its lock file: {err}") from err
        if fcntl is not None and self.lock_fd >= 0:
            # Readers share the lock: they only need writers (appends, compaction) kept out.
            fcntl.flock(self.lock_fd, fcntl.LOCK_EX if write else fcntl.LOCK_SH)
        try:
            try:
                self._follow_replacement(write=write)
            except OSError as err:
                raise ConfigError(f"JSONL {self.dest.path}: cannot open: {err}") from err
            if self.fd >= 0:
                self.state.catch_up(self.fd)
            yield
        finally:
            if fcntl is not None and self.lock_fd >= 0:
                fcntl.flock(self.lock_fd, fcntl.LOCK_UN)

    def _open_lock(self, *, write: bool) -> None:
        if self.lock_fd >= 0 and (self.lock_writable or not write):
            return
        if write:
            # Opened for writing: where flock is emulated with byte-range locks (NFS), an exclusive
            # lock needs it.
            self.dest.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.dest.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            if self.lock_fd >= 0:
                os.close(self.lock_fd)
            self.lock_fd, self.lock_writable = fd, True
        elif self.dest.lock_path.exists():
            # Opening it for reading changes nothing on disk.
            self.lock_fd = os.open(self.dest.lock_path, os.O_RDONLY)

    def _follow_replacement(self, *, write: bool) -> None:
        """Open the log (for appending when about to write), or reopen it if another session compacted it.

        After a compaction our fd would point at the old file.
        """
        try:
            current: int | None = os.stat(self.dest.path).st_ino
        except FileNotFoundError:
            current = None
        same_file = self.fd >= 0 and current == os.fstat(self.fd).st_ino
        if same_file and (self.writable or not write):
            return
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if write:
            self.fd = os.open(self.dest.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            self.writable = True
            if current is None:
                _fsync_dir(self.dest.path.parent)  # the new file's name must survive a crash too
        elif current is not None:
            self.fd = os.open(self.dest.path, os.O_RDONLY)
            self.writable = False
        if not same_file:
            # A new file (or none yet): what we read of the old one says nothing about it.
            self.state.reset()

    def _append(self, line: dict[str, Any]) -> None:
        data = json.dumps(line, ensure_ascii=False, allow_nan=False, separators=(",", ":")) + "\n"
        # A partial last line is a write cut short by a crash (we hold the lock, no one is writing):
        # end it, so it stays one unreadable line instead of corrupting ours.
        payload = ("\n" if self.state.torn_tail else "") + data
        os.write(self.fd, payload.encode("utf-8"))
        os.fsync(self.fd)
        self.wrote = True
        self.state.catch_up(self.fd)

    # -- sync halves --

    def _create(self, record: Record, synced_at: dt.datetime) -> str:
        props = _encoded(record, set(), self.dest.max_value_length)
        row_id = uuid.uuid4().hex
        with self._locked(write=True):
            self._append(
                {
                    "id": row_id,
                    "key": record.primary_key,
                    "properties": props,
                    "body": record.body,
                    "synced_at": iso_datetime(synced_at),
                }
            )
        return row_id

    def _update(self, existing_id: str, record: Record, synced_at: dt.datetime) -> bool:
        props = _encoded(record, self.dest.create_only_properties, self.dest.max_value_length)
        with self._locked(write=True):
            current = self.state.rows.get(existing_id)
            if current is None:
                raise RecordError(
                    f"JSONL {self.dest.path.name}: row {existing_id} not found",
                    primary_key=record.primary_key,
                )
            self._append(
                {
                    "id": existing_id,
                    "key": current["key"],
                    "properties": {**current.get("properties", {}), **props},
                    "body": record.body,
                    "synced_at": iso_datetime(synced_at),
                }
            )
        return True

    def _snapshot(self) -> list[tuple[str, str]]:
        with self._locked(write=False):
            return [(line["key"], row_id) for row_id, line in self.state.rows.items()]

    def close(self, *, compact: bool = True) -> None:
        try:
            if compact and self.wrote and self.fd >= 0:
                with self._locked(write=True):
                    if self.state.lines > JSONL_COMPACTION_FACTOR * len(self.state.rows):
                        self._compact()
        finally:
            for fd in (self.fd, self.lock_fd):
                if fd >= 0:
                    os.close(fd)
            self.fd = self.lock_fd = -1

    def _compact(self) -> None:
        before = self.state.lines
        directory = self.dest.path.parent
        fd, tmp = tempfile.mkstemp(prefix=f".{self.dest.path.name}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                for line in self.state.rows.values():
                    out.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
                out.flush()
                os.fsync(out.fileno())
            # Atomic: readers see the old log or the new one, never half of either.
            os.replace(tmp, self.dest.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(directory)
        logger.info("JSONL %s: compacted %s lines to %s live rows", self.dest.path, before, len(self.state.rows))

    # -- the session protocol --

    def check_record(self, record: Record) -> str | None:
        """Why a write of ``record`` would be refused, or None (see ``JSONLDestination.check_record``)."""
        return self.dest.check_record(record)

    async def create(self, record: Record, synced_at: dt.datetime) -> str:
        """Append a new row with a fresh id; never looks at the key (duplicates stay visible)."""
        async with self.lock:
            return await asyncio.to_thread(self._create, record, synced_at)

    async def update(self, existing_id: str, record: Record, synced_at: dt.datetime) -> bool:
        """Append the row's new state (create-only properties kept; None clears a property).

        Raises:
            RecordError: No live row has that id, or a value is not neutral or too long.
        """
        async with self.lock:
            return await asyncio.to_thread(self._update, existing_id, record, synced_at)

    async def query_existing_rows(self) -> AsyncIterator[tuple[str, str]]:
        """(key, id) of every live row, duplicates of a key included, in creation order."""
        async with self.lock:
            rows = await asyncio.to_thread(self._snapshot)
        for pair in rows:
            yield pair

    async def query_existing_ids(self) -> dict[str, str]:
        """{key: id} of every live row (for a duplicated key, the last created)."""
        return {key: row_id async for key, row_id in self.query_existing_rows()}


def _encoded(record: Record, skip: set[str], max_value_length: int | None) -> dict[str, Any]:
    """The record's properties as JSON values (tags for dates), those in ``skip`` left out.

    Raises:
        RecordError: An empty key, a value that is not neutral, or one longer than ``max_value_length``.
    """
    if not record.primary_key:
        # A row without a key could never be matched to its record again.
        raise RecordError("JSONL: the record has an empty primary key", primary_key=record.primary_key)
    out = {}
    for prop, value in record.properties.items():
        neutral_kind(prop, value, primary_key=record.primary_key)
        if prop not in skip:
            out[prop] = _encode_value(value)
    check_value_lengths(record.properties, max_value_length, primary_key=record.primary_key)
    return out


def _fsync_dir(directory: Path) -> None:
    """Make a created or replaced name durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

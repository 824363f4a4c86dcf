"""``FilesSource``: records from local CSV and JSONL files, paged with resumable cursors.

One ``FileSpec`` is one spec (one partition): a file or a glob of files read in sorted order. A pass
streams the files once: the open reader is kept between pages, so a whole pass is O(rows) however
many pages it has, and memory stays flat whatever the file size (one page of records at a time).

Cursor (opaque to the engine, documented for operators)::

    {"file":"data/tasks-2.csv","row":500,"v":1}

``file`` is the file's path as the glob returned it (relative to ``base_dir`` for relative
patterns) and ``row`` the number of data rows of that file already returned. The cursor names the
file rather than its index so that a file added to the glob between a crash and the resume does not
shift the position; when the named file is gone, the pass continues with the next file in sort order.
"""

from __future__ import annotations

import asyncio
import collections
import csv
import datetime as dt
import glob
import json
import logging
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, TextIO

from connectors.core import ConfigError, Record, SourceSpec
from connectors.files._values import invalid_cell, parse_iso_datetime
from connectors.files.settings import (
    COLUMN_TYPES,
    CSV_ENCODING,
    CURSOR_VERSION,
    DEFAULT_INTERVAL_MINUTES,
    DEFAULT_LIST_SEPARATOR,
    DEFAULT_PAGE_SIZE,
    FALSE_STRINGS,
    FORMAT_ALIASES,
    FORMAT_BY_EXTENSION,
    GLOB_CHARS,
    JSONL_ENCODING,
    MAX_CACHED_READERS,
    MAX_CONVERSION_WARNINGS,
    TRUE_STRINGS,
)
from connectors.http import drain_pages

__all__ = ["FileSpec", "FilesSource"]

logger = logging.getLogger(__name__)

_INT_RE = re.compile(r"[+-]?\d+(?:\.0*)?")


# --------------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class FileSpec:
    """One file (or glob of files) read as one spec of a ``FilesSource``.

    Attributes:
        key: The spec key (the partition), unique within the source.
        path: A file path or a glob (``data/*.csv``, ``**`` allowed); relative paths are resolved
            against the source's ``base_dir``. A glob matching nothing is an empty source.
        key_column: The column holding each row's immutable id (becomes ``Record.primary_key``).
        types: Column name -> one of ``str``, ``int``, ``float``, ``bool``, ``date``, ``datetime``,
            ``list``. Untyped CSV columns are strings; untyped JSONL values pass through as parsed.
        body_column: Optional column whose text becomes ``Record.body`` (removed from properties).
        interval_minutes: How often the spec syncs.
        format: ``csv`` or ``jsonl`` (``ndjson`` is an alias); inferred from the extension of
            ``path`` (``.csv``, ``.jsonl``, ``.ndjson``) when None.
        list_separator: Separator of ``list`` cells held as text.
        columns: Optional whitelist of columns kept as properties (missing ones become None).
    """

    key: str
    path: str
    key_column: str
    types: Mapping[str, str] = field(default_factory=dict)
    body_column: str | None = None
    interval_minutes: int = DEFAULT_INTERVAL_MINUTES
    format: str | None = None
    list_separator: str = DEFAULT_LIST_SEPARATOR
    columns: Sequence[str] | None = None

    def __post_init__(self) -> None:
        """Check every field, so that a bad spec fails where the route is defined, not in a pass.

        Raises:
            ConfigError: The first bad field, named.
        """
        if not isinstance(self.key, str) or not self.key.strip():
            raise ConfigError(f"FileSpec.key must be a non-empty string, got {self.key!r}")
        where = f"FileSpec {self.key!r}"
        if not isinstance(self.path, (str, os.PathLike)) or not str(self.path).strip():
            raise ConfigError(f"{where}: path must be a non-empty file path or glob, got {self.path!r}")
        object.__setattr__(self, "path", os.fspath(self.path))
        if not isinstance(self.key_column, str) or not self.key_column.strip():
            raise ConfigError(f"{where}: key_column must be a non-empty column name, got {self.key_column!r}")
        self._check_types(where)
        self._check_body_column(where)
        if (
            isinstance(self.interval_minutes, bool)
            or not isinstance(self.interval_minutes, int)
            or self.interval_minutes < 1
        ):
            raise ConfigError(f"{where}: interval_minutes must be a whole number >= 1, got {self.interval_minutes!r}")
        self._check_format(where)
        if not isinstance(self.list_separator, str) or not self.list_separator:
            raise ConfigError(f"{where}: list_separator must be a non-empty string, got {self.list_separator!r}")
        self._check_columns(where)

    def _check_types(self, where: str) -> None:
        if not isinstance(self.types, Mapping):
            raise ConfigError(f"{where}: types must be a mapping of column -> type name, got {self.types!r}")
        for column, type_name in self.types.items():
            if type_name not in COLUMN_TYPES:
                raise ConfigError(
                    f"{where}: types[{column!r}] = {type_name!r} is not a known type "
                    f"(one of {', '.join(sorted(COLUMN_TYPES))})"
                )
        # A private copy: the spec is frozen, the caller's dict is not.
        object.__setattr__(self, "types", dict(self.types))

    def _check_body_column(self, where: str) -> None:
        if self.body_column is None:
            return
        if not isinstance(self.body_column, str) or not self.body_column:
            raise ConfigError(f"{where}: body_column must be a column name or None, got {self.body_column!r}")
        if self.body_column == self.key_column:
            raise ConfigError(f"{where}: body_column and key_column are both {self.key_column!r}")
        if self.types.get(self.body_column, "str") != "str":
            raise ConfigError(
                f"{where}: body_column {self.body_column!r} is typed "
                f"{self.types[self.body_column]!r}; the body is text (type 'str')"
            )

    def _check_format(self, where: str) -> None:
        if self.format is not None and self.format not in FORMAT_ALIASES:
            raise ConfigError(f"{where}: format {self.format!r} is not supported (one of {', '.join(FORMAT_ALIASES)})")
        if self.format is None and self.file_format is None:
            raise ConfigError(
                f"{where}: cannot infer format from path {self.path!r}; name the file "
                f"{'/'.join(FORMAT_BY_EXTENSION)} or set format='csv' or 'jsonl'"
            )

    def _check_columns(self, where: str) -> None:
        if self.columns is None:
            return
        if isinstance(self.columns, str) or not all(isinstance(c, str) and c for c in self.columns):
            raise ConfigError(f"{where}: columns must be a list of column names, got {self.columns!r}")
        dupes = sorted({c for c in self.columns if list(self.columns).count(c) > 1})
        if dupes:
            raise ConfigError(f"{where}: columns lists {', '.join(map(repr, dupes))} more than once")
        object.__setattr__(self, "columns", tuple(self.columns))

    @property
    def file_format(self) -> str | None:
        """``csv`` or ``jsonl``: the explicit ``format`` or the one the path's extension implies."""
        if self.format is not None:
            return FORMAT_ALIASES.get(self.format)
        return FORMAT_BY_EXTENSION.get(os.path.splitext(self.path)[1].lower())

    @property
    def is_glob(self) -> bool:
        """Whether ``path`` is a glob pattern rather than one file."""
        return any(c in GLOB_CHARS for c in self.path)


# --------------------------------------------------------------------------------------------------
# Cursors


class _Position(NamedTuple):
    file: str
    row: int


def _encode_cursor(pos: _Position) -> str:
    # sort_keys + compact separators: one position always has one spelling.
    return json.dumps({"v": CURSOR_VERSION, "file": pos.file, "row": pos.row}, sort_keys=True, separators=(",", ":"))


def _decode_cursor(spec_key: str, cursor: str) -> _Position:
    try:
        data = json.loads(cursor)
    except (TypeError, ValueError):
        data = None
    if (
        not isinstance(data, dict)
        or data.get("v") != CURSOR_VERSION
        or not isinstance(data.get("file"), str)
        or isinstance(data.get("row"), bool)
        or not isinstance(data.get("row"), int)
        or data["row"] < 0
    ):
        raise ConfigError(
            f"FilesSource spec {spec_key!r}: cursor {cursor!r} was not issued by this source "
            f"(expected {{'v': {CURSOR_VERSION}, 'file': ..., 'row': ...}}); start a full pass"
        )
    return _Position(data["file"], data["row"])


# --------------------------------------------------------------------------------------------------
# Cell conversion. Each converter raises ValueError when the value does not fit its type.


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in TRUE_STRINGS:
        return True
    if lowered in FALSE_STRINGS:
        return False
    raise ValueError(f"not a boolean (expected one of {', '.join(sorted(TRUE_STRINGS | FALSE_STRINGS))})")


def _parse_int(text: str) -> int:
    stripped = text.strip()
    # Spreadsheets export whole numbers as "3.0"; anything else fractional is not an int.
    if not _INT_RE.fullmatch(stripped):
        raise ValueError("not a whole number")
    return int(stripped.split(".", 1)[0])


def _parse_list(text: str, separator: str) -> list[str]:
    return [part.strip() for part in text.split(separator) if part.strip()]


def _convert_text(type_name: str, text: str, separator: str) -> Any:
    """A CSV cell (or a JSON string) as ``type_name``."""
    if type_name == "str":
        return text
    if type_name == "int":
        return _parse_int(text)
    if type_name == "float":
        # NaN and infinities convert faithfully; the engine rejects them per record.
        return float(text.strip())
    if type_name == "bool":
        return _parse_bool(text)
    if type_name == "date":
        return dt.date.fromisoformat(text.strip())
    if type_name == "datetime":
        return parse_iso_datetime(text.strip())
    if type_name == "list":
        return _parse_list(text, separator)
    raise AssertionError(type_name)  # FileSpec validated the type names


def _json_scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _json_str(value: Any) -> str:
    if isinstance(value, (dict, list)):
        raise ValueError("an object or array is not text")
    return _json_scalar_text(value)


def _json_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    raise ValueError("not a whole number")


def _json_float(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise ValueError("not a number")


def _json_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError("not a boolean")


def _json_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        # Nested objects stay as they are, so the engine reports them instead of us hiding them.
        return [
            _json_scalar_text(item) if isinstance(item, (bool, int, float)) else item
            for item in value
            if item is not None
        ]
    if isinstance(value, (bool, int, float)):
        return [_json_scalar_text(value)]
    raise ValueError("not a list")


# Converters of JSON values that are not strings; date and datetime only come as ISO 8601 text.
_JSON_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "str": _json_str,
    "int": _json_int,
    "float": _json_float,
    "bool": _json_bool,
    "list": _json_list,
}


def _convert_json(type_name: str, value: Any, separator: str) -> Any:
    """A parsed JSON value as ``type_name`` (strings are parsed as text cells)."""
    if isinstance(value, str):
        if type_name != "str" and not value.strip():
            return None
        return _convert_text(type_name, value, separator)
    converter = _JSON_CONVERTERS.get(type_name)
    if converter is None:
        raise ValueError(f"not a {type_name} (ISO 8601 text expected)")
    return converter(value)


def _key_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return _json_scalar_text(value).strip()


# --------------------------------------------------------------------------------------------------
# Reading


class _RawRow(NamedTuple):
    file: str
    row: int  # index of the row among its file's data rows
    line: int  # physical line number, for messages
    values: dict[Any, Any]


class _RowStream:
    """Raw rows of one spec's files in order from a position; one per pass in flight.

    Owned by one ``fetch_page`` call at a time (it runs in a worker thread), so it keeps its own
    counters and the source adds them up on the event loop.
    """

    def __init__(self, spec: FileSpec, files: list[tuple[str, Path]], start: _Position | None) -> None:
        self.spec = spec
        self.files = files
        self.file_index = 0
        self.skip = 0
        if start is not None:
            names = [name for name, _ in files]
            if start.file in names:
                self.file_index = names.index(start.file)
                self.skip = start.row
            else:
                # The file was removed or renamed since the cursor was stored: its remaining rows are
                # gone, so continue with the files that sort after it.
                self.file_index = sum(1 for name in names if name <= start.file)
                logger.warning(
                    "FilesSource spec %s: cursor file %s no longer matches %s; resuming at the next file",
                    spec.key,
                    start.file,
                    spec.path,
                )
        self.row_index = 0
        self.handle: TextIO | None = None
        self.rows: Iterator[tuple[int, dict[Any, Any]]] | None = None
        self.peeked: _RawRow | None = None
        self.rows_read = 0
        self.conversion_failures = 0
        self.pass_failures = 0  # not reset by FilesSource._settle: limits the warnings per pass

    # -- iteration --

    def next(self) -> _RawRow | None:
        if self.peeked is not None:
            row, self.peeked = self.peeked, None
            return row
        return self._read()

    def position(self) -> _Position | None:
        """Where the next row is (reading it ahead), or None at the end of the last file."""
        if self.peeked is None:
            self.peeked = self._read()
        return None if self.peeked is None else _Position(self.peeked.file, self.peeked.row)

    def _read(self) -> _RawRow | None:
        while self.file_index < len(self.files):
            if self.rows is None:
                self._open()
            assert self.rows is not None
            item = next(self.rows, None)
            if item is None:
                self._close_file()
                self.file_index += 1
                self.row_index = 0
                continue
            line, values = item
            row = _RawRow(self.files[self.file_index][0], self.row_index, line, values)
            self.row_index += 1
            self.rows_read += 1
            return row
        return None

    def _open(self) -> None:
        name, path = self.files[self.file_index]
        try:
            if self.spec.file_format == "csv":
                # newline="" lets the csv module see quoted newlines inside cells.
                self.handle = open(path, encoding=CSV_ENCODING, newline="")  # noqa: SIM115 - closed by close()
                self.rows = self._csv_rows(self.handle, name)
            else:
                self.handle = open(path, encoding=JSONL_ENCODING)  # noqa: SIM115 - closed by close()
                self.rows = self._jsonl_rows(self.handle, name)
        except FileNotFoundError:
            raise ConfigError(f"FileSpec {self.spec.key!r}: file {str(path)!r} not found") from None
        except IsADirectoryError:
            raise ConfigError(f"FileSpec {self.spec.key!r}: path {str(path)!r} is a directory") from None
        # Resuming: the skipped rows count as read, which is what the O(N) accounting wants to see.
        skip, self.skip = self.skip, 0
        for _ in range(skip):
            if next(self.rows, None) is None:
                break
            self.row_index += 1
            self.rows_read += 1

    def _csv_rows(self, handle: TextIO, name: str) -> Iterator[tuple[int, dict[Any, Any]]]:
        where = f"FileSpec {self.spec.key!r}: {name}"
        reader = csv.DictReader(handle)
        try:
            header = reader.fieldnames
        except (csv.Error, UnicodeDecodeError) as err:
            raise ConfigError(f"{where}: cannot read the header: {err}") from err
        if header is None:
            return  # an empty file has no rows, and no header to check
        dupes = sorted({h for h in header if header.count(h) > 1})
        if dupes:
            raise ConfigError(f"{where}: header has column {', '.join(map(repr, dupes))} more than once")
        if self.spec.key_column not in header:
            raise ConfigError(
                f"{where}: key_column {self.spec.key_column!r} is not in the header "
                f"(columns: {', '.join(map(repr, header))})"
            )
        expected = set(self.spec.types) | set(self.spec.columns or ())
        if self.spec.body_column is not None:
            expected.add(self.spec.body_column)
        missing = sorted(c for c in expected if c not in header)
        if missing:
            # Not an error: a glob may span files written before a column existed.
            logger.warning("%s: columns %s are not in the header; they read as empty", where, missing)
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except (csv.Error, UnicodeDecodeError) as err:
                raise ConfigError(f"{where} line {reader.line_num}: {err}") from err
            yield reader.line_num, values

    def _jsonl_rows(self, handle: TextIO, name: str) -> Iterator[tuple[int, dict[Any, Any]]]:
        where = f"FileSpec {self.spec.key!r}: {name}"
        line_no = 0
        while True:
            try:
                line = handle.readline()
            except UnicodeDecodeError as err:
                raise ConfigError(f"{where} after line {line_no}: {err}") from err
            if not line:
                return
            line_no += 1
            text = line.strip()
            if not text:
                continue
            try:
                value = json.loads(text)
            except ValueError as err:
                raise ConfigError(f"{where} line {line_no}: not valid JSON ({err})") from err
            if not isinstance(value, dict):
                raise ConfigError(f"{where} line {line_no}: expected a JSON object, got {type(value).__name__}")
            yield line_no, value

    # -- cleanup --

    def _close_file(self) -> None:
        if self.rows is not None:
            self.rows.close()  # type: ignore[attr-defined]
            self.rows = None
        if self.handle is not None:
            self.handle.close()
            self.handle = None

    def close(self) -> None:
        self._close_file()
        self.file_index = len(self.files)
        self.peeked = None

    # -- records --

    def to_record(self, raw: _RawRow) -> Record:
        spec = self.spec
        is_csv = spec.file_format == "csv"
        wanted = spec.columns
        props: dict[str, Any] = {}
        body: str | None = None
        for column, value in raw.values.items():
            if column is None:
                continue  # cells beyond the CSV header (DictReader's restkey); no column to name them
            if column == spec.body_column:
                body = self._body_text(value)
                continue
            if wanted is not None and column not in wanted:
                continue
            props[column] = self._convert(raw, column, value, is_csv)
        if wanted is not None:
            for column in wanted:
                if column != spec.body_column:
                    props.setdefault(column, None)
        return Record(primary_key=_key_text(raw.values.get(spec.key_column)), properties=props, body=body)

    def row_key(self, raw: _RawRow) -> str:
        return _key_text(raw.values.get(self.spec.key_column))

    @staticmethod
    def _body_text(value: Any) -> str | None:
        if value is None or value == "":
            return None
        if isinstance(value, str):
            return value
        return json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else str(value)

    def _convert(self, raw: _RawRow, column: str, value: Any, is_csv: bool) -> Any:
        type_name = self.spec.types.get(column)
        if value is None:
            return None
        if is_csv:
            # CSV cannot tell an empty string from a missing value; empty is missing.
            if value == "" or (type_name not in (None, "str") and not value.strip()):
                return None
            if type_name is None:
                return value
        elif type_name is None:
            return value  # JSON values pass through; the engine rejects non-neutral ones per record
        try:
            if is_csv:
                return _convert_text(type_name, value, self.spec.list_separator)
            return _convert_json(type_name, value, self.spec.list_separator)
        except ValueError as err:
            # One bad cell must not stop a pass of a million rows, nor reach a destination as text: an
            # InvalidCell makes the engine fail this record alone (and retry it once the cell is fixed).
            self.conversion_failures += 1
            self.pass_failures += 1
            cell = invalid_cell(type_name, value, str(err))
            if self.pass_failures <= MAX_CONVERSION_WARNINGS:
                logger.warning(
                    "FileSpec %s: %s line %s column %s: %s; the record fails",
                    self.spec.key,
                    raw.file,
                    raw.line,
                    column,
                    cell.message,
                )
            return cell


# --------------------------------------------------------------------------------------------------
# The source


class FilesSource:
    """Records from local CSV/JSONL files: one spec per ``FileSpec``, paged with resumable cursors.

    Consecutive ``fetch_page`` calls of one pass continue one open reader, so a pass reads each row
    once. A cursor the source did not just hand out (a resume in a new process, a retried page) opens
    the file again and skips to the row: correct, at the cost of reading the skipped rows once.

    Args:
        specs: The files to read, one spec each; keys must be unique.
        page_size: Records per page.
        base_dir: Directory relative paths are resolved against (default: the working directory at
            construction, so later ``chdir`` calls do not move the files).
        name: Source name shown in the asset graph.

    Attributes:
        rows_read: Data rows parsed from disk since construction, skipped ones included (for tests and
            benchmarks: a pass over N rows reads N).
        conversion_failures: Cells that did not convert to their declared type (each fails its record).

    Raises:
        ConfigError: Duplicate spec keys, a bad page size or a bad ``FileSpec``.
    """

    def __init__(
        self,
        specs: Sequence[FileSpec],
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        base_dir: str | os.PathLike[str] | None = None,
        name: str = "files",
    ) -> None:
        """Check the specs and the page size; no file is opened until a spec is read."""
        if isinstance(specs, FileSpec) or not all(isinstance(s, FileSpec) for s in specs):
            raise ConfigError(f"FilesSource: specs must be a list of FileSpec, got {specs!r}")
        seen: set[str] = set()
        for spec in specs:
            if spec.key in seen:
                raise ConfigError(f"FilesSource: spec key {spec.key!r} is used by more than one FileSpec")
            seen.add(spec.key)
        if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
            raise ConfigError(f"FilesSource: page_size must be a whole number >= 1, got {page_size!r}")
        self.name = name
        self.page_size = page_size
        self.base_dir = Path(base_dir).expanduser().resolve() if base_dir is not None else Path.cwd()
        self.file_specs: dict[str, FileSpec] = {spec.key: spec for spec in specs}
        self.rows_read = 0
        self.conversion_failures = 0
        # (spec key, file, row) of the next row -> the reader positioned there. Oldest first.
        self._readers: collections.OrderedDict[tuple[str, str, int], _RowStream] = collections.OrderedDict()

    def specs(self) -> list[SourceSpec]:
        """One ``SourceSpec`` per ``FileSpec`` (``params={"path": ...}``)."""
        return [
            SourceSpec(fs.key, fs.interval_minutes, {"path": fs.path, "format": fs.file_format})
            for fs in self.file_specs.values()
        ]

    def describe(self) -> str:
        """Where the records come from, for logs and the UI."""
        return ", ".join(f"{fs.key}={fs.path}" for fs in self.file_specs.values())

    def declared_types(self, spec_key: str) -> dict[str, str]:
        """Property -> declared type name of one spec (``FileSpec.types`` without the key and body).

        A schema bootstrap (``durable-sync schema``) types a column from it even when the sampled
        rows leave that column empty.
        """
        fs = self.file_specs.get(spec_key)
        if fs is None:
            return {}
        return {col: t for col, t in fs.types.items() if col not in (fs.key_column, fs.body_column)}

    def close(self) -> None:
        """Close every reader kept between pages (they are also closed at the end of each pass)."""
        while self._readers:
            _, stream = self._readers.popitem(last=False)
            stream.close()

    # -- files --

    def _file_spec(self, spec: SourceSpec) -> FileSpec:
        try:
            return self.file_specs[spec.key]
        except KeyError:
            raise ConfigError(
                f"FilesSource: no FileSpec with key {spec.key!r} (known: {', '.join(self.file_specs)})"
            ) from None

    def _files(self, fs: FileSpec) -> list[tuple[str, Path]]:
        """(cursor name, path) of every file of the spec, in reading order."""
        pattern = os.path.expanduser(fs.path)
        if fs.is_glob:
            # root_dir keeps relative names relative, so cursors survive moving the whole tree.
            names = glob.glob(pattern, root_dir=self.base_dir, recursive=True)
            found = sorted(n for n in names if (self.base_dir / n).is_file())
            if not found:
                logger.info("FileSpec %s: glob %s matches no file; nothing to read", fs.key, fs.path)
            return [(n, self.base_dir / n) for n in found]
        path = self.base_dir / pattern
        if not path.exists():
            raise ConfigError(f"FileSpec {fs.key!r}: path {fs.path!r} not found (looked at {str(path)!r})")
        if not path.is_file():
            raise ConfigError(f"FileSpec {fs.key!r}: path {fs.path!r} is not a file ({str(path)!r})")
        return [(pattern, path)]

    def _settle(self, stream: _RowStream) -> None:
        """Move a stream's counters to the source (on the event loop thread)."""
        self.rows_read += stream.rows_read
        self.conversion_failures += stream.conversion_failures
        stream.rows_read = 0
        stream.conversion_failures = 0

    def _drop_readers(self, spec_key: str) -> None:
        for key in [k for k in self._readers if k[0] == spec_key]:
            self._readers.pop(key).close()

    # -- fetching --

    async def fetch_page(
        self, spec: SourceSpec, only_items: list[str] | None, cursor: str | None
    ) -> tuple[list[Record], str | None]:
        """One page of records and the cursor of the next (None after the last page).

        Args:
            spec: One of ``specs()``.
            only_items: When given, just the records with these keys, in one page (a full scan).
            cursor: None to start a pass, else a cursor this source returned (in any process).

        Raises:
            ConfigError: A missing file, a missing key column, malformed CSV/JSON, a foreign cursor.
        """
        fs = self._file_spec(spec)
        if only_items is not None:
            scan = _RowStream(fs, await asyncio.to_thread(self._files, fs), None)
            try:
                return await asyncio.to_thread(self._scan, scan, set(only_items)), None
            finally:
                scan.close()
                self._settle(scan)
        start = _decode_cursor(fs.key, cursor) if cursor is not None else None
        stream = None
        if start is None:
            # A new pass: readers of an abandoned pass of this spec will not be asked for again.
            self._drop_readers(fs.key)
        else:
            stream = self._readers.pop((fs.key, start.file, start.row), None)
        if stream is None:
            stream = _RowStream(fs, await asyncio.to_thread(self._files, fs), start)
        try:
            records, nxt = await asyncio.to_thread(self._read_page, stream)
        except asyncio.CancelledError:
            # The worker thread may still be reading: closing its file under it would only turn the
            # cancellation into an I/O error there. The stream is dropped and closed when collected.
            raise
        except BaseException:
            stream.close()
            raise
        finally:
            self._settle(stream)
        if nxt is None:
            stream.close()
            if stream.pass_failures > MAX_CONVERSION_WARNINGS:
                logger.warning(
                    "FileSpec %s: %s cells in this pass did not match their declared type (first %s logged)",
                    fs.key,
                    stream.pass_failures,
                    MAX_CONVERSION_WARNINGS,
                )
            return records, None
        self._readers[(fs.key, nxt.file, nxt.row)] = stream
        while len(self._readers) > MAX_CACHED_READERS:
            _, oldest = self._readers.popitem(last=False)
            oldest.close()
        return records, _encode_cursor(nxt)

    async def fetch(self, spec: SourceSpec, only_items: list[str] | None = None) -> list[Record]:
        """Every record of the spec (or just ``only_items``): a drain over ``fetch_page``."""
        return await drain_pages(self.fetch_page, spec, only_items)

    def _read_page(self, stream: _RowStream) -> tuple[list[Record], _Position | None]:
        records: list[Record] = []
        while len(records) < self.page_size:
            raw = stream.next()
            if raw is None:
                break
            records.append(stream.to_record(raw))
        # Reading one row ahead means the last page says so, instead of an extra empty page.
        return records, stream.position()

    @staticmethod
    def _scan(stream: _RowStream, wanted: set[str]) -> list[Record]:
        records: list[Record] = []
        while (raw := stream.next()) is not None:
            if stream.row_key(raw) in wanted:
                records.append(stream.to_record(raw))
        return records

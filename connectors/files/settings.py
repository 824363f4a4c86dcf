"""Constants of the local files connectors (CSV/JSONL source, SQLite and JSONL destinations)."""

from __future__ import annotations

__all__ = [
    "COLUMN_TYPES",
    "CSV_ENCODING",
    "CURSOR_VERSION",
    "DEFAULT_INTERVAL_MINUTES",
    "DEFAULT_LIST_SEPARATOR",
    "DEFAULT_PAGE_SIZE",
    "FALSE_STRINGS",
    "FORMATS",
    "FORMAT_ALIASES",
    "FORMAT_BY_EXTENSION",
    "GLOB_CHARS",
    "JSONL_COMPACTION_FACTOR",
    "JSONL_ENCODING",
    "MAX_CACHED_READERS",
    "MAX_CONVERSION_WARNINGS",
    "RESERVED_SQLITE_COLUMNS",
    "SQLITE_BUSY_TIMEOUT_SECONDS",
    "SQLITE_LIST_BATCH",
    "SQLITE_METADATA_TABLE",
    "TRUE_STRINGS",
]

# --- FilesSource -----------------------------------------------------------------------------------

DEFAULT_PAGE_SIZE = 500
"""Records per ``fetch_page`` call: one engine checkpoint per page, so a crash redoes at most this many."""

DEFAULT_INTERVAL_MINUTES = 30

DEFAULT_LIST_SEPARATOR = ";"
"""Separator of ``list`` cells in CSV (a comma would clash with the CSV delimiter in hand-edited files)."""

COLUMN_TYPES = frozenset({"str", "int", "float", "bool", "date", "datetime", "list"})
"""Type names a ``FileSpec.types`` entry may use; each maps to one neutral Python type."""

TRUE_STRINGS = frozenset({"true", "yes", "y", "1"})
FALSE_STRINGS = frozenset({"false", "no", "n", "0"})
"""Accepted spellings of ``bool`` cells, compared case-insensitively after stripping."""

FORMATS = ("csv", "jsonl")
FORMAT_ALIASES = {"csv": "csv", "jsonl": "jsonl", "ndjson": "jsonl"}
FORMAT_BY_EXTENSION = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}

GLOB_CHARS = frozenset("*?[")
"""A ``FileSpec.path`` containing any of these is a glob (matching nothing is an empty source)."""

CSV_ENCODING = "utf-8-sig"
"""UTF-8 that also strips the byte-order mark Excel writes, so the first header is not ``\\ufeffid``."""

JSONL_ENCODING = "utf-8-sig"

CURSOR_VERSION = 1
"""Bumped if the cursor layout changes; cursors of another version are rejected, never misread."""

MAX_CACHED_READERS = 32
"""Open file readers kept between pages (one per pass in flight); the oldest is closed beyond this."""

MAX_CONVERSION_WARNINGS = 20
"""Cells that failed their declared type are logged one by one up to this many per pass, then summed."""

# --- SQLiteDestination ----------------------------------------------------------------------------

SQLITE_BUSY_TIMEOUT_SECONDS = 30.0
"""How long a write waits for another process's transaction before failing as transient."""

SQLITE_LIST_BATCH = 1000
"""Rows read per query when listing, so a listing never holds the whole table in memory."""

SQLITE_METADATA_TABLE = "_durable_sync_columns"
"""Maps each table's property names to column names and neutral kinds, so values decode exactly."""

RESERVED_SQLITE_COLUMNS = frozenset({"id", "body", "synced_at"})
"""Columns every table has besides the key column; properties with these names get another column."""

# --- JSONLDestination -----------------------------------------------------------------------------

JSONL_COMPACTION_FACTOR = 2
"""The log is rewritten on session close when it holds more than this many lines per live row."""

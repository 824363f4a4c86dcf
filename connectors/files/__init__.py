"""Local files: the embedded default connectors, needing no tokens and no network.

- ``FilesSource`` reads CSV and JSONL files (one ``FileSpec`` per spec), paged with resumable cursors.
- ``SQLiteDestination`` writes one typed SQLite table per route.
- ``JSONLDestination`` appends to a JSONL log that behaves like a remote API storing our key.

See ``README.md`` in this folder for configuration, type coercions, cursors and limits.
"""

from connectors.files.jsonl import JSONLDestination
from connectors.files.source import FileSpec, FilesSource
from connectors.files.sqlite import SQLiteDestination

__all__ = ["FileSpec", "FilesSource", "JSONLDestination", "SQLiteDestination"]

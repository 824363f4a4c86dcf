"""Asana: a destination (tasks of one project, keyed on our primary key) over the REST API.

- ``AsanaDestination`` (``destination.py``): creates and updates tasks of one project: name, the
  description (``notes`` or ``html_notes``) from the record body, native fields (due date, start date,
  completed, assignee) and custom fields by NAME (text, number, enum, multi-enum, date, people). The
  key lives in a Text custom field (``external.gid`` needs OAuth; see ``README.md``).
- ``AsanaClient`` (``client.py``): the typed REST client over ``connectors.http`` (Asana's rate and
  concurrency limits, retries, typed errors, redaction) with :class:`OffsetPagination`.
- ``encode.py``: neutral values to task fields and custom field values; pure.

See ``README.md`` in this folder for the token, the project to prepare, encodings, limits, rate limits
and quirks. Nothing here imports Dagster.
"""

from connectors.asana.client import AsanaClient, OffsetExpired, OffsetPagination, parse_project_gid
from connectors.asana.destination import AsanaDestination
from connectors.asana.encode import EncodeError

__all__ = [
    "AsanaClient",
    "AsanaDestination",
    "EncodeError",
    "OffsetExpired",
    "OffsetPagination",
    "parse_project_gid",
]

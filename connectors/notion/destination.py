"""``NotionDestination``: rows of a Notion database (one data source), keyed on our primary key.

Each record becomes one page of the data source::

    <title property>    <- record.properties[title_property]  (whatever the title column is called)
    <key_property>      <- record.primary_key                  (Text, or Number for numeric keys)
    <synced_property>   <- synced_at                           (Date, with time)
    <other properties>  <- record.properties, encoded by the target's type (encode.py)
    page content        <- record.body as paragraphs           (on create only)

Decisions (see README.md for the user-facing version):

- **Ids.** ``database_id`` (or ``NOTION_DATABASE_ID``) is resolved to its data source with
  ``GET /v1/databases/{id}``; ``data_source_id`` pins one. Either kind of id works in either place:
  on a 404 the other reading is tried. A database with several data sources uses the FIRST one (the
  original; Notion lists it first) and logs a warning naming the others; pass ``data_source_id`` to
  choose another. The resolution is cached; the schema is re-read at the start of every session.
- **Trash.** Queries do not return pages in Notion's trash, so a trashed page drops out of
  ``query_existing_rows`` (the engine sees its row as gone). Updating a trashed page is a
  ``RecordError`` ("restore it or unlink it"); we never restore pages by ourselves, since trashing
  one is usually deliberate.
- **Clearing.** None (and ``[]``) clears a property: text ``[]``, number/select/date/url ``null``,
  multi-select ``[]``, checkbox ``false``.
- **Truncation.** Text over Notion's limits (100 elements of 2000 characters per property, 1,000,000
  characters of body) and multi-selects over 100 options are truncated, logged as warnings and kept in
  ``NotionDestination.truncations``. Over-long URLs/emails are record errors instead.
- **Unknown columns.** Properties the data source lacks, or of a type we cannot write, are dropped
  with one warning per session; the rest of the record is written.
- **Bodies** are written on create only: up to 100 blocks ride along with the create, the rest is
  appended with ``PATCH /v1/blocks/{page}/children`` in requests of <= 100 blocks and <= 450 KB. An
  append is never resent after an ambiguous failure (it would duplicate text); if one fails, the page
  is kept (its id returned) and a warning says the body is incomplete.
- **Creates** are never resent after an ambiguous failure (timeout, 500/502/504): the error surfaces
  and the engine's next reconcile adopts the page if it was created.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import logging
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal, TypedDict, Unpack

from connectors.core import (
    AuthError,
    ConfigError,
    Record,
    RecordError,
    SchemaChange,
    SessionEnrich,
    SyncError,
    TransientError,
    WarnOnce,
    run_session_enrich,
)
from connectors.http import CredentialMembers, HTTPRecordError, HttpSettings, Json, NotFound, Rate, TokenCredentials
from connectors.notion.client import DataSourceRef, NotionClient, NotionCredentials, normalize_id
from connectors.notion.decode import decode_property, parse_timestamp
from connectors.notion.encode import (
    Truncation,
    body_blocks,
    chunk_blocks,
    encode_properties,
    encode_value,
    payload_size,
    rich_text,
)
from connectors.notion.schema import Schema, infer_schema, schema_to_properties
from connectors.notion.settings import (
    DATABASE_ID_ENV,
    MAX_CONCURRENCY,
    NOTION_API_BASE,
    NOTION_APP_BASE,
    NOTION_RATE,
    PAYLOAD_BUDGET_BYTES,
    TOKEN_ENV,
)

__all__ = ["NotionDestination", "NotionTargetArgs", "TruncationReport"]

logger = logging.getLogger(__name__)

KEY_TYPES = frozenset({"rich_text", "number"})
_CHILDREN_OVERHEAD = len(',"children":[]')
_MAX_REPORTS = 1000
_MAX_SAFE_INTEGER = 2**53  # Notion numbers are doubles: larger integers would not read back exactly

# Existing property types that take the values of an inferred kind (encode.py writes text into a
# select, a URL or an email as well as into rich text): anything else is a mismatch, left alone.
_FITS: dict[str, frozenset[str]] = {
    "rich_text": frozenset({"rich_text", "title", "select", "status", "url", "email", "phone_number"}),
    "number": frozenset({"number"}),
    "checkbox": frozenset({"checkbox"}),
    "date": frozenset({"date"}),
    "multi_select": frozenset({"multi_select"}),
}


@dataclass(frozen=True)
class TruncationReport:
    """A truncation of one record's value, kept in ``NotionDestination.truncations``."""

    primary_key: str
    truncation: Truncation

    def __str__(self) -> str:
        """One line for people."""
        return f"{self.primary_key}: {self.truncation.describe()}"


def _checked_ids(
    owner: str, title_property: str, key_property: str, *ids: str | None
) -> tuple[str | None, str | None, str | None]:
    """Refuse an empty or shared title/key property; the database, data source and parent page ids dashed.

    Shared by ``NotionDestination`` and ``NotionMcpDestination`` (same record mapping, other transport).
    """
    if not key_property or not title_property:
        raise ConfigError(f"{owner}: title_property and key_property must be non-empty")
    if key_property == title_property:
        raise ConfigError(
            f"{owner}: key_property and title_property are both {key_property!r}; the key needs "
            "its own Text property (titles change, keys must not)"
        )
    database_id, data_source_id, parent_page_id = ids
    return (
        normalize_id(database_id, what="database_id") if database_id else None,
        normalize_id(data_source_id, what="data_source_id") if data_source_id else None,
        normalize_id(parent_page_id, what="parent_page_id") if parent_page_id else None,
    )


class NotionTargetArgs(TypedDict, total=False):
    """Where and how ``NotionDestination`` and ``NotionMcpDestination`` write (the same record mapping).

    Declared once for the two destinations (``**target: Unpack[NotionTargetArgs]``); the meaning and
    defaults are ``NotionDestination``'s: ``data_source_id`` (None), ``title_property`` (``"Name"``),
    ``key_property`` (``"Key"``), ``synced_property`` (``"Last synced"``), ``create_only_properties`` (none),
    ``create_missing_options`` (False), ``parent_page_id`` (None), ``session_enrich`` (None).
    """

    data_source_id: str | None
    title_property: str
    key_property: str
    synced_property: str | None
    create_only_properties: Iterable[str]
    create_missing_options: bool
    parent_page_id: str | None
    session_enrich: SessionEnrich | None


class _NotionTarget:
    """The members both Notion destinations keep about their target, set by :meth:`_init_target`."""

    def _init_target(
        self,
        owner: str,
        name: str,
        database_id: str | None,
        max_concurrency: int,
        *,
        data_source_id: str | None = None,
        title_property: str = "Name",
        key_property: str = "Key",
        synced_property: str | None = "Last synced",
        create_only_properties: Iterable[str] = (),
        create_missing_options: bool = False,
        parent_page_id: str | None = None,
        session_enrich: SessionEnrich | None = None,
    ) -> None:
        self.name = name
        if session_enrich is not None and not callable(session_enrich):
            raise ConfigError(f"{owner}: session_enrich must be callable, got {session_enrich!r}")
        self.session_enrich = session_enrich
        ids = _checked_ids(owner, title_property, key_property, database_id, data_source_id, parent_page_id)
        self.database_id, self.data_source_id, self.parent_page_id = ids
        self.title_property = title_property
        self.key_property = key_property
        self.synced_property = synced_property
        self.create_only_properties = set(create_only_properties)
        self.create_missing_options = create_missing_options
        self.max_concurrency = max_concurrency
        self.truncations: collections.deque[TruncationReport] = collections.deque(maxlen=_MAX_REPORTS)
        self._resolved: tuple[tuple[str | None, str | None], str | None, str] | None = None
        self._warn = WarnOnce(logger)
        self._unfiltered: set[str] = set()  # data sources whose listing failed with filter_properties

    async def _resolved_target(
        self,
        ids: tuple[str | None, str | None],
        reread: Callable[[str, str | None], Awaitable[DataSourceRef | None]],
        resolve: Callable[[str, Literal["database", "data_source"]], Awaitable[DataSourceRef]],
        missing: Callable[[], str],
    ) -> DataSourceRef:
        """The data source ``ids`` (database, data source) name: the one resolved before, else resolved anew.

        Args:
            ids: The configured database id and data source id.
            reread: Reads the data source resolved before (its id, its database's); None when it is gone.
            resolve: Resolves an id that is expected to be of a kind.
            missing: The message of the ``ConfigError`` raised when ``ids`` names nothing.
        """
        if self._resolved is not None and self._resolved[0] == ids:
            _, database_id, data_source_id = self._resolved
            cached = await reread(data_source_id, database_id)
            if cached is not None:
                return cached
            self._resolved = None  # deleted or unshared since: resolve again (and fail clearly)
        database, data_source = ids
        if data_source:
            ref = await resolve(data_source, "data_source")
        elif database:
            ref = await resolve(database, "database")
        else:
            raise ConfigError(missing())
        if len(ref.siblings) > 1:
            self._warn(
                f"Notion database {ref.database_id} has {len(ref.siblings)} data sources ({', '.join(ref.siblings)}); "
                f"writing to the first, {ref.data_source_id}. Pass data_source_id to choose another.",
                key=f"siblings:{ref.database_id}",
            )
        self._resolved = (ids, ref.database_id, ref.data_source_id)
        return ref

    def _inferred(self, sample: Sequence[Record]) -> Schema:
        """The schema ``sample`` needs: its properties, the key (Text) and the synced stamp (Date)."""
        return infer_schema(sample, title=self.title_property, key=self.key_property, synced=self.synced_property)

    def _schema_diff(self, schema: Schema, existing: Mapping[str, Json]) -> tuple[list[SchemaChange], Json]:
        """What the data source lacks for ``schema`` (and the ``properties`` that add it); never a change.

        The title column is the data source's title property, whatever it is called: never created.
        """
        changes: list[SchemaChange] = []
        missing: Json = {}
        for name, spec in schema_to_properties(schema).items():
            ((kind, config),) = spec.items()
            if kind == "title":
                continue
            have = existing.get(name)
            if have is None:
                missing[name] = spec
                options = [str(o["name"]) for o in (config or {}).get("options") or []]
                changes.append(SchemaChange("create", name, kind, f"options {', '.join(options)}" if options else ""))
                continue
            fits = KEY_TYPES if name == self.key_property else _FITS.get(kind, frozenset({kind}))
            if have.get("type") not in fits:
                changes.append(SchemaChange("mismatch", name, kind, f"a {have.get('type')} property"))
        return changes, missing

    def _new_database_plan(self, schema: Schema) -> list[SchemaChange]:
        where = f"under page {self.parent_page_id}" if self.parent_page_id else "at the top of the workspace"
        changes = [SchemaChange("create", schema.name or self.name, "database", where)]
        for name, spec in schema_to_properties(schema).items():
            ((kind, _),) = spec.items()
            changes.append(SchemaChange("create", name, kind))
        return changes


class NotionDestination(_NotionTarget, CredentialMembers[TokenCredentials]):
    """Pages of one Notion data source, created and updated by key.

    Args:
        database_id: The database (or a data source id; both are resolved). Defaults to the
            ``database_id_env`` variable when neither id is given.
        data_source_id: Pin one data source of the database.
        title_property: The RECORD property holding each row's title; it is written to the data
            source's title property whatever that is called.
        key_property: The data source property holding ``Record.primary_key`` (Text; Number for
            numeric keys). It must exist; it is how rows are found again.
        synced_property: A Date property stamped with the write time on every write (None: off;
            missing in the data source: skipped with a warning).
        create_only_properties: Written on create, never on update.
        create_missing_options: Let Notion add select/multi-select options that do not exist yet
            (otherwise such a value is a ``RecordError`` naming the option).
        parent_page_id: The page under which ``ensure_schema`` may create the database.
        session_enrich: A hook ``(session, record, creating) -> record | None`` (sync or async) run in the
            open session before each write: it may read Notion through ``session.client`` (or, over MCP,
            ``session.mcp``); None skips the write; a raise fails that record only.
            (``data_source_id`` to ``session_enrich`` are the ``**target`` keywords, ``NotionTargetArgs``,
            shared with ``NotionMcpDestination``.)
        token: The integration token; default: the ``token_env`` variable, read at each use.
        token_env: Environment variable of the token.
        database_id_env: Environment variable of the database id (None: do not read one).
        base_url: API base (a fake in tests).
        rate: The token's request rate.
        http: Transport, sleep, clock and retry policy (:class:`~connectors.http.HttpSettings`; the
            default retry policy is the toolkit's plus 409 ``conflict_error``).
        max_concurrency: Writes in flight at once.
        name: Destination name.
    """

    stores_keys = True
    max_value_length: int | None = None  # long text is split and truncated here, not rejected

    def __init__(
        self,
        database_id: str | None = None,
        *,
        token: str | None = None,
        token_env: str | None = TOKEN_ENV,
        database_id_env: str | None = DATABASE_ID_ENV,
        base_url: str = NOTION_API_BASE,
        rate: Rate | None = NOTION_RATE,
        http: HttpSettings | None = None,
        max_concurrency: int = MAX_CONCURRENCY,
        name: str = "notion",
        **target: Unpack[NotionTargetArgs],
    ) -> None:
        """Check the arguments; nothing is read or sent yet."""
        self._init_target("NotionDestination", name, database_id, max_concurrency, **target)
        self.credentials = NotionCredentials(token, token_env)
        self.database_id_env = database_id_env
        self.base_url = base_url
        self.rate = rate
        self.http = http

    # -- configuration ----------------------------------------------------------------------------

    def token(self) -> str | None:
        """The token now: the one given, else the environment variable's (so a renewed one is seen)."""
        return self.credentials.token()

    def _ids(self) -> tuple[str | None, str | None]:
        if self.database_id or self.data_source_id:
            return self.database_id, self.data_source_id
        env = (os.environ.get(self.database_id_env) or "").strip() if self.database_id_env else ""
        return (env or None), None

    @property
    def configured(self) -> bool:
        """Whether everything this connector needs is set (see ``config_hint``)."""
        return bool(self.token()) and self._ids() != (None, None)

    @property
    def config_hint(self) -> str:
        """``"configured"``, or what to set before the connector can run."""
        missing = []
        if not self.token():
            missing.append(self.credentials.hint)
        if self._ids() == (None, None):
            missing.append(
                f"{self.database_id_env or 'database_id'} (the id of a database shared with the integration)"
            )
        if not missing:
            return "configured"
        return "set " + " and ".join(missing)

    def describe(self) -> str:
        """Where the records go, for people: a URL when one is known."""
        database_id = self._resolved[1] if self._resolved else None
        database, data_source = self._ids()
        for candidate in (database_id, database):
            if candidate:
                try:
                    return f"{NOTION_APP_BASE}/{normalize_id(candidate).replace('-', '')}"
                except ConfigError:
                    return f"Notion database {candidate!r} (not an id)"
        if data_source:
            return f"Notion data source {data_source}"
        return "Notion (not configured)"

    # -- sessions ---------------------------------------------------------------------------------

    def _require_token(self) -> str:
        token = self.token()
        if not token:
            raise ConfigError(f"NotionDestination {self.name!r}: {self.config_hint}")
        return token

    def _client(self, token: str) -> NotionClient:
        return NotionClient(token, base_url=self.base_url, rate=self.rate, http=self.http)

    async def _target(self, client: NotionClient) -> DataSourceRef:
        async def reread(data_source_id: str, database_id: str | None) -> DataSourceRef | None:
            try:
                return DataSourceRef(data_source_id, database_id, await client.retrieve_data_source(data_source_id))
            except NotFound:
                return None

        async def resolve(object_id: str, kind: Literal["database", "data_source"]) -> DataSourceRef:
            return await client.resolve(object_id, expect=kind)

        return await self._resolved_target(
            self._ids(), reread, resolve, lambda: f"NotionDestination {self.name!r}: {self.config_hint}"
        )

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[_NotionSession]:
        """A session on the data source (its schema read once, at the start)."""
        client = self._client(self._require_token())
        async with client:
            target = await self._target(client)
            yield _NotionSession(self, client, target)

    async def bootstrap_schema(self, sample: Sequence[Record], *, apply: bool) -> list[SchemaChange]:
        """The properties the data source lacks for ``sample``; with ``apply``, add them.

        Missing properties are added in one ``PATCH /v1/data_sources/{id}``; an existing property of
        another type is reported (``mismatch``) and left alone. With no database configured, the
        database itself is planned (and created by ``ensure_schema`` under ``parent_page_id``).
        """
        schema = self._inferred(sample)
        if self._ids() == (None, None):
            if not self.parent_page_id:
                raise ConfigError(
                    f"NotionDestination {self.name!r}: no database configured and no parent_page_id to create one under"
                )
            changes = self._new_database_plan(schema)
            if apply:
                await self.ensure_schema(schema)
            return changes
        async with self._client(self._require_token()) as client:
            target = await self._target(client)
            changes, missing = self._schema_diff(schema, target.properties)
            if apply and missing:
                await client.update_data_source(target.data_source_id, {"properties": missing})
                logger.warning(
                    "Notion %s: added %s to data source %s", self.name, ", ".join(missing), target.data_source_id
                )
        return changes

    async def ensure_schema(self, schema: Schema) -> str | None:
        """Create the database from ``schema`` under ``parent_page_id``, when none is configured.

        Create-only: with a database or data source configured this returns None and touches nothing.

        Returns:
            The new database's id (set it as ``NOTION_DATABASE_ID`` to keep using it).

        Raises:
            ConfigError: No ``parent_page_id``, or the schema has no title column.
        """
        if self._ids() != (None, None):
            return None
        if not self.parent_page_id:
            raise ConfigError(
                f"NotionDestination {self.name!r}: no database configured and no parent_page_id to create one under"
            )
        properties = schema_to_properties(schema)
        title, _ = rich_text(schema.name or self.name)
        async with self._client(self._require_token()) as client:
            created = await client.create_database(
                {
                    "parent": {"type": "page_id", "page_id": self.parent_page_id},
                    "title": title,
                    "initial_data_source": {"properties": properties},
                }
            )
        self.database_id = str(created["id"])
        sources = [str(ds["id"]) for ds in created.get("data_sources") or [] if ds.get("id")]
        if sources:
            self._resolved = ((self.database_id, None), self.database_id, sources[0])
        logger.warning(
            "Notion: created database %s under page %s; set %s=%s to keep using it",
            self.database_id,
            self.parent_page_id,
            self.database_id_env or "database_id",
            self.database_id,
        )
        return self.database_id


class _NotionSession:
    """One connection: the schema as read at the start, warnings once per session."""

    def __init__(self, dest: NotionDestination, client: NotionClient, target: DataSourceRef) -> None:
        self.dest = dest
        self.client = client
        self.target = target
        self.schema: dict[str, Json] = target.properties
        self.title_name = next((n for n, p in self.schema.items() if p.get("type") == "title"), None)
        self._warn = WarnOnce(logger)
        where = f"Notion data source {target.data_source_id}"
        key = self.schema.get(dest.key_property)
        if key is None:
            raise ConfigError(
                f"{where} has no property {dest.key_property!r}; add a Text property of that name (it holds each "
                "row's source id, so rows are updated instead of duplicated) or set key_property"
            )
        if key.get("type") not in KEY_TYPES:
            raise ConfigError(
                f"{where}: the key property {dest.key_property!r} is a {key.get('type')} property; it must be Text "
                "(or Number for numeric keys)"
            )
        self.synced: str | None = None
        if dest.synced_property:
            synced = self.schema.get(dest.synced_property)
            if synced is None:
                self._warn(f"{where} has no property {dest.synced_property!r}; the sync time is not stamped")
            elif synced.get("type") != "date":
                self._warn(
                    f"{where}: {dest.synced_property!r} is a {synced.get('type')} property, not a Date; the sync "
                    "time is not stamped"
                )
            else:
                self.synced = dest.synced_property

    def _report(self, primary_key: str, truncations: Iterable[Truncation]) -> None:
        for truncation in truncations:
            report = TruncationReport(primary_key, truncation)
            self.dest.truncations.append(report)
            logger.warning("Notion %s: record %s: %s", self.dest.name, primary_key, truncation.describe())

    # -- encoding ---------------------------------------------------------------------------------

    def _key_value(self, primary_key: str) -> Json:
        prop = self.schema[self.dest.key_property]
        if prop.get("type") == "number":
            # Only keys that read back identically ("007" would list as "7", "1_000" as "1000").
            number = int(primary_key) if re.fullmatch(r"-?[1-9][0-9]*|0", primary_key) else None
            if number is None or abs(number) > _MAX_SAFE_INTEGER:
                raise RecordError(
                    f"Notion: key {primary_key!r} is not a plain integer (up to 2**53), but the key property "
                    f"{self.dest.key_property!r} is a Number property; use a Text key property",
                    primary_key=primary_key,
                )
            return {"number": number}
        value, truncations, _ = encode_value(self.dest.key_property, prop, primary_key, primary_key=primary_key)
        if truncations:
            raise RecordError(f"Notion: key of {len(primary_key)} characters is too long", primary_key=primary_key)
        return value

    def _properties(self, record: Record, synced_at: dt.datetime, *, skip: Collection[str]) -> Json:
        dest = self.dest
        key = record.primary_key
        if not isinstance(key, str) or not key:
            raise RecordError("Notion: the record has an empty primary key", primary_key=key)
        values: dict[str, Any] = {}
        for name, value in record.properties.items():
            if name in skip or name in (dest.key_property, dest.synced_property):
                continue  # the key is written from primary_key, the stamp from synced_at
            target = name
            if name == dest.title_property and self.title_name:
                target = self.title_name
            elif name == self.title_name and dest.title_property in record.properties:
                self._warn(
                    f"Notion: record property {name!r} is named like the title property but title_property is "
                    f"{dest.title_property!r}; it is not written",
                    key=f"title-clash:{name}",
                )
                continue
            values[target] = value
        encoded = encode_properties(
            values, self.schema, primary_key=key, create_missing_options=dest.create_missing_options
        )
        for name, reason in encoded.dropped:
            self._warn(f"Notion {dest.name}: property {name!r} is not written: {reason}", key=f"drop:{name}")
        self._report(key, encoded.truncations)
        properties = encoded.properties
        properties[dest.key_property] = self._key_value(key)
        if self.synced:
            stamp = synced_at if synced_at.tzinfo is not None else synced_at.replace(tzinfo=dt.UTC)
            properties[self.synced] = {"date": {"start": stamp.isoformat(timespec="seconds")}}
        return properties

    @staticmethod
    def _check_size(what: str, size: int, primary_key: str) -> None:
        if size > PAYLOAD_BUDGET_BYTES:
            raise RecordError(
                f"Notion: the {what} is {size} bytes of JSON, over the {PAYLOAD_BUDGET_BYTES}-byte budget below "
                "Notion's 500 KB request limit; shorten its longest text properties",
                primary_key=primary_key,
            )

    # -- the session protocol ---------------------------------------------------------------------

    async def _session_enriched(self, record: Record, *, creating: bool) -> Record | None:
        """The record after the destination's ``session_enrich`` hook (None: skip the write)."""
        return await run_session_enrich(
            self.dest.session_enrich, self, record, creating=creating, owner=f"Notion {self.dest.name}"
        )

    async def _prepared(self, record: Record, synced_at: dt.datetime, *, creating: bool) -> tuple[Record, Json] | None:
        """The record after ``session_enrich`` and its property values (None: the hook skipped it).

        An update leaves out the create-only properties.
        """
        enriched = await self._session_enriched(record, creating=creating)
        if enriched is None:
            return None
        skip = () if creating else self.dest.create_only_properties
        return enriched, self._properties(enriched, synced_at, skip=skip)

    @staticmethod
    def _in_trash(page_id: str, primary_key: str) -> RecordError:
        """The error of a write to a page in the trash (Notion refuses it as archived)."""
        return RecordError(
            f"Notion page {page_id} is in the trash; restore it in Notion, or unlink it so the next pass creates a "
            "new page",
            primary_key=primary_key,
        )

    async def create(self, record: Record, synced_at: dt.datetime) -> str | bool:
        """Create the page (body included) and return its id (False: ``session_enrich`` skipped it).

        Raises:
            RecordError: A value does not fit (see encode.py), or Notion rejected the page (400).
        """
        prepared = await self._prepared(record, synced_at, creating=True)
        return False if prepared is None else await self._send_create(*prepared)

    async def update(self, existing_id: str, record: Record, synced_at: dt.datetime) -> bool:
        """Update the page's properties (never create-only ones, never the body).

        Raises:
            RecordError: The page is in the trash or gone, or a value does not fit.
        """
        prepared = await self._prepared(record, synced_at, creating=False)
        if prepared is None:
            return False
        await self._send_update(existing_id, *prepared)
        return True

    # -- the wire (the MCP session sends the same values through its tools) -----------------------

    async def _send_create(self, record: Record, properties: Json) -> str | bool:
        """Create the page of ``record`` with ``properties`` and its body; the page id."""
        blocks, truncation = body_blocks(record.body)
        if truncation is not None:
            self._report(record.primary_key, [truncation])
        request: Json = {
            "parent": {"type": "data_source_id", "data_source_id": self.target.data_source_id},
            "properties": properties,
        }
        size = payload_size(request)
        self._check_size("page's properties", size, record.primary_key)
        first, *rest = chunk_blocks(blocks, first_budget=PAYLOAD_BUDGET_BYTES - size - _CHILDREN_OVERHEAD)
        if first:
            request["children"] = first
        page = await self.client.create_page(request)
        page_id = str(page["id"])
        for sent, chunk in enumerate(rest):
            try:
                await self.client.append_block_children(page_id, chunk)
            except AuthError:
                raise
            except SyncError as err:
                # The page exists: returning its id keeps the link (a retry would duplicate it).
                logger.warning(
                    "Notion %s: page %s of record %s was created but its body is incomplete (%d of %d block "
                    "requests sent): %s",
                    self.dest.name,
                    page_id,
                    record.primary_key,
                    sent + 1,
                    len(rest) + 1,
                    err,
                )
                break
        return page_id

    async def _send_update(self, existing_id: str, record: Record, properties: Json) -> None:
        """Set ``properties`` on the page ``existing_id``."""
        request = {"properties": properties}
        self._check_size("update", payload_size(request), record.primary_key)
        try:
            await self.client.update_page(existing_id, request)
        except NotFound as err:
            raise RecordError(
                f"Notion page {existing_id} not found (deleted for good, or no longer shared with the integration)",
                primary_key=record.primary_key,
            ) from err
        except HTTPRecordError as err:
            if err.status_code == 400 and "archived" in err.body.lower():
                raise self._in_trash(existing_id, record.primary_key) from err
            raise

    async def mark_missing(self, destination_id: str, missing: bool) -> None:
        """``on_missing``: move the page to Notion's trash (its record left the source), or restore it.

        The trash is Notion's own archive: a page there can be restored by hand or by this call for
        30 days, and nothing is deleted. The source of a two-way pair does not read trashed pages.

        Raises:
            RecordError: The page is gone for good.
        """
        try:
            await self.client.update_page(destination_id, {"in_trash": bool(missing)})
        except NotFound as err:
            raise RecordError(f"Notion page {destination_id} not found", primary_key=destination_id) from err

    async def query_existing_rows(self) -> AsyncIterator[tuple[str, str]]:
        """Every (key, page id) of the data source, sorted by key.

        Every (key, page id) of the data source, 100 pages per request, sorted by key up to
        Notion's per-query cap.

        Only the key property is asked for (``filter_properties``), which keeps each page of the
        listing small. If Notion rejects that query (400 ``validation_error``: a property id it does
        not read back, say) or leaves the key out, the listing asks for whole pages instead, logs it
        once at INFO, and this destination lists that data source unfiltered from then on.

        One query reaches at most 10,000 pages; past that Notion stops paging and marks the answer
        ``request_status: incomplete``. A listing that stopped there would let the engine take every
        later row as gone (and create it again: a duplicate page), so the rest is read in windows of
        creation time (``created_time on_or_after`` the newest one seen, oldest first), pages already
        listed skipped. A window that cannot move on (more than 10,000 pages created within one
        minute, the resolution of Notion's timestamps) is a ``TransientError``: no partial listing.

        Pages in the trash are not returned by Notion's query (their rows look deleted); pages
        without a key (added by hand) are skipped.
        """
        key = self.dest.key_property
        seen: set[str] = set()
        status: dict[str, bool] = {}
        async for row in self._listing_query(None, [{"property": key, "direction": "ascending"}], status):
            seen.add(str(row["id"]))
            text = _key_text((row.get("properties") or {}).get(key))
            if text:
                yield text, str(row["id"])
        if not status.get("capped"):
            return
        logger.warning(
            "Notion data source %s holds more pages than one query returns (10,000); listing the rest by creation time",
            self.target.data_source_id,
        )
        since: str | None = None
        sorts = [{"timestamp": "created_time", "direction": "ascending"}]
        while True:
            window = {"timestamp": "created_time", "created_time": {"on_or_after": since}} if since else None
            newest = since
            async for row in self._listing_query(window, sorts, status):
                created = row.get("created_time")
                if isinstance(created, str) and (newest is None or parse_timestamp(created) > parse_timestamp(newest)):
                    newest = created
                page_id = str(row["id"])
                if page_id in seen:
                    continue
                seen.add(page_id)
                text = _key_text((row.get("properties") or {}).get(key))
                if text:
                    yield text, page_id
            if not status.get("capped"):
                return
            if newest is None or newest == since:
                raise TransientError(
                    f"Notion data source {self.target.data_source_id}: more than 10,000 pages were created within "
                    f"one minute ({newest}); Notion's query cannot list past them, so the listing is incomplete"
                )
            since = newest

    async def _listing_query(
        self, query_filter: Json | None, sorts: list[Json], status: dict[str, bool]
    ) -> AsyncIterator[Json]:
        """The page objects of one listing query, narrowed to the key property when Notion allows it.

        Sets ``status["capped"]`` when Notion says the query hit its result limit.
        """
        key = self.dest.key_property
        data_source_id = self.target.data_source_id
        prop_id = self.schema[key].get("id")
        while True:
            narrowed = [str(prop_id)] if prop_id and data_source_id not in self.dest._unfiltered else None
            status["capped"] = False
            reason: str | None = None
            yielded = False
            async with aclosing(
                self.client.iter_query(data_source_id, filter=query_filter, sorts=sorts, filter_properties=narrowed)
            ) as pages:
                try:
                    async for body in pages:
                        request_status = body.get("request_status")
                        if isinstance(request_status, dict) and request_status.get("type") == "incomplete":
                            status["capped"] = True
                        # A wiki's query also lists its child data sources: only pages are rows.
                        results = [
                            r
                            for r in body.get("results") or []
                            if isinstance(r, dict) and r.get("object", "page") == "page" and r.get("id")
                        ]
                        if narrowed and not yielded and any(key not in (r.get("properties") or {}) for r in results):
                            reason = "it left the key property out"
                            break
                        for row in results:
                            yielded = True
                            yield row
                except HTTPRecordError as err:
                    # Same query params on every page, so a rejection comes with the first page; after
                    # rows were yielded a restart would list them twice.
                    if not narrowed or yielded or err.status_code != 400 or "validation_error" not in err.body:
                        raise
                    reason = f"Notion rejected it ({_error_message(err)})"
            if reason is None:
                return
            self.dest._unfiltered.add(data_source_id)
            logger.info(
                "Notion data source %s: listing with filter_properties=%s failed: %s; listing whole pages "
                "instead (from now on, for this destination)",
                data_source_id,
                prop_id,
                reason,
            )

    async def query_existing_ids(self) -> dict[str, str]:
        """{key: page id}; for a key listed twice the last page wins (``query_existing_rows`` shows both)."""
        return {key: page_id async for key, page_id in self.query_existing_rows()}


def _error_message(err: HTTPRecordError) -> str:
    """Notion's ``message`` from an error body, else the body itself (shortened)."""
    try:
        message = json.loads(err.body).get("message")
    except (ValueError, AttributeError):
        message = None
    return str(message or err.body)[:300]


def _key_text(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    decoded = decode_property(value)
    if isinstance(decoded, float) and decoded.is_integer():
        decoded = int(decoded)
    if decoded is None or isinstance(decoded, (bool, list, dict)):
        return None
    text = str(decoded)
    return text if text.strip() else None

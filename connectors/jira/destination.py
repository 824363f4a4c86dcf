"""``JiraDestination``: issues of one Jira Cloud project, created and updated by our key.

Each record becomes one issue::

    summary            <- record.properties[title_property]   (newlines -> spaces, <= 255 characters)
    description        <- record.body as ADF                   (paragraphs; create and update; a
                                                               body of None leaves it alone, "" clears it)
    <mapped fields>    <- record.properties per field_map      (encoded by the field's schema)
    project, issuetype <- the destination's project and issue type (create only)
    entity property    <- {"pk": record.primary_key}           (key ``durable-sync``, create only)

**The key is written atomically with the create.** ``POST /rest/api/3/issue`` takes a ``properties``
array next to ``fields`` ("Creates an issue ... A transition may be applied ... and issue properties
set", request body ``IssueUpdateDetails.properties``: "Details of issue properties to be add or
update"), so an issue never exists without its key: a crash or a lost answer after the create cannot
leave an unkeyed issue behind (durable-sync created, then stamped in a second call, and duplicated
when it died in between — W15). The create itself is never resent after an ambiguous failure.

**Bulk create** (``batch=True``, the default): creates go 50 at a time through ``POST
/rest/api/3/issue/bulk`` — the session's :class:`~connectors.http.batch.Batcher` gathers the engine's
concurrent creates (100 in flight) and hands each its own outcome: its issue id, its own
``RecordError`` (mapped by ``failedElementNumber``), or "created, id unknown" when Jira's list of
created issues cannot be matched to the request (the listing then adopts them by their property).
Each issue carries its key property in the same element, so a lost bulk answer duplicates nothing.
Updates stay one ``PUT`` each: Jira's bulk edit (``POST /rest/api/3/bulk/issues/fields``) sets the
SAME values on every selected issue and runs asynchronously (a task to poll), so it cannot carry a
page of different records.

**Finding our issues again** (``query_existing_rows``): entity properties set over REST are not
JQL-searchable (that needs an app's ``jira:entityProperty`` index module), so the listing scopes by
project — ``project = "KEY" ORDER BY created ASC`` through ``/search/jql`` — and reads the property
inline (``properties=["durable-sync"]``), paging with ``nextPageToken``. Issues without the property
(made by hand) are not ours and are skipped.

**Eventual consistency.** ``/search/jql`` may not show an issue for seconds (minutes for bulk
changes) after it is created. A listing right after creates would then miss them, and the engine
would take linked issues for deleted and intents for creates that never landed. Two guards:

1. the ids this destination created in this process (the last 50) go into ``reconcileIssues``, which
   makes search read-after-write consistent for them;
2. after the last page, the listing reads issues *past the newest key search returned* —
   ``KEY-<n+1>``, ``KEY-<n+2>``, ... with ``GET /rest/api/3/issue/{key}`` (strongly consistent) — until
   ``probe_misses`` keys in a row do not exist. Issue numbers are allocated in sequence per project,
   so this finds issues created moments ago even when their create answer was lost (no id known).

The remaining window: more than ``probe_misses`` newest issues deleted in a row while the index lags.

Decisions (user-facing version in README.md): labels are ``list[str]`` with spaces replaced by ``_``
(Jira forbids spaces); components and versions are sent as ``[{"name": ...}]`` (durable-sync sent
strings — W27); a description over 32,767 characters is a ``RecordError`` unless
``truncate_description=True``; a summary over 255 characters is truncated and reported; unknown
fields, missing options, invalid account ids and anything else Jira rejects with 400 are
``RecordError``s naming the field and the value sent, and the pass goes on.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import logging
import os
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Unpack

from connectors.core import ConfigError, Record, RecordError, WarnOnce
from connectors.http import CredentialMembers, HttpSettings, Json, NotFound, Rate
from connectors.http.batch import Batcher
from connectors.jira.adf import normalize_text, text_to_adf
from connectors.jira.client import JiraClient, JiraCredentialArgs, JiraCredentials, JiraRejected
from connectors.jira.settings import (
    BATCH_MAX_CONCURRENCY,
    DEFAULT_DESTINATION_FIELD_MAP,
    DEFAULT_ISSUE_TYPE,
    JIRA_RATE,
    LISTING_PAGE_SIZE,
    MAX_BULK_CREATE,
    MAX_CONCURRENCY,
    MAX_DESCRIPTION_CHARS,
    MAX_LABEL_CHARS,
    MAX_PROBES,
    MAX_RECONCILE_IDS,
    MAX_SUMMARY_CHARS,
    PROBE_MISSES,
    PROJECT_ENV,
    PROJECT_KEY_RE,
    PROPERTY_KEY,
)

__all__ = ["JiraDestination", "Truncation", "field_kind"]

logger = logging.getLogger(__name__)

_SKIP = object()
_MAX_REPORTS = 1000
_TRUNCATION_MARK = "\n\n[truncated by durable-sync]"


@dataclass(frozen=True)
class Truncation:
    """A value of one record cut to fit Jira, kept in ``JiraDestination.truncations``."""

    primary_key: str
    field: str
    length: int
    limit: int

    def __str__(self) -> str:
        """One line for people."""
        return f"{self.primary_key}: {self.field} truncated from {self.length} to {self.limit} characters"


@dataclass(frozen=True)
class _Field:
    id: str
    name: str
    schema: Json


def field_kind(field_id: str, schema: Mapping[str, Any]) -> str:
    """How a Jira field is written, from its id and ``schema`` (``GET /rest/api/3/field``)."""
    kind = schema.get("type")
    items = schema.get("items")
    custom = str(schema.get("custom") or "")
    if field_id == "summary":
        return "summary"
    if field_id in ("description", "environment") or custom.endswith(":textarea"):
        return "adf"
    if field_id == "labels" or custom.endswith(":labels"):
        return "labels"
    table: dict[tuple[Any, Any], str] = {
        ("priority", None): "priority",
        ("user", None): "user",
        ("array", "user"): "users",
        ("date", None): "date",
        ("datetime", None): "datetime",
        ("array", "component"): "components",
        ("array", "version"): "versions",
        ("version", None): "version",
        ("option", None): "option",
        ("array", "option"): "options",
        ("number", None): "number",
        ("array", "string"): "strings",
        ("string", None): "string",
    }
    return table.get((kind, items if kind == "array" else None), "unsupported")


def _short(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


class JiraDestination(CredentialMembers[JiraCredentials]):
    """Issues of one Jira project, created and updated by ``Record.primary_key``.

    Args:
        project_key: The project (default: the ``project_env`` variable, read at each use).
        issue_type: The issue type of created issues (name, as in the project).
        title_property: The record property written to ``summary``.
        field_map: Record property -> Jira field id (``labels``, ``customfield_10010``) or field NAME
            (``Team``; resolved with ``GET /rest/api/3/field``). None: ``DEFAULT_DESTINATION_FIELD_MAP``.
            Unmapped properties are not written.
        property_key: The issue entity property holding our key.
        create_only_properties: Written on create, never on update.
        truncate_description: Cut a description over 32,767 characters (reported) instead of failing
            the record.
        project_env: The variable naming the project when ``project_key`` is not given.
        rate, http: As for ``JiraClient``.
        max_concurrency: Writes in flight at once; default 100 with ``batch`` (two bulk requests' worth), else 4.
        batch: Create issues 50 a request with Jira's bulk create (see above).
        probe_misses: Missing keys in a row that end the listing's read past the index (see above).
        name: Destination name.
        **credentials: ``base_url``, ``email``, ``token`` and their variables' names, as for ``JiraSource``.
    """

    stores_keys = True
    max_value_length: int | None = None  # long values are checked per field here

    def __init__(
        self,
        project_key: str | None = None,
        *,
        issue_type: str = DEFAULT_ISSUE_TYPE,
        title_property: str = "Summary",
        field_map: Mapping[str, str] | None = None,
        property_key: str = PROPERTY_KEY,
        create_only_properties: Iterable[str] = (),
        truncate_description: bool = False,
        project_env: str | None = PROJECT_ENV,
        http: HttpSettings | None = None,
        rate: Rate | None = JIRA_RATE,
        max_concurrency: int | None = None,
        batch: bool = True,
        probe_misses: int = PROBE_MISSES,
        name: str = "jira",
        **credentials: Unpack[JiraCredentialArgs],
    ) -> None:
        """Check the arguments and remember them; nothing is read or sent yet."""
        if not title_property:
            raise ConfigError("JiraDestination: title_property must be non-empty")
        if not property_key or len(property_key) > 255:
            raise ConfigError("JiraDestination: property_key must be 1..255 characters")
        if probe_misses < 1:
            raise ConfigError("JiraDestination: probe_misses must be >= 1")
        self.name = name
        self._project_key = project_key.strip().upper() if project_key else None
        if self._project_key and not PROJECT_KEY_RE.match(self._project_key):
            raise ConfigError(f"JiraDestination: {project_key!r} is not a Jira project key (e.g. ENG)")
        self.project_env = project_env
        self.issue_type = issue_type
        self.title_property = title_property
        self.field_map = dict(DEFAULT_DESTINATION_FIELD_MAP if field_map is None else field_map)
        self.property_key = property_key
        self.create_only_properties = set(create_only_properties)
        self.truncate_description = truncate_description
        self.credentials = JiraCredentials(**credentials)
        self.http = http
        self.rate = rate
        self.batch = batch
        if max_concurrency is None:
            max_concurrency = BATCH_MAX_CONCURRENCY if batch else MAX_CONCURRENCY
        self.max_concurrency = max_concurrency
        self.probe_misses = probe_misses
        self.truncations: collections.deque[Truncation] = collections.deque(maxlen=_MAX_REPORTS)
        # Ids created by this process, for reconcileIssues (search is eventually consistent).
        self.recent_ids: collections.deque[int] = collections.deque(maxlen=MAX_RECONCILE_IDS)

    # -- configuration ----------------------------------------------------------------------------

    def project_key(self) -> str | None:
        """The project key now (the argument, else the variable's), or None."""
        if self._project_key:
            return self._project_key
        raw = (os.environ.get(self.project_env) or "").strip().upper() if self.project_env else ""
        return raw or None

    @property
    def configured(self) -> bool:
        """Whether everything this connector needs is set (see ``config_hint``)."""
        return not self.credentials.missing() and bool(self.project_key())

    @property
    def config_hint(self) -> str:
        """``"configured"``, or what to set before the connector can run."""
        missing = self.credentials.missing()
        if not self.project_key():
            missing.append(f"{self.project_env or 'project_key'} (the key of the project issues go to, e.g. ENG)")
        return "set " + " and ".join(missing) if missing else "configured"

    def describe(self) -> str:
        """Where the records go, for people: a URL when one is known."""
        base, key = self.credentials.base_url(), self.project_key()
        if base and key:
            return f"{base}/browse/{key}"
        return "Jira (not configured)"

    # -- sessions ---------------------------------------------------------------------------------

    def _client(self) -> JiraClient:
        return self.credentials.client(f"JiraDestination {self.name!r}", http=self.http, rate=self.rate)

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[_JiraSession]:
        """A session on the project: the project, its issue types and the field catalog read once."""
        key = self.project_key()
        if not key:
            raise ConfigError(f"JiraDestination {self.name!r}: {self.config_hint}")
        if not PROJECT_KEY_RE.match(key):
            raise ConfigError(f"JiraDestination {self.name!r}: {key!r} is not a Jira project key (e.g. ENG)")
        async with self._client() as client:
            project = await client.get_project(key)
            if project is None:
                raise ConfigError(f"Jira project {key} not found at {client.base_url}, or the account cannot browse it")
            types = [t for t in project.get("issueTypes") or [] if isinstance(t, dict)]
            issue_type = next((t for t in types if str(t.get("name", "")).lower() == self.issue_type.lower()), None)
            if issue_type is None:
                names = ", ".join(str(t.get("name")) for t in types) or "none"
                raise ConfigError(f"Jira project {key} has no issue type {self.issue_type!r} (it has: {names})")
            catalog = await client.get_fields()
            session = _JiraSession(self, client, key, str(issue_type.get("id")), catalog)
            try:
                yield session
            finally:
                await session.aclose()


class _JiraSession:
    """One connection: the field catalog as read at the start, warnings once per session."""

    def __init__(
        self, dest: JiraDestination, client: JiraClient, project_key: str, issue_type_id: str, catalog: list[Json]
    ) -> None:
        self.dest = dest
        self.client = client
        self.project_key = project_key
        self.issue_type_id = issue_type_id
        self._warn = WarnOnce(logger)
        self.batcher: Batcher[Json, Json | None] | None = None
        if dest.batch:
            self.batcher = Batcher(
                client.bulk_create, max_size=MAX_BULK_CREATE, max_in_flight=2, name=f"jira {dest.name}"
            )
        by_id: dict[str, _Field] = {}
        by_name: dict[str, list[_Field]] = {}
        for raw in catalog:
            fid = str(raw.get("id") or raw.get("key") or "")
            if not fid:
                continue
            raw_schema = raw.get("schema")
            schema: Json = raw_schema if isinstance(raw_schema, dict) else {}
            field = _Field(fid, str(raw.get("name") or fid), schema)
            by_id[fid] = field
            by_name.setdefault(field.name.lower(), []).append(field)
        self.by_id = by_id
        self.resolved: dict[str, _Field] = {}
        self.unresolved: dict[str, str] = {}
        for prop, target in dest.field_map.items():
            field_or_none = by_id.get(target)
            if field_or_none is None:
                named = by_name.get(target.lower(), [])
                if len(named) == 1:
                    field_or_none = named[0]
                elif len(named) > 1:
                    ids = ", ".join(f.id for f in named)
                    self.unresolved[prop] = (
                        f"Jira has several fields named {target!r} ({ids}); map {prop!r} to one of the ids"
                    )
                    continue
            if field_or_none is None:
                self.unresolved[prop] = (
                    f"Jira field {target!r} (mapped from {prop!r}) does not exist on this site; fix field_map"
                )
                continue
            self.resolved[prop] = field_or_none
        for message in self.unresolved.values():
            self._warn(f"Jira {dest.name}: {message}")

    async def aclose(self) -> None:
        """Send the creates still gathered for a bulk request and wait for the ones in flight."""
        if self.batcher is not None:
            await self.batcher.aclose()

    def _truncated(self, primary_key: str, field: str, length: int, limit: int) -> None:
        report = Truncation(primary_key, field, length, limit)
        self.dest.truncations.append(report)
        logger.warning("Jira %s: record %s: %s", self.dest.name, primary_key, report)

    # -- encoding ---------------------------------------------------------------------------------

    def _summary(self, value: Any, pk: str) -> str:
        text = " ".join(_text(value, pk, "summary").split())  # Jira forbids newlines in a summary
        if len(text) > MAX_SUMMARY_CHARS:
            self._truncated(pk, "summary", len(text), MAX_SUMMARY_CHARS)
            text = text[: MAX_SUMMARY_CHARS - 1].rstrip() + "…"
        return text

    def _description(self, body: str | None, pk: str) -> Json | None:
        text = normalize_text(body)
        if text is None:
            return None
        if len(text) > MAX_DESCRIPTION_CHARS:
            if not self.dest.truncate_description:
                raise RecordError(
                    f"Jira: the description is {len(text)} characters, over Jira's limit of {MAX_DESCRIPTION_CHARS} "
                    "(shorten the body, or set truncate_description=True)",
                    primary_key=pk,
                )
            self._truncated(pk, "description", len(text), MAX_DESCRIPTION_CHARS)
            text = text[: MAX_DESCRIPTION_CHARS - len(_TRUNCATION_MARK)].rstrip() + _TRUNCATION_MARK
        return text_to_adf(text)

    def _encode(self, prop: str, field: _Field, value: Any, pk: str) -> Any:
        """The JSON for ``field``, ``_SKIP`` to leave it alone; RecordError when the value cannot fit."""
        kind = field_kind(field.id, field.schema)
        where = f"{prop!r} -> {field.name} ({field.id})"
        if kind == "unsupported":
            self._warn(
                f"Jira {self.dest.name}: {field.name} ({field.id}, type {field.schema.get('type')!r}) cannot be "
                f"written by this connector; {prop!r} is not written",
                key=f"unsupported:{field.id}",
            )
            return _SKIP
        empty = value is None or value == [] or value == ""
        if kind in _LIST_KINDS:
            return _LIST_ENCODERS[kind]([] if empty else _items(value, pk, where), pk, where)
        if kind == "priority":
            return _SKIP if empty else {"name": _text(value, pk, where)}
        if empty:
            return None
        return _SCALARS.get(kind, _string)(value, pk, where)

    def _fields(self, record: Record, *, creating: bool) -> Json:
        dest = self.dest
        pk = record.primary_key
        fields: Json = {}
        title = dest.title_property
        if title in record.properties and not (not creating and title in dest.create_only_properties):
            value = record.properties[title]
            if value is not None and str(value).strip():
                fields["summary"] = self._summary(value, pk)
        if creating and "summary" not in fields:
            raise RecordError(f"Jira: the record has no {title!r} (title_property) for the summary", primary_key=pk)
        if record.body is not None:
            # None means "this source has no body": a description written in Jira is left alone.
            # An empty body clears it.
            description = self._description(record.body, pk)
            if description is not None or not creating:
                fields["description"] = description
        for prop in dest.field_map:
            if prop == title or prop not in record.properties:
                continue
            if not creating and prop in dest.create_only_properties:
                continue
            value = record.properties[prop]
            field = self.resolved.get(prop)
            if field is None:
                if value is None or value == []:
                    continue
                raise RecordError(f"Jira: {self.unresolved.get(prop, prop)}", primary_key=pk)
            if field.id in ("summary", "description", "project", "issuetype"):
                self._warn(f"Jira {dest.name}: {prop!r} cannot be mapped to {field.id}; not written", key=f"own:{prop}")
                continue
            encoded = self._encode(prop, field, value, pk)
            if encoded is _SKIP or (creating and (encoded is None or encoded == [])):
                continue
            fields[field.id] = encoded
        return fields

    def _explain(self, err: JiraRejected, sent: Json, pk: str) -> RecordError:
        parts = list(err.messages)
        for fid, message in err.errors.items():
            field = self.by_id.get(fid)
            label = f"{field.name} ({fid})" if field and field.name != fid else fid
            value = sent.get(fid)
            shown = f" = {_short(value)}" if value is not None and fid != "description" else ""
            parts.append(f"{label}{shown}: {message}")
        detail = "; ".join(parts) or str(err)
        return RecordError(f"Jira rejected the issue of record {pk}: {detail}", primary_key=pk)

    # -- the session protocol ---------------------------------------------------------------------

    async def create(self, record: Record, synced_at: dt.datetime) -> str | bool:
        """Create the issue, our key in the same request; return its id (True: created, id unknown).

        Raises:
            RecordError: A value does not fit, or Jira rejected the issue (400).
            TransientError: The create may or may not have happened (timeout, 5xx); the next listing
                adopts the issue if it did.
        """
        pk = record.primary_key
        if not isinstance(pk, str) or not pk:
            raise RecordError("Jira: the record has an empty primary key", primary_key=pk)
        fields = self._fields(record, creating=True)
        body: Json = {
            "fields": {
                **fields,
                "project": {"key": self.project_key},
                "issuetype": {"id": self.issue_type_id},
            },
            "properties": [{"key": self.dest.property_key, "value": {"pk": pk}}],
        }
        try:
            if self.batcher is not None:
                created = await self.batcher.submit(body)
            else:
                created = await self.client.create_issue(body)
        except JiraRejected as err:
            raise self._explain(err, fields, pk) from err
        if created is None:
            return True  # Jira's bulk answer could not be matched to this element; the listing adopts it
        issue_id = str(created["id"])
        if issue_id.isdigit():
            self.dest.recent_ids.append(int(issue_id))
        return issue_id

    async def update(self, existing_id: str, record: Record, synced_at: dt.datetime) -> bool:
        """Edit the issue's fields (never create-only ones, never project, type or key property).

        Raises:
            RecordError: The issue is gone, a value does not fit, or Jira rejected the edit.
        """
        pk = record.primary_key
        fields = self._fields(record, creating=False)
        if not fields:
            return True
        try:
            await self.client.edit_issue(existing_id, {"fields": fields})
        except NotFound as err:
            raise RecordError(
                f"Jira issue {existing_id} not found (deleted, or the account can no longer see it)", primary_key=pk
            ) from err
        except JiraRejected as err:
            raise self._explain(err, fields, pk) from err
        return True

    def _key_of(self, issue: Mapping[str, Any]) -> str | None:
        properties = issue.get("properties")
        value = properties.get(self.dest.property_key) if isinstance(properties, dict) else None
        if isinstance(value, dict):
            value = value.get("pk")
        if value is None or isinstance(value, (dict, list, bool)):
            return None
        text = str(value)
        return text if text.strip() else None

    def _number(self, key: Any) -> int | None:
        if not isinstance(key, str):
            return None
        prefix, _, number = key.rpartition("-")
        return int(number) if prefix == self.project_key and number.isdigit() else None

    async def query_existing_rows(self) -> AsyncIterator[tuple[str, str]]:
        """Every (our key, issue id) of the project: search, then a read past the index (module docstring)."""
        prop = self.dest.property_key
        newest = 0
        async for body in self.client.iter_search(
            f'project = "{self.project_key}" ORDER BY created ASC',
            fields=["project"],
            properties=[prop],
            max_results=LISTING_PAGE_SIZE,
            reconcile_issues=list(self.dest.recent_ids),
        ):
            for issue in body.get("issues") or []:
                if not isinstance(issue, dict) or not issue.get("id"):
                    continue
                number = self._number(issue.get("key"))
                if number is not None:
                    newest = max(newest, number)
                pk = self._key_of(issue)
                if pk is not None:
                    yield pk, str(issue["id"])
        misses = probes = 0
        number = newest
        while misses < self.dest.probe_misses:
            if probes >= MAX_PROBES:
                logger.warning(
                    "Jira %s: read %d issues past the search index of %s and found more; the rest is left to the "
                    "next listing",
                    self.dest.name,
                    probes,
                    self.project_key,
                )
                return
            number += 1
            probes += 1
            issue = await self.client.get_issue(f"{self.project_key}-{number}", fields=["project"], properties=[prop])
            if issue is None:
                misses += 1
                continue
            misses = 0
            project = (issue.get("fields") or {}).get("project") if isinstance(issue.get("fields"), dict) else None
            if _project_key_of(project) != self.project_key:
                continue  # moved to another project since; its old key still answers
            pk = self._key_of(issue)
            if pk is not None:
                yield pk, str(issue["id"])

    async def query_existing_ids(self) -> dict[str, str]:
        """{key: issue id}; for a key listed twice the last one wins (``query_existing_rows`` shows both)."""
        return {key: issue_id async for key, issue_id in self.query_existing_rows()}


# --------------------------------------------------------------------------------------------------
# Value encoders (neutral value -> Jira JSON); each raises RecordError naming the property and field


def _project_key_of(project: Any) -> str | None:
    return str(project.get("key")) if isinstance(project, dict) and project.get("key") else None


def _text(value: Any, pk: str, where: str) -> str:
    if isinstance(value, (list, dict)):
        raise RecordError(f"Jira {where}: expected one value, got {type(value).__name__}", primary_key=pk)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


def _items(value: Any, pk: str, where: str) -> list[str]:
    raw = value if isinstance(value, (list, tuple)) else [value]
    out: list[str] = []
    for item in raw:
        if item is None:
            continue
        if isinstance(item, (list, dict)):
            raise RecordError(f"Jira {where}: list items must be text, got {type(item).__name__}", primary_key=pk)
        text = str(item).strip()
        if text and text not in out:
            out.append(text)
    return out


def _label(item: str, pk: str, where: str) -> str:
    label = "_".join(item.split())  # Jira labels cannot contain spaces
    if len(label) > MAX_LABEL_CHARS:
        raise RecordError(f"Jira {where}: label {label[:40]!r}... is over {MAX_LABEL_CHARS} characters", primary_key=pk)
    return label


def _date(value: Any, pk: str, where: str) -> str:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()  # the date where the instant was recorded (its own offset)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()[:10]).isoformat()
        except ValueError:
            pass
    raise RecordError(f"Jira {where}: {_short(value)} is not a date", primary_key=pk)


def _datetime(value: Any, pk: str, where: str) -> str:
    when: dt.datetime | None = None
    if isinstance(value, dt.datetime):
        when = value
    elif isinstance(value, dt.date):
        when = dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    elif isinstance(value, str):
        try:
            when = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            when = None
    if when is None or when.tzinfo is None:
        raise RecordError(f"Jira {where}: {_short(value)} is not a date-time with a timezone", primary_key=pk)
    # Jira's format: 2024-05-01T12:00:00.000+0000
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}" + when.strftime("%z")


def _number(value: Any, pk: str, where: str) -> int | float:
    if isinstance(value, bool):
        raise RecordError(f"Jira {where}: a checkbox value is not a number", primary_key=pk)
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            pass
        else:
            return int(number) if number.is_integer() else number
    raise RecordError(f"Jira {where}: {_short(value)} is not a number", primary_key=pk)


# List field kind -> the JSON of its items (an empty list clears the field).
_LIST_ENCODERS: dict[str, Callable[[list[str], str, str], list[Any]]] = {
    "labels": lambda items, pk, where: list(dict.fromkeys(_label(item, pk, where) for item in items)),
    "strings": lambda items, pk, where: list(items),
    "components": lambda items, pk, where: [{"name": item} for item in items],
    "versions": lambda items, pk, where: [{"name": item} for item in items],
    "options": lambda items, pk, where: [{"value": item} for item in items],
    "users": lambda items, pk, where: [{"accountId": item} for item in items],
}
_LIST_KINDS = frozenset(_LIST_ENCODERS)


def _string(value: Any, pk: str, where: str) -> str:
    """A text field's value: lists joined, dates in ISO form, bools lowercased."""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value).lower() if isinstance(value, bool) else str(value)


# Field kind -> the JSON of a non-empty value (other kinds are text: ``_string``).
_SCALARS: dict[str, Callable[[Any, str, str], Any]] = {
    "adf": lambda value, pk, where: text_to_adf(_text(value, pk, where)),
    "user": lambda value, pk, where: {"accountId": _text(value, pk, where)},
    "version": lambda value, pk, where: {"name": _text(value, pk, where)},
    "option": lambda value, pk, where: {"value": _text(value, pk, where)},
    "date": _date,
    "datetime": _datetime,
    "number": _number,
}

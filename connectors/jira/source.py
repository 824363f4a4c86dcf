"""``JiraSource``: Jira Cloud issues as records, one JQL per spec, paged with ``nextPageToken``.

Specs: ``jql:<slug>`` for each named query, ``project:<KEY>`` for each project (JQL
``project = "KEY" ORDER BY created ASC``). Records: ``primary_key`` = the issue **id** (a key such as
``ENG-7`` changes when the issue moves to another project; the id never does), properties as listed
in ``README.md``, ``body`` = the description (ADF) as plain text.

Paging: ``POST /rest/api/3/search/jql`` (the old ``/rest/api/3/search`` answers 410 Gone), 100 issues
a page. The cursor (opaque to the engine, documented for operators)::

    {"v": 1, "q": "<12 hex of sha256(jql)>", "t": "<Jira's nextPageToken>"}

Jira's tokens expire (7 days, per Atlassian). A stored cursor whose token Jira refuses (400), or
that was made for another JQL (the spec's query was edited), restarts the pass at the first page
with a warning: already-synced issues come back unchanged and cost no writes.

Targeted refresh (``only_items``: issue ids or keys) runs ``id in (...) AND (<the spec's JQL>)`` in
batches of 100, each paged to its end (durable-sync read only the first page). Ids or keys Jira says
do not exist are dropped from the batch; anything that is neither an id nor a key is skipped.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Unpack

from connectors.core import ConfigError, EnrichContext, EnrichHook, Record, SourceSpec, checked_hook, enrich_records
from connectors.http import CredentialMembers, HttpSettings, Json, Rate, drain_pages
from connectors.jira.adf import adf_to_text
from connectors.jira.client import JiraClient, JiraCredentialArgs, JiraCredentials, JiraRejected
from connectors.jira.settings import (
    CURSOR_VERSION,
    DEFAULT_INTERVAL_MINUTES,
    DEFAULT_SOURCE_FIELDS,
    JIRA_RATE,
    NO_SUMMARY,
    ONLY_ITEMS_BATCH,
    PAGE_SIZE,
    PROJECT_KEY_RE,
)

__all__ = ["JiraSource", "issue_record", "parse_jira_datetime"]

logger = logging.getLogger(__name__)

_SLUG_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")
_ID_RE = re.compile(r"^[0-9]{1,18}$")
_KEY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*-[0-9]+$")
_ORDER_BY_RE = re.compile(r"\border\s+by\b", re.IGNORECASE)
_MISSING_ITEM_RE = re.compile(r"issue with key '([^']+)' does not exist", re.IGNORECASE)
# Jira's own renderings, used to decode a custom field when the answer carries no schema for it:
# ``2024-03-01T10:15:30.000+0100`` (date-time custom fields) and ``2024-03-01`` (date pickers).
_JIRA_DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:?\d{2})$")
_JIRA_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# Record property -> the Jira field it comes from (a property is emitted only if its field is asked for).
_PROPERTY_FIELDS: dict[str, str] = {
    "Summary": "summary",
    "Project": "project",
    "Issue Type": "issuetype",
    "Status": "status",
    "Priority": "priority",
    "Assignee": "assignee",
    "Reporter": "reporter",
    "Labels": "labels",
    "Components": "components",
    "Fix versions": "fixVersions",
    "Due": "duedate",
    "Created": "created",
    "Updated": "updated",
}


def parse_jira_datetime(value: Any) -> dt.datetime | str | None:
    """Jira's ``2024-03-01T10:15:30.000+0100`` as an aware datetime keeping its offset.

    Jira's ``2024-03-01T10:15:30.000+0100`` as an aware datetime keeping its offset (the raw string
    if unparseable).

    The offset has no colon, which ``datetime.fromisoformat`` accepts only from Python 3.11 on (our
    floor); ``strptime``'s ``%z`` is tried as well, so the parse never depends on that.
    """
    if not isinstance(value, str) or not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        try:
            when = dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")
        except ValueError:
            return value
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def _parse_date(value: Any) -> dt.date | str | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return value


def _name(value: Any, *keys: str) -> str | None:
    if not isinstance(value, dict):
        return None
    for key in keys or ("name",):
        found = value.get(key)
        if isinstance(found, str) and found:
            return found
    return None


def _names(value: Any, *keys: str) -> list[str]:
    if not isinstance(value, list):
        return []
    out = []
    for item in value:
        name = item if isinstance(item, str) else _name(item, *keys)
        if name:
            out.append(name)
    return out


def _custom_value(value: Any, schema: Mapping[str, Any] | None = None) -> Any:
    """A custom field's value as a neutral value, by the field's ``schema`` when Jira sent it.

    Date pickers (``{"type": "date"}``) arrive as ``2024-03-01`` and become ``datetime.date``; date-time
    fields (``{"type": "datetime"}``) arrive as ``2024-03-01T10:15:30.000+0100`` and become aware
    datetimes; options become their value, users their display name, ADF text its plain text. Without
    a schema, a string in exactly one of Jira's two date renderings is decoded the same way.
    """
    kind = schema.get("type") if isinstance(schema, Mapping) else None
    if isinstance(value, str):
        if kind == "date" or (kind is None and _JIRA_DATE_RE.match(value)):
            return _parse_date(value)
        if kind == "datetime" or (kind is None and _JIRA_DATETIME_RE.match(value)):
            return parse_jira_datetime(value)
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, dict):
        if value.get("type") == "doc":
            return adf_to_text(value)
        return _name(value, "value", "displayName", "name", "key")
    if isinstance(value, list):
        return _names(value, "value", "displayName", "name", "key")
    return str(value)


def issue_record(
    issue: Mapping[str, Any],
    *,
    base_url: str,
    fields: Iterable[str] = DEFAULT_SOURCE_FIELDS,
    custom_fields: Mapping[str, str] | None = None,
    schema: Mapping[str, Any] | None = None,
) -> Record | None:
    """One search result as a record: ``primary_key`` = the issue id; None without an id.

    Args:
        issue: The issue JSON (``id``, ``key``, ``fields``).
        base_url: The site, for ``URL`` (``<base>/browse/<key>``).
        fields: The fields that were asked for; properties of the others are left out (not None),
            so narrowing the fields never clears a destination's values.
        custom_fields: Extra record property -> field id (e.g. ``{"Team": "customfield_10010"}``).
        schema: The answer's ``schema`` map (``expand=schema``): field id -> ``{"type": ...}``, which
            says how a custom field's value is decoded.
    """
    issue_id = issue.get("id")
    if issue_id is None or str(issue_id) == "":
        return None
    raw_fields = issue.get("fields")
    data: Mapping[str, Any] = raw_fields if isinstance(raw_fields, dict) else {}
    asked = set(fields)
    key = issue.get("key") if isinstance(issue.get("key"), str) else None
    values: dict[str, Any] = {
        "Summary": data.get("summary") or NO_SUMMARY,
        "Issue Key": key,
        "Project": _name(data.get("project"), "key"),
        "Issue Type": _name(data.get("issuetype")),
        "Status": _name(data.get("status")),
        "Priority": _name(data.get("priority")),
        "Assignee": _name(data.get("assignee"), "displayName", "name"),
        "Reporter": _name(data.get("reporter"), "displayName", "name"),
        "Labels": _names(data.get("labels")),
        "Components": _names(data.get("components")),
        "Fix versions": _names(data.get("fixVersions")),
        "Due": _parse_date(data.get("duedate")),
        "Created": parse_jira_datetime(data.get("created")),
        "Updated": parse_jira_datetime(data.get("updated")),
        "URL": f"{base_url}/browse/{key}" if key else None,
    }
    properties = {
        name: value for name, value in values.items() if name not in _PROPERTY_FIELDS or _PROPERTY_FIELDS[name] in asked
    }
    schemas: Mapping[str, Any] = schema if isinstance(schema, Mapping) else {}
    for name, field_id in (custom_fields or {}).items():
        properties[name] = _custom_value(data.get(field_id), schemas.get(field_id))
    body = adf_to_text(data.get("description")) if "description" in asked else None
    return Record(str(issue_id), properties, body)


def _strip_order_by(jql: str) -> str:
    """The JQL without its ORDER BY clause (a targeted query adds its own)."""
    matches = list(_ORDER_BY_RE.finditer(jql))
    for match in reversed(matches):
        before = jql[: match.start()]
        # Only an ORDER BY outside quotes ends the query.
        if before.count('"') % 2 == 0 and before.count("'") % 2 == 0:
            return before.strip()
    return jql.strip()


class JiraSource(CredentialMembers[JiraCredentials]):
    """Issues of Jira Cloud as records, one JQL per spec.

    Args:
        queries: ``{slug: jql}`` (or ``[(slug, jql)]``): one spec ``jql:<slug>`` each.
        projects: Project keys: one spec ``project:<KEY>`` each (``project = "KEY" ORDER BY created ASC``).
        **credentials: ``base_url``, ``email``, ``token`` (explicit credentials; default: the environment
            variables, read at each use) and ``base_url_env``, ``email_env``, ``token_env`` (their variable
            names): ``JiraCredentialArgs``, as for ``JiraCredentials``.
        interval_minutes: How often each spec syncs.
        fields: Jira fields a search returns (``/search/jql`` returns only ids without them).
        custom_fields: Extra record property -> Jira field id, decoded to neutral values.
        page_size: Issues per page (Jira may return fewer).
        enrich: A per-record hook ``(record, EnrichContext) -> record | None`` (sync or async) run while the
            page's ``JiraClient`` is open (``ctx.client`` for extra calls: changelog, comments, remote
            links); a raise fails that record only.
        name: Source name.
        rate, http: As for ``JiraClient``.
    """

    incremental = False

    def __init__(
        self,
        queries: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        projects: Sequence[str] | None = None,
        *,
        interval_minutes: int = DEFAULT_INTERVAL_MINUTES,
        fields: Sequence[str] = DEFAULT_SOURCE_FIELDS,
        custom_fields: Mapping[str, str] | None = None,
        page_size: int = PAGE_SIZE,
        enrich: EnrichHook | None = None,
        name: str = "jira",
        http: HttpSettings | None = None,
        rate: Rate | None = JIRA_RATE,
        **credentials: Unpack[JiraCredentialArgs],
    ) -> None:
        """Check the arguments and remember them; nothing is read or sent yet."""
        if not 1 <= page_size <= 5000:
            raise ConfigError(f"JiraSource: page_size must be within 1..5000, got {page_size!r}")
        pairs = list(queries.items()) if isinstance(queries, Mapping) else list(queries or [])
        self._jql: dict[str, str] = {}
        for slug, jql in pairs:
            if not isinstance(slug, str) or not _SLUG_RE.match(slug):
                raise ConfigError(f"JiraSource: query slug {slug!r} must be letters, digits, '_', '.' or '-'")
            if not isinstance(jql, str) or not jql.strip():
                raise ConfigError(f"JiraSource: query {slug!r} has no JQL")
            self._jql[f"jql:{slug}"] = jql.strip()
        for raw in projects or []:
            key = str(raw).strip().upper()
            if not PROJECT_KEY_RE.match(key):
                raise ConfigError(f"JiraSource: {raw!r} is not a Jira project key (e.g. ENG)")
            self._jql[f"project:{key}"] = f'project = "{key}" ORDER BY created ASC'
        self.name = name
        self.interval_minutes = interval_minutes
        self.fields = tuple(dict.fromkeys(fields))
        self.custom_fields = dict(custom_fields or {})
        self.page_size = page_size
        self.enrich: EnrichHook | None = checked_hook(enrich, f"JiraSource {name!r}")
        self.credentials = JiraCredentials(**credentials)
        self.http = http
        self.rate = rate

    # -- configuration ----------------------------------------------------------------------------

    def specs(self) -> list[SourceSpec]:
        """The units of work, one partition each."""
        return [SourceSpec(key, self.interval_minutes, {"jql": jql}) for key, jql in self._jql.items()]

    @property
    def configured(self) -> bool:
        """Whether everything this connector needs is set (see ``config_hint``)."""
        return bool(self._jql) and not self.credentials.missing()

    @property
    def config_hint(self) -> str:
        """``"configured"``, or what to set before the connector can run."""
        missing = list(self.credentials.missing())
        if not self._jql:
            missing.append("queries={slug: jql} or projects=[KEY] (JIRA_PROJECTS)")
        return "set " + " and ".join(missing) if missing else "configured"

    # -- reading ----------------------------------------------------------------------------------

    def _client(self) -> JiraClient:
        return self.credentials.client(f"JiraSource {self.name!r}", http=self.http, rate=self.rate)

    def _spec_jql(self, spec: SourceSpec) -> str:
        jql = spec.params.get("jql") if isinstance(spec.params, dict) else None
        jql = jql or self._jql.get(spec.key)
        if not jql:
            raise ConfigError(f"JiraSource {self.name!r}: unknown spec {spec.key!r}")
        return str(jql)

    def _records(self, body: Mapping[str, Any], base_url: str) -> list[Record]:
        records: list[Record] = []
        schema = body.get("schema") if isinstance(body.get("schema"), dict) else None
        for issue in body.get("issues") or []:
            if not isinstance(issue, dict):
                continue
            record = issue_record(
                issue, base_url=base_url, fields=self.fields, custom_fields=self.custom_fields, schema=schema
            )
            if record is not None:
                records.append(record)
        return records

    def _search_fields(self) -> list[str]:
        return list(dict.fromkeys([*self.fields, *self.custom_fields.values()]))

    def _expand(self) -> tuple[str, ...]:
        # The answer's field types decode custom fields (a date picker's "2024-03-01" is a date, a
        # text field's is text); system fields are decoded by name and need none.
        return ("schema",) if self.custom_fields else ()

    async def fetch_page(
        self, spec: SourceSpec, only_items: list[str] | None, cursor: str | None
    ) -> tuple[list[Record], str | None]:
        """One page of records and the cursor of the next (None after the last)."""
        jql = self._spec_jql(spec)
        async with self._client() as client:
            ctx = EnrichContext(client, spec, self.name)
            owner = f"Jira source {self.name!r}"
            if only_items is not None:
                records, next_cursor = await self._fetch_items(client, jql, only_items, cursor)
                return await enrich_records(self.enrich, records, ctx, owner=owner), next_cursor
            query = _digest(jql)
            token = self._token_from(cursor, query, spec.key)
            body = await self._search(client, jql, token, spec.key)
            records = await enrich_records(self.enrich, self._records(body, client.base_url), ctx, owner=owner)
        next_token = client.pagination.next_token(body)
        if next_token is None:
            return records, None
        return records, _dump({"v": CURSOR_VERSION, "q": query, "t": next_token})

    async def _search(self, client: JiraClient, jql: str, token: str | None, where: str) -> Json:
        try:
            return await client.search(
                jql,
                fields=self._search_fields(),
                max_results=self.page_size,
                next_page_token=token,
                expand=self._expand(),
            )
        except JiraRejected as err:
            if token is None:
                raise
            # nextPageToken expired (or the query changed under it): start the pass over.
            logger.warning(
                "Jira source %s %s: the stored page token was refused (%s); restarting the pass", self.name, where, err
            )
            return await client.search(
                jql, fields=self._search_fields(), max_results=self.page_size, expand=self._expand()
            )

    def _token_from(self, cursor: str | None, query: str, where: str) -> str | None:
        if cursor is None:
            return None
        state = _load(cursor, where)
        if state.get("q") != query:
            logger.warning(
                "Jira source %s %s: the spec's JQL changed since the cursor was stored; restarting", self.name, where
            )
            return None
        token = state.get("t")
        return token if isinstance(token, str) and token else None

    async def _fetch_items(
        self, client: JiraClient, jql: str, only_items: list[str], cursor: str | None
    ) -> tuple[list[Record], str | None]:
        items: list[str] = []
        for raw in only_items:
            item = str(raw).strip()
            if _ID_RE.match(item) or _KEY_RE.match(item):
                items.append(item.upper() if _KEY_RE.match(item) else item)
            elif item:
                logger.warning("Jira source %s: %r is neither an issue id nor a key; skipped", self.name, item)
        items = list(dict.fromkeys(items))
        batches = [items[i : i + ONLY_ITEMS_BATCH] for i in range(0, len(items), ONLY_ITEMS_BATCH)]
        state = _load(cursor, "only_items") if cursor else {}
        raw_index, raw_token = state.get("b"), state.get("t")
        index = raw_index if isinstance(raw_index, int) else 0
        token = raw_token if isinstance(raw_token, str) else None
        if index >= len(batches):
            return [], None
        scope = _strip_order_by(jql)
        batch = batches[index]
        body: Json = {"issues": [], "isLast": True}
        while batch:
            query = f"id in ({', '.join(_quote(i) for i in batch)})" + (f" AND ({scope})" if scope else "")
            try:
                body = await client.search(
                    f"{query} ORDER BY created ASC",
                    fields=self._search_fields(),
                    max_results=self.page_size,
                    next_page_token=token,
                    expand=self._expand(),
                )
                break
            except JiraRejected as err:
                # JQL fails as a whole on a key that does not exist; drop those and ask again.
                missing = {m.upper() for text in err.messages for m in _MISSING_ITEM_RE.findall(text)}
                kept = [i for i in batch if i.upper() not in missing]
                if not missing or len(kept) == len(batch):
                    raise
                logger.info("Jira source %s: issues %s do not exist; skipped", self.name, ", ".join(sorted(missing)))
                batch, token = kept, None
        records = self._records(body, client.base_url)
        next_token = client.pagination.next_token(body) if batch else None
        if next_token is not None:
            return records, _dump({"v": CURSOR_VERSION, "b": index, "t": next_token})
        if index + 1 < len(batches):
            return records, _dump({"v": CURSOR_VERSION, "b": index + 1, "t": None})
        return records, None

    async def fetch(self, spec: SourceSpec, only_items: list[str] | None = None) -> list[Record]:
        """Every record of the spec (a drain over ``fetch_page``)."""
        return await drain_pages(self.fetch_page, spec, only_items)


def _quote(item: str) -> str:
    return f'"{item}"'


def _digest(jql: str) -> str:
    return hashlib.sha256(jql.encode()).hexdigest()[:12]


def _dump(state: Json) -> str:
    return json.dumps(state, sort_keys=True, separators=(",", ":"))


def _load(cursor: str, where: str) -> Json:
    try:
        state = json.loads(cursor)
        if not isinstance(state, dict) or state.get("v") != CURSOR_VERSION:
            raise ValueError("wrong version")
    except ValueError as err:
        raise ConfigError(f"JiraSource {where}: cursor {cursor[:200]!r} is not one of ours ({err})") from None
    return state

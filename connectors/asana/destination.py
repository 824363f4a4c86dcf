"""``AsanaDestination``: tasks of one Asana project, keyed on our primary key.

Each record becomes one task of the project::

    name                 <- record.properties[title_property]
    notes | html_notes   <- record.body                       (create and update; None leaves it alone)
    <key_field>          <- record.primary_key                (a Text custom field, default "Source ID")
    <synced_field>       <- synced_at                         (optional Date custom field, with time)
    native fields        <- properties named (or field_map'ped to) due_on, due_at, start_on, completed,
                            assignee, name, notes, html_notes
    custom fields        <- every other property, by custom field NAME, encoded by the field's type

Decisions (the user-facing version is in README.md):

- **Where the key lives.** Asana's ``external.gid`` would be the natural home, but Asana's docs say
  "You will need to authenticate with OAuth, as the gid and data are app-specific"
  (developers.asana.com/docs/custom-external-data): a personal access token cannot rely on it. The
  key goes into a Text custom field named ``key_field``, resolved by name once per session, and the
  listing reads it back (``opt_fields=custom_fields.text_value``) so a reconcile adopts tasks created
  but never linked. ``key_field=None`` keeps the key in the engine's link map only (free workspaces
  have no custom fields): then ``stores_keys`` is False and a create whose answer was lost cannot be
  adopted, so it may be created twice.
- **Custom fields by name.** The project's custom field settings are read at the start of each
  session (one listing); enum and multi-enum values are option NAMES resolved to option gids. A
  missing or disabled option is a ``RecordError`` naming the option and the field. Unknown and
  computed fields are dropped with one warning per session.
- **Users.** ``assignee`` (and people fields) take a user gid or an email; Asana resolves either in
  ``GET /users/{gid-or-email}``, cached per destination. A user who does not exist or is not in the
  project's workspace is a ``RecordError``.
- **Locked fields.** Asana answers 403 when a locked custom field is written by someone who may not
  edit it. A 403 whose message is about a custom field is that record's error, not a revoked token;
  every other 403 and every 401 is an ``AuthError`` (pauses the credential).
- **Creates** are never resent after an ambiguous failure (timeout, 500/502/504): the error surfaces
  and the engine's next reconcile adopts the task by its key field.
- **Batches.** With ``batch=True`` (the default) creates and updates go through Asana's Batch API,
  10 actions a ``POST /batch``: the session's :class:`~connectors.http.batch.Batcher` gathers the
  engine's concurrent writes (20 in flight) and answers each with its own action's result, so a
  rejected task is that record's ``RecordError`` and the others land. Asana counts each action
  against the rate limit and the concurrent-write limit as if sent alone, so batching saves round
  trips (about 10x fewer requests), not quota; one batch is in flight at a time.
- **Listing** pages ``GET /projects/{gid}/tasks`` 100 at a time. Offset tokens expire; an expired one
  restarts the listing from the first page once (tasks already listed are not listed again); a second
  expiry fails the listing as a ``TransientError`` (the pass is retried later).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from collections.abc import AsyncIterator, Awaitable, Collection, Iterable, Mapping, Sequence
from contextlib import aclosing, asynccontextmanager
from typing import Any
from urllib.parse import quote

from connectors.asana.client import AsanaClient, AsanaCredentials, OffsetExpired, parse_project_gid
from connectors.asana.encode import (
    EncodeError,
    encode_completed,
    encode_custom_value,
    encode_due,
    encode_start,
    field_kind,
    format_datetime,
    render_text,
    to_html_notes,
    unwritable_reason,
)
from connectors.asana.settings import (
    ASANA_API_BASE,
    ASANA_APP_BASE,
    ASANA_FREE_RATE,
    ASANA_PAID_RATE,
    BATCH_MAX_CONCURRENCY,
    DEFAULT_KEY_FIELD,
    MAX_BATCH_ACTIONS,
    MAX_CONCURRENCY,
    MAX_CONCURRENT_READS,
    MAX_CONCURRENT_WRITES,
    MAX_NOTES_CHARS,
    NATIVE_FIELDS,
    PROJECT_ENV,
    TOKEN_ENV,
)
from connectors.core import (
    ConfigError,
    Record,
    RecordError,
    SchemaChange,
    SyncError,
    TransientError,
    WarnOnce,
    auth_error_in_chain,
)
from connectors.http import (
    CredentialMembers,
    HTTPAuthError,
    HTTPRecordError,
    HttpSettings,
    Json,
    NotFound,
    Rate,
    TokenCredentials,
)
from connectors.http.batch import Batcher

__all__ = ["AsanaDestination"]

logger = logging.getLogger(__name__)

BODY_FIELDS = ("notes", "html_notes")
_GID_RE = re.compile(r"^\d+$")
_FIELD_REFUSAL_RE = re.compile(r"custom[ _]?field", re.I)
PAYMENT_REQUIRED = 402  # Asana's answer to a premium-only feature (custom fields) on a free workspace


class AsanaDestination(CredentialMembers[TokenCredentials]):
    """Tasks of one Asana project, created and updated by key.

    Args:
        project_gid: The project (a gid or its URL). Defaults to the ``project_env`` variable.
        title_property: The RECORD property written to the task's ``name``.
        body_field: Where ``Record.body`` goes: ``"notes"`` (plain text) or ``"html_notes"`` (the text
            XML-escaped into Asana rich text).
        field_map: Record property -> target: a native field (``due_on``, ``due_at``, ``start_on``,
            ``completed``, ``assignee``, ``name``, ``notes``, ``html_notes``) or a custom field NAME.
            Unmapped properties go to the native field or custom field of the same name.
        key_field: The Text custom field holding ``Record.primary_key``; None keeps the key in the
            link map only (see the module docstring for what that costs).
        synced_field: A Date custom field stamped with the write time (date and time) on every write;
            None: off; missing from the project: skipped with a warning.
        create_only_properties: Written on create, never on update.
        token: The personal access token; default: the ``token_env`` variable, read at each use.
        token_env: Environment variable of the token (``NAME_FILE`` works too).
        project_env: Environment variable of the project gid (None: do not read one).
        base_url: API base (a fake in tests).
        http: Transport, sleep, clock and retry policy (:class:`~connectors.http.HttpSettings`).
        rate: The token's request rate; default 150 a minute, or 1,500 with ``paid=True``.
        paid: The workspace is on a paid plan (1,500 requests a minute per token).
        max_concurrent_reads: GETs in flight per token (Asana allows 50).
        max_concurrent_writes: Writes in flight per token (Asana allows 15).
        max_concurrency: Writes this destination keeps in flight (the engine's workers); default 20
            with ``batch`` (two batches' worth), else 8.
        batch: Send creates and updates through Asana's Batch API, 10 a request (see above).
        name: Destination name.
    """

    max_value_length: int | None = None

    def __init__(
        self,
        project_gid: str | None = None,
        *,
        title_property: str = "Name",
        body_field: str = "notes",
        field_map: Mapping[str, str] | None = None,
        key_field: str | None = DEFAULT_KEY_FIELD,
        synced_field: str | None = None,
        create_only_properties: Iterable[str] = (),
        token: str | None = None,
        token_env: str | None = TOKEN_ENV,
        project_env: str | None = PROJECT_ENV,
        base_url: str = ASANA_API_BASE,
        http: HttpSettings | None = None,
        rate: Rate | None = None,
        paid: bool = False,
        max_concurrent_reads: int = MAX_CONCURRENT_READS,
        max_concurrent_writes: int = MAX_CONCURRENT_WRITES,
        max_concurrency: int | None = None,
        batch: bool = True,
        name: str = "asana",
    ) -> None:
        """Check the arguments and remember them; nothing is read or sent yet."""
        if body_field not in BODY_FIELDS:
            raise ConfigError(f"AsanaDestination: body_field must be 'notes' or 'html_notes', got {body_field!r}")
        if not title_property:
            raise ConfigError("AsanaDestination: title_property must be non-empty")
        if key_field is not None and not key_field.strip():
            raise ConfigError("AsanaDestination: key_field must be a custom field name, or None")
        mapping = dict(field_map or {})
        for prop, target in mapping.items():
            if not isinstance(target, str) or not target.strip():
                raise ConfigError(f"AsanaDestination: field_map[{prop!r}] must be a field name, got {target!r}")
            if target in (key_field, synced_field) and target is not None:
                raise ConfigError(
                    f"AsanaDestination: field_map maps {prop!r} to {target!r}, which the destination writes itself "
                    "(the key field from Record.primary_key, the synced field from the write time)"
                )
        if key_field is not None and key_field == synced_field:
            raise ConfigError("AsanaDestination: key_field and synced_field must be different custom fields")
        self.name = name
        self.project_gid = parse_project_gid(project_gid) if project_gid else None
        self.title_property = title_property
        self.body_field = body_field
        self.field_map = mapping
        self.key_field = key_field
        self.synced_field = synced_field
        self.create_only_properties = set(create_only_properties)
        self.credentials = AsanaCredentials(token, token_env)
        self.project_env = project_env
        self.base_url = base_url
        self.http = http
        self.rate = rate if rate is not None else (ASANA_PAID_RATE if paid else ASANA_FREE_RATE)
        self.max_concurrent_reads = max_concurrent_reads
        self.max_concurrent_writes = max_concurrent_writes
        self.batch = batch
        if max_concurrency is None:
            max_concurrency = BATCH_MAX_CONCURRENCY if batch else MAX_CONCURRENCY
        self.max_concurrency = max_concurrency
        # (workspace gid, gid/email casefolded) -> user gid; users do not change gids.
        self._users: dict[tuple[str, str], str] = {}

    # -- configuration ----------------------------------------------------------------------------

    @property
    def stores_keys(self) -> bool:
        """True when the key lives in Asana (a key field), so the listing names every task we made."""
        return self.key_field is not None

    def token(self) -> str | None:
        """The token now: the one given, else the environment variable's (so a renewed one is seen)."""
        return self.credentials.token()

    def _project_text(self) -> str | None:
        if self.project_gid:
            return self.project_gid
        if not self.project_env:
            return None
        return (os.environ.get(self.project_env) or "").strip() or None

    def project(self) -> str | None:
        """The project gid now (the argument, else the environment variable's), or None."""
        text = self._project_text()
        if text is None:
            return None
        try:
            return parse_project_gid(text)
        except ConfigError:
            return None

    @property
    def configured(self) -> bool:
        # Both halves: durable-sync checked only the project, so a missing token surfaced as a 401
        # and paused the route instead of saying what to set (W18).
        """Whether everything this connector needs is set (see ``config_hint``)."""
        return bool(self.token()) and self.project() is not None

    @property
    def config_hint(self) -> str:
        """``"configured"``, or what to set before the connector can run."""
        missing = []
        if not self.token():
            missing.append(self.credentials.hint)
        text = self._project_text()
        if text is None:
            missing.append(f"{self.project_env or 'project_gid'} (the gid of the Asana project to write to)")
        elif self.project() is None:
            missing.append(f"{self.project_env or 'project_gid'} to a project gid or URL (got {text!r})")
        if not missing:
            return "configured"
        return "set " + " and ".join(missing)

    def describe(self) -> str:
        """Where the records go, for people: a URL when one is known."""
        project = self.project()
        if project:
            return f"{ASANA_APP_BASE}/0/{project}/list"
        text = self._project_text()
        return f"Asana project {text!r} (not a gid)" if text else "Asana (not configured)"

    @staticmethod
    def is_auth_error(err: BaseException) -> bool:
        # A record's error is never a dead credential, whatever its text says: core's heuristic reads a
        # bare "403" or "forbidden" in a message as auth, and messages quote record values. Ours never
        # chain a 401/403 (see _refused_field).
        """Whether ``err`` (or an error it chains) says the credential is refused."""
        if isinstance(err, RecordError):
            return False
        return auth_error_in_chain(err, extra_needles=("not authorized",))

    # -- sessions ---------------------------------------------------------------------------------

    def _client(self, token: str) -> AsanaClient:
        return AsanaClient(
            token,
            base_url=self.base_url,
            http=self.http,
            rate=self.rate,
            max_concurrent=self.max_concurrent_reads,
            max_concurrent_writes=self.max_concurrent_writes,
        )

    async def bootstrap_schema(self, sample: Sequence[Record], *, apply: bool) -> list[SchemaChange]:
        """The custom fields the project lacks for ``sample``; with ``apply``, add them (``schema.py``)."""
        from connectors.asana.schema import bootstrap_schema

        return await bootstrap_schema(self, sample, apply=apply)

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[_AsanaSession]:
        """A session on the project: its workspace and custom field settings read once, at the start."""
        token, project_gid = self.token(), self.project()
        if not token or not project_gid:
            raise ConfigError(f"AsanaDestination {self.name!r}: {self.config_hint}")
        async with self._client(token) as client:
            try:
                project = await client.get_project(project_gid, opt_fields=("name", "workspace", "workspace.name"))
            except NotFound:
                raise ConfigError(
                    f"Asana: no project {project_gid} is visible to this token (404). Check the gid (the number "
                    "after /0/ in the project's URL) and that the token's user is a member of the project."
                ) from None
            try:
                fields = [
                    dict(setting["custom_field"])
                    async for setting in client.custom_field_settings(project_gid)
                    if isinstance(setting.get("custom_field"), dict)
                ]
            except HTTPRecordError as err:
                if err.status_code != PAYMENT_REQUIRED:
                    raise
                # A free workspace: custom fields are a premium feature, and even listing the
                # project's settings answers 402. Without a key field the destination still works.
                if self.key_field is not None:
                    raise ConfigError(
                        f"Asana: project {project_gid} is in a workspace without custom fields (a free plan; Asana "
                        f"answered 402), so the key field {self.key_field!r} cannot exist. Upgrade the workspace, or "
                        "pass key_field=None to keep keys in the link map only."
                    ) from None
                logger.warning(
                    "Asana %s: project %s is in a free workspace (402 on custom fields); properties are written to "
                    "native task fields only",
                    self.name,
                    project_gid,
                )
                fields = []
            session = _AsanaSession(self, client, project_gid, project, fields)
            try:
                yield session
            finally:
                await session.aclose()


class _AsanaSession:
    """One connection: the project's custom fields as read at the start, warnings once per session."""

    def __init__(
        self,
        dest: AsanaDestination,
        client: AsanaClient,
        project_gid: str,
        project: Json,
        fields: list[Json],
    ) -> None:
        self.dest = dest
        self.client = client
        self.project_gid = project_gid
        workspace = project.get("workspace")
        self.workspace_gid = str(workspace.get("gid")) if isinstance(workspace, dict) and workspace.get("gid") else ""
        self._warn = WarnOnce(logger)
        self._missing_users: dict[str, str] = {}
        self.fields: dict[str, Json] = {}
        for field in fields:
            field_name = str(field.get("name") or "")
            if field_name in self.fields:
                self._warn(
                    f"Asana project {project_gid} has two custom fields named {field_name!r}; writing the first",
                    key=f"dup:{field_name}",
                )
                continue
            self.fields[field_name] = field
        self.batcher: Batcher[Json, Json] | None = None
        if dest.batch:
            self.batcher = Batcher(
                self._send_batch,
                max_size=MAX_BATCH_ACTIONS,
                # Asana counts each action as a write in flight: only whole batches that fit are sent at once.
                max_in_flight=max(1, dest.max_concurrent_writes // MAX_BATCH_ACTIONS),
                name=f"asana {dest.name}",
            )
        self.key_gid: str | None = None
        if dest.key_field is not None:
            key = self.fields.get(dest.key_field)
            where = f"Asana project {project_gid}"
            if key is None:
                raise ConfigError(
                    f"{where} has no custom field {dest.key_field!r}. Add a Text custom field of that name to the "
                    "project (it holds each task's source id, so tasks are updated instead of duplicated), or "
                    "pass key_field=None to keep keys in the link map only."
                )
            if field_kind(key) != "text":
                raise ConfigError(
                    f"{where}: the key field {dest.key_field!r} is a {field_kind(key)} field; it must be a Text field"
                )
            self.key_gid = str(key["gid"])
        self.synced_gid: str | None = None
        if dest.synced_field is not None:
            synced = self.fields.get(dest.synced_field)
            where = f"Asana project {project_gid}"
            if synced is None:
                self._warn(f"{where} has no custom field {dest.synced_field!r}; the sync time is not stamped")
            elif field_kind(synced) != "date" or unwritable_reason(synced) is not None:
                self._warn(f"{where}: {dest.synced_field!r} is not a writable Date field; the sync time is not stamped")
            else:
                self.synced_gid = str(synced["gid"])

    async def aclose(self) -> None:
        """Send the writes still gathered for a batch and wait for the batches in flight."""
        if self.batcher is not None:
            await self.batcher.aclose()

    async def _send_batch(self, actions: list[Json]) -> list[Json | SyncError]:
        return await self.client.batch(actions)

    async def _create_task(self, data: Json) -> Json:
        if self.batcher is None:
            return await self.client.create_task(data)
        action = {"method": "post", "relative_path": "/tasks", "data": data, "options": {"fields": ["gid"]}}
        return await self.batcher.submit(action)

    async def _update_task(self, task_gid: str, data: Json) -> Json:
        if self.batcher is None:
            return await self.client.update_task(task_gid, data)
        action = {
            "method": "put",
            "relative_path": f"/tasks/{quote(task_gid, safe='')}",
            "data": data,
            "options": {"fields": ["gid"]},
        }
        return await self.batcher.submit(action)

    # -- users ------------------------------------------------------------------------------------

    async def _user_gid(self, value: Any, target: str) -> str:
        if not isinstance(value, str):
            raise EncodeError(f"{target}: takes a user gid or email, got a {type(value).__name__} ({value!r})")
        text = value.strip()
        if not (_GID_RE.match(text) or "@" in text or text == "me"):
            raise EncodeError(f"{target}: {value!r} is neither a user gid nor an email")
        folded = text.casefold()
        cache_key = (self.workspace_gid, folded)
        cached = self.dest._users.get(cache_key)
        if cached is not None:
            return cached
        if folded in self._missing_users:
            raise EncodeError(self._missing_users[folded])
        user: Json | None = None
        try:
            user = await self.client.get_user(quote(text, safe="@"))
        except HTTPRecordError:  # 404 unknown user; 400 malformed id
            pass
        except HTTPAuthError as err:
            # A user of another organization may answer 403; only a 401 says the token is dead.
            if err.status_code != 403:
                raise
        if user is None:
            # Raised outside the except: a 403 in this error's chain would read as a revoked token.
            # No status number in the text either: a bare "403" in a message also reads as auth.
            message = f"{target}: no Asana user {value!r} visible to this token"
            self._missing_users[folded] = message
            raise EncodeError(message)
        workspaces = {str(w.get("gid")) for w in user.get("workspaces") or [] if isinstance(w, dict)}
        if self.workspace_gid and workspaces and self.workspace_gid not in workspaces:
            message = f"{target}: user {value!r} is not a member of the project's workspace {self.workspace_gid}"
            self._missing_users[folded] = message
            raise EncodeError(message)
        gid = str(user["gid"])
        self.dest._users[cache_key] = gid
        return gid

    # -- encoding ---------------------------------------------------------------------------------

    def _target(self, prop: str) -> str:
        dest = self.dest
        if prop in dest.field_map:
            return dest.field_map[prop]
        if prop == dest.title_property:
            return "name"
        return prop

    async def _native(self, data: Json, target: str, value: Any) -> None:
        if target == "name":
            data["name"] = "" if value is None else render_text(value, "name")
        elif target in BODY_FIELDS:
            if value is None:
                return  # None is "no description", not "erase the one people wrote"
            text = render_text(value, target)
            data.pop("notes", None)
            data.pop("html_notes", None)
            data[target] = to_html_notes(text) if target == "html_notes" else text
        elif target in ("due_on", "due_at"):
            data.pop("due_on", None)
            data.pop("due_at", None)
            data.update(encode_due(value, target))
        elif target == "start_on":
            data["start_on"] = encode_start(value)
        elif target == "completed":
            data["completed"] = encode_completed(value)
        elif target == "assignee":
            data["assignee"] = None if value is None else await self._user_gid(value, "assignee")

    async def _encode(self, record: Record, synced_at: dt.datetime, *, skip: Collection[str]) -> Json:
        dest = self.dest
        data: Json = {}
        custom: Json = {}
        for prop, value in record.properties.items():
            if prop in skip or prop in (dest.key_field, dest.synced_field):
                continue  # create-only on update; the key and the stamp are written by the destination
            target = self._target(prop)
            if target in NATIVE_FIELDS:
                await self._native(data, target, value)
                continue
            field = self.fields.get(target)
            if field is None:
                self._warn(
                    f"Asana {dest.name}: property {prop!r} is not written: the project has no custom field "
                    f"{target!r} (and it is not a native task field)",
                    key=f"drop:{prop}",
                )
                continue
            reason = unwritable_reason(field)
            if reason is not None:
                self._warn(f"Asana {dest.name}: property {prop!r} is not written: {reason}", key=f"drop:{prop}")
                continue
            if field_kind(field) == "people":
                names = [] if value is None else [value] if isinstance(value, str) else value
                if not isinstance(names, list):
                    raise EncodeError(f"custom field {target!r} (people): takes emails or user gids")
                custom[str(field["gid"])] = [await self._user_gid(n, f"custom field {target!r}") for n in names]
            else:
                custom[str(field["gid"])] = encode_custom_value(field, value)
        if record.body is not None:
            if any(k in data for k in BODY_FIELDS):
                self._warn(
                    f"Asana {dest.name}: a property is mapped to the description and the record has a body; the "
                    "body wins",
                    key="body-clash",
                )
            await self._native(data, dest.body_field, record.body)
        for body_key in BODY_FIELDS:
            if body_key in data and len(data[body_key]) > MAX_NOTES_CHARS:
                raise EncodeError(
                    f"{body_key}: the description is {len(data[body_key])} characters, over the {MAX_NOTES_CHARS} "
                    "this destination sends to Asana; shorten the body"
                )
        if self.key_gid is not None:
            custom[self.key_gid] = record.primary_key
        if self.synced_gid is not None:
            stamp = synced_at if synced_at.tzinfo is not None else synced_at.replace(tzinfo=dt.UTC)
            custom[self.synced_gid] = {"date_time": format_datetime(stamp)}
        if custom:
            data["custom_fields"] = custom
        return data

    async def _data(self, record: Record, synced_at: dt.datetime, *, skip: Collection[str]) -> Json:
        if not isinstance(record.primary_key, str) or not record.primary_key:
            raise RecordError("Asana: the record has an empty primary key", primary_key=record.primary_key)
        try:
            return await self._encode(record, synced_at, skip=skip)
        except EncodeError as err:
            raise RecordError(f"Asana: {err}", primary_key=record.primary_key) from None

    @staticmethod
    def _refused_field(err: HTTPAuthError, primary_key: str) -> RecordError | None:
        """A 403 about a custom field (a locked field) as this record's error, or None for a real auth error.

        The RecordError is raised outside the ``except`` that caught the 403, so the 403 is not in its
        chain and the engine does not read it as a revoked token.
        """
        if err.status_code != 403 or not _FIELD_REFUSAL_RE.search(err.body):
            return None
        detail = _asana_message(err.body)
        if detail and auth_error_in_chain(Exception(detail), extra_needles=("not authorized",)):
            detail = ""
        return RecordError(
            "Asana refused a custom field value of this task (a locked field the token's user may not edit)"
            + (f": {detail}" if detail else ""),
            primary_key=primary_key,
        )

    # -- the session protocol ---------------------------------------------------------------------

    async def create(self, record: Record, synced_at: dt.datetime) -> str:
        """Create the task in the project and return its gid.

        Raises:
            RecordError: A value does not fit, or Asana rejected the task (400, a locked field).
        """
        data = await self._data(record, synced_at, skip=())
        data["projects"] = [self.project_gid]
        task = await self._write(self._create_task(data), record.primary_key)
        return str(task["gid"])

    async def update(self, existing_id: str, record: Record, synced_at: dt.datetime) -> bool:
        """Update the task's fields (never create-only ones, never its project).

        Raises:
            RecordError: The task is gone, a value does not fit, or Asana rejected it.
        """
        data = await self._data(record, synced_at, skip=self.dest.create_only_properties)
        try:
            await self._write(self._update_task(existing_id, data), record.primary_key)
        except NotFound as err:
            raise RecordError(
                f"Asana task {existing_id} not found (deleted, or no longer visible to this token)",
                primary_key=record.primary_key,
            ) from err
        return True

    async def _write(self, call: Awaitable[Json], primary_key: str) -> Json:
        """The answer of a create or update; a 403 that names one field is that field's ``RecordError``.

        The ``RecordError`` is raised outside the ``except`` so it does not carry the 403 as its context.
        """
        refused: RecordError | None = None
        try:
            return await call
        except HTTPAuthError as err:
            refused = self._refused_field(err, primary_key)
            if refused is None:
                raise
        raise refused

    async def mark_missing(self, destination_id: str, missing: bool) -> None:
        """``on_missing``: complete the task (its record left the source), or reopen it when it returns.

        Raises:
            RecordError: The task is gone.
        """
        try:
            await self.client.update_task(destination_id, {"completed": bool(missing)})
        except NotFound as err:
            raise RecordError(f"Asana task {destination_id} not found", primary_key=destination_id) from err

    async def query_existing_rows(self) -> AsyncIterator[tuple[str, str]]:
        """Every (key, task gid) of the project, 100 tasks per request.

        Tasks without a key (added by hand) are skipped. Without a key field nothing is listed.
        """
        if self.key_gid is None:
            return
        seen: set[str] = set()
        restarted = False
        while True:
            try:
                async with aclosing(
                    self.client.project_tasks(
                        self.project_gid, opt_fields=("custom_fields.text_value", "custom_fields.display_value")
                    )
                ) as tasks:
                    async for task in tasks:
                        gid = str(task.get("gid") or "")
                        key = _key_of(task, self.key_gid)
                        if gid and key and gid not in seen:
                            seen.add(gid)
                            yield key, gid
                return
            except OffsetExpired:
                if restarted:
                    raise TransientError(
                        f"Asana: listing project {self.project_gid}: the pagination token expired twice; the pass "
                        "will be retried"
                    ) from None
                restarted = True
                logger.warning(
                    "Asana: listing project %s: the pagination token expired after %d tasks; restarting the listing",
                    self.project_gid,
                    len(seen),
                )

    async def query_existing_ids(self) -> dict[str, str]:
        """{key: task gid}; for a key listed twice the last task wins (``query_existing_rows`` shows both)."""
        return {key: gid async for key, gid in self.query_existing_rows()}


def _key_of(task: Json, key_gid: str) -> str | None:
    for value in task.get("custom_fields") or []:
        if isinstance(value, dict) and str(value.get("gid")) == key_gid:
            text = value.get("text_value")
            if text is None:
                text = value.get("display_value")
            if isinstance(text, str) and text.strip():
                return text
            return None
    return None


def _asana_message(body: str) -> str:
    """The first ``errors[].message`` of an Asana error body (already redacted), else the body."""
    match = re.search(r'"message"\s*:\s*"((?:[^"\\]|\\.)*)"', body)
    return match.group(1) if match else body[:200]

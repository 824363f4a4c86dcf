"""``ContentfulDestination``: entries of one content type, written through the CMA, keyed on our key.

Each record becomes one entry whose id is derived from the record's key (``encode.entry_id_for``)::

    entry id           <- id_prefix + primary_key, or id_prefix + "." + sha256(primary_key)[:40]
    <key_field>        <- record.primary_key              (optional Symbol field; required for hashed ids)
    <field_map[prop]>  <- record.properties[prop]         (encoded by the field's type: encode.py)
    <body_field>       <- record.body                     (optional Text / Symbol / RichText field)

Decisions (the user-facing version is in README.md):

- **Creates cannot duplicate.** A create is ``PUT .../entries/{id}`` with ``X-Contentful-Content-Type``
  and no version. Resent after a lost answer (or repeated after the link to it was lost), it meets
  the entry it made: Contentful answers 409 ``VersionMismatch``, and we update that entry instead.
- **Updates keep what we do not manage.** The CMA has no merge: a PUT replaces every field. So an
  update reads the entry (its fields and ``sys.version``), sets the managed fields in the written
  locale, and PUTs the whole entry back with ``X-Contentful-Version``. Fields a human edited that are
  not in ``field_map``, and other locales, survive. A 409 (someone saved in between) re-reads and
  retries, ``MAX_VERSION_RETRIES`` times, then the record fails for this pass. An update that would
  change nothing is not sent.
- **None removes** the field's value in the written locale (an absent field is Contentful's empty).
- **Locales.** Localized fields are written in ``default_locale``; non-localized fields in the space's
  default locale (the only one they accept).
- **Publish** (``publish=True``): after every write that leaves the entry with unpublished changes,
  ``PUT .../published`` with the new version. A publish Contentful rejects (a required field is
  empty) fails the record; the draft is kept.
- **Listing** (``query_existing_rows``): every entry of the content type whose id starts with the
  prefix, mapped back to its key through ``key_field`` when set, else through the id itself. Keys
  whose id had to be hashed (they do not fit ``[A-Za-z0-9._-]``, or are too long) need ``key_field``:
  without it such a record is a ``RecordError`` that says so.
- **Configuration errors** surface at connect as ``ConfigError`` naming the culprit: a content type
  or locale that does not exist, a ``field_map`` field the content type lacks, or one whose type
  cannot be written from neutral values (Location, Object).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypedDict, Unpack
from urllib.parse import quote

from connectors.contentful.client import ContentfulClient, ContentfulManagementCredentials, is_version_mismatch
from connectors.contentful.decode import MISSING, pick_locale
from connectors.contentful.encode import (
    ContentTypeSpec,
    FieldSpec,
    check_prefix,
    encode_fields,
    encode_value,
    entry_id_for,
    is_hashed_id,
    key_for_entry_id,
    merge_fields,
)
from connectors.contentful.settings import (
    CMA_BASE,
    CMA_TOKEN_ENV,
    DEFAULT_ENVIRONMENT,
    DEFAULT_ID_PREFIX,
    DEFAULT_LOCALE,
    LIST_PAGE_SIZE,
    MAX_CONCURRENCY,
    MAX_VERSION_RETRIES,
)
from connectors.core import ConfigError, Record, RecordError
from connectors.http import HttpSettings, Json, NotFound, Rate, TokenClientConnector

__all__ = ["ContentfulDestination", "ContentfulTargetArgs", "check_field_map"]

logger = logging.getLogger(__name__)

BODY_TYPES = frozenset({"Text", "Symbol", "RichText"})


def check_field_map(
    where: str, content_type: ContentTypeSpec, field_map: Mapping[str, str], type_id: str | None = None
) -> None:
    """Refuse a field map naming a field the content type lacks or one that cannot be written.

    Shared by ``ContentfulDestination`` and ``ContentfulMcpDestination``.

    Args:
        where: Who checks, for messages.
        content_type: The content type as read from the space.
        field_map: Record property -> field id.
        type_id: The content type id to name (default: ``content_type.id``).

    Raises:
        ConfigError: Naming the field and the property that maps to it.
    """
    ct = f"content type {type_id or content_type.id!r}"
    for prop, field_id in field_map.items():
        spec = content_type.fields.get(field_id)
        if spec is None:
            raise ConfigError(
                f"{where}: {ct} has no field {field_id!r} (field_map[{prop!r}]); its fields are "
                f"{', '.join(sorted(content_type.fields))}"
            )
        reason = spec.not_writable()
        if reason:
            raise ConfigError(f"{where}: {ct} field {field_id!r} (field_map[{prop!r}]): {reason}")


class ContentfulTargetArgs(TypedDict, total=False):
    """Where and how ``ContentfulDestination`` and ``ContentfulMcpDestination`` write entries (the same mapping).

    Declared once for the two destinations (``Unpack[ContentfulTargetArgs]``); the meaning and defaults
    are ``ContentfulDestination``'s: ``environment`` (``master``), ``default_locale`` (``en-US``),
    ``publish`` (False), ``create_only_properties`` (none).
    """

    environment: str
    default_locale: str
    publish: bool
    create_only_properties: Iterable[str]


class _ContentfulTarget:
    """The members both Contentful destinations keep about their target, set by :meth:`_init_target`."""

    def _init_target(
        self,
        owner: str,
        space_id: str,
        content_type: str,
        field_map: Mapping[str, str],
        *,
        environment: str = DEFAULT_ENVIRONMENT,
        default_locale: str = DEFAULT_LOCALE,
        publish: bool = False,
        create_only_properties: Iterable[str] = (),
    ) -> list[str]:
        """Check the field map (not empty, no field written twice), remember the target; the field ids."""
        if not field_map:
            raise ConfigError(f"{owner}: field_map must map at least one record property to a field id")
        targets = list(field_map.values())
        doubled = sorted({f for f in targets if targets.count(f) > 1})
        if doubled:
            raise ConfigError(f"{owner}: field_map writes several properties to field(s) {doubled}")
        self.space_id = space_id
        self.content_type = content_type
        self.field_map = dict(field_map)
        self.environment = environment
        self.default_locale = default_locale
        self.publish = publish
        self.create_only_properties = set(create_only_properties)
        return targets


class ContentfulDestination(_ContentfulTarget, TokenClientConnector[ContentfulClient]):
    """Entries of one Contentful content type, created and updated by key (see the module docstring).

    Args:
        space_id: The space.
        content_type: The content type id of the entries.
        field_map: Record property -> field id. Only these properties are written.
        environment: The environment id.
        default_locale: The locale localized fields are written in.
        cma_token: A CMA personal access token; default: the ``cma_token_env`` variable, read at each use.
        cma_token_env: Environment variable of the token.
        publish: Publish every entry after writing it.
        create_only_properties: Written on create, never on update.
        id_prefix: Start of every entry id this destination makes (letters, digits, ``-``, ``_``, ``.``;
            at most 20 characters). Give each (source, content type) its own prefix.
        key_field: A Symbol field holding ``Record.primary_key`` (recommended; required for keys that
            cannot be ids).
        body_field: A Text, Symbol or RichText field holding ``Record.body``.
        name: Destination name.
        base_url: CMA base (a fake in tests).
        transport: httpx transport (``httpx.ASGITransport(app)`` for an in-process fake).
        rate: The token's CMA rate (default 7 req/s; ``Rate(10, 1)`` on paid plans).
        retry: Retry policy (default: the toolkit's).
        sleep: Awaitable sleep, injectable for tests.
        clock: Epoch seconds, injectable for tests.
        max_concurrency: Writes in flight at once.
    """

    credentials_type = ContentfulManagementCredentials

    stores_keys = True
    max_value_length: int | None = None  # limits depend on the field type; encode.py checks them

    def __init__(
        self,
        space_id: str,
        content_type: str,
        field_map: Mapping[str, str],
        *,
        cma_token: str | None = None,
        cma_token_env: str | None = CMA_TOKEN_ENV,
        id_prefix: str = DEFAULT_ID_PREFIX,
        key_field: str | None = None,
        body_field: str | None = None,
        name: str = "contentful",
        base_url: str = CMA_BASE,
        http: HttpSettings | None = None,
        rate: Rate | None = None,
        max_concurrency: int = MAX_CONCURRENCY,
        **target: Unpack[ContentfulTargetArgs],
    ) -> None:
        """Check the arguments and remember them; nothing is read or sent yet."""
        if not space_id or not content_type:
            raise ConfigError("ContentfulDestination needs a space_id and a content_type")
        targets = self._init_target("ContentfulDestination", space_id, content_type, field_map, **target)
        for special, what in ((key_field, "key_field"), (body_field, "body_field")):
            if special is not None and special in targets:
                raise ConfigError(f"ContentfulDestination: {what} {special!r} is also a field_map target")
        if key_field is not None and key_field == body_field:
            raise ConfigError("ContentfulDestination: key_field and body_field must differ")
        what = "a Contentful Content Management API personal access token"
        self._init_connection(cma_token, cma_token_env, base_url, http, rate, what=what)
        self.id_prefix = check_prefix(id_prefix)
        self.key_field = key_field
        self.body_field = body_field
        self.name = name
        self.max_concurrency = max_concurrency

    # -- configuration ----------------------------------------------------------------------------

    def describe(self) -> str:
        """Where the records go, for people: a URL when one is known."""
        env = "" if self.environment == DEFAULT_ENVIRONMENT else f"/environments/{quote(self.environment, safe='')}"
        return (
            f"https://app.contentful.com/spaces/{quote(self.space_id, safe='')}{env}/entries"
            f"?contentTypeId={quote(self.content_type, safe='')}"
        )

    def entry_id(self, primary_key: str) -> str:
        """The id of the entry a record with this key is written to."""
        return entry_id_for(primary_key, self.id_prefix)

    # -- sessions ---------------------------------------------------------------------------------

    def _client(self, token: str) -> ContentfulClient:
        return ContentfulClient(
            token,
            api="cma",
            space_id=self.space_id,
            environment=self.environment,
            base_url=self.base_url,
            http=self.http,
            rate=self.rate,
        )

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[_ContentfulSession]:
        """A session: the content type and the locales are read once, at the start, and checked."""
        async with self._open_client(f"ContentfulDestination {self.name!r}: {self.config_hint}") as client:
            where = f"Contentful space {self.space_id} (environment {self.environment})"
            try:
                raw = await client.content_type(self.content_type)
            except NotFound:
                raise ConfigError(f"{where} has no content type {self.content_type!r}") from None
            locales = await client.locales()
            yield _ContentfulSession(self, client, ContentTypeSpec.from_api(raw), locales, where)


class _ContentfulSession:
    """One connection: the content type as read at the start, the locale of every written field."""

    def __init__(
        self,
        dest: ContentfulDestination,
        client: ContentfulClient,
        content_type: ContentTypeSpec,
        locales: list[Json],
        where: str,
    ) -> None:
        self.dest = dest
        self.client = client
        self.content_type = content_type
        self._warned: set[str] = set()
        codes = [str(loc.get("code")) for loc in locales if loc.get("code")]
        space_default = next((str(loc["code"]) for loc in locales if loc.get("default")), codes[0] if codes else None)
        if dest.default_locale not in codes:
            raise ConfigError(f"{where} has no locale {dest.default_locale!r} (it has {', '.join(codes) or 'none'})")
        check_field_map(where, content_type, dest.field_map)
        ct = f"content type {content_type.id!r}"
        self.key_spec: FieldSpec | None = None
        if dest.key_field is not None:
            self.key_spec = content_type.fields.get(dest.key_field)
            if self.key_spec is None or self.key_spec.type != "Symbol":
                raise ConfigError(
                    f"{where}: {ct} needs a Symbol (short text) field {dest.key_field!r} for key_field "
                    f"(found {self.key_spec.kind if self.key_spec else 'none'})"
                )
        self.body_spec: FieldSpec | None = None
        if dest.body_field is not None:
            self.body_spec = content_type.fields.get(dest.body_field)
            if self.body_spec is None or self.body_spec.type not in BODY_TYPES:
                raise ConfigError(
                    f"{where}: {ct} needs a Text, Symbol or RichText field {dest.body_field!r} for body_field "
                    f"(found {self.body_spec.kind if self.body_spec else 'none'})"
                )
        written = [f for f in (*dest.field_map.values(), dest.key_field, dest.body_field) if f is not None]
        self.locales: dict[str, str] = {}
        for field_id in written:
            localized = content_type.fields[field_id].localized
            self.locales[field_id] = dest.default_locale if localized else str(space_default or dest.default_locale)

    def _warn(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            logger.warning("%s", message)

    # -- encoding ---------------------------------------------------------------------------------

    def _entry_id(self, primary_key: str) -> str:
        if not isinstance(primary_key, str) or not primary_key:
            raise RecordError("Contentful: the record has an empty primary key", primary_key=primary_key)
        entry_id = self.dest.entry_id(primary_key)
        if is_hashed_id(entry_id, self.dest.id_prefix) and self.key_spec is None:
            raise RecordError(
                f"Contentful: key {primary_key[:80]!r} cannot be an entry id (ids are 1-64 characters of "
                "[A-Za-z0-9._-]), so its entry gets a hashed id that cannot be mapped back to the key; set "
                "key_field to a Symbol field that stores the key",
                primary_key=primary_key,
            )
        return entry_id

    def _encode(self, record: Record, *, skip: Iterable[str] = ()) -> dict[str, Any]:
        dest = self.dest
        skipped = set(skip)
        values = {k: v for k, v in record.properties.items() if k not in skipped}
        for prop in values:
            if prop not in dest.field_map:
                self._warn(f"Contentful {dest.name}: record property {prop!r} is not in field_map; it is not written")
        encoded = encode_fields(values, dest.field_map, self.content_type, primary_key=record.primary_key)
        if self.key_spec is not None:
            encoded[self.key_spec.id] = encode_value(
                self.key_spec, record.primary_key, name="primary_key", primary_key=record.primary_key
            )
        if self.body_spec is not None and record.body is not None:
            encoded[self.body_spec.id] = encode_value(
                self.body_spec, record.body, name="body", primary_key=record.primary_key
            )
        return encoded

    # -- the session protocol ---------------------------------------------------------------------

    async def create(self, record: Record, synced_at: dt.datetime) -> str:
        """Create the entry under its deterministic id (or, if it exists, update it) and return the id.

        Raises:
            RecordError: A value does not fit, Contentful rejected the entry (422), or the publish failed.
        """
        entry_id = self._entry_id(record.primary_key)
        encoded = self._encode(record)
        fields = merge_fields({}, encoded, self.locales)
        try:
            saved = await self.client.put_entry(entry_id, fields, content_type=self.content_type.id)
        except Exception as err:
            if not is_version_mismatch(err):
                raise
            # The entry exists: a create resent after its answer was lost, or made before a link was
            # lost. Update it; never make a second one.
            logger.info("Contentful %s: entry %s exists; updating it", self.dest.name, entry_id)
            await self._write(entry_id, record, encoded)
            return entry_id
        if self.dest.publish:
            try:
                await self._publish(entry_id, _version(saved), record)
            except Exception as err:
                if not is_version_mismatch(err):
                    raise
                await self._write(entry_id, record, encoded)  # edited meanwhile: read, merge, publish
        return entry_id

    async def update(self, existing_id: str, record: Record, synced_at: dt.datetime) -> bool:
        """Write the record's managed fields into the entry, keeping every other field and locale.

        Raises:
            RecordError: The entry is gone or of another content type, a value does not fit, Contentful
                rejected it, the publish failed, or the entry kept changing under us (409 every time).
        """
        encoded = self._encode(record, skip=self.dest.create_only_properties)
        await self._write(existing_id, record, encoded)
        return True

    async def _write(self, entry_id: str, record: Record, encoded: Mapping[str, Any]) -> None:
        for attempt in range(1, MAX_VERSION_RETRIES + 1):
            entry = await self.client.get_entry(entry_id)
            if entry is None:
                raise RecordError(
                    f"Contentful entry {entry_id} no longer exists (deleted in Contentful); the next reconcile "
                    "notices and the record is created again",
                    primary_key=record.primary_key,
                )
            sys = entry.get("sys") or {}
            entry_type = ((sys.get("contentType") or {}).get("sys") or {}).get("id")
            if entry_type != self.content_type.id:
                raise RecordError(
                    f"Contentful entry {entry_id} is a {entry_type!r} entry, not {self.content_type.id!r}; give this "
                    "destination its own id_prefix",
                    primary_key=record.primary_key,
                )
            current = entry.get("fields") or {}
            merged = merge_fields(current, encoded, self.locales)
            try:
                if merged != current:
                    metadata = entry.get("metadata") if isinstance(entry.get("metadata"), dict) else None
                    entry = await self.client.put_entry(entry_id, merged, version=_version(entry), metadata=metadata)
                if self.dest.publish and _has_unpublished_changes(entry.get("sys") or {}):
                    await self._publish(entry_id, _version(entry), record)
            except Exception as err:
                if not is_version_mismatch(err):
                    raise
                logger.info(
                    "Contentful %s: entry %s changed while we wrote it (attempt %d/%d); reading it again",
                    self.dest.name,
                    entry_id,
                    attempt,
                    MAX_VERSION_RETRIES,
                )
                continue
            return
        raise RecordError(
            f"Contentful entry {entry_id} kept changing while we wrote it (409 VersionMismatch {MAX_VERSION_RETRIES} "
            "times); it is tried again next pass",
            primary_key=record.primary_key,
        )

    async def _publish(self, entry_id: str, version: int, record: Record) -> None:
        try:
            await self.client.publish(entry_id, version)
        except RecordError as err:
            raise RecordError(
                f"Contentful entry {entry_id} was saved as a draft but not published: {err}",
                primary_key=record.primary_key,
            ) from err

    # -- listing ----------------------------------------------------------------------------------

    async def query_existing_rows(self) -> AsyncIterator[tuple[str, str]]:
        """Every (key, entry id) of our entries: the content type's entries whose id has our prefix.

        Pages with ``skip`` in creation order: entries created meanwhile land at the end, and an entry
        missed because one before it was deleted meanwhile is harmless (its next create meets it by id).
        """
        dest = self.dest
        select = "sys.id,sys.contentType"
        key_locale = None
        if self.key_spec is not None:
            select += f",fields.{self.key_spec.id}"
            key_locale = self.locales[self.key_spec.id]
        skip = 0
        while True:
            body = await self.client.entries(
                {
                    "content_type": self.content_type.id,
                    "order": "sys.createdAt,sys.id",
                    "limit": LIST_PAGE_SIZE,
                    "skip": skip,
                    "select": select,
                }
            )
            items = [i for i in body.get("items") or [] if isinstance(i, dict)]
            for item in items:
                entry_id = str((item.get("sys") or {}).get("id") or "")
                if not entry_id.startswith(dest.id_prefix):
                    continue
                key: str | None = None
                if self.key_spec is not None and key_locale is not None:
                    value = pick_locale((item.get("fields") or {}).get(self.key_spec.id), [key_locale])
                    key = value if value is not MISSING and isinstance(value, str) and value else None
                if key is None:
                    key = key_for_entry_id(entry_id, dest.id_prefix)
                if key is None:
                    self._warn(
                        f"Contentful {dest.name}: entry {entry_id} has a hashed id and no key in "
                        f"{dest.key_field or 'a key field'}; it cannot be matched to a record"
                    )
                    continue
                yield key, entry_id
            skip += len(items)
            if len(items) < LIST_PAGE_SIZE:
                return

    async def query_existing_ids(self) -> dict[str, str]:
        """{key: entry id}; for a key listed twice the last entry wins (``query_existing_rows`` shows both)."""
        return {key: entry_id async for key, entry_id in self.query_existing_rows()}


def _version(entry: Mapping[str, Any]) -> int:
    version = (entry.get("sys") or {}).get("version")
    if not isinstance(version, int):
        raise RecordError("Contentful: the CMA answered an entry without sys.version")
    return version


def _has_unpublished_changes(sys: Mapping[str, Any]) -> bool:
    """Never published, or edited since (publishing itself adds one version)."""
    published = sys.get("publishedVersion")
    version = sys.get("version")
    if not isinstance(published, int):
        return True
    return isinstance(version, int) and version > published + 1

"""``LumaDestination``: events of a Luma calendar, created and updated from records.

Each record becomes one event::

    name         <- record.properties[title_property]                      (required, <= 255 characters)
    start_at     <- record.properties[start_property]                      (required; ISO 8601 with offset)
    end_at       <- record.properties[end_property]                        (default: start + default_duration)
    timezone     <- record.properties[timezone_property] or ``timezone``   (IANA name)
    description_md <- record.properties[description_property] or record.body
    visibility   <- ``visibility``                                         (on create only, when set)

Luma cannot store our key: an event has no field we could put ``primary_key`` in and find again, so
``stores_keys = False``, ``query_existing_ids()`` is ``{}``, and the engine's link map (primary key →
``api_id``) is the ONLY record of which event mirrors which record.

The crash window (README "The crash window" has the measured behaviour):

- ``POST /v1/event/create`` returns the new ``api_id``; the engine records an intent before the call
  and the link after it. Between Luma creating the event and the engine committing the link, a crash
  loses the link, and the next pass creates the event AGAIN: delivery is at least once.
- Narrowed here: creates go one at a time (``max_concurrency = 1``), so at most one create is in flight;
  a create is never resent after an ambiguous failure (``retry_ambiguous=False``: a read timeout, a
  dropped connection, a 500/502/504 surface as ``TransientError`` and stop the pass); and values are
  validated BEFORE the call, so a bad record costs no request and leaves no half-made event.
- Luma lists no key, so the engine's reconcile cannot adopt an orphaned event: an event created in
  the window stays in Luma, unlinked, next to the one the next pass creates. Find them by name in
  Luma and delete one (Luma's API has no delete).

Encoding rules (W27: never ``str(datetime)``):

- A timezone-aware ``datetime`` (or an ISO 8601 string with an offset) is sent as ISO 8601 with its
  offset, to the second. A naive ``datetime`` or an ISO string without an offset is a ``RecordError``:
  guessing a timezone would move the event.
- A ``date`` (or ``YYYY-MM-DD``) starts at 00:00 in the event's timezone; as an end it is inclusive
  (the event ends at 00:00 the next day); a date-only start without an end lasts the day.
- An end before the start, an unknown timezone, a missing or too long name are ``RecordError`` s.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection, Iterable
from typing import Any, TypedDict, Unpack
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors.core import ConfigError, Record, RecordError
from connectors.http import HttpSettings, Json, NotFound, Rate, TokenClientDestination
from connectors.luma.client import LumaClient, LumaConnector
from connectors.luma.settings import (
    API_BASE,
    DEFAULT_DURATION,
    LUMA_RATE,
    MAX_CONCURRENCY,
    MAX_NAME_CHARS,
    TOKEN_ENV,
)

__all__ = ["EVENT_DEFAULTS", "EventMapping", "LumaDestination", "encode_event"]

logger = logging.getLogger(__name__)


def _zone(name: str, primary_key: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise RecordError(
            f"Luma: {name!r} is not an IANA timezone (e.g. Europe/Berlin)", primary_key=primary_key
        ) from None


def _moment(value: Any, zone: ZoneInfo, what: str, primary_key: str) -> tuple[dt.datetime, bool]:
    """(aware datetime, came from a bare date) for a start or end value."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = dt.date.fromisoformat(text) if len(text) == 10 else dt.datetime.fromisoformat(text)
        except ValueError:
            raise RecordError(
                f"Luma: {what} {text[:60]!r} is not an ISO 8601 date or time", primary_key=primary_key
            ) from None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise RecordError(
                f"Luma: {what} {value.isoformat()} has no timezone offset; give an aware datetime "
                "(a naive one would be read in some timezone we would have to guess)",
                primary_key=primary_key,
            )
        return value, False
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(0), tzinfo=zone), True
    raise RecordError(
        f"Luma: {what} must be a datetime, a date or an ISO 8601 string, got {type(value).__name__}",
        primary_key=primary_key,
    )


def _stamp(value: dt.datetime) -> str:
    return value.isoformat(timespec="seconds")


class EventMapping(TypedDict, total=False):
    """Which record properties make a Luma event: the keywords of ``encode_event`` and ``LumaDestination``.

    Attributes:
        title_property: The property holding the event name (default ``Name``).
        start_property: The property holding the start, an aware datetime or ISO text (``Start``).
        end_property: The property holding the end (``End``; None: ``default_duration`` after the start).
        timezone_property: The property holding an IANA zone for the event (``Timezone``; None: ``timezone``).
        timezone: The zone when the record names none (``UTC``).
        description_property: The property holding the description (None: the record's body).
        default_duration: The length of an event without an end (``DEFAULT_DURATION``).
    """

    title_property: str
    start_property: str
    end_property: str | None
    timezone_property: str | None
    timezone: str
    description_property: str | None
    default_duration: dt.timedelta


EVENT_DEFAULTS: EventMapping = {
    "title_property": "Name",
    "start_property": "Start",
    "end_property": "End",
    "timezone_property": "Timezone",
    "timezone": "UTC",
    "description_property": None,
    "default_duration": DEFAULT_DURATION,
}
"""The mapping's defaults (a given keyword wins)."""


def encode_event(record: Record, *, skip: Collection[str] = (), **mapping: Unpack[EventMapping]) -> Json:
    """The create/update payload of a record (without ``event_id``); see the module docstring.

    Args:
        record: The record.
        skip: Record properties not to write (create-only properties on an update).
        mapping: Which properties make the event (:class:`EventMapping`; defaults ``EVENT_DEFAULTS``).

    Raises:
        RecordError: A missing or too long name, a missing or invalid start, an end before the start,
            a naive datetime, an unknown timezone.
    """
    m = EVENT_DEFAULTS | mapping
    key = record.primary_key
    props = record.properties
    payload: Json = {}
    if m["title_property"] not in skip:
        name = props.get(m["title_property"])
        text = str(name).strip() if name is not None else ""
        if not text:
            raise RecordError(f"Luma: the record has no {m['title_property']!r} for the event name", primary_key=key)
        if len(text) > MAX_NAME_CHARS:
            raise RecordError(
                f"Luma: the event name is {len(text)} characters; at most {MAX_NAME_CHARS} are sent", primary_key=key
            )
        payload["name"] = text
    if m["start_property"] not in skip:
        zone_name = props.get(m["timezone_property"]) if m["timezone_property"] else None
        zone_name = zone_name.strip() if isinstance(zone_name, str) and zone_name.strip() else m["timezone"]
        zone = _zone(zone_name, key)
        start_value = props.get(m["start_property"])
        if start_value is None or (isinstance(start_value, str) and not start_value.strip()):
            raise RecordError(
                f"Luma: the record has no {m['start_property']!r} (an event needs a start)", primary_key=key
            )
        start, all_day = _moment(start_value, zone, m["start_property"], key)
        end_value = props.get(m["end_property"]) if m["end_property"] else None
        if end_value is None or (isinstance(end_value, str) and not end_value.strip()):
            end = start + (dt.timedelta(days=1) if all_day else m["default_duration"])
        else:
            end, end_is_date = _moment(end_value, zone, m["end_property"] or "end", key)
            if end_is_date:
                end += dt.timedelta(days=1)  # a date end is inclusive: the event lasts through that day
        if end < start:
            raise RecordError(f"Luma: the end {_stamp(end)} is before the start {_stamp(start)}", primary_key=key)
        payload["start_at"] = _stamp(start)
        if not (m["end_property"] and m["end_property"] in skip):
            payload["end_at"] = _stamp(end)
        payload["timezone"] = zone_name
    description: Any = None
    if m["description_property"] is not None:
        if m["description_property"] not in skip:
            description = props.get(m["description_property"])
    else:
        description = record.body
    if description is not None:
        payload["description_md"] = str(description)
    return payload


class LumaDestination(TokenClientDestination[LumaClient, "_LumaSession"], LumaConnector):
    """Events of the Luma calendar a key belongs to, created and updated by the engine's link map.

    Args:
        token: The API key; default: the ``token_env`` variable (or ``<token_env>_FILE``), read at each use.
        token_env: Environment variable of the key.
        mapping: Which record properties make the event (:class:`EventMapping`): ``title_property``,
            ``start_property``, ``end_property`` (None: always ``default_duration``), ``timezone_property``,
            ``timezone`` (an IANA name), ``description_property`` (default: the body), ``default_duration``.
        visibility: Sent on create when set (``public``, ``members-only``, ``private``).
        create_only_properties: Written on create, never on update.
        name: Destination name.
        base_url, rate, http: As for ``LumaClient``.
    """

    stores_keys = False
    max_concurrency = MAX_CONCURRENCY
    max_value_length: int | None = None

    def __init__(
        self,
        *,
        token: str | None = None,
        token_env: str | None = TOKEN_ENV,
        visibility: str | None = None,
        create_only_properties: Iterable[str] = (),
        name: str = "luma",
        base_url: str = API_BASE,
        http: HttpSettings | None = None,
        rate: Rate | None = LUMA_RATE,
        **mapping: Unpack[EventMapping],
    ) -> None:
        """Check the arguments and remember them; nothing is read or sent yet."""
        m = self.mapping = EVENT_DEFAULTS | mapping
        if not m["title_property"] or not m["start_property"]:
            raise ConfigError("LumaDestination: title_property and start_property must be non-empty")
        try:
            ZoneInfo(m["timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"LumaDestination: timezone {m['timezone']!r} is not an IANA timezone") from None
        duration = m["default_duration"]
        if not isinstance(duration, dt.timedelta) or duration < dt.timedelta(0):
            raise ConfigError(f"LumaDestination: default_duration must be a timedelta >= 0, got {duration!r}")
        self.name = name
        self.visibility = visibility
        self.create_only_properties = set(create_only_properties)
        self._init_connection(token, token_env, base_url, http, rate)

    # -- configuration ----------------------------------------------------------------------------

    def describe(self) -> str:
        """Where the records go, for people: a URL when one is known."""
        return f"the Luma calendar of key {self.rate_limit_key} (events are linked by the state store's link map)"

    def encode(self, record: Record, *, skip: Collection[str] = ()) -> Json:
        """The payload this destination would send for ``record`` (see :func:`encode_event`)."""
        return encode_event(record, skip=skip, **self.mapping)

    def _session(self, client: LumaClient) -> _LumaSession:
        # A session on the calendar of the key.
        return _LumaSession(self, client)


class _LumaSession:
    def __init__(self, dest: LumaDestination, client: LumaClient) -> None:
        self.dest = dest
        self.client = client

    async def query_existing_ids(self) -> dict[str, str]:
        """Always ``{}``: Luma events carry no key of ours, so the link map is the only record."""
        return {}

    async def create(self, record: Record, synced_at: dt.datetime) -> str:
        """Create the event (validated first: a bad record costs no request) and return its ``api_id``.

        Raises:
            RecordError: A value does not fit, or Luma rejected the event (4xx): nothing was created.
            TransientError: An ambiguous failure (timeout, dropped connection, 500/502/504): the event
                MAY exist; it is not resent (see the crash window in the module docstring).
        """
        payload = self.dest.encode(record)
        if self.dest.visibility:
            payload["visibility"] = self.dest.visibility
        api_id = await self.client.create_event(payload)
        logger.debug("Luma: record %s created as event %s", record.primary_key, api_id)
        return api_id

    async def update(self, existing_id: str, record: Record, synced_at: dt.datetime) -> bool:
        """Update the event's fields (never create-only ones).

        Raises:
            RecordError: A value does not fit, or the event is gone from Luma (deleted by hand).
        """
        payload = self.dest.encode(record, skip=self.dest.create_only_properties)
        if not payload:
            return True
        try:
            await self.client.update_event(existing_id, payload)
        except NotFound as err:
            raise RecordError(
                f"Luma event {existing_id} not found (deleted in Luma, or another calendar's key); unlink it "
                "so the next pass creates a new event",
                primary_key=record.primary_key,
            ) from err
        return True

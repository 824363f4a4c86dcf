"""Webhook notifications of pauses: one when a credential is paused, one when a pause lasts.

When ``DURABLE_SYNC_WEBHOOK_URL`` is set, a JSON document is POSTed to it:

- ``credential_paused``, once per credential pause (the failure sensor, after the run that was
  refused; the other runs that failed on the same pause notify nothing)::

    {"event": "credential_paused", "scope": "credential:notion:NOTION_TOKEN", "route": "...",
     "partition": "...", "reason": "...", "run_id": "...", "paused_since": "...", "text": "..."}

- ``pause_escalated``, once per pause that has lasted ``DURABLE_SYNC_PAUSE_ESCALATE_AFTER`` (default
  one hour; the escalation sensor, without a run), a pause set by hand included::

    {"event": "pause_escalated", "scope": "...", "paused_by": "auth", "reason": "...",
     "paused_since": "...", "paused_for_seconds": 3900, "routes": {"jira_to_notion": ["PROJ"]},
     "resume_with": "durable-sync resume jira_to_notion", "text": "..."}

The ``text`` field makes it usable as a Slack or Teams incoming webhook as it is. The URL itself
is a secret (chat webhooks carry their token in the path): it is never logged.

"Once per pause" is kept in the state store (blobs, namespace ``pause_notices``): a notice is
claimed by inserting its row, so two sensors, two code locations or a restarted daemon never send it
twice. A pause is its scope and when it started; a rejected credential's pause is its scope and the
credential's fingerprint (if the connector has one), because every run in flight that the
credential refuses pauses it again, which moves its start. A notice that could not be delivered is released, to be tried again by
the next evaluation; the rows of pauses that ended are dropped, so a new pause notifies anew.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import sqlalchemy as sa

from sync_assets.state import Pause, StateStore, blobs, utcnow

__all__ = [
    "DEFAULT_ESCALATE_AFTER",
    "ESCALATE_AFTER_ENV",
    "NOTICES",
    "WEBHOOK_ENV",
    "forget_ended_notices",
    "format_duration",
    "notify_escalation",
    "notify_once",
    "notify_pause",
    "pause_escalate_after",
    "pause_identity",
    "webhook_configured",
]

log = logging.getLogger(__name__)

WEBHOOK_ENV = "DURABLE_SYNC_WEBHOOK_URL"
ESCALATE_AFTER_ENV = "DURABLE_SYNC_PAUSE_ESCALATE_AFTER"
DEFAULT_ESCALATE_AFTER = dt.timedelta(hours=1)
TIMEOUT_SECONDS = 10.0
NOTICES = "pause_notices"  # blob namespace: one row per notice sent (or being sent) per pause

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.I)
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def pause_escalate_after() -> dt.timedelta:
    """How long a pause lasts before it escalates: ``DURABLE_SYNC_PAUSE_ESCALATE_AFTER``, else one hour.

    The value is seconds (``5400``) or a number with a unit (``90m``, ``2h``, ``1d``); read on each
    evaluation, so a change takes effect without a restart. A value that does not parse is logged
    and the default used.
    """
    raw = os.environ.get(ESCALATE_AFTER_ENV, "").strip()
    if not raw:
        return DEFAULT_ESCALATE_AFTER
    m = _DURATION.match(raw)
    if m is None:
        log.warning("%s=%r is not a duration (e.g. 3600, 90m, 2h); using 1h", ESCALATE_AFTER_ENV, raw)
        return DEFAULT_ESCALATE_AFTER
    return dt.timedelta(seconds=float(m.group(1)) * _UNIT_SECONDS[m.group(2).lower()])


def format_duration(delta: dt.timedelta) -> str:
    """``delta`` as people read it: ``45 s``, ``1 h``, ``90 min``, ``2 h 5 min``, ``1 d 3 h``."""
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    for unit, size in (("d", 86400), ("h", 3600)):
        if seconds % size == 0:
            return f"{seconds // size} {unit}"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        hours, rest = divmod(seconds, 3600)
        return f"{hours} h {rest // 60} min" if rest >= 60 else f"{hours} h"
    days, rest = divmod(seconds, 86400)
    return f"{days} d {rest // 3600} h" if rest >= 3600 else f"{days} d"


def webhook_configured() -> bool:
    """Whether ``DURABLE_SYNC_WEBHOOK_URL`` is set (its value is not looked at further)."""
    return bool(os.environ.get(WEBHOOK_ENV, "").strip())


def _post(payload: dict[str, Any]) -> bool:
    """POST ``payload`` to the webhook, if one is set. Never raises; True when delivered."""
    url = os.environ.get(WEBHOOK_ENV, "").strip()
    if not url:
        return False
    try:
        host = httpx.URL(url).host or "?"  # the path of a chat webhook is its token: log the host only
    except httpx.InvalidURL:
        log.warning("%s is not a URL; no notification sent", WEBHOOK_ENV)
        return False
    try:
        with httpx.Client(timeout=TIMEOUT_SECONDS) as client:
            response = client.post(url, json=payload)
        if response.status_code >= 400:
            log.warning("pause webhook at %s answered %s", host, response.status_code)
            return False
        return True
    except httpx.HTTPError as err:
        log.warning("pause webhook at %s failed: %s", host, type(err).__name__)
        return False


def _iso(when: dt.datetime | None) -> str | None:
    return when.astimezone(dt.UTC).isoformat(timespec="seconds") if when is not None else None


def notify_pause(
    *,
    scope: str,
    route: str,
    partition: str,
    reason: str,
    run_id: str | None,
    paused_since: dt.datetime | None = None,
) -> bool:
    """POST a ``credential_paused`` notification to ``DURABLE_SYNC_WEBHOOK_URL``, if set. Never raises.

    Args:
        scope: The paused scope (a credential or a partition).
        route: The route whose run found the pause.
        partition: Its partition.
        reason: Why (the redacted error).
        run_id: The run that set the pause, if any.
        paused_since: When the pause started, if known.

    Returns:
        Whether a notification was delivered.
    """
    return _post(
        {
            "event": "credential_paused",
            "scope": scope,
            "route": route,
            "partition": partition,
            "reason": reason,
            "run_id": run_id,
            "paused_since": _iso(paused_since),
            "text": f"durable-sync paused {scope} ({route}/{partition}): {reason}",
        }
    )


def notify_escalation(pause: Pause, routes: Mapping[str, list[str]], *, now: dt.datetime | None = None) -> bool:
    """POST a ``pause_escalated`` notification (a pause has lasted too long), if a webhook is set. Never raises.

    Args:
        pause: The pause.
        routes: The partitions it stops, by route.
        now: The current time (default: now).

    Returns:
        Whether a notification was delivered.
    """
    lasted = (now or utcnow()) - pause.paused_at
    names = sorted(routes)
    resume = f"durable-sync resume {names[0]}" if len(names) == 1 else "durable-sync resume ROUTE"
    if pause.source == "auth":
        resume = f"renew the credential (the pause then clears itself) or run: {resume}"
    partitions = sum(len(p) for p in routes.values())
    text = (
        f"durable-sync: {pause.scope} has been paused for {format_duration(lasted)} "
        f"({partitions} partition(s) of {', '.join(names) or 'no route'} not syncing): {pause.reason}"
    )
    return _post(
        {
            "event": "pause_escalated",
            "scope": pause.scope,
            "paused_by": pause.source,
            "reason": pause.reason,
            "paused_since": _iso(pause.paused_at),
            "paused_for_seconds": int(lasted.total_seconds()),
            "routes": {name: sorted(routes[name]) for name in names},
            "resume_with": resume,
            "text": text,
        }
    )


# ----------------------------------------------------------------------------------- once per pause


def pause_identity(pause: Pause) -> str:
    """What makes a pause one pause for its notices (module docstring): its scope and start, or fingerprint.

    Args:
        pause: The pause.
    """
    if pause.source == "auth":  # a connector without a fingerprint: one pause while the scope stays paused
        return f"{pause.scope}\nauth:{pause.fingerprint or ''}"
    return f"{pause.scope}\nsince:{pause.paused_at.timestamp():.6f}"


def _notice_key(event: str, pause: Pause) -> str:
    # Scopes run to 400 characters and blob keys to 200: the pause's identity, hashed.
    return f"{event}:{hashlib.sha256(pause_identity(pause).encode()).hexdigest()[:40]}"


def _claim(store: StateStore, event: str, pause: Pause) -> bool:
    """Insert the notice's row; False when it exists (another evaluation sent it, or is sending it)."""
    value = json.dumps(
        {"event": event, "scope": pause.scope, "pause": pause_identity(pause), "claimed_at": _iso(utcnow())}
    ).encode()
    row = {"namespace": NOTICES, "key": _notice_key(event, pause), "value": value, "updated_at": utcnow()}
    # INSERT ... ON CONFLICT DO NOTHING: one statement, so two claimants cannot both win.
    stmt = store.db.insert(blobs).values(**row).on_conflict_do_nothing(index_elements=["namespace", "key"])
    with store.db.write() as conn:
        return bool(conn.execute(stmt).rowcount)


def notify_once(store: StateStore, event: str, pause: Pause, send: Callable[[], bool]) -> bool:
    """Call ``send`` for ``event`` of ``pause`` unless it was sent already, keeping it sent if delivered.

    Nothing is claimed while no webhook is set (a URL set later still gets a pause that lasts).

    Args:
        store: The state store (where sent notices are remembered).
        event: ``credential_paused`` or ``pause_escalated``.
        pause: The pause: its scope and when it started make it one pause.
        send: Sends the notification; True when delivered.

    Returns:
        Whether this call delivered it.
    """
    if not webhook_configured() or not _claim(store, event, pause):
        return False
    delivered = False
    try:
        delivered = send()
    finally:
        if not delivered:  # let the next evaluation try again
            store.delete_blob(NOTICES, _notice_key(event, pause))
    return delivered


def forget_ended_notices(store: StateStore) -> int:
    """Drop the notices of pauses that ended (the scope was resumed, or is paused anew since).

    The notices are read before the pauses: a notice is claimed only for a pause that exists, so one
    whose pause is missing from the later read has really ended (not begun meanwhile).

    Args:
        store: The state store.

    Returns:
        How many were dropped.
    """
    with store.db.read() as conn:
        rows = conn.execute(sa.select(blobs.c.key, blobs.c.value).where(blobs.c.namespace == NOTICES)).all()
    if not rows:
        return 0
    current = {pause_identity(p) for p in store.pauses().values()}
    dropped = 0
    for key, value in rows:
        try:
            live = json.loads(bytes(value))["pause"] in current
        except (ValueError, KeyError, TypeError):
            live = False
        if not live:
            store.delete_blob(NOTICES, key)
            dropped += 1
    return dropped

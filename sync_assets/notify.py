"""Optional webhook notifications for paused credentials.

When ``DURABLE_SYNC_WEBHOOK_URL`` is set, a JSON document is POSTed to it each time a sync run
fails because a credential was rejected (and so paused):

    {"event": "credential_paused", "scope": "credential:notion:NOTION_TOKEN", "route": "...",
     "partition": "...", "reason": "...", "run_id": "...", "text": "<one line for chat tools>"}

The ``text`` field makes it usable as a Slack or Teams incoming webhook as it is. The URL itself
is a secret (chat webhooks carry their token in the path): it is never logged.
"""

from __future__ import annotations

import logging
import os

import httpx

__all__ = ["WEBHOOK_ENV", "notify_pause"]

log = logging.getLogger(__name__)

WEBHOOK_ENV = "DURABLE_SYNC_WEBHOOK_URL"
TIMEOUT_SECONDS = 10.0


def notify_pause(*, scope: str, route: str, partition: str, reason: str, run_id: str | None) -> bool:
    """POST a pause notification to ``DURABLE_SYNC_WEBHOOK_URL``, if set. Never raises.

    Args:
        scope: The paused scope (a credential or a partition).
        route: The route whose run found the pause.
        partition: Its partition.
        reason: Why (the redacted error).
        run_id: The run that set the pause, if any.

    Returns:
        Whether a notification was delivered.
    """
    url = os.environ.get(WEBHOOK_ENV, "").strip()
    if not url:
        return False
    payload = {
        "event": "credential_paused",
        "scope": scope,
        "route": route,
        "partition": partition,
        "reason": reason,
        "run_id": run_id,
        "text": f"durable-sync paused {scope} ({route}/{partition}): {reason}",
    }
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

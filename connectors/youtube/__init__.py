"""YouTube: the uploads of channels as records (Data API v3, API key), with statistics and duration.

- ``YouTubeSource``: one spec per channel (``channel:<UC… id or @handle>``); uploads playlist →
  ``playlistItems`` (50 a page) → ``videos.list`` (50 ids a call); incremental between periodic full
  refreshes of every video's statistics; quota counted, and a spent daily quota defers (never pauses).
- ``YouTubeClient``: the typed client (API key in the ``X-Goog-Api-Key`` header, quota meter, error
  reasons mapped onto the error tree).

See ``README.md`` in this folder for the API key, quota, paging, properties and the refresh policy.
"""

from connectors.youtube.client import (
    QuotaMeter,
    YouTubeClient,
    YouTubeNotAccessible,
    YouTubeQuotaExceeded,
    next_quota_reset,
    quota_day,
    rate_limit_key_for,
)
from connectors.youtube.source import YouTubeSource, format_duration, normalize_channel, parse_duration, video_record

__all__ = [
    "QuotaMeter",
    "YouTubeClient",
    "YouTubeNotAccessible",
    "YouTubeQuotaExceeded",
    "YouTubeSource",
    "format_duration",
    "next_quota_reset",
    "normalize_channel",
    "parse_duration",
    "quota_day",
    "rate_limit_key_for",
    "video_record",
]

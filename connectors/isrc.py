"""ISRCs: the cross-service key of the music connectors (Spotify, ListenBrainz).

An ISRC (International Standard Recording Code, ISO 3901) is 12 characters: a 2-letter country code,
a 3-character registrant, 2 digits of year and 5 digits of designation (``USRC17607839``). Spotify
sometimes returns one lowercase or hyphenated (``us-rc1-76-07839``), which MusicBrainz refuses (400)
and which would not match the same recording keyed in capitals, so every connector keys on
:func:`normalize_isrc`'s form.
"""

from __future__ import annotations

import re

__all__ = ["is_isrc", "normalize_isrc"]

_ISRC_RE = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}\d{7}$")


def normalize_isrc(value: object) -> str:
    """The canonical ISRC: upper case, no hyphens or spaces ("" for anything that is not a string)."""
    if not isinstance(value, str):
        return ""
    return value.strip().upper().replace("-", "").replace(" ", "")


def is_isrc(value: str) -> bool:
    """Whether ``value`` (already normalized) has the ISRC shape."""
    return bool(_ISRC_RE.match(value))

"""Credentials: where connectors read their secrets from.

``env_secret(NAME)`` is the one way a connector reads a static secret (an API key, an integration
token): the environment variable ``NAME``, or, when ``NAME_FILE`` is set, the contents of that file
(the Docker/Kubernetes secrets convention). It is read on every use, never cached and never at
import time, so a secret rotated in place (a re-mounted file) is picked up by the next request
and a pause on the old one can lift itself.
"""

from __future__ import annotations

import os
from pathlib import Path

from connectors.core import ConfigError

__all__ = ["env_secret"]


def env_secret(name: str | None) -> str | None:
    """The secret named ``name``: ``$NAME``, else the stripped contents of the file ``$NAME_FILE``.

    Raises:
        ConfigError: ``NAME_FILE`` names a file that cannot be read (the message names the variable,
            never the secret).
    """
    if not name:
        return None
    value = os.environ.get(name, "").strip()
    if value:
        return value
    path = os.environ.get(f"{name}_FILE", "").strip()
    if not path:
        return None
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except OSError as err:
        raise ConfigError(f"{name}_FILE={path}: cannot read the secret file ({err.strerror})") from None
    return value or None

"""``durable_sync.core`` for ported connectors: the contract's classes are this platform's own.

``Record``, ``SourceSpec``, the ``Source``/``Destination``/``DestinationSession`` protocols and
``DestinationHTTPError`` are ``connectors.core``'s, so what a ported connector builds is exactly what
the engine takes. Two things keep durable-sync 0.3's behaviour instead:

- ``auth_error_in_chain`` classifies as durable-sync did: a 401/403 ``status_code``, else a text needle
  (``unauthorized``, ``forbidden``, ``invalid_token``, ``invalid_grant`` and the caller's extra ones,
  such as Asana's ``not authorized``) *whatever the status*, else, only for links without a status, a
  word-bounded ``401``/``403`` in the message. (``connectors.core``'s version ignores the text of a
  link that carries a non-auth status; a ported destination keeps the rule it was written against.)
- ``CONTRACT_VERSION`` is the durable-sync contract this layer implements; ``check_contract`` refuses a
  connector that declares it needs a newer one.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from connectors.core import (
    AuthError,
    ConfigError,
    Destination,
    DestinationHTTPError,
    DestinationSession,
    Record,
    Source,
    SourceSpec,
)

__all__ = [
    "CONTRACT_VERSION",
    "Destination",
    "DestinationHTTPError",
    "DestinationSession",
    "Record",
    "Source",
    "SourceSpec",
    "auth_error_in_chain",
    "check_contract",
]

CONTRACT_VERSION = 1
"""The durable-sync connector contract this layer implements (durable-sync 0.3.0's)."""

# Module attributes through which a connector may declare the contract it needs.
_REQUIRED_NAMES = ("REQUIRED_CONTRACT_VERSION", "MIN_CONTRACT_VERSION", "REQUIRES_CONTRACT_VERSION")

_AUTH_TEXT_NEEDLES = ("unauthorized", "forbidden", "invalid_token", "invalid_grant")
_AUTH_STATUS_CODES = (401, 403)
_AUTH_CODE_RE = re.compile(r"\b(401|403)\b")


def auth_error_in_chain(err: BaseException, *, extra_needles: tuple[str, ...] = ()) -> bool:
    """Whether any link of ``err``'s chain is an auth failure, by durable-sync 0.3's rule.

    Args:
        err: The error; its ``__cause__``/``__context__`` chain and exception-group members are walked.
        extra_needles: Service-specific phrasings (Asana: ``("not authorized",)``), case-insensitive.

    Returns:
        True for this platform's ``AuthError``, a ``status_code`` of 401/403, a message holding a
        needle (whatever its status), or a word-bounded 401/403 in the message of a link without a
        status code.
    """
    needles = _AUTH_TEXT_NEEDLES + tuple(n.lower() for n in extra_needles)
    seen: set[int] = set()
    stack: list[BaseException] = [err]
    while stack:
        cur = stack.pop()
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        if isinstance(cur, AuthError):
            return True
        status = getattr(cur, "status_code", None)
        text = str(cur).lower()
        if status in _AUTH_STATUS_CODES or any(n in text for n in needles):
            return True
        if status is None and _AUTH_CODE_RE.search(text):
            return True
        if isinstance(cur, BaseExceptionGroup):
            stack.extend(cur.exceptions)
        stack.extend(nxt for nxt in (cur.__cause__, cur.__context__) if nxt is not None)
    return False


def _declared_requirement(obj: Any) -> tuple[str, int] | None:
    """The contract version a connector's module (or its top-level package) says it needs."""
    module_name = getattr(obj, "__module__", None) or type(obj).__module__
    candidates = [module_name, module_name.split(".")[0]]
    for name in candidates:
        module = sys.modules.get(name)
        for attr in _REQUIRED_NAMES:
            value = getattr(module, attr, None) if module is not None else None
            if isinstance(value, int) and not isinstance(value, bool):
                return f"{name}.{attr}", value
    return None


def check_contract(*connectors: Any) -> None:
    """Refuse connectors that declare they need a newer durable-sync contract than this layer's.

    A connector declares it with a module-level ``REQUIRED_CONTRACT_VERSION`` (or
    ``MIN_CONTRACT_VERSION``) in its module or its top-level package.

    Raises:
        ConfigError: A connector needs a contract newer than ``CONTRACT_VERSION``.
    """
    for obj in connectors:
        found = _declared_requirement(obj)
        if found is not None and found[1] > CONTRACT_VERSION:
            where, needed = found
            raise ConfigError(
                f"{type(obj).__name__}: {where} = {needed}, but connectors.compat implements durable-sync's "
                f"connector contract {CONTRACT_VERSION} (durable-sync 0.3); port it against a newer layer"
            )

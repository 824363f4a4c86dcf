"""Records and errors as the engine judges them: content hashes, contract validation, error classes.

Pure functions, no I/O: the engine's planning step calls them for every record, so they are kept
cheap (the common neutral types skip the full check) and separate from the pass's plumbing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
from collections.abc import Iterator
from typing import Any

import httpx

from connectors.compat.adapters import as_record
from connectors.core import (
    AuthClassifier,
    AuthError,
    ConfigError,
    CredentialFingerprinted,
    DestinationHTTPError,
    RateLimited,
    Record,
    RecordError,
    TransientError,
    neutral_type_error,
)

__all__ = [
    "MAX_KEY_LENGTH",
    "content_hash",
    "credential_fingerprint",
    "error_chain",
    "is_auth",
    "is_systemic",
    "validate_record",
]

log = logging.getLogger("sync_assets.engine")

MAX_KEY_LENGTH = 1024


# --------------------------------------------------------------------------------------------------
# Hashing and validation


def _canon(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return "t:" + value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return "d:" + value.isoformat()
    raise TypeError(f"not a neutral value: {type(value).__name__}")


_ENCODER = json.JSONEncoder(separators=(",", ":"), default=_canon, ensure_ascii=False)


def content_hash(record: Record, exclude: set[str] | frozenset[str] = frozenset()) -> str:
    """A stable hash of what a write would send (create-only properties excluded)."""
    props = record.properties
    items = sorted((k, v) for k, v in props.items() if k not in exclude) if exclude else sorted(props.items())
    payload = _ENCODER.encode([record.body, items])
    return hashlib.blake2b(payload.encode(), digest_size=16).hexdigest()


_PLAIN_TYPES = frozenset({str, int, bool, type(None)})


def _normal_key(key: Any) -> tuple[str, None] | tuple[None, str]:
    """``(stripped key, None)``, or ``(None, why it is not a key)``; an int key becomes its text."""
    if not isinstance(key, str):
        if isinstance(key, int) and not isinstance(key, bool):
            key = str(key)
        else:
            return None, f"primary_key must be a string, got {type(key).__name__}"
    key = key.strip()
    if not key:
        return None, "empty primary_key"
    if len(key) > MAX_KEY_LENGTH:
        return None, f"primary_key longer than {MAX_KEY_LENGTH} characters"
    return key, None


def _properties_problem(props: dict[Any, Any], max_value_length: int | None) -> tuple[str | None, bool]:
    """``(the first contract violation among the properties or None, whether a value is a tuple)``.

    One call per record, not per property: the loop stays tight on the planning step's hot path.
    """
    has_tuple = False
    for name, value in props.items():
        if type(name) is not str or not name:
            return f"property names must be non-empty strings, got {name!r}", has_tuple
        kind = type(value)
        # The common cases skip the full check.
        common = (
            kind in _PLAIN_TYPES
            or kind is dt.date
            or (kind is float and math.isfinite(value))
            or (kind is list and all(type(item) is str for item in value))
        )
        if not common:
            problem = neutral_type_error(name, value)
            if problem:
                return problem, has_tuple
            if kind is tuple:
                has_tuple = True
        if max_value_length is not None and kind is str and len(value) > max_value_length:
            return (
                f"property {name!r}: {len(value)} characters, over the destination's limit of {max_value_length}"
            ), has_tuple
    return None, has_tuple


def validate_record(record: Any, *, max_value_length: int | None = None) -> tuple[Record | None, str | None]:
    """Check a record against the contract; returns ``(normalised_record, None)`` or ``(None, error)``.

    Normalisation: the key is stripped; tuples become lists; a durable-sync ``Record`` becomes ours.
    """
    if not isinstance(record, Record):
        # durable-sync's own Record (a connector still importing the installed durable_sync) is copied.
        converted = as_record(record)
        if converted is None:
            return None, f"not a Record: {type(record).__name__}"
        record = converted
    key, problem = _normal_key(record.primary_key)
    if key is None:
        return None, problem
    if not isinstance(record.properties, dict):
        return None, f"properties must be a dict, got {type(record.properties).__name__}"
    if record.body is not None and not isinstance(record.body, str):
        return None, f"body must be a string or None, got {type(record.body).__name__}"
    problem, has_tuple = _properties_problem(record.properties, max_value_length)
    if problem is not None:
        return None, problem
    if key != record.primary_key or has_tuple:
        props = {k: list(v) if isinstance(v, tuple) else v for k, v in record.properties.items()}
        record = Record(key, props, record.body)
    return record, None


# --------------------------------------------------------------------------------------------------
# Error classification


def is_auth(err: BaseException, side: object) -> bool:
    """Whether ``err`` means only a human can fix the credential of ``side`` (a source or destination).

    An ``AuthError`` is; otherwise the connector's own ``is_auth_error`` (``AuthClassifier``) decides,
    and a classifier that raises counts as "no".
    """
    if isinstance(err, AuthError):
        return True
    if isinstance(side, AuthClassifier):
        try:
            if side.is_auth_error(err):
                return True
        except Exception:  # a broken classifier must not hide the real error
            log.debug("is_auth_error raised", exc_info=True)
    return False


def error_chain(err: BaseException, limit: int = 32) -> Iterator[BaseException]:
    """``err``, then what caused it, breadth first, each once.

    Followed: ``__cause__``, an unsuppressed ``__context__`` and the members of an exception group;
    at most ``limit`` errors.
    """
    queue: list[BaseException] = [err]
    seen: set[int] = set()
    while queue and len(seen) < limit:
        current = queue.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            queue.extend(current.exceptions)
        if current.__cause__ is not None:
            queue.append(current.__cause__)
        elif current.__context__ is not None and not current.__suppress_context__:
            queue.append(current.__context__)


def is_systemic(err: BaseException) -> bool:
    """Whether ``err`` says the service, not the record, is in trouble: stop the pass and retry it.

    Classified by the cause chain, so a connector that wraps a connection error
    (``RuntimeError(...) from httpx.ConnectError``, an ``ExceptionGroup``) still stops the pass; the
    first error in the chain that the contract classifies decides (a ``RecordError`` or a 4xx
    ``DestinationHTTPError`` is the record's own problem).
    """
    for current in error_chain(err):
        if isinstance(current, (RateLimited, TransientError, httpx.TransportError, ConnectionError, TimeoutError)):
            return True
        if isinstance(current, DestinationHTTPError):
            return current.status_code == 429 or current.status_code >= 500
        if isinstance(current, (RecordError, ConfigError, AuthError)):
            return False
    return False


def credential_fingerprint(obj: object) -> str | None:
    """A digest of a connector's current credential (never the credential itself).

    None when the connector has no ``credential_fingerprint`` (``CredentialFingerprinted``), it
    returns None, or it raises.
    """
    if not isinstance(obj, CredentialFingerprinted):
        return None
    try:
        value = obj.credential_fingerprint()
    except Exception:
        return None
    if value is None:
        return None
    # Store only a digest: a connector may hand back the credential itself.
    return hashlib.sha256(str(value).encode()).hexdigest()[:32]

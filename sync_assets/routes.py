"""A route: records of one source mirrored into one destination.

Two-way sync is two routes, and every field has exactly one owning route (``owns``). A route's name
is its identity everywhere: the asset key, the partitions definition, the state store's namespace.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.core import (
    ConfigError,
    CredentialKeyed,
    Destination,
    RateLimitKeyed,
    Record,
    Source,
    SourceSpec,
    Transform,
)
from connectors.http import BACKOFF_KINDS

__all__ = ["EndBinding", "Route", "compose", "partition_key_for", "restrict_to_owned"]

_ROUTE_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
_PARTITION_UNSAFE = re.compile(r"[^A-Za-z0-9:_.\-]")

AsyncTransform = Callable[[Record], Awaitable[Record | None]]


def partition_key_for(spec_key: str) -> str:
    """The Dagster partition key of a spec key.

    Only ``[A-Za-z0-9:_.-]`` (``|`` and ``/`` would break multi-partition keys and URLs), at most 200
    characters.
    """
    key = _PARTITION_UNSAFE.sub("_", spec_key.strip())
    return key[:200]


def restrict_to_owned(owned: set[str] | frozenset[str]) -> Transform:
    """A transform keeping only the ``owned`` properties (the body is kept)."""
    owned = frozenset(owned)

    def _restrict(record: Record) -> Record:
        return dataclasses.replace(record, properties={k: v for k, v in record.properties.items() if k in owned})

    return _restrict


def compose(*transforms: Transform | None) -> AsyncTransform | None:
    """Chain transforms left to right; a None result drops the record and stops the chain."""
    steps = [t for t in transforms if t is not None]
    if not steps:
        return None

    async def _composed(record: Record) -> Record | None:
        current: Record | None = record
        for step in steps:
            out = step(current)  # type: ignore[arg-type]
            if inspect.isawaitable(out):
                out = await out
            current = out
            if current is None:
                return None
        return current

    return _composed


@dataclass(frozen=True)
class EndBinding:
    """How one end of a route is built from a named Dagster resource, when it is.

    The route's connector is built from the resource when the code location loads (for the sensors)
    and again in each run, from the run's resource (``sync_assets.systems``).

    Attributes:
        resource: The resource key (``github``, ``notion``, ...).
        options: The route's options for this end (``orgs``, ``database_id``, ...).
        envs: The variable behind each secret field of the resource (names only, never values).
    """

    resource: str
    options: Mapping[str, Any]
    envs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Route:
    """Records of ``source`` mirrored into ``destination``.

    Args:
        source: Where records come from.
        destination: Where they go.
        name: Route identity (``<source>_to_<destination>`` by default): letters, digits, ``_``.
        transform: Optional per-record transform; returning None drops the record (skipped).
        owns: When set, only these properties are written (field ownership).
        reconcile_every: How often a pass lists the destination to adopt rows created but never
            linked and to notice rows deleted by hand.
        description: Shown on the asset in the Dagster UI.
        enabled: False keeps the route out of the deployment (e.g. its env vars are unset).
        disabled_reason: Why it is disabled, shown by ``durable-sync status``.
        source_binding: The resource the source is built from (routes declared in YAML), if any.
        destination_binding: The resource the destination is built from, if any.
        retry_policy: The sync asset's ``dagster.RetryPolicy`` for transient failures, instead of the
            deployment's (``build_definitions(retry_policy=...)``). Typed loosely: this module stays
            free of Dagster.
        backoff: How retries back off, one of ``exponential``, ``linear``, ``constant``: both the
            asset's retry policy (``Backoff.EXPONENTIAL``, ``Backoff.LINEAR``, none) and the HTTP
            retries of the connectors in the route's passes. None: as ``retry_policy`` says, else
            each side's default (exponential).
    """

    source: Source
    destination: Destination
    name: str = ""
    transform: Transform | None = None
    owns: frozenset[str] | None = None
    reconcile_every: dt.timedelta = dt.timedelta(days=1)
    description: str | None = None
    enabled: bool = True
    disabled_reason: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    source_binding: EndBinding | None = None
    destination_binding: EndBinding | None = None
    retry_policy: Any = None
    backoff: str | None = None

    def __post_init__(self) -> None:
        """Check the connectors have the contract's members and normalise the name and ownership."""
        for attr, members in (
            ("source", ("name", "specs")),
            ("destination", ("name", "connect", "create_only_properties")),
        ):
            obj = getattr(self, attr)
            missing = [m for m in members if not hasattr(obj, m)]
            if missing:
                raise ConfigError(f"Route.{attr}: {obj!r} lacks {', '.join(missing)}")
        if not (hasattr(self.source, "fetch_page") or hasattr(self.source, "fetch")):
            raise ConfigError(f"Route.source: {self.source!r} has neither fetch_page nor fetch")
        name = self.name or f"{self.source.name}_to_{self.destination.name}"
        name = name.replace("-", "_")
        if not _ROUTE_NAME_RE.match(name):
            raise ConfigError(
                f"Route.name {name!r} is not a valid route name: use letters, digits and '_' "
                "(it becomes a Dagster asset key), at most 100 characters"
            )
        object.__setattr__(self, "name", name)
        if self.owns is not None:
            object.__setattr__(self, "owns", frozenset(self.owns))
        if self.reconcile_every <= dt.timedelta(0):
            raise ConfigError(f"Route {name}: reconcile_every must be positive")
        if self.backoff is not None and self.backoff not in BACKOFF_KINDS:
            raise ConfigError(f"Route {name}: backoff must be one of {', '.join(BACKOFF_KINDS)}, got {self.backoff!r}")
        if self.retry_policy is not None and not hasattr(self.retry_policy, "max_retries"):
            raise ConfigError(f"Route {name}: retry_policy must be a dagster.RetryPolicy, got {self.retry_policy!r}")

    @property
    def http_backoff(self) -> str | None:
        """How the HTTP retries of the route's passes back off: ``backoff``, else ``retry_policy``'s, else None.

        None leaves each client's own ``RetryPolicy`` as it is (exponential unless a system says otherwise).
        """
        if self.backoff is not None or self.retry_policy is None:
            return self.backoff
        kind = getattr(self.retry_policy.backoff, "value", None)  # Backoff.LINEAR -> "LINEAR"
        return str(kind).lower() if kind is not None else "constant"  # no backoff: a constant delay

    # ------------------------------------------------------------------------------------------

    def build_transform(self) -> AsyncTransform | None:
        """The route's transform followed by the ownership filter."""
        return compose(self.transform, restrict_to_owned(self.owns) if self.owns is not None else None)

    def specs_by_partition(self) -> dict[str, SourceSpec]:
        """The source's specs keyed by partition key; raises ConfigError on collisions."""
        out: dict[str, SourceSpec] = {}
        for spec in self.source.specs():
            if not isinstance(spec, SourceSpec) and not hasattr(spec, "key"):
                raise ConfigError(f"Route {self.name}: source.specs() returned {spec!r}, not a SourceSpec")
            pk = partition_key_for(spec.key)
            if not pk:
                raise ConfigError(f"Route {self.name}: spec key {spec.key!r} is empty")
            if pk in out:
                raise ConfigError(
                    f"Route {self.name}: spec keys {out[pk].key!r} and {spec.key!r} both map to "
                    f"partition {pk!r}; make them differ in letters, digits or ':_.-'"
                )
            out[pk] = spec
        return out

    def spec_for(self, partition: str) -> SourceSpec:
        """The spec of ``partition``; raises ``ConfigError`` when the source has none."""
        specs = self.specs_by_partition()
        if partition not in specs:
            known = ", ".join(sorted(specs)) or "none"
            raise ConfigError(f"Route {self.name}: no spec for partition {partition!r} (known: {known})")
        return specs[partition]

    @property
    def source_scope(self) -> str:
        """The pause scope of the source's credential (``credential:<credential_key>``)."""
        return credential_scope(self.source)

    @property
    def destination_scope(self) -> str:
        """The pause scope of the destination's credential (``credential:<credential_key>``)."""
        return credential_scope(self.destination)

    def pause_scopes(self, partition: str) -> list[str]:
        """Every pause scope that stops this partition, most specific first."""
        return [
            f"partition:{self.name}/{partition}",
            f"route:{self.name}",
            self.destination_scope,
            self.source_scope,
        ]


def credential_key(obj: object) -> str:
    """A stable name for a connector's credential slot.

    ``credential_key`` when the connector has one (``CredentialKeyed``; e.g. ``github:GITHUB_TOKEN``:
    it stays the same when the token is rotated, so a pause on it can be lifted by the new token),
    else its ``rate_limit_key`` (``RateLimitKeyed``), else its name.
    """
    key = obj.credential_key if isinstance(obj, CredentialKeyed) else None
    if not key and isinstance(obj, RateLimitKeyed):
        key = obj.rate_limit_key
    return str(key or getattr(obj, "name", None) or type(obj).__name__)


def credential_scope(obj: object) -> str:
    """The pause scope of a connector's credential: ``credential:<credential_key>``."""
    return f"credential:{credential_key(obj)}"

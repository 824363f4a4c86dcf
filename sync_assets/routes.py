"""A route: records of one source mirrored into one destination; a two-way route: two of them, paired.

A route's name is its identity everywhere: the asset key, the partitions definition, the state
store's namespace. ``TwoWayRoute`` pairs two systems that both read and write: it expands to two
routes (``a_to_b``, ``b_to_a``) that share one table of twins (``ds_pairs``), so a row one of them
created is never copied back as new, the read-back of a write is never echoed, and each field is
resolved by its owner or by the later edit (``sync_assets._two_way``).
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

__all__ = [
    "ON_MISSING",
    "EndBinding",
    "Route",
    "TwoWay",
    "TwoWayRoute",
    "compose",
    "partition_key_for",
    "restrict_to_owned",
]

ON_MISSING = ("mark",)  # the values of Route.on_missing besides None
POLICIES = ("last_writer_wins", "owner")
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
        on_missing: ``"mark"``: when a complete full pass no longer yields a linked key, mark its row
            (the destination's ``mark_missing``: Notion's trash, Asana's completed, a SQLite column)
            and take the mark off when the key returns. Never on a targeted, resumed, failed or plan
            pass; nothing is deleted. None (default): off.
        two_way: Set on the two routes of a ``TwoWayRoute`` (not by hand).
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
    on_missing: str | None = None
    two_way: TwoWay | None = None

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
        if self.on_missing is not None and self.on_missing not in ON_MISSING:
            raise ConfigError(f"Route {name}: on_missing must be None or one of {', '.join(ON_MISSING)}")
        if self.two_way is not None and (self.transform is not None or self.owns is not None):
            raise ConfigError(f"Route {name}: a two-way route maps its fields itself (no transform, no owns)")
        if self.backoff is not None and self.backoff not in BACKOFF_KINDS:
            raise ConfigError(f"Route {name}: backoff must be one of {', '.join(BACKOFF_KINDS)}, got {self.backoff!r}")
        if self.retry_policy is not None and not hasattr(self.retry_policy, "max_retries"):
            raise ConfigError(f"Route {name}: retry_policy must be a dagster.RetryPolicy, got {self.retry_policy!r}")

    @property
    def http_backoff(self) -> str | None:
        """How the HTTP retries of the route's passes back off: ``backoff``, else the policy's, else None.

        None leaves each client's own ``RetryPolicy`` as it is (exponential unless a system says otherwise).
        """
        if self.backoff is not None or self.retry_policy is None:
            return self.backoff
        # Backoff.LINEAR -> "linear". A policy without backoff (Dagster's default) says nothing of the
        # HTTP retries: a constant one-second retry of every request would hammer the API.
        kind = getattr(self.retry_policy.backoff, "value", None)
        return str(kind).lower() if kind is not None else None

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


@dataclass(frozen=True)
class TwoWay:
    """What one of the two routes of a ``TwoWayRoute`` knows of the pairing (built by ``TwoWayRoute``).

    Attributes:
        pair: The pair's name (the key of its twins in the state store).
        side: The side this route reads: ``a`` or ``b``.
        fields: ``(name on A, name on B)`` of every synced field; A's names are the canonical ones.
        policy: ``last_writer_wins`` or ``owner``.
        owners: Canonical field name -> the side that owns it (``a``/``b``); an owned field is
            written only from its owner, whatever the policy.
        modified: The property holding each side's modification time (A's, B's), or None.
        tie: The side that wins a conflict whose modification times are equal or unknown.
        peer_route: The name of the other direction's route.
        peer_source: The other side's source: what a pass reads back before it writes (a conflict
            needs both sides' current values).
        peer_binding: The resource ``peer_source`` is built from (routes declared in YAML), if any.
    """

    pair: str
    side: str
    fields: tuple[tuple[str, str], ...]
    policy: str
    owners: Mapping[str, str]
    modified: tuple[str | None, str | None]
    tie: str
    peer_route: str
    peer_source: Source
    peer_binding: EndBinding | None = None

    @property
    def peer_side(self) -> str:
        """The side this route writes."""
        return "b" if self.side == "a" else "a"

    def canonical(self, properties: Mapping[str, Any], side: str) -> dict[str, Any]:
        """The synced fields of a record of ``side``, by their canonical (A) name; absent fields left out."""
        index = 0 if side == "a" else 1
        return {pair[0]: properties[pair[index]] for pair in self.fields if pair[index] in properties}

    def outgoing(self, values: Mapping[str, Any], side: str) -> dict[str, Any]:
        """Canonical ``values`` under ``side``'s property names (what a write to that side sends)."""
        index = 0 if side == "a" else 1
        return {pair[index]: values[pair[0]] for pair in self.fields if pair[0] in values}

    def modified_at(self, properties: Mapping[str, Any], side: str) -> dt.datetime | None:
        """The record's modification time on ``side``, when the route names its property and it holds one."""
        name = self.modified[0 if side == "a" else 1]
        value = properties.get(name) if name else None
        if isinstance(value, dt.datetime):
            return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        if isinstance(value, str):
            try:
                parsed = dt.datetime.fromisoformat(value)
            except ValueError:
                return None
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)
        return None

    def writes(self, field_name: str) -> bool:
        """Whether this route writes ``field_name`` (canonical): not when the other side owns it."""
        owner = self.owners.get(field_name)
        return owner is None or owner == self.side


@dataclass(frozen=True, eq=False)
class TwoWayRoute:
    """Two systems that both read and write, kept in step field by field; it expands to two routes.

    ``routes()`` gives ``<a>_to_<b>`` and ``<b>_to_<a>``. They share the pair's twins (``ds_pairs``):
    a row either of them created is linked to its origin and never copied back as new; a pass reads
    a record's fields against what both sides last agreed on, so the read-back of our own write is
    no change (no echo) and only the fields edited since are written (nothing else is overwritten).
    A field edited on both sides since the last pass is a conflict, resolved by ``policy`` and
    reported (the ``no_conflicts`` check, ``durable-sync status``). Deletions are never propagated.
    The two directions of a pair never run at once (a lease of the pair).

    Args:
        a: Side A's ``(source, destination)``: both over the same records (the source's keys are the
            destination's ids: Notion page ids, Jira issue ids, SQLite row keys…).
        b: Side B's ``(source, destination)``.
        fields: Synced fields, A's property name -> B's (a field not listed is never written).
        name: The pair's name (default ``<a>_and_<b>``); the routes are ``<a>_to_<b>`` and ``<b>_to_<a>``.
        policy: ``last_writer_wins`` (the side whose record was modified later wins a conflict) or
            ``owner`` (every field has an owner in ``owners``; only the owner's edits are written).
        owners: A's field name -> ``a`` or ``b``; an owned field is written only from its owner.
        modified: The properties holding each side's modification time (e.g. Notion's
            ``last_edited_time`` property, Jira's ``Updated``); a conflict without both is won by ``tie``.
        tie: The side that wins when the modification times are equal or unknown.
        on_missing: As ``Route.on_missing``, for both routes.
        reconcile_every: As ``Route.reconcile_every``.
        description: Shown on both assets.
        enabled: False keeps both routes out of the deployment.
        tags: Tags of both assets.
        route_names: The two routes' names (default ``<a>_to_<b>``, ``<b>_to_<a>``).
        disabled_reason: Why both routes are disabled, shown by ``durable-sync status``.
        a_bindings: The resources side A's source and destination are built from (YAML), if any.
        b_bindings: The same for side B.
        retry_policy: As ``Route.retry_policy``, for both routes.
        backoff: As ``Route.backoff``, for both routes.
    """

    a: tuple[Source, Destination]
    b: tuple[Source, Destination]
    fields: Mapping[str, str]
    name: str = ""
    policy: str = "last_writer_wins"
    owners: Mapping[str, str] = field(default_factory=dict)
    modified: tuple[str | None, str | None] = (None, None)
    tie: str = "a"
    on_missing: str | None = None
    reconcile_every: dt.timedelta = dt.timedelta(days=1)
    description: str | None = None
    enabled: bool = True
    tags: dict[str, str] = field(default_factory=dict)
    route_names: tuple[str, str] | None = None
    disabled_reason: str | None = None
    a_bindings: tuple[EndBinding | None, EndBinding | None] = (None, None)
    b_bindings: tuple[EndBinding | None, EndBinding | None] = (None, None)
    retry_policy: Any = None
    backoff: str | None = None

    def __post_init__(self) -> None:
        """Check the policy, the owners and the field map."""
        a_name, b_name = self.a[0].name, self.b[0].name
        name = (self.name or f"{a_name}_and_{b_name}").replace("-", "_")
        if not _ROUTE_NAME_RE.match(name):
            raise ConfigError(f"TwoWayRoute name {name!r}: use letters, digits and '_', at most 100 characters")
        object.__setattr__(self, "name", name)
        if self.policy not in POLICIES:
            raise ConfigError(f"TwoWayRoute {name}: policy must be one of {', '.join(POLICIES)}")
        if not self.fields:
            raise ConfigError(f"TwoWayRoute {name}: fields is empty; name the fields both sides keep in step")
        if len(set(self.fields.values())) != len(self.fields):
            raise ConfigError(f"TwoWayRoute {name}: two fields of A map to one field of B")
        if self.tie not in ("a", "b"):
            raise ConfigError(f"TwoWayRoute {name}: tie must be 'a' or 'b'")
        for field_name, owner in self.owners.items():
            if field_name not in self.fields:
                raise ConfigError(f"TwoWayRoute {name}: owners names {field_name!r}, which is not in fields")
            if owner not in ("a", "b"):
                raise ConfigError(f"TwoWayRoute {name}: the owner of {field_name!r} must be 'a' or 'b'")
        if self.policy == "owner":
            unowned = sorted(set(self.fields) - set(self.owners))
            if unowned:
                raise ConfigError(f"TwoWayRoute {name}: policy 'owner' needs an owner for {', '.join(unowned)}")

    def routes(self) -> tuple[Route, Route]:
        """The two routes: ``<a>_to_<b>`` (A's source into B's destination) and ``<b>_to_<a>``."""
        (a_source, a_dest), (b_source, b_dest) = self.a, self.b
        a_to_b, b_to_a = self.route_names or (
            f"{a_source.name}_to_{b_dest.name}".replace("-", "_"),
            f"{b_source.name}_to_{a_dest.name}".replace("-", "_"),
        )
        (a_src_bind, a_dst_bind), (b_src_bind, b_dst_bind) = self.a_bindings, self.b_bindings
        common = {
            "pair": self.name,
            "fields": tuple(self.fields.items()),
            "policy": self.policy,
            "owners": dict(self.owners),
            "modified": self.modified,
            "tie": self.tie,
        }
        out = []
        for source, dest, route_name, side, peer, peer_source, bindings in (
            (a_source, b_dest, a_to_b, "a", b_to_a, b_source, (a_src_bind, b_dst_bind, b_src_bind)),
            (b_source, a_dest, b_to_a, "b", a_to_b, a_source, (b_src_bind, a_dst_bind, a_src_bind)),
        ):
            out.append(
                Route(
                    source,
                    dest,
                    name=route_name,
                    reconcile_every=self.reconcile_every,
                    description=self.description,
                    enabled=self.enabled,
                    disabled_reason=self.disabled_reason,
                    tags=dict(self.tags),
                    on_missing=self.on_missing,
                    retry_policy=self.retry_policy,
                    backoff=self.backoff,
                    source_binding=bindings[0],
                    destination_binding=bindings[1],
                    two_way=TwoWay(
                        side=side,
                        peer_route=peer,
                        peer_source=peer_source,
                        peer_binding=bindings[2],
                        **common,  # type: ignore[arg-type]
                    ),
                )
            )
        return out[0], out[1]


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

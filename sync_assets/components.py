"""Routes declared in YAML: ``RouteComponent``, a Dagster component (``dg scaffold defs``).

A route is one file, ``sync_assets/defs/<route>/defs.yaml``::

    type: sync_assets.components.RouteComponent
    attributes:
      name: github_to_notion
      source:
        system: github                      # the resource (sync_assets.systems) that builds it
        orgs: "{{ env.GITHUB_ORGS }}"
      destination:
        system: notion
        database_id: "{{ env.NOTION_DATABASE_ID }}"
        title_property: Name
        key_property: Repo ID
      create_only: [Created]
      interval_minutes: 30

``source`` and ``destination`` name a system (its resource key, or ``resource:`` for another key) and
that system's options; secrets never appear here, they are the resources' ``dg.EnvVar`` fields. The
project loader (``sync_assets.project``) loads every such file on its own, so one bad file keeps only
its route out of the graph.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import dagster as dg

from connectors.core import ConfigError
from sync_assets.routes import EndBinding, Route, TwoWayRoute
from sync_assets.systems import SystemResource, default_resources

__all__ = ["RouteComponent", "RouteRetry", "RouteScaffolder"]

_ENV_REF = re.compile(r"env(?:\.([A-Za-z_][A-Za-z0-9_]*)|\(\s*['\"]([A-Za-z_][A-Za-z0-9_]*)['\"])")
_RESERVED = ("system", "resource")

SCAFFOLD_TEMPLATE = """\
type: sync_assets.components.RouteComponent
attributes:
  # The route's identity: its asset key, partitions and state (letters, digits, '_').
  name: {name}
  description: Rows of a CSV file mirrored into a SQLite table.
  source:
    system: files            # a resource key of sync_assets.systems.default_resources()
    files:
      - key: {name}
        path: {name}.csv     # relative to $DAGSTER_HOME/demo (FilesResource.base_dir)
        key_column: id
  destination:
    system: files
    path: {name}.sqlite3
    table: {name}
    key_column: source_id      # the table's column holding the source's key
  # owns: [title]            # only these fields are written (field ownership)
  # create_only: [created]   # written when a row is created, never updated
"""


def env_references(attributes: Mapping[str, Any]) -> dict[tuple[str, str], list[str]]:
    """The variables each option of a route's YAML reads (``{{ env.X }}``, ``{{ env('X') }}``).

    Keyed by ``(end, option)``: ``("source", "orgs") -> ["GITHUB_ORGS"]``.
    """
    out: dict[tuple[str, str], list[str]] = {}
    for end in ("source", "destination"):
        raw = attributes.get(end)
        for option, value in raw.items() if isinstance(raw, dict) else []:
            names = [m.group(1) or m.group(2) for m in _ENV_REF.finditer(str(value))]
            if names:
                out[(end, str(option))] = names
    return out


class RouteScaffolder(dg.Scaffolder):
    """``dg scaffold defs sync_assets.components.RouteComponent my_route``: a commented route file."""

    def scaffold(self, request: dg.ScaffoldRequest) -> None:
        """Write ``defs.yaml`` of a files → SQLite route named after the new folder."""
        name = re.sub(r"[^A-Za-z0-9_]", "_", request.target_path.name) or "my_route"
        request.target_path.mkdir(parents=True, exist_ok=True)
        (request.target_path / "defs.yaml").write_text(SCAFFOLD_TEMPLATE.format(name=name))


class RouteRetry(dg.Model):
    """A route's ``retry:`` block: the sync asset's retries, and how they and the HTTP retries back off.

    Attributes:
        max_retries: Retries of a failed pass (default: ``SYNC_RETRY_POLICY``'s, 3).
        delay_seconds: The first retry's delay (default: ``SYNC_RETRY_POLICY``'s, 5 s).
        backoff: ``exponential``, ``linear`` or ``constant``: the asset's retries and the connectors'
            HTTP retries both back off so (``Route.backoff``).
    """

    max_retries: int | None = None
    delay_seconds: float | None = None
    backoff: Literal["exponential", "linear", "constant"] = "exponential"

    def route_kwargs(self) -> dict[str, Any]:
        """``Route(retry_policy=..., backoff=...)`` of this block."""
        from sync_assets.factory import SYNC_RETRY_POLICY

        policy = dg.RetryPolicy(
            max_retries=self.max_retries if self.max_retries is not None else SYNC_RETRY_POLICY.max_retries,
            delay=self.delay_seconds if self.delay_seconds is not None else SYNC_RETRY_POLICY.delay,
            jitter=SYNC_RETRY_POLICY.jitter,
        )
        return {"retry_policy": policy, "backoff": self.backoff}


class TwoWayBlock(dg.Model):
    """A route's ``two_way:`` block: the file declares both directions of a pair (``TwoWayRoute``).

    The route's ``source`` and ``destination`` are side A's source and side B's destination; this
    block adds the other two ends, so the file yields two routes: ``name`` (A to B) and ``back_name``
    (B to A)::

        two_way:
          back_name: jira_to_notion
          back_source: {system: jira, projects: [ENG]}          # side B's source
          back_destination: {system: notion, database_id: ...}  # side A's destination
          fields: {Name: Summary, Priority: Priority}            # A's property -> B's
          policy: last_writer_wins                               # or owner (with owners:)
          modified: [Edited, Updated]                            # each side's modification time

    Attributes:
        back_name: The name of the B-to-A route.
        back_source: ``system`` (or ``resource``) and the options of side B's source.
        back_destination: ``system`` (or ``resource``) and the options of side A's destination.
        fields: Synced fields, A's property name -> B's.
        pair: The pair's name (default ``<name>_pair``).
        policy: ``last_writer_wins`` or ``owner``.
        owners: A's field name -> ``a`` or ``b``.
        modified: The properties holding A's and B's modification times.
        tie: The side that wins a conflict when the times are equal or unknown.
    """

    back_name: str
    back_source: dict[str, Any]
    back_destination: dict[str, Any]
    fields: dict[str, str]
    pair: str | None = None
    policy: Literal["last_writer_wins", "owner"] = "last_writer_wins"
    owners: dict[str, Literal["a", "b"]] = {}
    modified: list[str | None] = [None, None]
    tie: Literal["a", "b"] = "a"


@dg.scaffold_with(RouteScaffolder)
class RouteComponent(dg.Component, dg.Resolvable, dg.Model):
    """A route from a source system to a destination system, declared in YAML.

    Attributes:
        name: The route's identity (asset key, partitions, state): letters, digits, ``_``.
        source: ``system`` (or ``resource``) and the source's options.
        destination: ``system`` (or ``resource``) and the destination's options.
        description: Shown on the asset in the UI.
        owns: Only these fields are written (field ownership; two-way sync is two routes).
        create_only: Fields written when a row is created, never updated.
        interval_minutes: How often each partition syncs (the source's default otherwise).
        enabled: False keeps the route out of the graph.
        on_missing: ``mark``: mark rows whose key left the source (``Route.on_missing``).
        two_way: Both directions of a pair in one file (``TwoWayBlock``); the file yields two routes.
        retry: ``{max_retries, delay_seconds, backoff}``: the route's retries (``RouteRetry``).
    """

    name: str
    source: dict[str, Any]
    destination: dict[str, Any]
    description: str | None = None
    owns: list[str] | None = None
    create_only: list[str] = []
    interval_minutes: int | None = None
    enabled: bool = True
    on_missing: Literal["mark"] | None = None
    two_way: TwoWayBlock | None = None
    retry: RouteRetry | None = None

    def _end(
        self,
        end: str,
        resources: Mapping[str, SystemResource],
        broken: Mapping[str, str],
        raw_options: Mapping[str, Any] | None = None,
    ) -> tuple[str, SystemResource, dict[str, Any]]:
        raw = dict(raw_options if raw_options is not None else self.source if end == "source" else self.destination)
        system = raw.get("system")
        key = raw.get("resource") or system
        if not key:
            raise ConfigError(f"route {self.name}: {end} needs 'system' (one of: {', '.join(sorted(resources))})")
        if str(key) in broken:
            raise ConfigError(
                f"route {self.name}: {end} uses resource {key!r}, which is misconfigured: {broken[str(key)]}"
            )
        resource = resources.get(str(key))
        if resource is None:
            raise ConfigError(
                f"route {self.name}: {end} uses resource {key!r}, which is not defined "
                f"(resources: {', '.join(sorted(resources))})"
            )
        if system and resource.system != system:
            raise ConfigError(
                f"route {self.name}: {end} says system {system!r} but resource {key!r} is {resource.system!r}"
            )
        options = {k: v for k, v in raw.items() if k not in _RESERVED}
        if end == "source" and self.interval_minutes is not None and "interval_minutes" not in options:
            options["interval_minutes"] = self.interval_minutes
        if end == "destination" and self.create_only and "create_only" not in options:
            options["create_only"] = list(self.create_only)
        return str(key), resource, options

    def build_route(
        self,
        resources: Mapping[str, SystemResource],
        *,
        env_refs: Mapping[tuple[str, str], list[str]] | None = None,
        broken: Mapping[str, str] | None = None,
    ) -> Route:
        """The route, its connectors built from ``resources`` (nothing is called, no secret is read).

        Args:
            resources: The resources by key (``sync_assets.systems.default_resources()``).
            env_refs: The variables the route's YAML reads per ``(end, option)``, named in "not
                configured" reasons.
            broken: Resources that failed to configure, by key, with why (a route using one fails).

        Raises:
            ConfigError: An unknown resource or option, a bad value, a bad name.
        """
        src_key, src_res, src_opts = self._end("source", resources, broken or {})
        dst_key, dst_res, dst_opts = self._end("destination", resources, broken or {})
        source = src_res.source(src_opts, where=f"route {self.name}: source ({src_res.system})")
        destination = dst_res.destination(dst_opts, where=f"route {self.name}: destination ({dst_res.system})")
        missing: list[str] = []
        for item in src_res.missing() + dst_res.missing():
            if item not in missing:
                missing.append(item)
        groups = [("source", g) for g in src_res.source_missing(src_opts)]
        groups += [("destination", g) for g in dst_res.destination_missing(dst_opts)]
        for end, group in groups:
            # Name the variables the YAML reads for these options, else the options themselves.
            refs = [n for option in group for n in (env_refs or {}).get((end, option), [])]
            missing.append(" or ".join(refs or [f"{end}.{option}" for option in group]))
        return Route(
            source,
            destination,
            name=self.name,
            description=self.description,
            owns=frozenset(self.owns) if self.owns is not None else None,
            enabled=self.enabled and not missing,
            disabled_reason=(
                f"not configured: set {', '.join(missing)}" if missing else None if self.enabled else "enabled: false"
            ),
            on_missing=self.on_missing,
            source_binding=EndBinding(src_key, src_opts, src_res.secret_envs()),
            destination_binding=EndBinding(dst_key, dst_opts, dst_res.secret_envs()),
            **(self.retry.route_kwargs() if self.retry is not None else {}),
        )

    def build_routes(
        self,
        resources: Mapping[str, SystemResource],
        *,
        env_refs: Mapping[tuple[str, str], list[str]] | None = None,
        broken: Mapping[str, str] | None = None,
    ) -> list[Route]:
        """The file's routes: the route, or with ``two_way`` both directions of the pair (A to B first).

        Raises:
            ConfigError: As ``build_route``, or a bad ``two_way`` block.
        """
        route = self.build_route(resources, env_refs=env_refs, broken=broken)
        tw = self.two_way
        if tw is None:
            return [route]
        b_key, b_res, b_opts = self._end("source", resources, broken or {}, tw.back_source)
        a_key, a_res, a_opts = self._end("destination", resources, broken or {}, tw.back_destination)
        b_source = b_res.source(b_opts, where=f"route {tw.back_name}: source ({b_res.system})")
        a_dest = a_res.destination(a_opts, where=f"route {tw.back_name}: destination ({a_res.system})")
        missing = [m for m in b_res.missing() + a_res.missing() if m not in (route.disabled_reason or "")]
        reason = route.disabled_reason
        if missing:
            reason = f"{reason}; set {', '.join(missing)}" if reason else f"not configured: set {', '.join(missing)}"
        modified = [*tw.modified, None, None][:2]
        pair = TwoWayRoute(
            a=(route.source, a_dest),
            b=(b_source, route.destination),
            fields=tw.fields,
            name=tw.pair or f"{self.name}_pair",
            policy=tw.policy,
            owners=dict(tw.owners),
            modified=(modified[0], modified[1]),
            tie=tw.tie,
            on_missing=self.on_missing,
            retry_policy=route.retry_policy,
            backoff=route.backoff,
            description=self.description,
            enabled=route.enabled and not missing,
            disabled_reason=reason,
            route_names=(self.name, tw.back_name),
            a_bindings=(route.source_binding, EndBinding(a_key, a_opts, a_res.secret_envs())),
            b_bindings=(EndBinding(b_key, b_opts, b_res.secret_envs()), route.destination_binding),
        )
        return list(pair.routes())

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        """This route alone, for projects that load it with ``dg.load_from_defs_folder``.

        The deployment-wide sensors (sync-now, auth-resume, failures, stale runs) need every route;
        ``sync_assets.project.load_project`` adds them once for all routes (this project's loader).
        """
        from sync_assets.factory import build_definitions

        resources = default_resources()
        return build_definitions(self.build_routes(resources), resources=dict(resources), shared_sensors=False)


def load_route_file(
    path: Path, resources: Mapping[str, SystemResource], broken: Mapping[str, str] | None = None
) -> Route | None:
    """The route declared by one ``defs.yaml`` (None when the file declares another component type).

    Raises:
        ConfigError: The file is not valid YAML, the route's attributes are not valid, or it declares
            a two-way pair (two routes: ``load_route_files``).
    """
    routes = load_route_files(path, resources, broken)
    if len(routes) > 1:
        raise ConfigError(f"{path}: declares {len(routes)} routes (two_way); load it with load_route_files")
    return routes[0] if routes else None


def load_route_files(
    path: Path, resources: Mapping[str, SystemResource], broken: Mapping[str, str] | None = None
) -> list[Route]:
    """The routes declared by one ``defs.yaml``: one, two for a ``two_way`` pair, none for another component.

    Raises:
        ConfigError: The file is not valid YAML, or the route's attributes are not valid.
    """
    import yaml

    text = path.read_text(encoding="utf-8")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(doc, dict) or "type" not in doc:
        raise ConfigError(f"{path}: expected a mapping with 'type' and 'attributes'")
    if str(doc["type"]).rsplit(".", 1)[-1] != RouteComponent.__name__:
        return []
    attributes = doc.get("attributes")
    if not isinstance(attributes, dict):
        raise ConfigError(f"{path}: 'attributes' must be a mapping")
    try:
        component = RouteComponent.resolve_from_yaml(yaml.safe_dump(attributes, sort_keys=False))
    except Exception as err:  # pydantic / template errors: the message names the field
        raise ConfigError(f"{path}: {_first_lines(str(err))}") from None
    return component.build_routes(resources, env_refs=env_references(attributes), broken=broken)


def _first_lines(text: str, n: int = 6) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return " ".join(lines[:n])

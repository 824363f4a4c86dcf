"""Schema bootstrap for ``AsanaDestination``: the custom fields a sample of records needs, on the project.

What a record property becomes (the destination's own mapping, ``destination.py``): the title and
properties mapped to native task fields (``due_on``, ``completed``…) need no custom field; every other
property is a custom field by NAME (``field_map`` renames it), plus the key field (Text) and the synced
field (Date). Kinds, from the sample: text -> ``text``, numbers -> ``number`` (precision 0 for
integers, 2 when a float was seen), dates and datetimes -> ``date``, lists -> ``multi_enum`` (the
sampled values become its options). Asana has no checkbox field: a bool property is skipped.

Creating one (developers.asana.com/reference/createcustomfield, /addcustomfieldsettingforproject)::

    POST /custom_fields                            {"data": {"workspace", "name", "resource_subtype",
                                                              "precision"?, "enum_options"?}}
    POST /projects/{gid}/addCustomFieldSetting     {"data": {"custom_field": <gid>}}

A name is unique within a workspace, so a field of the workspace with that name that the project does
not carry yet is added to the project instead of created (when its type fits). Existing fields are
never changed: one of another type is reported (``mismatch``). Both calls are creates: never resent
after an ambiguous failure. A free workspace (402 on custom fields) is a ``ConfigError``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from connectors.asana.client import AsanaClient
from connectors.asana.encode import field_kind
from connectors.asana.settings import NATIVE_FIELDS
from connectors.core import ConfigError, Record, SchemaChange, sample_kinds
from connectors.http import HTTPRecordError, Json, NotFound


class BootstrapTarget(Protocol):
    """What a bootstrap reads of an ``AsanaDestination`` (a protocol, so this module never imports it)."""

    name: str
    title_property: str
    key_field: str | None
    synced_field: str | None

    @property
    def field_map(self) -> Mapping[str, str]:
        """Record property -> target field."""
        ...

    @property
    def config_hint(self) -> str:
        """What to set when it is not configured."""
        ...

    def token(self) -> str | None:
        """The token now."""
        ...

    def project(self) -> str | None:
        """The project gid now."""
        ...

    def _client(self, token: str) -> AsanaClient: ...


__all__ = ["BootstrapTarget", "bootstrap_schema", "wanted_fields"]

PAYMENT_REQUIRED = 402
MAX_ENUM_OPTIONS = 500  # Asana's limit on the options of one field (disabled ones included)

# Neutral kind (``core.sample_kinds``) -> the custom field type that holds it; None: no such type.
_FIELD_TYPES: dict[str, str | None] = {
    "text": "text",
    "number": "number",
    "date": "date",
    "datetime": "date",
    "list": "multi_enum",
    "checkbox": None,
}
# Existing field types that take the values of a wanted type (the encoder writes a string into an
# enum by option name).
_FITS: dict[str, frozenset[str]] = {
    "text": frozenset({"text", "enum"}),
    "number": frozenset({"number"}),
    "date": frozenset({"date"}),
    "multi_enum": frozenset({"multi_enum"}),
}


def wanted_fields(dest: BootstrapTarget, sample: Sequence[Record]) -> tuple[dict[str, Json], list[SchemaChange]]:
    """The custom fields ``sample`` needs (name -> create request) and the properties skipped.

    The create requests lack ``workspace`` (added when sent).
    """
    wanted: dict[str, Json] = {}
    skipped: list[SchemaChange] = []
    kinds = sample_kinds(sample)
    floats = {n for r in sample for n, v in r.properties.items() if isinstance(v, float)}
    options: dict[str, list[str]] = {}
    for record in sample:
        for name, value in record.properties.items():
            if isinstance(value, list):
                seen = options.setdefault(name, [])
                seen.extend(v for v in value if isinstance(v, str) and v and v not in seen)
    for prop, kind in kinds.items():
        if prop == dest.title_property:
            continue
        target = dest.field_map.get(prop, prop)
        if target in NATIVE_FIELDS or target in (dest.key_field, dest.synced_field):
            continue
        subtype = _FIELD_TYPES.get(kind)
        if subtype is None:
            skipped.append(SchemaChange("skip", target, kind, "Asana has no custom field type for it"))
            continue
        request: Json = {"name": target, "resource_subtype": subtype}
        if subtype == "number":
            request["precision"] = 2 if prop in floats else 0
        if subtype == "multi_enum":
            request["enum_options"] = [{"name": o} for o in options.get(prop, [])[:MAX_ENUM_OPTIONS]]
        wanted[target] = request
    if dest.key_field is not None:
        wanted[dest.key_field] = {"name": dest.key_field, "resource_subtype": "text"}
    if dest.synced_field is not None:
        wanted[dest.synced_field] = {"name": dest.synced_field, "resource_subtype": "date"}
    return wanted, skipped


async def _fields(client: AsanaClient, path: str, nested: bool) -> list[Json]:
    prefix = "custom_field." if nested else ""
    opt = (f"{prefix}name", f"{prefix}resource_subtype", f"{prefix}type", f"{prefix}enum_options.name")
    out = []
    async for item in client.iter_list(path, opt_fields=opt):
        field = item.get("custom_field") if nested else item
        if isinstance(field, dict):
            out.append(dict(field))
    return out


def _by_name(fields: list[Json]) -> dict[str, Json]:
    out: dict[str, Json] = {}
    for field in fields:
        out.setdefault(str(field.get("name") or ""), field)
    return out


def _describe(request: Json) -> str:
    if request.get("enum_options"):
        return "options " + ", ".join(str(o["name"]) for o in request["enum_options"])
    if request["resource_subtype"] == "number":
        return f"precision {request['precision']}"
    return ""


async def bootstrap_schema(dest: BootstrapTarget, sample: Sequence[Record], *, apply: bool) -> list[SchemaChange]:
    """What the project lacks for ``sample`` (see the module docstring); with ``apply``, add it.

    Raises:
        ConfigError: No token or project, the project is not visible, or the workspace is free.
    """
    token, project_gid = dest.token(), dest.project()
    if not token or not project_gid:
        raise ConfigError(f"AsanaDestination {dest.name!r}: {dest.config_hint}")
    wanted, changes = wanted_fields(dest, sample)
    async with dest._client(token) as client:
        try:
            project = await client.get_project(project_gid, opt_fields=("name", "workspace"))
            workspace = str((project.get("workspace") or {}).get("gid") or "")
            on_project = _by_name(await _fields(client, f"/projects/{project_gid}/custom_field_settings", True))
            in_workspace: dict[str, Json] = {}
            if any(name not in on_project for name in wanted):
                in_workspace = _by_name(await _fields(client, f"/workspaces/{workspace}/custom_fields", False))
        except NotFound:
            raise ConfigError(f"Asana: no project {project_gid} is visible to this token (404)") from None
        except HTTPRecordError as err:
            if err.status_code != PAYMENT_REQUIRED:
                raise
            raise ConfigError(
                f"Asana: project {project_gid} is in a workspace without custom fields (a free plan; Asana "
                "answered 402), so no field can be created"
            ) from None
        for name, request in wanted.items():
            subtype = str(request["resource_subtype"])
            existing = on_project.get(name) or in_workspace.get(name)
            if existing is not None and field_kind(existing) not in _FITS[subtype]:
                where = "on the project" if name in on_project else "in the workspace"
                changes.append(SchemaChange("mismatch", name, subtype, f"a {field_kind(existing)} field {where}"))
                continue
            if name in on_project:
                continue
            if existing is not None:
                changes.append(SchemaChange("create", name, subtype, "the workspace's field, added to the project"))
            else:
                changes.append(SchemaChange("create", name, subtype, _describe(request)))
            if apply:
                await _add(client, project_gid, workspace, request, existing)
    return changes


async def _add(client: AsanaClient, project_gid: str, workspace: str, request: Json, existing: Json | None) -> None:
    gid = existing.get("gid") if existing is not None else None
    if gid is None:
        body: dict[str, Any] = {"data": {**request, "workspace": workspace}}
        created = await client.request("POST", "/custom_fields", json=body, params={"opt_fields": "gid"}, create=True)
        gid = created["data"]["gid"]
    await client.request(
        "POST", f"/projects/{project_gid}/addCustomFieldSetting", json={"data": {"custom_field": str(gid)}}, create=True
    )

"""One Dagster resource per system: the connection settings, secrets as ``dg.EnvVar``, and the clients.

A route names the resources it uses (``source: {system: github}`` in a route's YAML, or
``ResourceEnd("github", ...)`` in Python); each resource builds the plain connector from
``connectors/`` (which never imports Dagster) with that route's options.

Secrets. A secret field holds a ``dg.EnvVar`` (``secret("GITHUB_TOKEN")``): the UI shows which variable
a resource needs, run config and the event log carry only its name, and Dagster checks at the start of
a run that it is set. The connector reads the same variable when it first needs it (so a token renewed
in place is seen, and pauses stay keyed on the variable's name), or ``<NAME>_FILE`` when the secret is
mounted as a file. Nothing here reads a secret at import or when the code location loads.

Each build happens twice: when the code location loads (for the sensors: spec keys, credential slots;
nothing is called) and in the run, from the run's resource.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import dagster as dg
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from connectors.core import ConfigError, Destination, Source
from sync_assets.routes import Route

__all__ = [
    "AsanaResource",
    "ContentfulResource",
    "FilesResource",
    "GitHubResource",
    "JiraResource",
    "ListenBrainzResource",
    "LumaResource",
    "NotionResource",
    "SpotifyResource",
    "SystemResource",
    "YouTubeResource",
    "bind_route",
    "default_resources",
    "load_resources",
    "resource_factories",
    "resource_keys",
    "secret",
]


def secret(name: str) -> dg.EnvVar:
    """The ``dg.EnvVar`` of a secret: ``NAME``, or ``NAME_FILE`` when only the file variable is set.

    Only whether the variables are set is looked at, never their values.
    """
    if not os.environ.get(name, "").strip() and os.environ.get(f"{name}_FILE", "").strip():
        return dg.EnvVar(f"{name}_FILE")
    return dg.EnvVar(name)


def _env_name(value: object) -> str | None:
    """The variable an EnvVar field names (``X_FILE`` → ``X``: the connectors read both), else None."""
    if isinstance(value, dg.EnvVar):
        name = value.env_var_name
        return name[: -len("_FILE")] if name.endswith("_FILE") else name
    return None


def _is_set(name: str) -> bool:
    return bool(os.environ.get(name, "").strip() or os.environ.get(f"{name}_FILE", "").strip())


def _csv(value: Any) -> list[str]:
    """A list from a YAML list or a comma-separated string (``{{ env.GITHUB_ORGS }}``); None is empty."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip() and part.strip() != "None"]
    return [str(v).strip() for v in value if str(v).strip()]


class Options(BaseModel):
    """A route's options for one end: unknown keys are errors, naming the key."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    @field_validator("*", mode="before")
    @classmethod
    def _unset_template(cls, value: Any) -> Any:
        # ``{{ env.X }}`` of an unset variable renders as None (or "None" inside a longer string).
        return None if value in ("", "None") else value


def parse_options(model: type[Options], options: Mapping[str, Any], *, where: str) -> Any:
    """``options`` validated by ``model``; a ConfigError naming each bad key otherwise."""
    try:
        return model.model_validate(dict(options))
    except ValidationError as err:
        problems = []
        for e in err.errors():
            loc = ".".join(str(p) for p in e["loc"]) or "(options)"
            msg = "is not an option here" if e["type"] == "extra_forbidden" else e["msg"]
            problems.append(f"{loc} {msg}")
        known = ", ".join(model.model_fields)
        raise ConfigError(f"{where}: {'; '.join(problems)} (options: {known})") from None


class SystemResource(dg.ConfigurableResource):
    """The connection settings of one system, and the factory of its connectors.

    Subclasses set ``system`` and ``secret_fields``, and implement ``source``/``destination`` for the
    ends they support.
    """

    system: ClassVar[str] = ""
    secret_fields: ClassVar[tuple[str, ...]] = ()

    def secret_envs(self) -> dict[str, str]:
        """The variable behind each secret field given as an EnvVar (names only; nothing is read)."""
        return {f: name for f in self.secret_fields if (name := _env_name(getattr(self, f))) is not None}

    def missing(self, envs: Mapping[str, str] | None = None) -> list[str]:
        """The secret variables this resource names that are not set (whether set, not their values)."""
        envs = self.secret_envs() if envs is None else envs
        out = []
        for f in self.secret_fields:
            value = getattr(self, f)
            if f in envs:
                if not _is_set(envs[f]):
                    out.append(envs[f])
            elif not value:
                out.append(f"{type(self).__name__}.{f}")
        return out

    def _secret(self, field: str, envs: Mapping[str, str] | None) -> dict[str, str | None]:
        """Connector keywords for one secret: its variable (read by the connector), else the value given."""
        envs = self.secret_envs() if envs is None else envs
        if field in envs:
            return {"token": None, "token_env": envs[field]}
        value = getattr(self, field)
        return {"token": value or None, "token_env": None}

    def source(self, options: Mapping[str, Any], *, where: str, envs: Mapping[str, str] | None = None) -> Source:
        """This system's source for a route's ``options``."""
        raise ConfigError(f"{where}: {self.system} is not a source (no source connector for it)")

    def destination(
        self, options: Mapping[str, Any], *, where: str, envs: Mapping[str, str] | None = None
    ) -> Destination:
        """This system's destination for a route's ``options``."""
        raise ConfigError(f"{where}: {self.system} is not a destination (no destination connector for it)")

    def source_missing(self, options: Mapping[str, Any]) -> list[tuple[str, ...]]:
        """The source options a route must still set, each a group of which one is needed."""
        return []

    def prepare_run(self) -> None:
        """Called in a run before its connectors are built (default: nothing)."""

    def destination_missing(self, options: Mapping[str, Any]) -> list[tuple[str, ...]]:
        """The destination options a route must still set, each a group of which one is needed."""
        return []


# ---------------------------------------------------------------------------------------------- GitHub


class _GitHubSourceOptions(Options):
    orgs: Any = None
    repos: Any = None
    exclude: Any = None
    topics: Any = None
    include_archived: bool = False
    include_forks: bool = True
    fetch_readme: bool = True
    interval_minutes: int = 30


class GitHubResource(SystemResource):
    """GitHub (REST v3): orgs and named repos as a source.

    Attributes:
        token: A personal access token or an app installation token (``secret("GITHUB_TOKEN")``).
        base_url: The API root (GitHub Enterprise: ``https://HOST/api/v3``).
        page_size: Repositories per page (at most 100).
    """

    system: ClassVar[str] = "github"
    secret_fields: ClassVar[tuple[str, ...]] = ("token",)

    token: str | None = None
    base_url: str = "https://api.github.com"
    page_size: int = Field(default=100, ge=1, le=100)

    def source(self, options: Mapping[str, Any], *, where: str, envs: Mapping[str, str] | None = None) -> Source:
        """A ``GitHubSource`` over the route's orgs and repos; ETag bodies live in the state store."""
        from connectors.github import BlobETagStore, GitHubSource
        from sync_assets.state import SharedBlobs

        o = parse_options(_GitHubSourceOptions, options, where=where)
        secret_args = self._secret("token", envs)
        return GitHubSource(
            orgs=_csv(o.orgs),
            repos=_csv(o.repos),
            exclude=_csv(o.exclude),
            topics=_csv(o.topics),
            include_archived=o.include_archived,
            include_forks=o.include_forks,
            fetch_readme=o.fetch_readme,
            token=secret_args["token"],
            token_env=secret_args["token_env"] or "GITHUB_TOKEN",
            base_url=self.base_url,
            # Conditional-request bodies in the state store: each run is a new process.
            etag_cache=BlobETagStore(SharedBlobs()),
            interval_minutes=o.interval_minutes,
            per_page=self.page_size,
        )

    def source_missing(self, options: Mapping[str, Any]) -> list[tuple[str, ...]]:
        """A GitHub route needs orgs or repos."""
        o = parse_options(_GitHubSourceOptions, options, where="github")
        return [] if _csv(o.orgs) or _csv(o.repos) else [("orgs", "repos")]


# ---------------------------------------------------------------------------------------------- Notion


class _NotionDestinationOptions(Options):
    database_id: str | None = None
    title_property: str = "Name"
    key_property: str = "Key"
    synced_property: str | None = "Last synced"
    create_missing_options: bool = False
    create_only: Sequence[str] = ()


class _NotionSourceOptions(Options):
    data_source_id: str | None = None
    incremental: bool = True
    interval_minutes: int = 30


class NotionResource(SystemResource):
    """Notion: a database as a destination, over the REST API or Notion's hosted MCP server.

    Attributes:
        token: An internal integration's token (``secret("NOTION_TOKEN")``); unused with ``transport="mcp"``,
            which uses the OAuth login of ``durable-sync auth login notion-mcp``.
        transport: ``rest`` or ``mcp``.
        base_url: The REST API root.
        requests_per_second: The integration's request budget (Notion documents about 3).
        mcp_url: Notion's MCP server.
    """

    system: ClassVar[str] = "notion"
    secret_fields: ClassVar[tuple[str, ...]] = ("token",)
    MCP_ACCOUNT: ClassVar[str] = "notion-mcp"

    token: str | None = None
    transport: str = "rest"
    base_url: str = "https://api.notion.com"
    requests_per_second: float = Field(default=3.0, gt=0)
    mcp_url: str = "https://mcp.notion.com/mcp"

    @property
    def uses_mcp(self) -> bool:
        """Whether the destination goes through Notion's MCP server."""
        return self.transport.strip().lower() == "mcp"

    def missing(self, envs: Mapping[str, str] | None = None) -> list[str]:
        """The token's variable when over REST; over MCP the OAuth login is checked at run time."""
        return [] if self.uses_mcp else super().missing(envs)

    def destination(
        self, options: Mapping[str, Any], *, where: str, envs: Mapping[str, str] | None = None
    ) -> Destination:
        """A ``NotionDestination`` (or ``NotionMcpDestination``) writing into the route's database."""
        o = parse_options(_NotionDestinationOptions, options, where=where)
        mapping: dict[str, Any] = {
            "title_property": o.title_property,
            "key_property": o.key_property,
            "synced_property": o.synced_property,
            "create_missing_options": o.create_missing_options,
            "create_only_properties": set(o.create_only),
        }
        if self.uses_mcp:
            from connectors.auth.provider import OAuthBearerAuth, TokenProvider
            from connectors.notion.mcp import NotionMcpDestination
            from sync_assets.tokens import SharedTokenStore

            tokens = SharedTokenStore()
            return NotionMcpDestination(
                o.database_id,
                auth=OAuthBearerAuth(TokenProvider(tokens, self.MCP_ACCOUNT)),
                token_store=tokens,
                account=self.MCP_ACCOUNT,
                mcp_url=self.mcp_url,
                **mapping,
            )
        from connectors.http import Rate
        from connectors.notion import NotionDestination

        secret_args = self._secret("token", envs)
        return NotionDestination(
            o.database_id,
            token=secret_args["token"],
            token_env=secret_args["token_env"] or "NOTION_TOKEN",
            database_id_env=None,
            base_url=self.base_url,
            rate=Rate(self.requests_per_second, 1, burst=3),
            **mapping,
        )

    def source(self, options: Mapping[str, Any], *, where: str, envs: Mapping[str, str] | None = None) -> Source:
        """A ``NotionSource`` reading a data source (incremental by ``last_edited_time``; REST only)."""
        from connectors.http import Rate
        from connectors.notion import NotionSource
        from sync_assets.state import SharedBlobs

        o = parse_options(_NotionSourceOptions, options, where=where)
        if self.uses_mcp:
            raise ConfigError(f"{where}: a Notion source over MCP is not wired here; use transport rest")
        secret_args = self._secret("token", envs)
        return NotionSource(
            o.data_source_id or "unset",
            token=secret_args["token"],
            token_env=secret_args["token_env"] or "NOTION_TOKEN",
            incremental=o.incremental,
            base_url=self.base_url,
            rate=Rate(self.requests_per_second, 1, burst=3),
            interval_minutes=o.interval_minutes,
            watermarks=SharedBlobs().mapping("notion"),
        )

    def source_missing(self, options: Mapping[str, Any]) -> list[tuple[str, ...]]:
        """A Notion source needs its data source id."""
        o = parse_options(_NotionSourceOptions, options, where="notion")
        return [] if o.data_source_id else [("data_source_id",)]

    def destination_missing(self, options: Mapping[str, Any]) -> list[tuple[str, ...]]:
        """A Notion route needs its database id."""
        o = parse_options(_NotionDestinationOptions, options, where="notion")
        return [] if o.database_id else [("database_id",)]


# ---------------------------------------------------------------------------------------------- Asana


class _AsanaDestinationOptions(Options):
    project_gid: str | None = None
    title_property: str = "Name"
    key_field: str = "Source ID"
    field_map: Mapping[str, str] | None = None
    create_only: Sequence[str] = ()
    batch: bool = True


class AsanaResource(SystemResource):
    """Asana: tasks of a project as a destination.

    Attributes:
        token: A personal access token (``secret("ASANA_PAT")``).
        paid: A paid workspace (1,500 requests/minute instead of 150).
        base_url: The API root.
    """

    system: ClassVar[str] = "asana"
    secret_fields: ClassVar[tuple[str, ...]] = ("token",)

    token: str | None = None
    paid: bool = False
    base_url: str = "https://app.asana.com/api/1.0"

    def destination(
        self, options: Mapping[str, Any], *, where: str, envs: Mapping[str, str] | None = None
    ) -> Destination:
        """An ``AsanaDestination`` writing tasks of the route's project."""
        from connectors.asana import AsanaDestination

        o = parse_options(_AsanaDestinationOptions, options, where=where)
        secret_args = self._secret("token", envs)
        return AsanaDestination(
            o.project_gid,
            title_property=o.title_property,
            key_field=o.key_field,
            field_map=dict(o.field_map or {}),
            create_only_properties=set(o.create_only),
            token=secret_args["token"],
            token_env=secret_args["token_env"] or "ASANA_PAT",
            project_env=None,
            batch=o.batch,
            paid=self.paid,
            base_url=self.base_url,
        )

    def destination_missing(self, options: Mapping[str, Any]) -> list[tuple[str, ...]]:
        """An Asana route needs its project's gid."""
        o = parse_options(_AsanaDestinationOptions, options, where="asana")
        return [] if o.project_gid else [("project_gid",)]


# ---------------------------------------------------------------------------------------------- Jira


class _JiraSourceOptions(Options):
    projects: Any = None
    interval_minutes: int = 30


class _JiraDestinationOptions(Options):
    project_key: str | None = None
    issue_type: str = "Task"
    title_property: str = "Summary"
    field_map: Mapping[str, str] | None = None
    create_only: Sequence[str] = ()
    batch: bool = True


class JiraResource(SystemResource):
    """Jira Cloud: issues of projects as a source.

    Attributes:
        site: The site's URL (``https://acme.atlassian.net``).
        email: The account's email.
        api_token: The account's API token (``secret("JIRA_API_TOKEN")``).
    """

    system: ClassVar[str] = "jira"
    secret_fields: ClassVar[tuple[str, ...]] = ("api_token",)

    site: str | None = None
    email: str | None = None
    api_token: str | None = None

    def missing(self, envs: Mapping[str, str] | None = None) -> list[str]:
        """The token's variable, and the site and email when not set."""
        out = [] if self.site else ["JIRA_BASE_URL"]
        out += [] if self.email else ["JIRA_EMAIL"]
        return out + super().missing(envs)

    def source(self, options: Mapping[str, Any], *, where: str, envs: Mapping[str, str] | None = None) -> Source:
        """A ``JiraSource`` with one spec per project."""
        from connectors.jira import JiraSource

        o = parse_options(_JiraSourceOptions, options, where=where)
        secret_args = self._secret("api_token", envs)
        return JiraSource(
            projects=_csv(o.projects),
            interval_minutes=o.interval_minutes,
            base_url=self.site,
            email=self.email,
            token=secret_args["token"],
            token_env=secret_args["token_env"] or "JIRA_API_TOKEN",
            base_url_env=None,
            email_env=None,
        )

    def destination(
        self, options: Mapping[str, Any], *, where: str, envs: Mapping[str, str] | None = None
    ) -> Destination:
        """A ``JiraDestination`` creating and updating issues of one project."""
        from connectors.jira import JiraDestination

        o = parse_options(_JiraDestinationOptions, options, where=where)
        secret_args = self._secret("api_token", envs)
        return JiraDestination(
            o.project_key,
            issue_type=o.issue_type,
            title_property=o.title_property,
            field_map=dict(o.field_map or {}),
            create_only_properties=set(o.create_only),
            project_env=None,
            batch=o.batch,
            base_url=self.site,
            email=self.email,
            token=secret_args["token"],
            token_env=secret_args["token_env"] or "JIRA_API_TOKEN",
            base_url_env=None,
            email_env=None,
        )

    def destination_missing(self, options: Mapping[str, Any]) -> list[tuple[str, ...]]:
        """A Jira destination needs its project's key."""
        o = parse_options(_JiraDestinationOptions, options, where="jira")
        return [] if o.project_key else [("project_key",)]

    def source_missing(self, options: Mapping[str, Any]) -> list[tuple[str, ...]]:
        """A Jira route needs its projects."""
        return [] if _csv(parse_options(_JiraSourceOptions, options, where="jira").projects) else [("projects",)]


# ---------------------------------------------------------------------------------------------- YouTube


class _YouTubeSourceOptions(Options):
    channels: Any = None
    interval_minutes: int = 360


class YouTubeResource(SystemResource):
    """YouTube Data API v3: uploads of channels as a source.

    Attributes:
        api_key: An API key (``secret("YOUTUBE_API_KEY")``).
        base_url: The API root.
    """

    system: ClassVar[str] = "youtube"
    secret_fields: ClassVar[tuple[str, ...]] = ("api_key",)

    api_key: str | None = None
    base_url: str = "https://www.googleapis.com/youtube/v3"

    def source(self, options: Mapping[str, Any], *, where: str, envs: Mapping[str, str] | None = None) -> Source:
        """A ``YouTubeSource`` over the route's channels; its watermarks live in the state store."""
        from connectors.youtube import YouTubeSource
        from sync_assets.state import SharedBlobs

        o = parse_options(_YouTubeSourceOptions, options, where=where)
        secret_args = self._secret("api_key", envs)
        return YouTubeSource(
            _csv(o.channels),
            token=secret_args["token"],
            token_env=secret_args["token_env"] or "YOUTUBE_API_KEY",
            interval_minutes=o.interval_minutes,
            watermarks=SharedBlobs().mapping("youtube"),
            base_url=self.base_url,
        )

    def source_missing(self, options: Mapping[str, Any]) -> list[tuple[str, ...]]:
        """A YouTube route needs its channels."""
        o = parse_options(_YouTubeSourceOptions, options, where="youtube")
        return [] if _csv(o.channels) else [("channels",)]


# ---------------------------------------------------------------------------------------------- Luma


class _LumaSourceOptions(Options):
    interval_minutes: int = 360


class LumaResource(SystemResource):
    """Luma: the events of the calendar an API key belongs to, as a source.

    Attributes:
        api_key: The calendar's API key (``secret("LUMA_API_KEY")``).
        base_url: The API root.
    """

    system: ClassVar[str] = "luma"
    secret_fields: ClassVar[tuple[str, ...]] = ("api_key",)

    api_key: str | None = None
    base_url: str = "https://public-api.luma.com"

    def source(self, options: Mapping[str, Any], *, where: str, envs: Mapping[str, str] | None = None) -> Source:
        """A ``LumaSource``."""
        from connectors.luma import LumaSource

        o = parse_options(_LumaSourceOptions, options, where=where)
        secret_args = self._secret("api_key", envs)
        return LumaSource(
            token=secret_args["token"],
            token_env=secret_args["token_env"] or "LUMA_API_KEY",
            interval_minutes=o.interval_minutes,
            base_url=self.base_url,
        )


# ---------------------------------------------------------------------------------------------- Contentful


class _ContentfulSourceOptions(Options):
    space_id: str | None = None
    environment: str = "master"
    content_types: Any = None
    interval_minutes: int = 360


class ContentfulResource(SystemResource):
    """Contentful: entries of a space (Sync API) as a source.

    Attributes:
        delivery_token: A Content Delivery API token (``secret("CONTENTFUL_DELIVERY_TOKEN")``).
        cda_base_url: The Content Delivery API root.
    """

    system: ClassVar[str] = "contentful"
    secret_fields: ClassVar[tuple[str, ...]] = ("delivery_token",)

    delivery_token: str | None = None
    cda_base_url: str = "https://cdn.contentful.com"

    def source(self, options: Mapping[str, Any], *, where: str, envs: Mapping[str, str] | None = None) -> Source:
        """A ``ContentfulSource`` (one spec per content type, else one for the space)."""
        from connectors.contentful import ContentfulSource
        from sync_assets.state import SharedBlobs

        o = parse_options(_ContentfulSourceOptions, options, where=where)
        secret_args = self._secret("delivery_token", envs)
        return ContentfulSource(
            o.space_id or "unset",
            environment=o.environment,
            content_types=_csv(o.content_types) or None,
            delivery_token=secret_args["token"],
            delivery_token_env=secret_args["token_env"] or "CONTENTFUL_DELIVERY_TOKEN",
            watermarks=SharedBlobs().mapping("contentful"),
            interval_minutes=o.interval_minutes,
            cda_base_url=self.cda_base_url,
        )

    def source_missing(self, options: Mapping[str, Any]) -> list[tuple[str, ...]]:
        """A Contentful route needs its space."""
        o = parse_options(_ContentfulSourceOptions, options, where="contentful")
        return [] if o.space_id else [("space_id",)]


# ---------------------------------------------------------------------------------------------- local files


class _FileOptions(Options):
    key: str
    path: str
    key_column: str
    types: Mapping[str, str] = {}
    body_column: str | None = None
    interval_minutes: int = 30
    format: str | None = None


class _FilesSourceOptions(Options):
    files: list[_FileOptions]


class _SQLiteDestinationOptions(Options):
    path: str
    table: str
    key_column: str = "primary_key"
    types: Mapping[str, str] = {}
    create_only: Sequence[str] = ()


class _SQLiteTableSourceOptions(Options):
    path: str
    table: str
    key_column: str = "primary_key"
    interval_minutes: int = 30


class FilesResource(SystemResource):
    """Local files: CSV/JSONL files (or a SQLite table we write) as a source, a SQLite table as a destination.

    A source with ``table:`` (and ``path:``) reads the rows of a SQLite table back, keyed by row id
    (``SQLiteTableSource``): one side of a local two-way pair.

    Attributes:
        base_dir: Where relative paths resolve (default: the demo directory, ``$DAGSTER_HOME/demo`` or
            ``DURABLE_SYNC_DEMO_DIR``).
        seed_demo: Copy ``examples/tasks.csv`` into ``base_dir`` before a run when it is missing (the demo).
    """

    system: ClassVar[str] = "files"

    base_dir: str | None = None
    seed_demo: bool = False

    def root(self) -> Path:
        """The directory relative paths resolve under."""
        from sync_assets.demo_data import demo_dir

        return Path(self.base_dir).expanduser() if self.base_dir else demo_dir()

    def _path(self, path: str) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.root() / p

    def prepare_run(self) -> None:
        """Before a run: seed the demo's working copy when asked (never when the code location loads)."""
        if self.seed_demo:
            from sync_assets.demo_data import seed_demo_data

            seed_demo_data()

    def source(self, options: Mapping[str, Any], *, where: str, envs: Mapping[str, str] | None = None) -> Source:
        """A ``FilesSource`` with one spec per file, or with ``table:`` a ``SQLiteTableSource``."""
        from connectors.files import FileSpec, FilesSource, SQLiteDestination
        from connectors.files.sqlite_table import SQLiteTableSource

        if "table" in options:
            t = parse_options(_SQLiteTableSourceOptions, options, where=where)
            table = SQLiteDestination(self._path(t.path), table=t.table, key_column=t.key_column)
            return SQLiteTableSource(table, interval_minutes=t.interval_minutes)
        o = parse_options(_FilesSourceOptions, options, where=where)
        specs = [
            FileSpec(
                key=f.key,
                path=str(self._path(f.path)),
                key_column=f.key_column,
                types=dict(f.types),
                body_column=f.body_column,
                interval_minutes=f.interval_minutes,
                format=f.format,
            )
            for f in o.files
        ]
        return FilesSource(specs)

    def destination(
        self, options: Mapping[str, Any], *, where: str, envs: Mapping[str, str] | None = None
    ) -> Destination:
        """A ``SQLiteDestination`` (a table of a local SQLite file, created on first write)."""
        from connectors.files import SQLiteDestination

        o = parse_options(_SQLiteDestinationOptions, options, where=where)
        return SQLiteDestination(
            self._path(o.path),
            table=o.table,
            key_column=o.key_column,
            types=dict(o.types),
            create_only_properties=set(o.create_only),
        )


# ---------------------------------------------------------------------------------------------- Spotify


class _SpotifySourceOptions(Options):
    interval_minutes: int = 120


class _SpotifyDestinationOptions(Options):
    title_property: str = "Name"
    artist_property: str = "Artist"
    search_by_name: bool = True
    create_only: Sequence[str] = ()


class SpotifyResource(SystemResource):
    """Spotify: the user's saved tracks, as a source and as a destination (keyed by ISRC).

    Attributes:
        access_token: An OAuth access token with ``user-library-read`` / ``user-library-modify``
            (``secret("SPOTIFY_ACCESS_TOKEN")``); it lasts an hour, so renew the variable (or its file).
        base_url: The API root.
    """

    system: ClassVar[str] = "spotify"
    secret_fields: ClassVar[tuple[str, ...]] = ("access_token",)

    access_token: str | None = None
    base_url: str = "https://api.spotify.com/v1"

    def source(self, options: Mapping[str, Any], *, where: str, envs: Mapping[str, str] | None = None) -> Source:
        """A ``SpotifySource``."""
        from connectors.spotify import SpotifySource

        o = parse_options(_SpotifySourceOptions, options, where=where)
        secret_args = self._secret("access_token", envs)
        return SpotifySource(
            token=secret_args["token"],
            token_env=secret_args["token_env"] or "SPOTIFY_ACCESS_TOKEN",
            interval_minutes=o.interval_minutes,
            base_url=self.base_url,
        )

    def destination(
        self, options: Mapping[str, Any], *, where: str, envs: Mapping[str, str] | None = None
    ) -> Destination:
        """A ``SpotifyDestination`` saving tracks found by ISRC."""
        from connectors.spotify import SpotifyDestination

        o = parse_options(_SpotifyDestinationOptions, options, where=where)
        secret_args = self._secret("access_token", envs)
        return SpotifyDestination(
            token=secret_args["token"],
            token_env=secret_args["token_env"] or "SPOTIFY_ACCESS_TOKEN",
            title_property=o.title_property,
            artist_property=o.artist_property,
            search_by_name=o.search_by_name,
            create_only_properties=set(o.create_only),
            base_url=self.base_url,
        )


# ---------------------------------------------------------------------------------------------- ListenBrainz


class _ListenBrainzSourceOptions(Options):
    user: str | None = None
    interval_minutes: int = 120


class _ListenBrainzDestinationOptions(Options):
    user: str | None = None
    create_only: Sequence[str] = ()


class ListenBrainzResource(SystemResource):
    """ListenBrainz: a user's loved recordings, as a source and as a destination (keyed by ISRC).

    ISRCs and recordings are matched with MusicBrainz (one request a second, a descriptive User-Agent).

    Attributes:
        token: The user token (``secret("LISTENBRAINZ_TOKEN")``); the source reads public feedback
            without it, but the resource names it for both ends.
        user_agent: The ``User-Agent`` sent to MusicBrainz (an application, a version, a contact).
        base_url: The ListenBrainz API root.
        musicbrainz_url: The MusicBrainz web service root.
    """

    system: ClassVar[str] = "listenbrainz"
    secret_fields: ClassVar[tuple[str, ...]] = ("token",)

    token: str | None = None
    user_agent: str = "durable-sync-dagster/0.4 ( ListenBrainz connector )"
    base_url: str = "https://api.listenbrainz.org"
    musicbrainz_url: str = "https://musicbrainz.org/ws/2"

    def source(self, options: Mapping[str, Any], *, where: str, envs: Mapping[str, str] | None = None) -> Source:
        """A ``ListenBrainzSource``; MusicBrainz's MBID → ISRC answers are cached in the state store."""
        from connectors.listenbrainz import ListenBrainzSource
        from sync_assets.state import SharedBlobs

        o = parse_options(_ListenBrainzSourceOptions, options, where=where)
        return ListenBrainzSource(
            o.user,
            interval_minutes=o.interval_minutes,
            isrc_cache=SharedBlobs().mapping("listenbrainz-isrc"),
            user_agent=self.user_agent,
            base_url=self.base_url,
            musicbrainz_url=self.musicbrainz_url,
        )

    def destination(
        self, options: Mapping[str, Any], *, where: str, envs: Mapping[str, str] | None = None
    ) -> Destination:
        """A ``ListenBrainzDestination`` loving the user's recordings found by ISRC."""
        from connectors.listenbrainz import ListenBrainzDestination

        o = parse_options(_ListenBrainzDestinationOptions, options, where=where)
        secret_args = self._secret("token", envs)
        return ListenBrainzDestination(
            o.user,
            token=secret_args["token"],
            token_env=secret_args["token_env"] or "LISTENBRAINZ_TOKEN",
            user_agent=self.user_agent,
            create_only_properties=set(o.create_only),
            base_url=self.base_url,
            musicbrainz_url=self.musicbrainz_url,
        )

    def source_missing(self, options: Mapping[str, Any]) -> list[tuple[str, ...]]:
        """A ListenBrainz source needs the user whose loves it reads."""
        o = parse_options(_ListenBrainzSourceOptions, options, where="listenbrainz")
        return [] if o.user else [("user",)]

    def destination_missing(self, options: Mapping[str, Any]) -> list[tuple[str, ...]]:
        """A ListenBrainz destination needs the user the token belongs to."""
        o = parse_options(_ListenBrainzDestinationOptions, options, where="listenbrainz")
        return [] if o.user else [("user",)]


def _env(name: str, default: str | None = None) -> str | None:
    """A non-secret setting from the environment (URLs, flags), read when the code location loads."""
    return os.environ.get(name, "").strip() or default


def _env_number(name: str, default: float, kind: type[int] | type[float] = int) -> Any:
    raw = _env(name)
    if raw is None:
        return kind(default)
    try:
        return kind(raw)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise ConfigError(f"{name}={raw!r} is not {what}") from None


def resource_factories() -> dict[str, Callable[[], SystemResource]]:
    """How each shipped resource is configured from the environment (secrets by name only).

    Keys are the systems' names; a route's ``source.system`` / ``destination.system`` selects one (or
    ``resource:`` names another key, e.g. a second GitHub credential).
    """
    return {
        "files": lambda: FilesResource(),
        "demo_files": lambda: FilesResource(seed_demo=True),
        "github": lambda: GitHubResource(
            token=secret("GITHUB_TOKEN"),
            base_url=_env("GITHUB_API_URL", "https://api.github.com") or "",
            page_size=_env_number("GITHUB_PAGE_SIZE", 100),
        ),
        "notion": lambda: NotionResource(
            token=secret("NOTION_TOKEN"),
            transport=(_env("NOTION_TRANSPORT", "rest") or "rest").lower(),
            base_url=_env("NOTION_API_URL", "https://api.notion.com") or "",
            requests_per_second=_env_number("NOTION_REQUESTS_PER_SECOND", 3, float),
            mcp_url=_env("NOTION_MCP_URL", "https://mcp.notion.com/mcp") or "",
        ),
        "asana": lambda: AsanaResource(
            token=secret("ASANA_PAT"),
            paid=(_env("ASANA_PAID", "") or "").lower() in ("1", "true", "yes"),
            base_url=_env("ASANA_API_URL", "https://app.asana.com/api/1.0") or "",
        ),
        "jira": lambda: JiraResource(
            site=_env("JIRA_BASE_URL"), email=_env("JIRA_EMAIL"), api_token=secret("JIRA_API_TOKEN")
        ),
        "youtube": lambda: YouTubeResource(api_key=secret("YOUTUBE_API_KEY")),
        "luma": lambda: LumaResource(api_key=secret("LUMA_API_KEY")),
        "contentful": lambda: ContentfulResource(delivery_token=secret("CONTENTFUL_DELIVERY_TOKEN")),
        "spotify": lambda: SpotifyResource(access_token=secret("SPOTIFY_ACCESS_TOKEN")),
        "listenbrainz": lambda: ListenBrainzResource(
            token=secret("LISTENBRAINZ_TOKEN"),
            user_agent=_env("MUSICBRAINZ_USER_AGENT", ListenBrainzResource.model_fields["user_agent"].default) or "",
        ),
    }


def load_resources() -> tuple[dict[str, SystemResource], dict[str, str]]:
    """Every shipped resource that configures, and why each of the others does not (by key).

    A bad setting (``GITHUB_PAGE_SIZE=abc``) keeps out only the routes using that resource.
    """
    resources: dict[str, SystemResource] = {}
    errors: dict[str, str] = {}
    for key, make in resource_factories().items():
        try:
            resources[key] = make()
        except (ConfigError, ValueError) as err:
            errors[key] = " ".join(str(err).split())[:300]
    return resources, errors


def default_resources() -> dict[str, SystemResource]:
    """The shipped resources, configured from the environment; raises on a bad setting."""
    resources, errors = load_resources()
    if errors:
        raise ConfigError("; ".join(f"resource {k}: {e}" for k, e in errors.items()))
    return resources


def resource_keys(route: Route) -> set[str]:
    """The resource keys a route's ends are built from (none for a route of connector objects)."""
    peer = route.two_way.peer_binding if route.two_way is not None else None
    return {b.resource for b in (route.source_binding, route.destination_binding, peer) if b is not None}


def bind_route(route: Route, resources: Any) -> Route:
    """The route with its ends built from the run's resources (``context.resources``).

    A route of connector objects (the Python API without resources) is returned as it is.
    """
    changes: dict[str, Any] = {}
    for end, binding in (("source", route.source_binding), ("destination", route.destination_binding)):
        if binding is None:
            continue
        resource: SystemResource = getattr(resources, binding.resource)
        resource.prepare_run()
        where = f"route {route.name}: {end} ({resource.system})"
        build = resource.source if end == "source" else resource.destination
        changes[end] = build(binding.options, where=where, envs=binding.envs)
    peer = route.two_way.peer_binding if route.two_way is not None else None
    if route.two_way is not None and peer is not None:
        # A two-way route reads the other side back before it writes: that source too is the run's.
        resource = getattr(resources, peer.resource)
        resource.prepare_run()
        where = f"route {route.name}: two_way read-back ({resource.system})"
        peer_source = resource.source(peer.options, where=where, envs=peer.envs)
        changes["two_way"] = dataclasses.replace(route.two_way, peer_source=peer_source)
    return dataclasses.replace(route, **changes) if changes else route

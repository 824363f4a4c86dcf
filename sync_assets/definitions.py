"""The routes this deployment runs, as Dagster definitions (``workspace.yaml`` loads ``defs``).

Edit ``routes`` to add yours. A route whose configuration is missing is still listed (so
``durable-sync status`` can say what to set) but kept out of the Dagster graph. Only *which*
variables are set is looked at here; secrets are read by the connectors when they first need them.
"""

import os
from typing import Any

from connectors.asana import AsanaDestination
from connectors.auth.provider import OAuthBearerAuth, TokenProvider
from connectors.contentful import ContentfulSource
from connectors.files import FileSpec, FilesSource, SQLiteDestination
from connectors.github import BlobETagStore, GitHubSource
from connectors.http import Rate
from connectors.jira import JiraSource
from connectors.luma import LumaSource
from connectors.notion import NotionDestination
from connectors.notion.mcp import NotionMcpDestination
from connectors.youtube import YouTubeSource
from sync_assets.demo_data import demo_dir, seed_demo_data
from sync_assets.factory import build_definitions, link_report_asset
from sync_assets.routes import Route
from sync_assets.state import SharedBlobs
from sync_assets.tokens import SharedTokenStore

NOTION_MCP_ACCOUNT = "notion-mcp"


def _csv_env(name: str) -> list[str]:
    return [part.strip() for part in os.environ.get(name, "").split(",") if part.strip()]


def _missing(*names: str) -> list[str]:
    return [n for n in names if not (os.environ.get(n, "").strip() or os.environ.get(f"{n}_FILE", "").strip())]


def files_demo_route() -> Route:
    """The embedded demo: ``examples/tasks.csv`` (a working copy) into a SQLite table."""
    seed_demo_data()
    # Declared once, for both ends: the source converts each cell (a bad one fails its record) and
    # the destination's columns get these types instead of the first value's.
    types = {
        "priority": "int",
        "estimate_hours": "float",
        "done": "bool",
        "tags": "list",
        "due": "date",
        "updated_at": "datetime",
    }
    source = FilesSource(
        [
            FileSpec(
                key="tasks",
                path=str(demo_dir() / "tasks.csv"),
                key_column="id",
                types=types,
                body_column="notes",
                interval_minutes=5,
            )
        ]
    )
    destination = SQLiteDestination(demo_dir() / "demo.sqlite3", table="tasks", key_column="task_id", types=types)
    return Route(
        source,
        destination,
        name="files_to_sqlite",
        description="Demo: example tasks from a CSV file mirrored into a local SQLite table.",
    )


def _github_source() -> GitHubSource:
    return GitHubSource(
        orgs=_csv_env("GITHUB_ORGS"),
        repos=_csv_env("GITHUB_REPOS"),
        exclude=_csv_env("GITHUB_EXCLUDE"),
        base_url=os.environ.get("GITHUB_API_URL", "").strip() or "https://api.github.com",
        # Conditional-request bodies in the state store: each run is a new process.
        etag_cache=BlobETagStore(SharedBlobs()),
        interval_minutes=int(os.environ.get("GITHUB_INTERVAL_MINUTES", "30")),
        per_page=int(os.environ.get("GITHUB_PAGE_SIZE", "100")),
    )


def _github_missing() -> list[str]:
    missing = _missing("GITHUB_TOKEN")
    if not (_csv_env("GITHUB_ORGS") or _csv_env("GITHUB_REPOS")):
        missing.append("GITHUB_ORGS or GITHUB_REPOS")
    return missing


def github_to_asana_route() -> Route:
    """GitHub repos into tasks of an Asana project (key in the project's "Source ID" custom field).

    Env: the GitHub variables of ``github_to_notion``, ASANA_PAT, ASANA_PROJECT_GID; optional
    ASANA_PAID=1 (1,500 requests/minute instead of 150), ASANA_API_URL.
    """
    destination = AsanaDestination(
        title_property="Name",
        key_field="Source ID",
        create_only_properties={"Created"},
        paid=os.environ.get("ASANA_PAID", "").strip().lower() in ("1", "true", "yes"),
        base_url=os.environ.get("ASANA_API_URL", "").strip() or "https://app.asana.com/api/1.0",
    )
    missing = _github_missing() + _missing("ASANA_PAT", "ASANA_PROJECT_GID")
    return Route(
        _github_source(),
        destination,
        name="github_to_asana",
        description="GitHub repositories mirrored into tasks of an Asana project (keyed on the repo id).",
        enabled=not missing,
        disabled_reason=f"not configured: set {', '.join(missing)}" if missing else None,
    )


def _notion_destination(database_env: str, **mapping: Any) -> NotionDestination | NotionMcpDestination:
    """A Notion destination over REST (NOTION_TOKEN, an integration's), or over Notion's hosted MCP server.

    With NOTION_TRANSPORT=mcp it uses the OAuth login of ``durable-sync auth login notion-mcp``.
    """
    if os.environ.get("NOTION_TRANSPORT", "rest").strip().lower() == "mcp":
        tokens = SharedTokenStore()
        return NotionMcpDestination(
            os.environ.get(database_env, "").strip() or None,
            auth=OAuthBearerAuth(TokenProvider(tokens, NOTION_MCP_ACCOUNT)),
            token_store=tokens,
            account=NOTION_MCP_ACCOUNT,
            mcp_url=os.environ.get("NOTION_MCP_URL", "").strip() or "https://mcp.notion.com/mcp",
            **mapping,
        )
    return NotionDestination(
        database_id_env=database_env,
        base_url=os.environ.get("NOTION_API_URL", "").strip() or "https://api.notion.com",
        # Notion documents ~3 requests/s per integration; plans with a larger budget can raise it.
        rate=Rate(float(os.environ.get("NOTION_REQUESTS_PER_SECOND", "3")), 1, burst=3),
        **mapping,
    )


def _notion_missing(database_env: str) -> list[str]:
    if os.environ.get("NOTION_TRANSPORT", "rest").strip().lower() == "mcp":
        return _missing(database_env)  # the OAuth login is checked at run time, naming the fix
    return _missing("NOTION_TOKEN", database_env)


def github_to_notion_route() -> Route:
    """GitHub repos (orgs and named repos) into a Notion database: the reference wiring.

    Env: GITHUB_TOKEN, GITHUB_ORGS and/or GITHUB_REPOS (comma-separated), GITHUB_EXCLUDE (optional),
    NOTION_TOKEN, NOTION_DATABASE_ID. Optional: GITHUB_INTERVAL_MINUTES, GITHUB_PAGE_SIZE,
    NOTION_REQUESTS_PER_SECOND; GITHUB_API_URL / NOTION_API_URL point at GitHub Enterprise or at test
    fakes. Secrets may also come from files (GITHUB_TOKEN_FILE, NOTION_TOKEN_FILE).
    """
    source = _github_source()
    destination = _notion_destination(
        "NOTION_DATABASE_ID",
        title_property="Name",
        key_property="Repo ID",
        synced_property="Last synced",
        # New languages, topics, licenses and contributors become options as they appear.
        create_missing_options=True,
        create_only_properties={"Created"},
    )
    missing = _github_missing() + _notion_missing("NOTION_DATABASE_ID")
    return Route(
        source,
        destination,
        name="github_to_notion",
        description="GitHub repositories mirrored into a Notion database, one page per repo (keyed on the repo id).",
        enabled=not missing,
        disabled_reason=f"not configured: set {', '.join(missing)}" if missing else None,
    )


def jira_to_notion_route() -> Route:
    """Jira issues (one spec per project in JIRA_PROJECTS) into a Notion database of issues.

    Env: JIRA_BASE_URL, JIRA_EMAIL, JIRA_API_TOKEN, JIRA_PROJECTS (comma-separated keys), NOTION_TOKEN,
    JIRA_NOTION_DATABASE_ID (a database with a Text property "Issue ID": the key).
    """
    source = JiraSource(
        projects=_csv_env("JIRA_PROJECTS"), interval_minutes=int(os.environ.get("JIRA_INTERVAL_MINUTES", "30"))
    )
    destination = _notion_destination(
        "JIRA_NOTION_DATABASE_ID",
        title_property="Summary",
        key_property="Issue ID",
        synced_property="Last synced",
        create_missing_options=True,
    )
    missing = _missing("JIRA_BASE_URL", "JIRA_EMAIL", "JIRA_API_TOKEN", "JIRA_PROJECTS") + _notion_missing(
        "JIRA_NOTION_DATABASE_ID"
    )
    return Route(
        source,
        destination,
        name="jira_to_notion",
        description="Jira issues mirrored into a Notion database, one page per issue (keyed on the issue id).",
        enabled=not missing,
        disabled_reason=f"not configured: set {', '.join(missing)}" if missing else None,
    )


def youtube_to_notion_route() -> Route:
    """Uploads of YouTube channels into a Notion database (key: the video id).

    Env: YOUTUBE_API_KEY, YOUTUBE_CHANNELS (comma-separated UC… ids or @handles),
    YOUTUBE_NOTION_DATABASE_ID, and the Notion credential.
    """
    source = YouTubeSource(_csv_env("YOUTUBE_CHANNELS"), watermarks=SharedBlobs().mapping("youtube"))
    destination = _notion_destination(
        "YOUTUBE_NOTION_DATABASE_ID", title_property="Title", key_property="Video ID", create_missing_options=True
    )
    missing = _missing("YOUTUBE_API_KEY", "YOUTUBE_CHANNELS") + _notion_missing("YOUTUBE_NOTION_DATABASE_ID")
    return _route(source, destination, "youtube_to_notion", "YouTube uploads mirrored into a Notion database.", missing)


def luma_to_asana_route() -> Route:
    """Events of a Luma calendar into tasks of an Asana project (due at the event's start).

    Env: LUMA_API_KEY, ASANA_PAT, LUMA_ASANA_PROJECT_GID.
    """
    destination = AsanaDestination(
        title_property="Name",
        key_field="Source ID",
        field_map={"Start": "due_at"},
        project_env="LUMA_ASANA_PROJECT_GID",
        paid=os.environ.get("ASANA_PAID", "").strip().lower() in ("1", "true", "yes"),
    )
    missing = _missing("LUMA_API_KEY", "ASANA_PAT", "LUMA_ASANA_PROJECT_GID")
    return _route(LumaSource(), destination, "luma_to_asana", "Luma events mirrored into Asana tasks.", missing)


def contentful_to_notion_route() -> Route:
    """Entries of a Contentful space (Sync API, incremental) into a Notion database (key: entry id).

    Env: CONTENTFUL_SPACE_ID, CONTENTFUL_DELIVERY_TOKEN, optional CONTENTFUL_CONTENT_TYPES
    (comma-separated; one spec each, else one spec for the whole space), CONTENTFUL_NOTION_DATABASE_ID,
    and the Notion credential.
    """
    source = ContentfulSource(
        os.environ.get("CONTENTFUL_SPACE_ID", "").strip() or "unset",
        content_types=_csv_env("CONTENTFUL_CONTENT_TYPES") or None,
        watermarks=SharedBlobs().mapping("contentful"),
    )
    destination = _notion_destination(
        "CONTENTFUL_NOTION_DATABASE_ID", title_property="Name", key_property="Entry ID", create_missing_options=True
    )
    missing = _missing("CONTENTFUL_SPACE_ID", "CONTENTFUL_DELIVERY_TOKEN") + _notion_missing(
        "CONTENTFUL_NOTION_DATABASE_ID"
    )
    return _route(
        source, destination, "contentful_to_notion", "Contentful entries mirrored into a Notion database.", missing
    )


def _route(source: Any, destination: Any, name: str, description: str, missing: list[str]) -> Route:
    return Route(
        source,
        destination,
        name=name,
        description=description,
        enabled=not missing,
        disabled_reason=f"not configured: set {', '.join(missing)}" if missing else None,
    )


routes: list[Route] = [
    files_demo_route(),
    github_to_notion_route(),
    github_to_asana_route(),
    jira_to_notion_route(),
    youtube_to_notion_route(),
    luma_to_asana_route(),
    contentful_to_notion_route(),
]

defs = build_definitions(
    routes,
    assets=[link_report_asset(r) for r in routes if r.name == "files_to_sqlite"],
)

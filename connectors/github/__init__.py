"""GitHub: the repositories of organizations and named repos as records (README as the body).

- ``GitHubSource``: one spec per org (``org:<org>``) and one for named repos (``repos``), paged with
  resumable cursors, conditional requests (ETags) so unchanged repos cost no rate limit.
- ``GitHubClient``: the typed REST client it uses (Link-header pagination, ETag cache).

See ``README.md`` in this folder for tokens and scopes, rate limits, cursors, properties and quirks.
"""

from connectors.github.client import (
    SHARED_ETAG_CACHE,
    BlobETagStore,
    ETagCache,
    ETagStore,
    GitHubClient,
    LinkHeaderPagination,
    RepositoryBlocked,
    parse_link_header,
    rate_limit_key_for,
)
from connectors.github.source import EnrichHook, GitHubSource, RepoContext, repo_record

__all__ = [
    "SHARED_ETAG_CACHE",
    "BlobETagStore",
    "ETagCache",
    "ETagStore",
    "EnrichHook",
    "GitHubClient",
    "GitHubSource",
    "LinkHeaderPagination",
    "RepoContext",
    "RepositoryBlocked",
    "parse_link_header",
    "rate_limit_key_for",
    "repo_record",
]

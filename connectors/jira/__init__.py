"""Jira Cloud (REST API v3): issues as records, and issues kept from records.

- ``JiraSource``: one spec per JQL query (``jql:<slug>``) or project (``project:<KEY>``), paged through
  ``/rest/api/3/search/jql`` with ``nextPageToken``; ``primary_key`` = the issue id.
- ``JiraDestination``: issues of one project, our key stored as an issue entity property written in
  the create request itself, so a crash after a create cannot duplicate.
- ``JiraClient``: the typed REST client both use; ``adf_to_text`` / ``text_to_adf`` for descriptions.

See ``README.md`` in this folder for API tokens, env vars, fields, rate limits and quirks.
"""

from connectors.jira.adf import adf_to_text, normalize_text, text_to_adf
from connectors.jira.client import (
    JiraClient,
    JiraCredentials,
    JiraRejected,
    NextPageTokenPagination,
    normalize_base_url,
    rate_limit_key_for,
)
from connectors.jira.destination import JiraDestination, Truncation, field_kind
from connectors.jira.source import JiraSource, issue_record, parse_jira_datetime

__all__ = [
    "JiraClient",
    "JiraCredentials",
    "JiraDestination",
    "JiraRejected",
    "JiraSource",
    "NextPageTokenPagination",
    "Truncation",
    "adf_to_text",
    "field_kind",
    "issue_record",
    "normalize_base_url",
    "normalize_text",
    "parse_jira_datetime",
    "rate_limit_key_for",
    "text_to_adf",
]

"""Types shared by the GitHub connector's tests (fixtures live in conftest.py)."""

from __future__ import annotations

from collections.abc import Callable

from connectors.github import GitHubSource

SourceFactory = Callable[..., GitHubSource]
"""``make_source(orgs=[...], ...)``: a GitHubSource wired to the fake (see conftest.py)."""

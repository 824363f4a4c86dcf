"""Dagster resources: the state store (and, through routes, the destination clients)."""

from __future__ import annotations

import os

import dagster as dg

from sync_assets.state import StateStore, default_state_url

__all__ = ["SyncStateResource"]


class SyncStateResource(dg.ConfigurableResource):
    """The durable state store of every route.

    The URL is read from the environment variable named by ``url_env`` when the store is first
    used, not at import time and never into run config (a PostgreSQL URL may carry a password).
    Unset, the store is a SQLite file under ``DAGSTER_HOME``.
    """

    url_env: str = "DURABLE_SYNC_STATE_URL"
    url: str | None = None  # for tests and embedded use; prefer url_env for anything with a secret

    def store(self) -> StateStore:
        """The state store at ``url``, else at the URL in ``url_env``, else the SQLite file under ``DAGSTER_HOME``.

        One ``StateStore`` is shared per URL within a process (``StateStore.shared``).
        """
        url = self.url or os.environ.get(self.url_env, "").strip() or default_state_url()
        return StateStore.shared(url)

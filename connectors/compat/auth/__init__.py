"""``durable_sync.auth`` for ported connectors (only the OAuth token accessor has a counterpart)."""

__all__: list[str] = []

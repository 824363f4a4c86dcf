"""``durable_sync.connectors`` for ported connectors: the shared helpers ``content`` and ``multi``.

durable-sync's own connectors are not here: this platform has its own (``connectors.github``,
``connectors.asana``, ...). A durable-sync connector itself ports by rewriting its imports.
"""

__all__: list[str] = []

"""``durable_sync.auth.oauth`` for ported connectors: ``token.current_access_token``.

durable-sync kept a rotating OAuth token in a Temporal workflow and had destinations query it by the
workflow's id. Here tokens live in the platform's encrypted token store (``durable-sync login``), and
the workflow id names the account (or a provider registered for it). Its bootstrap flow, store file
and token workflow have no counterpart: ``durable-sync login <account>`` replaces them.
"""

__all__: list[str] = []

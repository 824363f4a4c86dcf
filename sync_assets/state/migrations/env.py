"""Alembic's environment for the state store: online only, over the connection ``_migrate`` passes.

The caller (``sync_assets.state._migrate``) has already begun the transaction and taken the schema
lock; alembic runs inside it (an external transaction: alembic neither begins nor commits), so the
revisions, the version row and the caller's own bookkeeping commit together or not at all.

Only ``ds_`` tables are durable-sync's: the state store may share Dagster's database, whose own
tables (and its ``alembic_version``) autogenerate must neither see nor drop.
"""

from __future__ import annotations

from typing import Any

from alembic import context

from sync_assets.state._schema import VERSION_TABLE, metadata


def _ours(name: str | None, type_: str, _parent: Any) -> bool:
    return type_ != "table" or bool(name and name.startswith("ds_"))


if context.is_offline_mode():
    raise RuntimeError("the state store's migrations run online only (durable-sync migrate)")

context.configure(
    connection=context.config.attributes["connection"],
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    include_name=_ours,
)
with context.begin_transaction():
    context.run_migrations()

"""The state store's tables and its schema version (the revisions that build them: ``migrations/``).

Keys. Every table is keyed by route, so two routes never collide. The link map is keyed by
``(route, primary_key)``, not by partition: two specs of one route that both yield a key (a repo in
an org spec and in a named-repos spec) must map to one destination row. ``partition`` on a link is
the spec that last wrote it, used for per-partition counts and the link map handed downstream.

Every table is prefixed ``ds_``, so the store can share Dagster's own PostgreSQL database; alembic
keeps the store's revision in its own ``ds_alembic_version`` (Dagster's is ``alembic_version``).

Changing the schema. ``metadata`` here is what the code reads and writes; the database gets there only
through a revision. So a change is two edits: the table here, and a new file in
``migrations/versions/`` (its id the next schema version, ``0003``, revising the last) that makes the
same change with ``op``; then bump ``SCHEMA_VERSION``. A test builds a database from the revisions
and compares it with this metadata, and one checks that the last revision is ``SCHEMA_VERSION``.
Opening the store on a database at an older revision is refused until ``durable-sync migrate`` ran
(``_migrate``).
"""

from __future__ import annotations

import sqlalchemy as sa

SCHEMA_VERSION = 5  # the last revision's id, as a number (ds_meta keeps it for releases before alembic)
VERSION_TABLE = "ds_alembic_version"  # not alembic's default: Dagster's own migrations use that one
LISTING_LEASE = "*listing"  # partition keys never hold '*' (routes.partition_key_for)

metadata = sa.MetaData()

links = sa.Table(
    "ds_links",
    metadata,
    sa.Column("route", sa.String(200), primary_key=True),
    sa.Column("primary_key", sa.String(1024), primary_key=True),
    sa.Column("partition", sa.String(300), nullable=True),
    sa.Column("destination_id", sa.String(1024), nullable=True),
    sa.Column("content_hash", sa.String(64), nullable=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("synced_at", sa.DateTime(timezone=True), nullable=True),
    # Schema 5: the route second, the key last. With the route first, each was also an index on the
    # route alone, which PostgreSQL without statistics (a new database, a route that just grew) costs
    # as low as the primary key's probe by (route, primary_key), and took for the listing merge's
    # per-key probes: 7 s instead of 0.2 s at 8,000 links. Only the primary key leads with the route
    # now; the key last lets a partition's (or a state's) links be read in key order, a batch at a time.
    sa.Index("ds_links_partition", "partition", "route", "primary_key"),
    sa.Index("ds_links_state", "state", "route", "primary_key"),
)

listing = sa.Table(
    "ds_listing",
    metadata,
    sa.Column("route", sa.String(200), nullable=False),
    sa.Column("reconcile_id", sa.String(40), nullable=False),
    sa.Column("primary_key", sa.String(1024), nullable=False),
    sa.Column("destination_id", sa.String(1024), nullable=False),
    sa.Index("ds_listing_key", "route", "reconcile_id", "primary_key"),
)

route_state = sa.Table(
    "ds_route_state",
    metadata,
    sa.Column("route", sa.String(200), primary_key=True),
    sa.Column("last_reconciled_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("reconcile_id", sa.String(40), nullable=True),
    sa.Column("listed", sa.Integer, nullable=True),
    sa.Column("duplicates", sa.Integer, nullable=False, default=0),
    # Schema 2: when the last complete listing started, and (some of) the keys it found twice, kept
    # here so that status and checks never re-scan ds_listing.
    sa.Column("listing_started_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("duplicate_keys", sa.Text, nullable=True),
)

# A lease per (route, name): ``name`` is a partition key (one pass of a partition at a time) or
# LISTING_LEASE (one destination listing of a route at a time). Time-bounded: a holder renews it
# while it works; one that stops renewing (killed, cut off from the database) loses it after the
# lease's seconds, and the next pass takes it over and resumes from the checkpoint.
leases = sa.Table(
    "ds_leases",
    metadata,
    sa.Column("route", sa.String(200), primary_key=True),
    sa.Column("name", sa.String(300), primary_key=True),
    sa.Column("holder", sa.String(64), nullable=False),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("renewed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
)

outcomes = sa.Table(
    "ds_record_outcomes",
    metadata,
    sa.Column("route", sa.String(200), primary_key=True),
    sa.Column("partition", sa.String(300), primary_key=True),
    sa.Column("primary_key", sa.String(1024), primary_key=True),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("first_failed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
)

checkpoints = sa.Table(
    "ds_checkpoints",
    metadata,
    sa.Column("route", sa.String(200), primary_key=True),
    sa.Column("partition", sa.String(300), primary_key=True),
    sa.Column("pass_id", sa.String(40), nullable=False),
    sa.Column("cursor", sa.Text, nullable=True),
    sa.Column("stats", sa.Text, nullable=False),
    sa.Column("options", sa.Text, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

passes = sa.Table(
    "ds_passes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("route", sa.String(200), nullable=False),
    sa.Column("partition", sa.String(300), nullable=False),
    sa.Column("pass_id", sa.String(40), nullable=False),
    sa.Column("mode", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("stats", sa.Text, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Index("ds_passes_partition", "route", "partition", "id"),
)

pauses = sa.Table(
    "ds_pauses",
    metadata,
    sa.Column("scope", sa.String(400), primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("paused_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("fingerprint", sa.String(128), nullable=True),
    sa.Column("source", sa.String(20), nullable=False),  # "auth" (automatic) or "manual"
)

requests = sa.Table(
    "ds_requests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("route", sa.String(200), nullable=False),
    sa.Column("partition", sa.String(300), nullable=False),
    sa.Column("only_items", sa.Text, nullable=True),
    sa.Column("full_refresh", sa.Boolean, nullable=False, default=False),
    sa.Column("reason", sa.String(40), nullable=False, default="manual"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("taken_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("run_key", sa.String(300), nullable=True),
    sa.Index("ds_requests_pending", "taken_at", "id"),
)

partition_state = sa.Table(
    "ds_partition_state",
    metadata,
    sa.Column("route", sa.String(200), primary_key=True),
    sa.Column("partition", sa.String(300), primary_key=True),
    sa.Column("not_before", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_failure", sa.Text, nullable=True),
    sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_failure_run_id", sa.String(64), nullable=True),
)

tokens = sa.Table(
    "ds_tokens",
    metadata,
    sa.Column("account", sa.String(200), primary_key=True),
    sa.Column("ciphertext", sa.LargeBinary, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

blobs = sa.Table(
    "ds_blobs",
    metadata,
    sa.Column("namespace", sa.String(100), primary_key=True),
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("value", sa.LargeBinary, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

locks = sa.Table(
    "ds_locks",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("taken_at", sa.DateTime(timezone=True), nullable=True),
)

# Schema 3: one row per credential (``rate_limit_key``) with its GCRA state, shared by every process
# that uses the credential: ``tat`` is the theoretical arrival time of its next request and
# ``blocked_until`` the end of a server-named wait (a 429's Retry-After), both epoch seconds.
rate_limits = sa.Table(
    "ds_rate_limits",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("tat", sa.Float, nullable=False),
    sa.Column("blocked_until", sa.Float, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# Schema 4: the twin records of a two-way route (``sync_assets.routes.TwoWayRoute``), keyed by the
# pair's name: the key on each side and ``fields``, a JSON object of each field's value hash when the
# two sides last agreed (what tells an edit from the echo of our own write).
pairs = sa.Table(
    "ds_pairs",
    metadata,
    sa.Column("pair", sa.String(200), primary_key=True),
    sa.Column("a_key", sa.String(1024), primary_key=True),
    sa.Column("b_key", sa.String(1024), nullable=False),
    sa.Column("fields", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # Schema 5: B's key first, so that a probe by B's key has one index to take (``PairStore``).
    sa.Index("ds_pairs_b", "b_key", "pair", unique=True),
)

# Schema 4: rows a route with ``on_missing`` marked as gone from its source (un-marked when they return).
missing = sa.Table(
    "ds_missing",
    metadata,
    sa.Column("route", sa.String(200), primary_key=True),
    sa.Column("primary_key", sa.String(1024), primary_key=True),
    sa.Column("destination_id", sa.String(1024), nullable=False),
    sa.Column("marked_at", sa.DateTime(timezone=True), nullable=False),
)

meta = sa.Table(
    "ds_meta",
    metadata,
    sa.Column("key", sa.String(50), primary_key=True),
    sa.Column("value", sa.String(200), nullable=False),
)

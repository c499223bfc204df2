"""Lists at a million rows: ordered indexes, trigram search, exact per-account counts.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

Both tables: the list index by account becomes ``(account_id, create_time DESC, <id>)`` (the
order of a page, so a deferred join reads ids from the index alone) and an unscoped
``(create_time DESC, <id>)`` serves time windows and root pages.

PostgreSQL only:

* ``pg_trgm`` GIN indexes on ``description`` for the substring filter. ``CREATE EXTENSION``
  needs the CREATE privilege on the database (the extension is trusted): without it, or
  without the contrib files, the migration logs a WARNING with the statements a DBA runs and
  goes on; searches stay correct, only slower (they scan the table).
* ``handler_count``, kept by the statements that insert and delete handlers (see
  :mod:`luna_handlers.db.stores.handlers`), filled here from the table under a SHARE lock, so
  no write slips in between. Run the upgrade with the old service stopped: its writes would
  not keep the counter.

Oracle gets the two ordered indexes only (``LIKE '%x%'`` stays a scan there, see README).
"""

from __future__ import annotations

import contextlib
import logging

import sqlalchemy as sa
from alembic import op

from luna_handlers.db.schema.models import HANDLER_COUNT_BACKFILL

revision: str = "0004"
down_revision: str | None = "0003"

logger = logging.getLogger("luna_handlers.db")

TABLES = ("handler", "verifier")
#: SQLSTATEs of "may not create the extension": no privilege, not installed on the server.
NO_EXTENSION = {"42501", "0A000", "58P01", "42704"}


def trigram_index(table: str) -> str:
    """The statement creating the trigram index of ``table`` (also shown to a DBA)."""
    return (f"CREATE INDEX ix_{table}_description_trgm ON {table} "
            f"USING gin (description gin_trgm_ops)")


def upgrade() -> None:
    """Ordered list indexes; on PostgreSQL also trigram indexes and the handler counter."""
    for table in TABLES:
        op.drop_index(f"ix_{table}_account_id_create_time", table)
        op.create_index(f"ix_{table}_account_time", table,
                        ["account_id", sa.text("create_time DESC"), f"{table}_id"])
        op.create_index(f"ix_{table}_time", table, [sa.text("create_time DESC"), f"{table}_id"])
    if op.get_context().dialect.name != "postgresql":
        return
    _trigram_indexes()
    op.create_table(
        "handler_count",
        sa.Column("account_id", sa.String(36), nullable=False),
        sa.Column("stripe", sa.SmallInteger, nullable=False),
        sa.Column("n", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("account_id", "stripe", name="pk_handler_count"),
    )
    op.execute("LOCK TABLE handler IN SHARE MODE")
    op.execute(HANDLER_COUNT_BACKFILL)


def _trigram_indexes() -> None:
    if op.get_context().as_sql:  # the offline script: a DBA runs it with the rights it needs
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for table in TABLES:
            op.execute(trigram_index(table))
        return
    bind = op.get_bind()
    # A refusal must not abort the revision's transaction: a savepoint (none is needed, nor
    # possible, on a connection left in autocommit).
    autocommit = getattr(bind.connection.dbapi_connection, "autocommit", False)
    try:
        with contextlib.nullcontext() if autocommit else bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError as exc:
        code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        if code not in NO_EXTENSION:
            raise
        statements = "; ".join(trigram_index(table) for table in TABLES)
        logger.warning(
            "the pg_trgm extension could not be created (SQLSTATE %s: %s): description "
            "searches scan the whole table until migration 0007, which indexes them without "
            "the extension (nothing to do then). At this revision, a role with the CREATE "
            "privilege on this database (or a superuser) would run: CREATE EXTENSION "
            "pg_trgm; %s;", code, type(exc.orig).__name__, statements)
        return
    for table in TABLES:
        op.execute(trigram_index(table))


def downgrade() -> None:
    """Back to the indexes of 0001/0002 (the extension stays: others may use it)."""
    if op.get_context().dialect.name == "postgresql":
        op.drop_table("handler_count")
        for table in TABLES:
            op.execute(f"DROP INDEX IF EXISTS ix_{table}_description_trgm")
    for table in TABLES:
        op.drop_index(f"ix_{table}_time", table)
        op.drop_index(f"ix_{table}_account_time", table)
        op.create_index(f"ix_{table}_account_id_create_time", table,
                        ["account_id", "create_time"])

"""Schema migrations: upgrade, downgrade and the startup check, via Alembic.

Alembic runs on one dedicated connection that we hand to it (``config.attributes``), so the
service's own pool and failover logic decide where migrations go.

Oracle DDL is not transactional: every CREATE, ALTER and DROP commits by itself, so the
transaction per revision (``transaction_per_migration``) only holds the version-table update.
When a statement fails mid-revision, the statements before it stay applied while
``alembic_version`` still names the previous revision, and a rerun of the upgrade starts that
revision again from its first statement (and fails on what already exists). Hence, for Oracle,
each revision holds ONE change set (one table with its indexes, one ALTER) whose partial state
a DBA can see and undo by hand; the offline script stops at the first error for the same
reason (:mod:`luna_handlers.db.schema.offline`). PostgreSQL rolls a failed revision back
whole.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

SCRIPT_LOCATION = Path(__file__).parent / "migrations"


class SchemaMismatch(RuntimeError):
    """The database is not at the code's migration head; the message says what to run."""


def alembic_config(output: io.StringIO | None = None, **attributes: Any) -> Config:
    # Alembic's own chatter goes to a buffer nobody reads: we log what matters ourselves.
    config = Config(output_buffer=output, stdout=io.StringIO())
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.attributes.update(attributes)
    return config


def head_revision() -> str:
    """The newest migration revision the code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


async def upgrade(conn: AsyncConnection, revision: str = "head") -> None:
    """Migrate the database of ``conn`` up to ``revision`` and commit."""
    await _in_transactions(conn)
    await conn.run_sync(_run, "upgrade", revision)
    await conn.commit()


async def downgrade(conn: AsyncConnection, revision: str) -> None:
    """Migrate the database of ``conn`` down to ``revision`` (``base`` drops everything)."""
    await _in_transactions(conn)
    await conn.run_sync(_run, "downgrade", revision)
    await conn.commit()


async def _in_transactions(conn: AsyncConnection) -> None:
    # The service's pools run in autocommit; a revision must be one transaction (where the
    # database has transactional DDL), so this connection leaves autocommit until returned.
    # A read before (the startup check) may have auto-begun a "transaction" in autocommit:
    # it holds nothing, and the level can only change outside one.
    if conn.in_transaction():
        await conn.commit()
    await conn.execution_options(isolation_level="READ COMMITTED")


def _run(sync_conn: Connection, verb: str, revision: str) -> None:
    getattr(command, verb)(alembic_config(connection=sync_conn), revision)


async def current_revision(conn: AsyncConnection) -> str | None:
    """The revision the database is at; ``None`` for an empty database."""
    return await conn.run_sync(
        lambda sync_conn: MigrationContext.configure(sync_conn).get_current_revision())


async def check_at_head(conn: AsyncConnection) -> None:
    """Raise :class:`SchemaMismatch` unless the database is exactly at the code's head."""
    current = await current_revision(conn)
    head = head_revision()
    if current == head:
        return
    script = ScriptDirectory.from_config(alembic_config())
    known = {rev.revision for rev in script.walk_revisions()}
    if current is None or current in known:
        raise SchemaMismatch(
            f"the database schema is at revision {current or 'none (empty)'} but this "
            f"version needs {head}: run 'luna-handlers db upgrade'")
    raise SchemaMismatch(
        f"the database schema is at revision {current}, newer than this version knows "
        f"(head {head}): run a newer luna-handlers, or downgrade the database with the "
        f"version that created it")

"""Schema migrations: upgrade, downgrade, the startup check and offline DDL, via Alembic.

Alembic runs on one dedicated connection that we hand to it (``config.attributes``), so the
service's own pool and failover logic decide where migrations go.
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
OFFLINE_URLS = {"postgres": "postgresql://", "oracle": "oracle+oracledb://"}


class SchemaMismatch(RuntimeError):
    """The database is not at the code's migration head; the message says what to run."""


def dialect_options(db_type: str) -> dict[str, Any]:
    """Dialect arguments the schema depends on.

    Oracle before 23 has no BOOLEAN; SQLAlchemy assumes 23 until it has connected, so we pin
    the portable form (SMALLINT with a check constraint) for DDL and queries alike.
    """
    return {"supports_native_boolean": False} if db_type == "oracle" else {}


def _config(output: io.StringIO | None = None, **attributes: Any) -> Config:
    # Alembic's own chatter goes to a buffer nobody reads: we log what matters ourselves.
    config = Config(output_buffer=output, stdout=io.StringIO())
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.attributes.update(attributes)
    return config


def head_revision() -> str:
    """The newest migration revision the code knows."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


async def upgrade(conn: AsyncConnection, revision: str = "head") -> None:
    """Migrate the database of ``conn`` up to ``revision`` and commit."""
    await conn.run_sync(_run, "upgrade", revision)
    await conn.commit()


async def downgrade(conn: AsyncConnection, revision: str) -> None:
    """Migrate the database of ``conn`` down to ``revision`` (``base`` drops everything)."""
    await conn.run_sync(_run, "downgrade", revision)
    await conn.commit()


def _run(sync_conn: Connection, verb: str, revision: str) -> None:
    getattr(command, verb)(_config(connection=sync_conn), revision)


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
    script = ScriptDirectory.from_config(_config())
    known = {rev.revision for rev in script.walk_revisions()}
    if current is None or current in known:
        raise SchemaMismatch(
            f"the database schema is at revision {current or 'none (empty)'} but this "
            f"version needs {head}: run 'luna-handlers db upgrade'")
    raise SchemaMismatch(
        f"the database schema is at revision {current}, newer than this version knows "
        f"(head {head}): run a newer luna-handlers, or downgrade the database with the "
        f"version that created it")


def offline_sql(db_type: str) -> str:
    """The full DDL from an empty database to head, for a DBA to run by hand."""
    out = io.StringIO()
    command.upgrade(_config(out, db_type=db_type), "head", sql=True)
    return out.getvalue()

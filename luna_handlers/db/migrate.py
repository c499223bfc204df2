"""Schema migrations: upgrade, downgrade, the startup check and offline DDL, via Alembic.

Alembic runs on one dedicated connection that we hand to it (``config.attributes``), so the
service's own pool and failover logic decide where migrations go.

Oracle DDL is not transactional: every CREATE, ALTER and DROP commits by itself, so the
transaction per revision (``transaction_per_migration``) only holds the version-table update.
When a statement fails mid-revision, the statements before it stay applied while
``alembic_version`` still names the previous revision, and a rerun of the upgrade starts that
revision again from its first statement (and fails on what already exists). Hence, for Oracle,
each revision holds ONE change set (one table with its indexes, one ALTER) whose partial state
a DBA can see and undo by hand; the offline script stops at the first error for the same
reason. PostgreSQL rolls a failed revision back whole.
"""

from __future__ import annotations

import io
import re
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
    if not conn.in_transaction():
        await conn.execution_options(isolation_level="READ COMMITTED")


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
    return sqlplus_script(out.getvalue()) if db_type == "oracle" else out.getvalue()


ORACLE_SCRIPT_HEADER = """\
-- luna-handlers database schema for Oracle Database 19c or newer, up to revision {head}.
-- Made by 'luna-handlers db sql --db-type oracle'. Run it as is, as the schema owner, in
-- SQL*Plus or SQLcl: sqlplus user/password@//host:1521/service @luna_handlers.sql
-- Every SQL statement ends with ';' (a PL/SQL block would end with '/' on its own line).
-- Oracle commits each DDL statement by itself: the script stops at the first error, and
-- alembic_version then names the last revision completed; drop what the failed revision
-- created, then run the rest from its "-- Running upgrade" line.
WHENEVER SQLERROR EXIT FAILURE ROLLBACK"""
_PLSQL_BLOCK = re.compile(
    r"(DECLARE|BEGIN|CREATE\s+(OR\s+REPLACE\s+)?(PROCEDURE|FUNCTION|PACKAGE|TRIGGER|TYPE))\b",
    re.IGNORECASE)
# Alembic renders its version INSERT with the RETURNING of the primary key that SQLAlchemy
# adds on Oracle; offline, that is a bind variable SQL*Plus does not have.
_VERSION_INSERT = re.compile(
    r"(INSERT INTO alembic_version \(version_num\) VALUES \('[^']*'\)) RETURNING .*")
_VERSION_DML = re.compile(r"(INSERT INTO|UPDATE|DELETE FROM) alembic_version\b")
_STRING_LITERAL = re.compile(r"'(?:[^']|'')*'")
_BIND_VARIABLE = re.compile(r"(?<![\w:]):[A-Za-z_]\w*")


def sqlplus_script(alembic_sql: str) -> str:
    """Alembic's offline Oracle output ('/' after each statement) as a SQL*Plus script.

    One convention throughout: a SQL statement ends with ';', a PL/SQL block with a '/'
    line; each version-table change is followed by COMMIT. Raises ``ValueError`` for what
    the script could not run as is (a bind variable, a blank line inside a statement).
    """
    parts = [ORACLE_SCRIPT_HEADER.format(head=head_revision())]
    for chunk in re.split(r"(?m)^/$", alembic_sql):
        lines = chunk.strip("\n").split("\n")
        comments = 0
        while comments < len(lines) and (lines[comments].startswith("--")
                                         or not lines[comments].strip()):
            comments += 1
        parts += [line for line in lines[:comments] if line.strip()]
        statement = "\n".join(lines[comments:]).strip()
        if statement:
            parts += _sqlplus_statement(statement)
    return "\n\n".join(parts) + "\n"


def _sqlplus_statement(statement: str) -> list[str]:
    statement = _VERSION_INSERT.sub(r"\1", statement)
    if _BIND_VARIABLE.search(_STRING_LITERAL.sub("''", statement)):
        raise ValueError(f"offline Oracle SQL with a bind variable: {statement[:200]}")
    if re.search(r"\n\s*\n", statement):
        # SQL*Plus ends a statement at a blank line (SQLBLANKLINES is OFF by default).
        raise ValueError(f"offline Oracle SQL with a blank line: {statement[:200]}")
    if _PLSQL_BLOCK.match(statement):
        return [f"{statement}\n/"]
    return [f"{statement};", *(["COMMIT;"] if _VERSION_DML.match(statement) else [])]

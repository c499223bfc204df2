"""A live Oracle for the tests, when one is given (none can be installed on our machines).

``LUNA_HANDLERS_TEST_ORACLE_DSN='user/password@host:1521/service_name'`` (Easy Connect, or
``user/password@(DESCRIPTION=...)``). The user needs CREATE SESSION, CREATE TABLE and a quota.
WARNING: the tests DROP the tables handler, verifier and alembic_version of that schema.
"""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from luna_handlers.config import DBSettings, FailoverSettings
from luna_handlers.db.dialects.oracle.backend import open_oracle_database
from luna_handlers.db.pool.failover import FailoverDatabase
from luna_handlers.db.schema.migrate import upgrade

ENV = "LUNA_HANDLERS_TEST_ORACLE_DSN"
DSN = os.environ.get(ENV, "")
SKIP_REASON = f"no Oracle server: set {ENV}=user/password@host:1521/service_name to run"
skip_without_oracle = pytest.mark.skipif(not DSN, reason=SKIP_REASON)
FAILOVER = FailoverSettings(connect_timeout=5.0, query_timeout=30.0, failure_threshold=3,
                            health_check_interval=1.0, switch_wait=10.0)
SETTINGS = DBSettings(db_type="oracle", db_host="127.0.0.1", db_port=1521, db_user="luna",
                      db_password="luna", db_name="luna_handlers", connection_pool_size=25,
                      dsn=DSN)
TABLES = ("handler", "verifier", "alembic_version")


async def tables(conn: AsyncConnection) -> set[str]:
    """The tables of the connected schema."""
    return set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))


async def drop_ours(conn: AsyncConnection) -> None:
    """Drop this service's tables, so that every module starts from an empty schema."""
    for table in set(TABLES) & await tables(conn):
        await conn.execute(sa.text(f"DROP TABLE {table} PURGE"))


async def fresh_oracle_database() -> FailoverDatabase:
    """The failover database on the given Oracle, its schema dropped and migrated anew."""
    database = await open_oracle_database(SETTINGS, FAILOVER)
    assert database.active is not None
    async with database.active.engine.connect() as conn:
        await drop_ours(conn)
        await upgrade(conn)
    return database

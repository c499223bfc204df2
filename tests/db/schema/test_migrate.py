"""Migrations on a real PostgreSQL (up, down, startup check) and offline DDL for both dialects."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from luna_handlers.db.schema.migrate import (
    SchemaMismatch,
    check_at_head,
    current_revision,
    downgrade,
    head_revision,
    upgrade,
)
from luna_handlers.db.schema.offline import offline_sql
from luna_handlers.pgserver.cluster import PgCluster
from tests.conftest import host_pool, new_database


async def tables(pool_conn: AsyncConnection) -> set[str]:
    names = await pool_conn.run_sync(lambda c: sa.inspect(c).get_table_names())
    return set(names)


async def test_up_down_and_startup_check(pg_cluster: PgCluster) -> None:
    pool = host_pool(pg_cluster, new_database(pg_cluster))
    try:
        async with pool.engine.connect() as conn:
            assert await current_revision(conn) is None
            with pytest.raises(SchemaMismatch, match="run 'luna-handlers db upgrade'"):
                await check_at_head(conn)
            await upgrade(conn, "0001")
            assert await tables(conn) == {"alembic_version", "handler"}
            with pytest.raises(SchemaMismatch, match="at revision 0001 but this version needs"):
                await check_at_head(conn)
            await upgrade(conn)
            assert await current_revision(conn) == head_revision()
            assert await tables(conn) == {"alembic_version", "handler", "verifier", "list",
                                          "face", "list_face", "event", "sample"}
            await check_at_head(conn)
            indexes = await conn.run_sync(
                lambda c: {i["name"]: i["column_names"]
                           for i in sa.inspect(c).get_indexes("handler")})
            assert indexes == {"ix_handler_account_id_create_time": ["account_id", "create_time"],
                               "ix_handler_description": ["description"]}
            await downgrade(conn, "base")
            assert await tables(conn) == {"alembic_version"}
            assert await current_revision(conn) is None
            # A database touched by a newer version of the service is refused too.
            await conn.execute(sa.text("INSERT INTO alembic_version VALUES ('9999')"))
            await conn.commit()
            with pytest.raises(SchemaMismatch, match="newer than this version knows"):
                await check_at_head(conn)
    finally:
        await pool.close()


async def test_server_defaults(pg_cluster: PgCluster) -> None:
    pool = host_pool(pg_cluster, new_database(pg_cluster))
    try:
        async with pool.engine.connect() as conn:
            await upgrade(conn)
            await conn.execute(sa.text(
                "INSERT INTO handler (handler_id, account_id) VALUES ('h', 'a')"))
            await conn.execute(sa.text(
                "INSERT INTO verifier (verifier_id, account_id) VALUES ('v', 'a')"))
            row = (await conn.execute(sa.text(
                "SELECT is_dynamic, create_time = last_update_time AS same,"
                " abs(extract(epoch FROM create_time - (now() AT TIME ZONE 'UTC'))) < 60 AS utc"
                " FROM handler"))).one()
            assert (row.is_dynamic, row.same, row.utc) == (False, True, True)
            version = (await conn.execute(sa.text("SELECT version FROM verifier"))).scalar()
            assert version == 1
    finally:
        await pool.close()


def test_offline_postgres_ddl() -> None:
    ddl = offline_sql("postgres")
    for fragment in ["CREATE TABLE handler (", "handler_id VARCHAR(36) NOT NULL",
                     "policies TEXT", "is_dynamic BOOLEAN DEFAULT false NOT NULL",
                     "CREATE TABLE verifier (", "version INTEGER DEFAULT 1 NOT NULL",
                     "CREATE INDEX ix_handler_account_id_create_time ON handler "
                     "(account_id, create_time);",
                     "CREATE INDEX ix_verifier_description ON verifier (description);",
                     "COMMIT;"]:
        assert fragment in ddl


def test_offline_oracle_ddl() -> None:
    ddl = offline_sql("oracle")
    for fragment in ["handler_id VARCHAR2(36 CHAR) NOT NULL", "policies CLOB",
                     "is_dynamic SMALLINT DEFAULT 0 NOT NULL",
                     "CONSTRAINT ck_handler_is_dynamic_bool CHECK (is_dynamic IN (0, 1))",
                     "create_time TIMESTAMP DEFAULT SYS_EXTRACT_UTC(SYSTIMESTAMP) NOT NULL",
                     "CREATE INDEX ix_verifier_account_id_create_time ON verifier"]:
        assert fragment in ddl
    assert "BOOLEAN" not in ddl


async def test_models_match_the_migrated_schema(pg_cluster: PgCluster) -> None:
    """Alembic's autogenerate finds nothing to change between the models and head."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from luna_handlers.db.schema import store_models  # noqa: F401  (registers the stores)
    from luna_handlers.db.schema.models import Base

    pool = host_pool(pg_cluster, new_database(pg_cluster))
    try:
        async with pool.engine.connect() as conn:
            await upgrade(conn)
            diff = await conn.run_sync(lambda c: compare_metadata(
                MigrationContext.configure(c), Base.metadata))
        assert diff == []
    finally:
        await pool.close()

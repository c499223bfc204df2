"""Migrations on a real PostgreSQL (up, down, startup check) and offline DDL for both dialects."""

from __future__ import annotations

import logging
import uuid

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncConnection

from luna_handlers.db.context import DBContext, ListFilters
from luna_handlers.db.schema.migrate import (
    SchemaMismatch,
    check_at_head,
    current_revision,
    downgrade,
    head_revision,
    upgrade,
)
from luna_handlers.db.schema.models import Base
from luna_handlers.db.schema.offline import offline_sql
from luna_handlers.pgserver.cluster import PgCluster
from tests.conftest import TEST_USER, host_pool, new_database

ACCOUNT = "6d7e4e3a-0b8e-4a4c-9e7a-6c1f0a1b2c3d"


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
            assert await tables(conn) == {"alembic_version", "handler", "verifier",
                                          "handler_count", "list", "face", "list_face",
                                          "event", "sample", "list_face_log",
                                          "list_face_log_state"}
            await check_at_head(conn)
            assert await index_definitions(conn, "handler") == {
                "ix_handler_account_time": "(account_id, create_time DESC, handler_id)",
                "ix_handler_time": "(create_time DESC, handler_id) INCLUDE (description)",
                "ix_handler_description": "(description)",
                "ix_handler_grams": "gin (luna_grams((description)::text))",
                "ix_handler_account_grams":
                    "gin (luna_grams((account_id)::text, (description)::text))",
                "pk_handler": "(handler_id)"}
            assert {"ix_verifier_grams", "ix_verifier_account_grams"} <= set(
                await index_definitions(conn, "verifier"))
            await downgrade(conn, "0006")  # 0004's indexes again (pg_trgm is installed)
            assert await index_definitions(conn, "handler") == {
                "ix_handler_account_time": "(account_id, create_time DESC, handler_id)",
                "ix_handler_time": "(create_time DESC, handler_id)",
                "ix_handler_description": "(description)",
                "ix_handler_description_trgm": "gin (description gin_trgm_ops)",
                "pk_handler": "(handler_id)"}
            await downgrade(conn, "0002")
            assert await index_definitions(conn, "handler") == {
                "ix_handler_account_id_create_time": "(account_id, create_time)",
                "ix_handler_description": "(description)", "pk_handler": "(handler_id)"}
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


async def index_definitions(conn: AsyncConnection, table: str) -> dict[str, str]:
    """Index name -> its definition from ``USING`` on (btree shown as columns only)."""
    rows = await conn.execute(sa.text(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = :t"), {"t": table})
    return {name: definition.split(" USING ", 1)[1].removeprefix("btree ")
            for name, definition in rows.all()}


async def test_models_match_migrations(pg_cluster: PgCluster) -> None:
    """What the models declare is what the migrations build (the trigram and grams indexes
    and the list membership log aside: PostgreSQL's, and not in the models)."""
    from luna_handlers.db.schema import store_models  # noqa: F401  (registers the stores)

    pool = host_pool(pg_cluster, new_database(pg_cluster))
    try:
        async with pool.engine.connect() as conn:
            await upgrade(conn)

            def compare(sync_conn: sa.Connection) -> list[object]:
                context = MigrationContext.configure(sync_conn, opts={
                    "include_name": lambda name, kind, _parent: not (
                        (kind == "index" and str(name).endswith(("_trgm", "_grams")))
                        or (kind == "table" and (name == "alembic_version"
                                                 or str(name).startswith("list_face_log"))))})
                return list(compare_metadata(context, Base.metadata))

            assert await conn.run_sync(compare) == []
    finally:
        await pool.close()


async def test_upgrade_without_rights_for_the_extension(
        pg_cluster: PgCluster, caplog: pytest.LogCaptureFixture) -> None:
    """A role that may create tables but not extensions: 0004 warns and completes, and at
    the head searches need no extension (0007's grams indexes are there)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    pg_cluster.psql(f'CREATE DATABASE "{name}"')  # owned by the superuser
    pg_cluster.psql(f'GRANT CREATE, USAGE ON SCHEMA public TO "{TEST_USER}"', dbname=name)
    pool = host_pool(pg_cluster, name)
    try:
        async with pool.engine.connect() as conn:
            with caplog.at_level(logging.WARNING, logger="luna_handlers.db"):
                await upgrade(conn)
            assert await current_revision(conn) == head_revision()
            definitions = await index_definitions(conn, "handler")
            assert "ix_handler_account_time" in definitions
            assert not [index for index in definitions if index.endswith("_trgm")]
            assert {"ix_handler_grams", "ix_handler_account_grams"} <= set(definitions)
        warning = " ".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
        assert "pg_trgm" in warning and "42501" in warning
        assert "CREATE EXTENSION pg_trgm;" in warning
        assert "CREATE INDEX ix_handler_description_trgm ON handler" in warning
        assert "until migration 0007" in warning
        context = DBContext(pool)
        handler_id = await context.createHandler({}, ACCOUNT, description="front gate 7")
        assert [h.handler_id for h in await context.getHandlers(
            ListFilters(description="gate"))] == [handler_id]
        assert await context.getHandlersCount(ListFilters(description="gate 7")) == 1
        assert await context.getHandlersCount(ListFilters(account_id=ACCOUNT)) == 1
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
                     "CREATE INDEX ix_handler_account_time ON handler "
                     "(account_id, create_time DESC, handler_id);",
                     "CREATE INDEX ix_verifier_time ON verifier (create_time DESC, verifier_id);",
                     "CREATE INDEX ix_verifier_description ON verifier (description);",
                     "CREATE EXTENSION IF NOT EXISTS pg_trgm;",
                     "CREATE INDEX ix_handler_description_trgm ON handler "
                     "USING gin (description gin_trgm_ops);",
                     "CREATE TABLE handler_count (",
                     "INSERT INTO handler_count (account_id, stripe, n) SELECT",
                     "COMMIT;"]:
        assert fragment in ddl


def test_offline_oracle_ddl() -> None:
    ddl = offline_sql("oracle")
    for fragment in ["handler_id VARCHAR2(36 CHAR) NOT NULL", "policies CLOB",
                     "is_dynamic SMALLINT DEFAULT 0 NOT NULL",
                     "CONSTRAINT ck_handler_is_dynamic_bool CHECK (is_dynamic IN (0, 1))",
                     "create_time TIMESTAMP DEFAULT SYS_EXTRACT_UTC(SYSTIMESTAMP) NOT NULL",
                     "CREATE INDEX ix_verifier_account_time ON verifier "
                     "(account_id, create_time DESC, verifier_id);",
                     "CREATE INDEX ix_handler_time ON handler (create_time DESC, handler_id);"]:
        assert fragment in ddl
    # PostgreSQL's alone: no trigram index, no counter table on Oracle.
    for absent in ("BOOLEAN", "pg_trgm", "gin", "handler_count"):
        assert absent not in ddl

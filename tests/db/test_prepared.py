"""Fixed-shape statements on a real PostgreSQL: binds, dialect conversions, broken sessions."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from luna_handlers.db.context import DBContext
from luna_handlers.db.prepared import Prepared
from luna_handlers.pgserver.cluster import PgCluster
from tests.conftest import host_pool

ECHO = Prepared(lambda _dialect: sa.select(
    sa.bindparam("text", type_=sa.String).label("text"),
    sa.bindparam("flag", type_=sa.Boolean).label("flag"),
    sa.literal("fixed").label("fixed")))
SLEEP = Prepared(lambda _dialect: sa.select(sa.func.pg_sleep(sa.bindparam("seconds"))))


async def test_binds_fixed_values_and_conversions(pg_cluster: PgCluster) -> None:
    pool = host_pool(pg_cluster, "postgres", pool_size=1)
    try:
        async with pool.read() as session:
            rows = await session.rows(ECHO, {"text": "é'; --", "flag": True})
        assert [dict(row) for row in rows] == [{"text": "é'; --", "flag": True, "fixed": "fixed"}]
        sql, binds, fixed = ECHO.compiled(pool.engine.dialect)
        assert [name for name, _ in binds] == ["text", "flag", "param_1"]
        assert fixed["param_1"] == "fixed"
        assert sql.count("$") == 3
    finally:
        await pool.close()


async def test_a_cancelled_statement_does_not_poison_the_pool(pg_cluster: PgCluster) -> None:
    # One connection only: the next request must get a clean one, not the session that was
    # still busy with the cancelled statement.
    pool = host_pool(pg_cluster, "postgres", pool_size=1)
    try:

        async def sleep() -> None:
            async with pool.read() as session:
                await session.rows(SLEEP, {"seconds": 5})

        task = asyncio.create_task(sleep())
        await asyncio.sleep(0.2)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        async with asyncio.timeout(5):
            await DBContext(pool).ping()
            await DBContext(pool).ping()
    finally:
        await pool.close()

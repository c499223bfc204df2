"""The asyncpg pool of one host, on a real PostgreSQL: reuse, replacement, limits, closing,
the watchdog."""

from __future__ import annotations

import asyncio
import time

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from luna_handlers.config import FailoverSettings
from luna_handlers.db.dialects.postgresql.backend import pg_backend
from luna_handlers.db.dialects.postgresql.connections import WATCHDOG_SLACK
from luna_handlers.db.dialects.postgresql.dsn import parse_pg_dsn
from luna_handlers.db.hosts import HostPort
from luna_handlers.db.pool.connections import warm
from luna_handlers.db.pool.faults import ErrorKind
from luna_handlers.db.pool.hostpool import HostPool
from luna_handlers.db.pool.places import PoolBusy, PoolRetired
from luna_handlers.errors import DatabaseUnavailable
from luna_handlers.pgserver.cluster import PgCluster, free_port
from tests.conftest import TEST_PASSWORD, TEST_USER, host_pool, new_database, run_sql

PID = "SELECT pg_backend_pid()"
QUICK = FailoverSettings(connect_timeout=1.0, query_timeout=2.0, failure_threshold=3,
                         health_check_interval=1.0, switch_wait=0.2)


async def backend_pid(pool: HostPool) -> int:
    async with pool.read() as session:
        rows = await run_sql(session, PID)
    return int(rows[0][0])


async def test_a_released_connection_is_reused_as_it_is(pg_cluster: PgCluster) -> None:
    pool = host_pool(pg_cluster, "postgres", pool_size=1)
    try:
        async with pool.write() as session:
            # Session state survives the return: nothing resets it (nothing of ours sets any).
            await run_sql(session, "SET application_name = 'kept'")
        async with pool.read() as session:
            rows = await run_sql(session, "SELECT current_setting('application_name'), "
                                 "pg_backend_pid()")
        assert rows[0][0] == "kept"
        assert await backend_pid(pool) == rows[0][1]
    finally:
        await pool.close()


async def test_a_connection_closed_by_the_server_is_replaced(pg_cluster: PgCluster) -> None:
    pool = host_pool(pg_cluster, "postgres", pool_size=1)
    try:
        pid = await backend_pid(pool)
        pg_cluster.psql(f"SELECT pg_terminate_backend({pid})")
        # The idle connection learns of its end from the socket; the next request gets a
        # new one (or, if the end is not seen yet, fails as "retry" and the one after works).
        for _ in range(50):
            try:
                new = await backend_pid(pool)
                break
            except DatabaseUnavailable:
                await asyncio.sleep(0.05)
        assert new != pid
    finally:
        await pool.close()


async def test_all_busy_is_pool_busy_and_not_a_host_failure(pg_cluster: PgCluster) -> None:
    dsn = parse_pg_dsn(f"{TEST_USER}:{TEST_PASSWORD}@{pg_cluster.host}:{pg_cluster.port}/postgres")
    kinds: list[ErrorKind | None] = []
    pool = HostPool(pg_backend(dsn, 1, QUICK), HostPort(pg_cluster.host, pg_cluster.port),
                    listener=lambda kind, _exc: kinds.append(kind))
    try:
        async with pool.read() as held:
            with pytest.raises(DatabaseUnavailable, match="busy"):
                async with asyncio.timeout(5), pool.read():
                    pass
            await run_sql(held, "SELECT 1")
    finally:
        await pool.close()
    assert kinds == [None]  # the held session's success; the wait counted as nothing


async def test_a_failed_connect_frees_its_place(pg_cluster: PgCluster) -> None:
    dsn = parse_pg_dsn(f"luna:x@127.0.0.1:{free_port()}/postgres")
    kinds: list[ErrorKind | None] = []
    pool = HostPool(pg_backend(dsn, 1, QUICK), HostPort("127.0.0.1", dsn.hosts[0].port),
                    listener=lambda kind, _exc: kinds.append(kind))
    try:
        for _ in range(3):  # a leaked place would make the second one PoolBusy
            with pytest.raises(DatabaseUnavailable, match="connectivity"):
                async with pool.read():
                    pass
    finally:
        await pool.close()
    assert kinds == [ErrorKind.CONNECTIVITY] * 3


async def test_close_cuts_lent_connections_when_they_come_back(pg_cluster: PgCluster) -> None:
    dbname = new_database(pg_cluster)
    pool = host_pool(pg_cluster, dbname, pool_size=2)
    await warm(pool.connections, 2)
    session = await pool.connections.acquire()
    await pool.close()
    await session.release()
    with pytest.raises(PoolBusy):
        await pool.connections.acquire()

    def connected() -> str:
        return pg_cluster.psql(
            f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{dbname}'").strip()

    for _ in range(50):  # the server notices the closed sockets within moments
        if connected() == "0":
            break
        await asyncio.sleep(0.05)
    assert connected() == "0"


async def test_a_waiter_cancelled_after_the_handover_passes_its_place_on(
        pg_cluster: PgCluster) -> None:
    pool = host_pool(pg_cluster, "postgres", pool_size=1)
    source = pool.connections
    try:
        held = await source.acquire()
        waiting = asyncio.create_task(source.acquire())
        await asyncio.sleep(0.05)  # queued
        await held.release()  # the place goes to the waiter...
        waiting.cancel()  # ...which is cancelled before it runs again
        with pytest.raises(asyncio.CancelledError):
            await waiting
        async with asyncio.timeout(1):  # the place was not lost with it
            again = await source.acquire()
        await again.release()
    finally:
        await pool.close()


async def test_the_watchdog_cuts_a_session_lent_past_the_statement_timeout(
        pg_cluster: PgCluster) -> None:
    dsn = parse_pg_dsn(f"{TEST_USER}:{TEST_PASSWORD}@{pg_cluster.host}:{pg_cluster.port}/postgres")
    settings = FailoverSettings(connect_timeout=1.0, query_timeout=0.3, failure_threshold=3,
                                health_check_interval=1.0, switch_wait=1.0)
    pool = HostPool(pg_backend(dsn, 1, settings), HostPort(pg_cluster.host, pg_cluster.port))
    try:
        started = time.monotonic()
        # Cut before the statement went out: "not sent" (34010), never "outcome unknown".
        with pytest.raises(DatabaseUnavailable, match="before the statement was sent"):
            async with pool.write() as session:
                # Stands for a protocol step no statement timeout covers: the session is held
                # past query_timeout + WATCHDOG_SLACK, so its socket is cut under it.
                await asyncio.sleep(0.3 + WATCHDOG_SLACK + 0.3)
                await run_sql(session, "SELECT 1")
        assert time.monotonic() - started < 3
        assert await backend_pid(pool) > 0  # the place came back; a new connection serves
    finally:
        await pool.close()


async def test_stopping_lending_fails_the_queue_at_once_and_opens_nothing(
        pg_cluster: PgCluster) -> None:
    dbname = new_database(pg_cluster)
    pool = host_pool(pg_cluster, dbname, pool_size=1)
    source = pool.connections
    try:
        held = await source.acquire()
        waiting = asyncio.create_task(source.acquire())
        await asyncio.sleep(0.05)
        source.stop_lending()
        async with asyncio.timeout(0.5):
            with pytest.raises(PoolRetired):
                await waiting
        await held.release()  # its place goes to nobody
        with pytest.raises(PoolRetired):
            await source.acquire()
        assert pg_cluster.psql(
            f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{dbname}'") == "1"
    finally:
        await pool.close()


async def test_terminate_all_reaches_the_engine_connections_too(pg_cluster: PgCluster) -> None:
    pool = host_pool(pg_cluster, "postgres", pool_size=1)
    try:
        async with pool.connection() as conn:  # a migration's connection, say
            assert (await conn.execute(sa.text("SELECT 1"))).scalar_one() == 1
            pool.connections.terminate_all()
            with pytest.raises(DBAPIError):
                await conn.execute(sa.text("SELECT 1"))
    finally:
        await pool.close()

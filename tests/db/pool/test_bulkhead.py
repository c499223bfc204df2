"""The scan share: lists, counts and searches on connections of their own, with their own
wait and statement timeout, while reads by id and writes keep theirs (real PostgreSQL,
real slow statements)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from luna_handlers.db.context import DBContext, ListFilters
from luna_handlers.db.dialects.postgresql.backend import pg_backend
from luna_handlers.db.dialects.postgresql.dsn import parse_pg_dsn
from luna_handlers.db.hosts import HostPort
from luna_handlers.db.pool.hostpool import HostPool
from luna_handlers.db.schema.migrate import upgrade
from luna_handlers.errors import ScansBusy, ScanTimedOut
from luna_handlers.pgserver.cluster import PgCluster
from tests.conftest import FAILOVER, TEST_PASSWORD, TEST_USER, new_database, run_sql

ACCOUNT = "0a1b2c3d-0000-4000-8000-0000000000dd"
SCANS = 2
SETTINGS = replace(FAILOVER, scan_pool_size=SCANS, scan_statement_timeout=1.0, scan_wait=0.3)


@pytest.fixture(scope="module")
async def pool(pg_cluster: PgCluster) -> AsyncIterator[HostPool]:
    """A migrated database behind a pool of 3 point connections and 2 scan connections."""
    dbname = new_database(pg_cluster)
    dsn = parse_pg_dsn(f"{TEST_USER}:{TEST_PASSWORD}@{pg_cluster.host}:{pg_cluster.port}/{dbname}")
    made = HostPool(pg_backend(dsn, 3, SETTINGS), HostPort(pg_cluster.host, pg_cluster.port))
    async with made.engine.connect() as conn:
        await upgrade(conn)
    yield made
    await made.close()


async def test_point_requests_are_answered_while_scans_fill_their_share(pool: HostPool) -> None:
    context = DBContext(pool)
    handler_id = await context.createHandler({}, ACCOUNT, description="gate")
    release = asyncio.Event()
    holding = [asyncio.Event() for _ in range(SCANS)]

    async def slow_scan(held: asyncio.Event) -> int:
        rounds = 0
        async with pool.scan() as session:
            held.set()
            while not release.is_set():  # real slow statements, back to back
                await run_sql(session, "SELECT pg_sleep(0.2)")
                rounds += 1
        return rounds

    scans = [asyncio.create_task(slow_scan(held)) for held in holding]
    try:
        for held in holding:
            await held.wait()
        # The share is full: one more list waits scan_wait, then gets its own 503.
        with pytest.raises(ScansBusy) as busy:
            await context.getHandlers(ListFilters(account_id=ACCOUNT))
        assert (busy.value.code, busy.value.status) == (34014, 503)
        with pytest.raises(ScansBusy):
            await context.getHandlersCount(ListFilters(description="gate"))
        with pytest.raises(ScansBusy):  # a search, however many statements it sends
            await context.getHandlers(ListFilters(description="gate"))
        # Reads by id and writes have connections of their own.
        record = await context.getHandler(handler_id)
        assert record is not None and record.description == "gate"
        other = await context.createHandler({}, ACCOUNT)
        assert await context.putHandler(other, {}, "renamed", ACCOUNT)
        assert await context.deleteHandler(other, ACCOUNT)
        assert all(not scan.done() for scan in scans)
    finally:
        release.set()
        rounds = await asyncio.gather(*scans)
    assert min(rounds) >= 1
    # Freed: lists are served again.
    assert [h.handler_id for h in await context.getHandlers(
        ListFilters(account_id=ACCOUNT))] == [handler_id]


async def test_scans_have_their_own_statement_timeout(pool: HostPool) -> None:
    async with pool.scan() as session:
        assert (await run_sql(session, "SHOW statement_timeout"))[0][0] == "1s"
    with pytest.raises(ScanTimedOut) as timed_out:  # raised as the session is given back
        async with pool.scan() as session:
            await run_sql(session, "SELECT pg_sleep(3)")
    assert (timed_out.value.code, timed_out.value.status) == (34015, 503)
    # The cancel left the connection usable, and point connections have no such limit.
    async with pool.scan() as session:
        assert (await run_sql(session, "SELECT 1 AS one"))[0]["one"] == 1
    async with pool.read() as session:
        assert (await run_sql(session, "SHOW statement_timeout"))[0][0] == "0"
        await run_sql(session, "SELECT pg_sleep(1.2)")

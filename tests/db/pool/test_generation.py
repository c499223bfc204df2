"""Leases on the pool generations: a request waiting on a retired pool moves to the new one."""

from __future__ import annotations

import asyncio

from luna_handlers.db.hosts import HostPort
from luna_handlers.db.pool.generation import CountedBorrow, Generation, retire
from luna_handlers.db.pool.roles import HostRole
from luna_handlers.pgserver.cluster import PgCluster
from tests.conftest import host_pool, run_sql

PRIMARY = HostRole(in_recovery=False, read_only=False)


def slot_on(cluster: PgCluster) -> Generation:
    """A one-connection pool generation on ``cluster``."""
    return Generation(host_pool(cluster, "postgres", pool_size=1),
                HostPort(cluster.host, cluster.port), PRIMARY)


async def test_a_request_queued_on_a_retired_pool_is_served_by_the_new_one(
        pg_cluster: PgCluster) -> None:
    old, new = slot_on(pg_cluster), slot_on(pg_cluster)
    current = old

    async def pick() -> Generation:
        return current

    async def backend() -> int:
        async with CountedBorrow(pick, write=True) as session:
            rows = await run_sql(session, "SELECT pg_backend_pid()")
        return int(rows[0][0])

    try:
        async with CountedBorrow(pick, write=False) as running:  # the old pool's only connection
            old_pid = (await run_sql(running, "SELECT pg_backend_pid()"))[0][0]
            queued = asyncio.create_task(backend())
            await asyncio.sleep(0.05)
            assert old.users == 2  # the queued request counts on the old pool
            current = new  # the swap...
            retiring = asyncio.create_task(retire(old, 5.0, 1.0, suspect=False))
            async with asyncio.timeout(2):
                served_by = await queued  # ...while the old pool's session still runs
        assert served_by != old_pid
        assert (old.users, new.users) == (0, 0)
        await retiring
    finally:
        await old.pool.close()
        await new.pool.close()

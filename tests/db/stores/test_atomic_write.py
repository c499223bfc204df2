"""saveEvents under real faults: the server ends the write's connection (pg_terminate_backend
from another connection) before the COMMIT, and while the COMMIT waits. Nothing is ever half
stored: before the COMMIT nothing is (34010, safe to retry); a COMMIT lost on its way is
34011 and then everything, or nothing, is there."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from luna_handlers.db import DBContext, EventWrite, FaceWrite, SampleWrite
from luna_handlers.db.dialects.postgresql.backend import open_pg_database
from luna_handlers.db.schema.migrate import upgrade
from luna_handlers.errors import DatabaseError, DatabaseOutcomeUnknown, DatabaseUnavailable
from luna_handlers.pgserver.cluster import PgCluster, free_port
from tests.conftest import TEST_PASSWORD, TEST_USER, host_pool, new_database, run_sql
from tests.db.pool.test_failover import FAST, Hosts, fresh_hosts, make_dsn, migrate, until


def writes(list_id: str) -> list[EventWrite]:
    """Two events: the second's face goes in ``list_id``, so its link waits on that list's
    row while another transaction holds it."""
    first = EventWrite(handler_id=str(uuid.uuid4()), samples=(SampleWrite("face_warp", b"w"),),
                       face=FaceWrite(descriptor=b"\0" * 512, descriptor_version=1))
    second = EventWrite(handler_id=str(uuid.uuid4()), face=FaceWrite(
        descriptor=None, descriptor_version=None, list_ids=(list_id,)))
    return [first, second]


async def nothing_stored(db: DBContext, account_id: str, events: list[EventWrite]) -> bool:
    for event in events:
        assert event.face is not None
        if await db.getEvent(event.event_id) or await db.getFace(event.face.face_id):
            return False
        if any([await db.getSample(s.sample_id) for s in event.samples]):
            return False
    return await db.countFaces(account_id) == 0


async def backend_waiting(cluster: PgCluster, dbname: str, wait_event_type: str) -> int:
    """The pid of the one backend of ``dbname`` waiting on ``wait_event_type`` (polled)."""
    for _ in range(200):
        found = cluster.psql(f"SELECT pid FROM pg_stat_activity WHERE datname = '{dbname}' "
                             f"AND wait_event_type = '{wait_event_type}'").split()
        if found:
            return int(found[0])
        await asyncio.sleep(0.05)
    raise AssertionError(f"no backend waited on {wait_event_type}")


async def test_connection_ended_before_commit_stores_nothing(pg_cluster: PgCluster) -> None:
    dbname = new_database(pg_cluster)
    pool = host_pool(pg_cluster, dbname)
    try:
        async with pool.engine.connect() as conn:
            await upgrade(conn)
        db = DBContext(pool)
        account_id = str(uuid.uuid4())
        list_id = await db.createList(account_id)
        events = writes(list_id)
        async with pool.transaction() as locker:
            await run_sql(locker, "SELECT 1 FROM list WHERE list_id = :id FOR UPDATE",
                          id=list_id)
            saving = asyncio.create_task(db.saveEvents(account_id, events))
            # The first event and the second's face are sent; its list link waits.
            pid = await backend_waiting(pg_cluster, dbname, "Lock")
            pg_cluster.psql(f"SELECT pg_terminate_backend({pid})")
            with pytest.raises(DatabaseUnavailable) as caught:
                await saving
        assert caught.value.code == 34010  # not 34011: the COMMIT was never sent
        assert await nothing_stored(db, account_id, events)
        # The pool lives on: the same write, retried, stores everything.
        await db.saveEvents(account_id, events)
        assert await db.getEvent(events[1].event_id, account_id) is not None
    finally:
        await pool.close()


async def test_connection_ended_during_commit_is_outcome_unknown(shared_tmp: Path) -> None:
    # A server of its own: its COMMITs wait for a synchronous standby that never comes.
    cluster = PgCluster(datadir=shared_tmp / "sync-commit", port=free_port(),
                        superuser_password="postgres-test", settings={"fsync": "off"})
    cluster.initdb()
    cluster.start()
    try:
        cluster.ensure_database(TEST_USER, TEST_PASSWORD, "stores")
        pool = host_pool(cluster, "stores")
        try:
            async with pool.engine.connect() as conn:
                await upgrade(conn)
            db = DBContext(pool)
            account_id = str(uuid.uuid4())
            events = writes(await db.createList(account_id))
            cluster.psql("ALTER SYSTEM SET synchronous_standby_names = 'nobody'")
            cluster.psql("SELECT pg_reload_conf()")
            saving = asyncio.create_task(db.saveEvents(account_id, events))
            pid = await backend_waiting(cluster, "stores", "IPC")  # SyncRep: in the COMMIT
            cluster.psql(f"SELECT pg_terminate_backend({pid})")
            with pytest.raises(DatabaseOutcomeUnknown) as caught:
                await saving
            assert caught.value.code == 34011
            cluster.psql("ALTER SYSTEM RESET synchronous_standby_names")
            cluster.psql("SELECT pg_reload_conf()")
            # Here the COMMIT had been written locally: everything is there, not a part.
            for event in events:
                assert await db.getEvent(event.event_id, account_id) is not None
                assert event.face is not None
                assert await db.getFace(event.face.face_id, account_id) is not None
            assert await db.getSample(events[0].samples[0].sample_id) == b"w"
        finally:
            await pool.close()
    finally:
        cluster.stop("immediate")


@pytest.fixture
def hosts(shared_tmp: Path) -> Iterator[Hosts]:
    """A fresh set of servers for one test."""
    yield from fresh_hosts(shared_tmp)


async def parts_stored(db: DBContext, account_id: str, events: list[EventWrite]) -> set[int]:
    """How many of each write's parts (event, face, sample) are there: {0} or {3} per write
    means all or nothing."""
    counts = set()
    for event in events:
        assert event.face is not None
        counts.add(sum([await db.getEvent(event.event_id, account_id) is not None,
                        await db.getFace(event.face.face_id, account_id) is not None,
                        await db.getSample(event.samples[0].sample_id, account_id)
                        is not None]))
    return counts


@pytest.mark.slow
async def test_failover_during_writes_never_half_stores(hosts: Hosts) -> None:
    """Writers save events through the failover pool; the primary is killed and its
    synchronous standby promoted. Every acknowledged write is there whole; every failed one
    (34010/34011) is there whole or not at all."""
    primary = hosts.primary()
    await migrate(primary)
    standby = hosts.standby(primary)
    database = await open_pg_database(make_dsn(primary, standby), 4, FAST)
    try:
        db = DBContext(database)
        account_id = str(uuid.uuid4())
        acked: list[EventWrite] = []
        failed: list[EventWrite] = []
        errors: set[int] = set()
        stop = asyncio.Event()

        async def writer() -> None:
            while not stop.is_set():
                event = EventWrite(handler_id=str(uuid.uuid4()),
                                   samples=(SampleWrite("face_warp", b"w"),),
                                   face=FaceWrite(descriptor=b"\0" * 512, descriptor_version=1))
                try:
                    await db.saveEvents(account_id, [event])
                    acked.append(event)
                except DatabaseError as exc:
                    failed.append(event)
                    errors.add(exc.code)
                    await asyncio.sleep(0.01)

        tasks = [asyncio.create_task(writer()) for _ in range(3)]
        await until(lambda: len(acked) >= 30)
        primary.kill()
        await asyncio.sleep(0.5)
        await asyncio.to_thread(standby.promote)
        at_promotion = len(acked)
        await until(lambda: len(acked) >= at_promotion + 30)
        stop.set()
        await asyncio.gather(*tasks)
        assert failed and errors <= {34010, 34011}
        assert await parts_stored(db, account_id, acked) == {3}
        assert await parts_stored(db, account_id, failed) <= {0, 3}
    finally:
        await database.close()

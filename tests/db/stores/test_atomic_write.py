"""saveEvents under real faults: the server ends the write's connection (pg_terminate_backend
from another connection) before the COMMIT, and while the COMMIT waits. Nothing is ever half
stored: before the COMMIT nothing is (34010, safe to retry); a COMMIT lost on its way is
34011 and then everything, or nothing, is there."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from luna_handlers.db import DBContext, EventWrite, FaceWrite, SampleWrite
from luna_handlers.db.schema.migrate import upgrade
from luna_handlers.errors import DatabaseOutcomeUnknown, DatabaseUnavailable
from luna_handlers.pgserver.cluster import PgCluster, free_port
from tests.conftest import TEST_PASSWORD, TEST_USER, host_pool, new_database, run_sql


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

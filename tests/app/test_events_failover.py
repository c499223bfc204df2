"""A database fault while events are being stored: every request is all or nothing.

Each request stores two events, two faces (linked to the request's own list) and two samples
in one transaction. A trigger slows every sample insert down, so that the transaction is
open long enough; meanwhile the backends of the database are terminated (what an admin or
a crashing primary does). Every answer must be 201 (everything stored) or 503 34010
(nothing stored) / 34011 (all or nothing, the client cannot know which), never a half.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from luna_handlers.db import DBContext, EventFilters
from luna_handlers.db.pool.hostpool import HostPool
from luna_handlers.db.schema.migrate import upgrade
from luna_handlers.errors import DatabaseError
from luna_handlers.pgserver.cluster import PgCluster
from tests.app.conftest import acc, create_handler, make_app, make_settings, new_account, serve
from tests.app.conftest import shared as lend_database
from tests.app.photos import photo
from tests.app.test_events_api import multipart
from tests.conftest import host_pool, new_database

REQUESTS = 6
SLOW_SAMPLES = """
CREATE FUNCTION slow_sample() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN PERFORM pg_sleep(0.3); RETURN NEW; END $$;
CREATE TRIGGER slow_sample BEFORE INSERT ON sample FOR EACH ROW EXECUTE FUNCTION slow_sample();
"""


@pytest.fixture(scope="module")
async def faulty(pg_cluster: PgCluster) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient,
                                                               str]]:
    """An app on its own database (whose backends the test kills) and that database's name."""
    dbname = new_database(pg_cluster)
    pool: HostPool = host_pool(pg_cluster, dbname, pool_size=10)
    async with pool.engine.connect() as conn:
        await upgrade(conn)
    pg_cluster.psql(SLOW_SAMPLES, dbname=dbname)
    app = make_app(make_settings(pool), lend_database(pool))
    try:
        async with serve(app) as client:
            yield app, client, dbname
    finally:
        await pool.close()


async def _killer(cluster: PgCluster, dbname: str, done: asyncio.Event) -> int:
    """Terminate every backend of ``dbname`` each time one sleeps inside a sample insert."""
    kills = 0
    while not done.is_set():
        killed = await asyncio.to_thread(
            cluster.psql, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            f"WHERE datname = '{dbname}' AND pid <> pg_backend_pid() AND EXISTS ("
            f"SELECT 1 FROM pg_stat_activity WHERE datname = '{dbname}' "
            "AND wait_event = 'PgSleep')")
        kills += int(killed or 0)
        await asyncio.sleep(0.05)
    return kills


async def _read(action: Any) -> Any:
    """A read after the fault: the pool may still be reconnecting."""
    for _ in range(100):
        try:
            return await action()
        except DatabaseError:
            await asyncio.sleep(0.1)
    return await action()


async def test_a_fault_while_storing_events_leaves_nothing_half_stored(
        faulty: tuple[Starlette, httpx.AsyncClient, str], pg_cluster: PgCluster) -> None:
    app, client, dbname = faulty
    db: DBContext = app.state.db
    account = new_account()
    handler_id = await create_handler(client, account, is_dynamic=True, policies=None)
    lists = [await db.createList(account, f"request {n}") for n in range(REQUESTS)]
    images = [photo("astronaut"), photo("camera")]

    async def one(n: int) -> httpx.Response:
        policies = {"storage_policy": {"face_policy": {
            "store_face": 1, "link_to_lists_policy": [{"list_id": lists[n]}]}}}
        return await client.post(f"/1/handlers/{handler_id}/events", headers=acc(account),
                                 params={"source": f"request-{n}"},
                                 **multipart(images, policies))

    done = asyncio.Event()
    killer = asyncio.create_task(_killer(pg_cluster, dbname, done))
    try:
        responses = await asyncio.gather(*(one(n) for n in range(REQUESTS)))
    finally:
        done.set()
        kills = await killer
    pg_cluster.psql("DROP TRIGGER slow_sample ON sample", dbname=dbname)
    outcomes = []
    for n, response in enumerate(responses):
        events = await _read(lambda n=n: db.countEvents(
            EventFilters(account_id=account, source=f"request-{n}")))
        faces = await _read(lambda n=n: db.countFaces(account, lists[n]))
        code = response.json().get("error_code") if response.status_code != 201 else None
        outcomes.append((response.status_code, code, events, faces))
        if response.status_code == 201:
            assert (events, faces) == (2, 2), outcomes
            for event in response.json()["events"]:
                sample_id = event["detections"][0]["samples"]["face"]["sample_id"]
                assert await _read(lambda s=sample_id: db.getSample(s, account)) is not None
        else:
            assert (response.status_code, code) in ((503, 34010), (503, 34011)), outcomes
            assert (events, faces) in ((0, 0), (2, 2)), outcomes
            if code == 34010:
                assert (events, faces) == (0, 0), outcomes
    print(f"kills {kills}, outcomes (status, code, events, faces): {outcomes}")
    assert kills > 0 and any(status == 503 for status, *_ in outcomes), outcomes
    # The fault is over: the same request is stored whole.
    after = await _read(lambda: _until_stored(one, 0))
    assert after.status_code == 201, after.text
    assert await db.countFaces(account, lists[0]) == 2


async def _until_stored(one: Any, n: int) -> httpx.Response:
    response: httpx.Response = await one(n)
    if response.status_code == 503:
        raise DatabaseError("the pool is still reconnecting")
    return response

"""The matching index across a real failover: a new pool generation drops every list, and
the next probe reads the list from the new primary."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from luna_handlers.db import DBContext, FaceMatchFilters, FaceWrite
from luna_handlers.db.pool.failover import FailoverDatabase
from luna_handlers.pgserver.cluster import PgCluster
from tests.db.match_index.test_index import VERSION, probes_total, vectors
from tests.db.pool import test_failover
from tests.db.pool.test_failover import metric, until

pytestmark = pytest.mark.slow
hosts, pair = test_failover.hosts, test_failover.pair  # the fixtures: primary + sync standby


async def test_a_pool_switch_drops_every_list(
        pair: tuple[PgCluster, PgCluster, FailoverDatabase]) -> None:
    a, b, db = pair
    cached, sql = DBContext(db), DBContext(db, 0)
    acc = str(uuid.uuid4())
    list_id = await cached.createList(acc)
    matrix = vectors(40, 20)
    for row in matrix:
        await cached.createFace(acc, FaceWrite(row.tobytes(), VERSION, list_ids=(list_id,)))
    filters = FaceMatchFilters(list_id=list_id)
    before = await cached.matchFaces(acc, matrix[0].tobytes(), filters, 5, VERSION)
    index = cached.matchIndex
    assert index is not None and index.holds(acc, list_id, VERSION, 512)
    flushes, loads = metric("luna_handlers_match_cache_flushes_total"), probes_total("load")

    a.kill()
    await asyncio.to_thread(b.promote)
    await until(lambda: db.status()["generation"] == 2)
    after = await cached.matchFaces(acc, matrix[0].tobytes(), filters, 5, VERSION)
    assert after == before == await sql.matchFaces(acc, matrix[0].tobytes(), filters, 5,
                                                   VERSION)
    assert metric("luna_handlers_match_cache_flushes_total") == flushes + 1
    assert probes_total("load") == loads + 1
    # Writes on the new primary are logged there too.
    added = FaceWrite(matrix[0].tobytes(), VERSION, list_ids=(list_id,))
    await cached.createFace(acc, added)
    found = await cached.matchFaces(acc, matrix[0].tobytes(), filters, 5, VERSION)
    assert found == await sql.matchFaces(acc, matrix[0].tobytes(), filters, 5, VERSION)
    assert added.face_id in [match.face_id for match in found[:2]]

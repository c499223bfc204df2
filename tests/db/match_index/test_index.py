"""The matching index on a real PostgreSQL: two "service instances" (two pools, two DB
contexts) on one database. Every probe by list through an instance with the index is
compared with the SQL path (a context with the index off) on the same data, exactly."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

import numpy as np
import pytest
from prometheus_client import REGISTRY

from luna_handlers.db import Database, DBContext, FaceMatch, FaceMatchFilters, FaceWrite
from luna_handlers.db.database import Session
from luna_handlers.db.match_index import MatchIndex
from luna_handlers.db.match_index.statements import LOAD
from luna_handlers.db.pool.hostpool import HostPool
from luna_handlers.db.prepared import Prepared, Row
from luna_handlers.db.schema.migrate import upgrade
from luna_handlers.pgserver.cluster import PgCluster
from tests.conftest import host_pool, new_database, run_sql

DIM = 128
VERSION = 1


@dataclass
class Instances:
    """``writer`` and ``reader`` each have a pool and an index of their own; ``sql`` reads
    through the reader's pool with the index off (the reference)."""

    writer: DBContext
    reader: DBContext
    sql: DBContext
    writer_pool: HostPool
    reader_pool: HostPool


@pytest.fixture(scope="module")
async def instances(pg_cluster: PgCluster) -> AsyncIterator[Instances]:
    name = new_database(pg_cluster)
    writer_pool, reader_pool = host_pool(pg_cluster, name), host_pool(pg_cluster, name)
    async with writer_pool.engine.connect() as conn:
        await upgrade(conn)
    yield Instances(DBContext(writer_pool), DBContext(reader_pool), DBContext(reader_pool, 0),
                    writer_pool, reader_pool)
    await writer_pool.close()
    await reader_pool.close()


def vectors(count: int, seed: int) -> np.ndarray:
    matrix = np.random.default_rng(seed).standard_normal((count, DIM)).astype("<f4")
    normalised: np.ndarray = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    return normalised.astype("<f4")


def probes_total(outcome: str) -> float:
    return REGISTRY.get_sample_value("luna_handlers_match_cache_probes_total",
                                     {"outcome": outcome}) or 0.0


async def new_list(ctx: DBContext, account_id: str, matrix: np.ndarray) -> tuple[str, list[str]]:
    """A list of the account with one face per row (external ids ``e<row>``)."""
    list_id = await ctx.createList(account_id)
    faces = [FaceWrite(row.tobytes(), VERSION, list_ids=(list_id,), external_id=f"e{n}")
             for n, row in enumerate(matrix)]
    for face in faces:
        await ctx.createFace(account_id, face)
    return list_id, [face.face_id for face in faces]


Window = tuple[datetime | None, datetime | None]


async def probe(ctx: DBContext, account_id: str, list_id: str, vector: np.ndarray,
                limit: int = 10, *, created: Window = (None, None)) -> list[FaceMatch]:
    filters = FaceMatchFilters(list_id=list_id, create_time__gte=created[0],
                               create_time__lt=created[1])
    return await ctx.matchFaces(account_id, vector.tobytes(), filters, limit, VERSION)


async def agree(inst: Instances, account_id: str, list_id: str, vector: np.ndarray,
                limit: int = 10, *, created: Window = (None, None)) -> list[FaceMatch]:
    """The index's answer, asserted identical to the SQL path's (ids, order, cosines)."""
    cached = await probe(inst.reader, account_id, list_id, vector, limit, created=created)
    assert cached == await probe(inst.sql, account_id, list_id, vector, limit, created=created)
    return cached


def ids(found: list[FaceMatch]) -> list[str]:
    return [match.face_id for match in found]


async def test_writes_of_one_instance_are_seen_by_the_next_probe_of_another(
        instances: Instances) -> None:
    acc = str(uuid.uuid4())
    list_id, face_ids = await new_list(instances.writer, acc, vectors(50, 1))
    target = vectors(1, 2)[0]
    loads, deltas = probes_total("load"), probes_total("delta")
    await agree(instances, acc, list_id, target)
    assert probes_total("load") == loads + 1
    assert instances.reader.matchIndex is not None
    assert instances.reader.matchIndex.holds(acc, list_id, VERSION, DIM * 4)

    added = FaceWrite(target.tobytes(), VERSION, list_ids=(list_id,), external_id="new")
    await instances.writer.createFace(acc, added)
    found = await agree(instances, acc, list_id, target)
    assert (found[0].face_id, found[0].external_id) == (added.face_id, "new")
    assert probes_total("delta") == deltas + 1

    await instances.writer.detachFacesFromList(list_id, [added.face_id], acc)
    assert added.face_id not in ids(await agree(instances, acc, list_id, target))
    await instances.writer.attachFacesToList(list_id, [added.face_id], acc)
    assert ids(await agree(instances, acc, list_id, target))[0] == added.face_id
    await instances.writer.deleteFace(added.face_id, acc)
    assert added.face_id not in ids(await agree(instances, acc, list_id, target))
    # Another descriptor version in the list is no candidate; a face of the list removed
    # from the middle moves the last row into its place, and answers stay the same.
    await instances.writer.createFace(acc, FaceWrite(target.tobytes(), 2, list_ids=(list_id,)))
    await instances.writer.deleteFaces(face_ids[10:20], acc)
    found = await agree(instances, acc, list_id, target, 100)
    assert len(found) == 40 and not set(ids(found)) & set(face_ids[10:20])
    hits = probes_total("hit")
    await agree(instances, acc, list_id, target)
    assert probes_total("hit") == hits + 1


async def test_a_transaction_open_across_probes_is_seen_once_committed(
        instances: Instances) -> None:
    acc = str(uuid.uuid4())
    list_id, _ = await new_list(instances.writer, acc, vectors(20, 3))
    target = vectors(1, 4)[0]
    loose = FaceWrite(target.tobytes(), VERSION)
    await instances.writer.createFace(acc, loose)  # in no list yet
    await agree(instances, acc, list_id, target)
    async with instances.writer_pool.transaction() as long_one:
        await run_sql(long_one, "INSERT INTO list_face (list_id, face_id) VALUES (:l, :f)",
                      l=list_id, f=loose.face_id)
        # Meanwhile other writes commit and probes move on past them.
        other = FaceWrite(vectors(1, 5)[0].tobytes(), VERSION, list_ids=(list_id,))
        await instances.writer.createFace(acc, other)
        assert other.face_id in ids(await agree(instances, acc, list_id, target, 30))
        assert loose.face_id not in ids(await agree(instances, acc, list_id, target, 30))
    assert ids(await agree(instances, acc, list_id, target))[0] == loose.face_id


async def test_same_answers_as_sql_on_random_data_with_ties(instances: Instances) -> None:
    acc = str(uuid.uuid4())
    matrix = vectors(300, 6)
    matrix[100:140] = matrix[0]  # 41 copies of one descriptor: ties at the top
    matrix[200:205] = matrix[1]
    list_id, face_ids = await new_list(instances.writer, acc, matrix)
    targets = [matrix[0], matrix[1], *vectors(3, 7)]
    for limit in (1, 5, 41, 50, 300, 1000):
        for target in targets:
            await agree(instances, acc, list_id, target, limit)
    tied = await agree(instances, acc, list_id, matrix[0], 41)
    assert ids(tied) == sorted(ids(tied))  # equal cosines: by face id
    await instances.writer.detachFacesFromList(list_id, face_ids[::3], acc)
    for target in targets:
        await agree(instances, acc, list_id, target, 60)


async def test_isolation_between_accounts(instances: Instances) -> None:
    acc, stranger = str(uuid.uuid4()), str(uuid.uuid4())
    matrix = vectors(10, 8)
    list_id, _ = await new_list(instances.writer, acc, matrix)
    assert await agree(instances, stranger, list_id, matrix[0]) == []
    # A root attach may link another account's face: each account sees its own faces only.
    theirs = FaceWrite(matrix[0].tobytes(), VERSION)
    await instances.writer.createFace(stranger, theirs)
    await instances.writer.attachFacesToList(list_id, [theirs.face_id])
    assert ids(await agree(instances, stranger, list_id, matrix[0])) == [theirs.face_id]
    assert theirs.face_id not in ids(await agree(instances, acc, list_id, matrix[0], 20))


async def test_updated_descriptors_and_deleted_lists(instances: Instances) -> None:
    acc = str(uuid.uuid4())
    matrix = vectors(10, 9)
    list_id, face_ids = await new_list(instances.writer, acc, matrix)
    target = vectors(1, 10)[0]
    await agree(instances, acc, list_id, target)
    async with instances.writer_pool.write() as session:
        await run_sql(session, "UPDATE face SET descriptor = :d, external_id = 'moved' "
                      "WHERE face_id = :f", d=target.tobytes(), f=face_ids[3])
    found = await agree(instances, acc, list_id, target)
    assert (found[0].face_id, found[0].external_id) == (face_ids[3], "moved")
    await instances.writer.deleteList(list_id, acc)
    assert await agree(instances, acc, list_id, target) == []
    index = instances.reader.matchIndex
    assert index is not None and not index.holds(acc, list_id, VERSION, DIM * 4)


def naive_utc(value: datetime) -> datetime:
    return value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)


async def test_creation_time_windows(instances: Instances) -> None:
    """``create_time`` bounds are answered by the index too (from inclusive, to exclusive,
    naive UTC or aware), also after a face's time changed."""
    acc = str(uuid.uuid4())
    matrix = vectors(60, 22)
    list_id, face_ids = await new_list(instances.writer, acc, matrix)
    start = datetime(2026, 1, 1)
    async with instances.writer_pool.write() as session:
        await run_sql(session, "UPDATE face SET create_time = CAST(:start AS timestamp)"
                      " + (array_position(CAST(:ids AS text[]), face_id) - 1) * interval '1 minute'"
                      " WHERE face_id = ANY(CAST(:ids AS text[]))", start=start, ids=face_ids)
    minute = timedelta(minutes=1)
    target = matrix[30]
    served = probes_total("sql")
    windows: list[Window] = [
        (start + 20 * minute, start + 40 * minute), (start + 50 * minute, None),
        (None, start + 5 * minute), (start + 30 * minute, start + 31 * minute),
        (start + 70 * minute, None), (start + 40 * minute, start + 20 * minute),
        ((start + 25 * minute).replace(tzinfo=UTC).astimezone(timezone(timedelta(hours=3))),
         None)]
    for low, high in windows:
        found = await agree(instances, acc, list_id, target, created=(low, high))
        created = [start + face_ids.index(f.face_id) * minute for f in found]
        assert all((low is None or at >= naive_utc(low)) and (high is None or at < high)
                   for at in created), (low, high)
    assert len(await agree(instances, acc, list_id, target, 60,
                           created=(start + 20 * minute, start + 40 * minute))) == 20
    assert ids(await agree(instances, acc, list_id, target, 1,
                           created=(start + 30 * minute, start + 31 * minute))) == [face_ids[30]]
    async with instances.writer_pool.write() as session:
        await run_sql(session, "UPDATE face SET create_time = :t WHERE face_id = :f",
                      t=start + 90 * minute, f=face_ids[30])
    assert ids(await agree(instances, acc, list_id, target, 1,
                           created=(start + 80 * minute, None))) == [face_ids[30]]
    assert probes_total("sql") == served  # none of these went to the SQL path


async def test_concurrent_probes_of_a_cold_list_load_it_once(instances: Instances) -> None:
    acc = str(uuid.uuid4())
    matrix = vectors(200, 11)
    list_id, _ = await new_list(instances.writer, acc, matrix)
    fresh = DBContext(instances.reader_pool)
    loads = probes_total("load")
    answers = await asyncio.gather(*(probe(fresh, acc, list_id, matrix[n]) for n in range(8)))
    assert probes_total("load") == loads + 1
    for n, found in enumerate(answers):
        assert found == await probe(instances.sql, acc, list_id, matrix[n])


class HeldLoad:
    """A real pool whose read of one list's members waits until :attr:`go` is set: a list
    whose load is slow, for as long as the test wants, with every other statement as is."""

    def __init__(self, pool: HostPool, list_id: str) -> None:
        self._pool = pool
        self._list_id = list_id
        self.reached = asyncio.Event()
        self.go = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[Session]:
        async with self._pool.read() as session:
            yield cast(Session, _HeldSession(session, self))

    async def rows(self, session: Session, prepared: Prepared, params: Mapping[str, Any]
                   ) -> Sequence[Row]:
        """``session.rows``, held for the members of the held list."""
        if prepared is LOAD and params.get("list_id") == self._list_id:
            self.reached.set()
            await self.go.wait()
        return await session.rows(prepared, params)


class _HeldSession:
    def __init__(self, session: Session, held: HeldLoad) -> None:
        self._session = session
        self._held = held

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    async def rows(self, prepared: Prepared, params: Mapping[str, Any]) -> Sequence[Row]:
        return await self._held.rows(self._session, prepared, params)


async def test_a_slow_load_of_one_list_holds_no_other_list(instances: Instances) -> None:
    """While one list's members load (held here), probes of another list are answered, and
    the held list's other probes wait for that one load instead of starting their own."""
    acc = str(uuid.uuid4())
    matrix = vectors(80, 21)
    slow, _ = await new_list(instances.writer, acc, matrix[:40])
    other, _ = await new_list(instances.writer, acc, matrix[40:])
    held = HeldLoad(instances.reader_pool, slow)
    context = DBContext(cast(Database, held))
    loads = probes_total("load")
    waiting = [asyncio.create_task(probe(context, acc, slow, matrix[n])) for n in range(3)]
    await asyncio.wait_for(held.reached.wait(), 30)
    for n in (40, 41, 79):
        answered = await asyncio.wait_for(probe(context, acc, other, matrix[n]), 30)
        assert answered == await probe(instances.sql, acc, other, matrix[n])
    assert not any(task.done() for task in waiting)
    held.go.set()
    for n, task in enumerate(waiting):
        assert await task == await probe(instances.sql, acc, slow, matrix[n])
    assert probes_total("load") == loads + 2  # one load of each list


async def test_the_bound_evicts_the_least_recently_used_list(instances: Instances) -> None:
    acc = str(uuid.uuid4())
    first, _ = await new_list(instances.writer, acc, vectors(60, 12))
    second, _ = await new_list(instances.writer, acc, vectors(60, 13))
    big, _ = await new_list(instances.writer, acc, vectors(141, 14))
    small = DBContext(instances.reader_pool, 140)
    index = small.matchIndex
    assert index is not None
    target = vectors(1, 15)[0]
    for list_id in (first, second):
        assert await probe(small, acc, list_id, target) == await probe(
            instances.sql, acc, list_id, target)
    assert index.holds(acc, first, VERSION, DIM * 4) and index.descriptors == 120
    third = await probe(small, acc, first, target)  # first is now the recent one
    assert third == await probe(instances.sql, acc, first, target)
    await instances.writer.attachFacesToList(first, [
        face.face_id for face in await instances.writer.getFaces(acc, second, pageSize=30)], acc)
    await probe(small, acc, first, target)  # 90 + 60: over the bound
    assert index.holds(acc, first, VERSION, DIM * 4)
    assert not index.holds(acc, second, VERSION, DIM * 4)
    assert index.descriptors == 90
    # A list bigger than the whole bound is answered, and not kept.
    assert await probe(small, acc, big, target) == await probe(instances.sql, acc, big, target)
    assert not index.holds(acc, big, VERSION, DIM * 4)
    assert await probe(small, acc, big, target) == await probe(instances.sql, acc, big, target)
    # Lists count too (an empty one costs memory): a bound of 64 descriptors holds one list.
    tiny = DBContext(instances.reader_pool, 64)
    assert tiny.matchIndex is not None
    empty = await instances.writer.createList(acc)
    for list_id in (empty, second):
        assert await probe(tiny, acc, list_id, target) == await probe(
            instances.sql, acc, list_id, target)
    assert not tiny.matchIndex.holds(acc, empty, VERSION, DIM * 4)
    assert tiny.matchIndex.holds(acc, second, VERSION, DIM * 4)


async def test_an_entry_behind_the_pruned_log_reloads(instances: Instances) -> None:
    acc = str(uuid.uuid4())
    matrix = vectors(30, 16)
    list_id, face_ids = await new_list(instances.writer, acc, matrix)
    await agree(instances, acc, list_id, matrix[0])  # the reader's entry: W before the writes
    await instances.writer.detachFacesFromList(list_id, face_ids[:5], acc)
    pruner = MatchIndex(instances.writer_pool, 0, retention=0.0)
    await pruner.prune()  # the horizon recorded earlier is applied, the current one recorded
    assert await pruner.prune() > 0  # ... and applied: the detaches' log rows are gone
    async with instances.writer_pool.read() as session:
        left = await run_sql(session, "SELECT count(*) FROM list_face_log WHERE list_id = :l",
                             l=list_id)
    assert left[0][0] == 0
    loads = probes_total("load")
    found = await agree(instances, acc, list_id, matrix[0], 30)
    assert probes_total("load") == loads + 1 and len(found) == 25

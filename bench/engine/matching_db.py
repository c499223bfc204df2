"""Matching against a real database: ``python -m bench.engine.matching_db``.

Starts a throw-away PostgreSQL (the embedded server's binaries), stores N random normalised
descriptors as faces of one list, and times one probe through ``DBContext.matchFaces``, side
by side in one run:

* the SQL path (SQL selects the candidates, numpy scores them in a thread), by list (a DB
  context with the matching index off) and over the whole account;
* the matching index (``luna_handlers.db.match_index``) on the same list: its first, cold
  probe (the list read whole), warm probes (one delta round trip + numpy) p50/p99, and a
  probe right after 100 faces were added to the list through another DB context (another
  "instance", own pool), with what holding the list costs in memory;
* pgvector's exact scan (``ORDER BY embedding <#> probe``, no index) on the same rows when the
  server has the extension.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import asyncpg
import numpy as np
import psutil

from bench.engine.matching import random_descriptors
from luna_handlers.config import FailoverSettings
from luna_handlers.db import DBContext, FaceMatchFilters, FaceWrite
from luna_handlers.db.context import MATCH_CACHE
from luna_handlers.db.dialects.postgresql.backend import pg_backend
from luna_handlers.db.dialects.postgresql.dsn import parse_pg_dsn
from luna_handlers.db.hosts import HostPort
from luna_handlers.db.pool.hostpool import HostPool
from luna_handlers.db.schema.migrate import upgrade
from luna_handlers.pgserver.cluster import PgCluster, free_port

USER, PASSWORD, DBNAME = "bench", "bench-pw", "bench"
FAILOVER = FailoverSettings(connect_timeout=5.0, query_timeout=120.0, failure_threshold=3,
                            health_check_interval=5.0, switch_wait=3.0)


async def _fill(conn: asyncpg.Connection, account_id: str, list_id: str, count: int,
                vector: bool) -> None:
    rng = np.random.default_rng(10)
    done = 0
    while done < count:
        chunk = random_descriptors(min(50_000, count - done), rng)
        ids = [str(uuid.uuid4()) for _ in range(len(chunk))]
        await conn.copy_records_to_table("face", columns=[
            "face_id", "account_id", "descriptor", "descriptor_version"], records=[
            (face_id, account_id, row.tobytes(), 1) for face_id, row in zip(ids, chunk,
                                                                            strict=True)])
        await conn.copy_records_to_table("list_face", columns=["list_id", "face_id"],
                                         records=[(list_id, face_id) for face_id in ids])
        if vector:
            await conn.executemany("INSERT INTO bench_vector VALUES ($1, $2::vector)", [
                (face_id, "[" + ",".join(map(str, row.tolist())) + "]")
                for face_id, row in zip(ids, chunk, strict=True)])
        done += len(chunk)
    await conn.execute("ANALYZE")


async def _times(call: Callable[[bytes], Awaitable[object]], repeats: int,
                 warm_up: bool = True) -> list[float]:
    probes = random_descriptors(repeats + 1, np.random.default_rng(11))
    if warm_up:
        await call(probes[0].tobytes())  # the statement prepared (and the list loaded)
    times = []
    for probe in probes[1:]:
        began = time.perf_counter()
        await call(probe.tobytes())
        times.append((time.perf_counter() - began) * 1e3)
    return times


def _p(times: list[float], q: float) -> float:
    return float(np.percentile(times, q))


def _line(name: str, text: str) -> None:
    print(f"  {name:<34} {text}", flush=True)


async def _index_cases(db: DBContext, writer: DBContext, account_id: str, list_id: str, *,
                       repeats: int, warm: int) -> None:
    """The matching index: cold probe, warm probes, a probe after 100 added faces."""
    # A fresh index (the first probe loads the list), bounded above the list and the faces
    # added below: at the default bound a list of exactly 1,000,000 fits, not one more.
    cached = DBContext(db.database, MATCH_CACHE + 10_000)
    filters = FaceMatchFilters(list_id=list_id)

    def call(probe: bytes) -> Awaitable[object]:
        return cached.matchFaces(account_id, probe, filters, 10, 1)

    rss = psutil.Process().memory_info().rss
    cold = await _times(call, 1, warm_up=False)
    held = psutil.Process().memory_info().rss - rss
    _line("index, cold (first) probe", f"{cold[0]:8.1f} ms  (RSS +{held / 2**20:,.0f} MB)")
    times = await _times(call, warm)
    _line(f"index, warm ({warm} probes)",
          f"p50 {_p(times, 50):8.1f} ms  p99 {_p(times, 99):8.1f} ms")
    after = []
    for rounds in range(max(3, repeats)):
        for row in random_descriptors(100, np.random.default_rng(100 + rounds)):
            await writer.createFace(account_id, FaceWrite(row.tobytes(), 1,
                                                          list_ids=(list_id,)))
        after += await _times(call, 1, warm_up=False)
    _line(f"index, after +100 faces ({len(after)}x)",
          f"p50 {_p(after, 50):8.1f} ms  max {max(after):8.1f} ms")


async def _run(cluster: PgCluster, count: int, *, repeats: int, warm: int, vector: bool
               ) -> None:
    cluster.psql(f"DROP DATABASE IF EXISTS {DBNAME}")
    cluster.ensure_database(USER, PASSWORD, DBNAME)
    if vector:
        cluster.psql("CREATE EXTENSION IF NOT EXISTS vector", DBNAME)
    dsn = parse_pg_dsn(f"{USER}:{PASSWORD}@{cluster.host}:{cluster.port}/{DBNAME}")
    host = HostPort(cluster.host, cluster.port)
    pool = HostPool(pg_backend(dsn, 2, FAILOVER), host)
    other = HostPool(pg_backend(dsn, 2, FAILOVER), host)  # the writing "instance"
    try:
        async with pool.engine.connect() as conn:
            await upgrade(conn)
        db = DBContext(pool, 0)  # the SQL path
        account_id = str(uuid.uuid4())
        list_id = await db.createList(account_id)
        raw = await asyncpg.connect(host=cluster.host, port=cluster.port, user=USER,
                                    password=PASSWORD, database=DBNAME)
        try:
            if vector:
                await raw.execute("CREATE TABLE bench_vector (face_id text PRIMARY KEY, "
                                  "embedding vector(128))")
            began = time.perf_counter()
            await _fill(raw, account_id, list_id, count, vector)
            print(f"{count:>9,} faces stored in {time.perf_counter() - began:.1f} s", flush=True)
            cases: dict[str, Callable[[bytes], Awaitable[object]]] = {
                "SQL path, by list": lambda probe: db.matchFaces(
                    account_id, probe, FaceMatchFilters(list_id=list_id), 10, 1),
                "SQL path, whole account": lambda probe: db.matchFaces(
                    account_id, probe, FaceMatchFilters(), 10, 1),
            }
            if vector:
                cases["pgvector exact <#> scan"] = lambda probe: raw.fetch(
                    "SELECT face_id FROM bench_vector ORDER BY embedding <#> $1::vector "
                    "LIMIT 10", "[" + ",".join(map(str, np.frombuffer(
                        probe, "<f4").tolist())) + "]")
            for name, call in cases.items():
                times = await _times(call, repeats)
                _line(f"{name} ({repeats} probes)",
                      f"p50 {statistics.median(times):8.1f} ms  max {max(times):8.1f} ms")
                if name == "SQL path, by list":
                    await _index_cases(db, DBContext(other), account_id, list_id,
                                       repeats=repeats, warm=warm)
        finally:
            await raw.close()
    finally:
        await other.close()
        await pool.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Start the server, run each size, stop it."""
    parser = argparse.ArgumentParser(prog="python -m bench.engine.matching_db",
                                     description=__doc__)
    parser.add_argument("--sizes", default="100000,1000000", help="face counts")
    parser.add_argument("--repeats", type=int, default=5,
                        help="probes per SQL case (and rounds of +100 faces)")
    parser.add_argument("--warm", type=int, default=200, help="warm probes of the index")
    parser.add_argument("--no-pgvector", action="store_true", help="skip the pgvector case")
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="luna-bench-matching-"))
    base.chmod(0o755)
    cluster = PgCluster(datadir=base / "pg", port=free_port(), superuser_password="bench-su",
                        settings={"fsync": "off", "synchronous_commit": "off",
                                  "shared_buffers": "256MB"})
    try:
        cluster.initdb()
        cluster.start()
        for size in (int(n) for n in args.sizes.split(",")):
            asyncio.run(_run(cluster, size, repeats=args.repeats, warm=args.warm,
                             vector=not args.no_pgvector))
    finally:
        cluster.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()

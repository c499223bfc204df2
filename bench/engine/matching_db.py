"""Matching against a real database: ``python -m bench.engine.matching_db``.

Starts a throw-away PostgreSQL (the embedded server's binaries), stores N random normalised
descriptors as faces of one list, and times one probe through ``DBContext.matchFaces`` (the
portable path: SQL selects the candidates, numpy scores them in a thread), beside pgvector's
exact scan (``ORDER BY embedding <#> probe``, no index) on the same rows when the server has
the extension, for deciding whether the optional pgvector path would pay.
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

from bench.engine.matching import random_descriptors
from luna_handlers.config import FailoverSettings
from luna_handlers.db import DBContext, FaceMatchFilters
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


async def _time(call: Callable[[bytes], Awaitable[object]], repeats: int) -> tuple[float, float]:
    probes = random_descriptors(repeats + 1, np.random.default_rng(11))
    await call(probes[0].tobytes())  # warm-up (and the statement prepared)
    times = []
    for probe in probes[1:]:
        began = time.perf_counter()
        await call(probe.tobytes())
        times.append((time.perf_counter() - began) * 1e3)
    return statistics.median(times), max(times)


async def _run(cluster: PgCluster, count: int, repeats: int, vector: bool) -> None:
    cluster.psql(f"DROP DATABASE IF EXISTS {DBNAME}")
    cluster.ensure_database(USER, PASSWORD, DBNAME)
    if vector:
        cluster.psql("CREATE EXTENSION IF NOT EXISTS vector", DBNAME)
    dsn = parse_pg_dsn(f"{USER}:{PASSWORD}@{cluster.host}:{cluster.port}/{DBNAME}")
    pool = HostPool(pg_backend(dsn, 2, FAILOVER), HostPort(cluster.host, cluster.port))
    try:
        async with pool.engine.connect() as conn:
            await upgrade(conn)
        db = DBContext(pool)
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
                "matchFaces, whole account": lambda probe: db.matchFaces(
                    account_id, probe, FaceMatchFilters(), 10, 1),
                "matchFaces, by list": lambda probe: db.matchFaces(
                    account_id, probe, FaceMatchFilters(list_id=list_id), 10, 1),
            }
            if vector:
                cases["pgvector exact <#> scan"] = lambda probe: raw.fetch(
                    "SELECT face_id FROM bench_vector ORDER BY embedding <#> $1::vector "
                    "LIMIT 10", "[" + ",".join(map(str, np.frombuffer(
                        probe, "<f4").tolist())) + "]")
            for name, call in cases.items():
                p50, worst = await _time(call, repeats)
                print(f"  {name:<28} p50 {p50:8.1f} ms  max {worst:8.1f} ms", flush=True)
        finally:
            await raw.close()
    finally:
        await pool.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Start the server, run each size, stop it."""
    parser = argparse.ArgumentParser(prog="python -m bench.engine.matching_db",
                                     description=__doc__)
    parser.add_argument("--sizes", default="100000,1000000", help="face counts")
    parser.add_argument("--repeats", type=int, default=20, help="probes per case")
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
            asyncio.run(_run(cluster, size, args.repeats, not args.no_pgvector))
    finally:
        cluster.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()

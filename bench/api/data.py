"""The bench database: its own PostgreSQL, the service schema, and N realistic handlers.

Handler ids are derived from their number (md5, shaped as a version-4 UUID) so that pgbench,
which cannot read a list of strings, computes the same ids in SQL (:data:`SQL_HANDLER_ID`).
The "kit" directory holds what wrk's Lua script reads: ids, accounts and request bodies.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from sqlalchemy.ext.asyncio import create_async_engine

from luna_handlers.app.policies import parse_handler_body
from luna_handlers.db.schema.migrate import upgrade
from luna_handlers.pgserver.cluster import PgCluster, free_port

USER = "bench"
PASSWORD = "bench-pw"  # a throwaway local server
DBNAME = "luna_handlers_bench"
ACCOUNTS = 10
LIST_ID = "6a3d1c7e-8f7b-4b5e-9a66-7d3c8c2f0b11"

#: What a platform operator typically sends: detect + extract + match + storage choices.
#: Only what the built-in engine can do: estimations it lacks are refused (400 35004).
REQUEST_POLICIES: dict[str, Any] = {
    "detect_policy": {"detect_face": 1, "multiface_policy": 2},
    "extract_policy": {"extract_face_descriptor": 1, "fd_score_threshold": 0.5},
    "match_policy": [{"candidates": {"origin": "faces", "list_id": LIST_ID},
                      "limit": 3, "threshold": 0.8, "label": "watchlist"}],
    "storage_policy": {
        "face_sample_policy": {"store_sample": 1},
        "attribute_policy": {"store_attribute": 1, "ttl": 3600},
        "face_policy": {"store_face": 1, "link_to_lists_policy": [{"list_id": LIST_ID}]},
        "event_policy": {"store_event": 1},
    },
    "conditional_tags_policy": [{"tag": "vip", "filters": {"match": [
        {"label": "watchlist", "similarity__gte": 0.9}]}}],
}

def sql_uuid(md5: str) -> str:
    """SQL shaping the md5 hex text ``md5`` as a version-4 UUID, as :func:`handler_id` does."""
    return (f"substr({md5}, 1, 8) || '-' || substr({md5}, 9, 4) || '-4' || "
            f"substr({md5}, 14, 3) || '-a' || substr({md5}, 18, 3) || '-' || "
            f"substr({md5}, 21, 12)")


#: ``handler_id`` of handler ``:n`` in SQL, the same as :func:`handler_id` (pgbench script).
SQL_HANDLER_ID = sql_uuid("md5(:n::text)")


def handler_id(n: int) -> str:
    """The id of handler number ``n`` (1-based)."""
    h = hashlib.md5(str(n).encode(), usedforsecurity=False).hexdigest()
    return f"{h[0:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def account_id(n: int) -> str:
    """The account of handler number ``n``: handlers are spread over :data:`ACCOUNTS`."""
    return handler_id(-(n % ACCOUNTS) - 1)


def stored_policies() -> dict[str, Any]:
    """The policies as the service stores them (every default filled in)."""
    policies = parse_handler_body({"policies": REQUEST_POLICIES}).policies
    assert policies is not None
    return policies


@dataclass
class BenchDatabase:
    """A started PostgreSQL holding the bench data."""

    cluster: PgCluster
    workdir: Path
    kit: Path
    handlers: int
    dbname: str = DBNAME

    @property
    def dsn(self) -> str:
        """A libpq URL of the bench database."""
        return self.cluster.url(USER, PASSWORD, self.dbname)

    def vacuum(self) -> None:
        """Reclaim what the previous server's writes left, so each server starts alike."""
        self.cluster.psql("VACUUM ANALYZE handler", dbname=self.dbname)

    def stop(self) -> None:
        """Stop the server."""
        self.cluster.stop("immediate")


def bench_cluster(workdir: Path, settings: dict[str, str] | None = None) -> PgCluster:
    """The bench's PostgreSQL over ``workdir / "pg"`` (``fsync=off``), not yet created or
    started; ``settings`` add to or override the defaults."""
    workdir.chmod(0o755)  # the server runs as another user when we are root
    return PgCluster(datadir=workdir / "pg", port=free_port(), superuser_password="bench-super",
                     settings={"fsync": "off", "max_connections": "300",
                               "shared_buffers": "256MB", **(settings or {})})


def start_database(handlers: int, workdir: Path | None = None) -> BenchDatabase:
    """Create, start, migrate and fill a fresh cluster in a new (or given) directory."""
    if workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix="luna-handlers-bench-"))
    cluster = bench_cluster(workdir)
    cluster.initdb()
    cluster.start()
    cluster.ensure_database(USER, PASSWORD, DBNAME)
    db = BenchDatabase(cluster, workdir, workdir / "kit", handlers)
    asyncio.run(_migrate_and_fill(db))
    db.vacuum()
    _write_kit(db)
    return db


async def migrate(dsn: str) -> None:
    """Bring the database at ``dsn`` to the newest schema, as ``luna-handlers db upgrade``."""
    engine = create_async_engine(dsn.replace("postgresql://", "postgresql+asyncpg://"))
    try:
        async with engine.connect() as conn:
            await upgrade(conn)
    finally:
        await engine.dispose()


async def _migrate_and_fill(db: BenchDatabase) -> None:
    await migrate(db.dsn)
    policies = orjson.dumps(stored_policies()).decode()
    # As the service's writes store them: the policies and, beside them, their rendering.
    rendered = parse_handler_body({"policies": REQUEST_POLICIES}).rendered
    assert rendered is not None
    start = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=30)
    rows = [(handler_id(n), account_id(n), start + timedelta(seconds=n * 60),
             start + timedelta(seconds=n * 60), f"bench handler {n}", policies, False,
             rendered.json, rendered.made_with)
            for n in range(1, db.handlers + 1)]
    conn = await asyncpg.connect(db.dsn)
    try:
        await conn.copy_records_to_table(
            "handler", records=rows,
            columns=["handler_id", "account_id", "create_time", "last_update_time",
                     "description", "policies", "is_dynamic", "rendered_policies",
                     "rendered_with"])
    finally:
        await conn.close()


def _write_kit(db: BenchDatabase) -> None:
    db.kit.mkdir(parents=True, exist_ok=True)
    with (db.kit / "ids.txt").open("w") as out:
        for n in range(1, db.handlers + 1):
            out.write(f"{handler_id(n)} {account_id(n)}\n")
    (db.kit / "accounts.txt").write_text(
        "".join(f"{account_id(n)}\n" for n in range(ACCOUNTS)))
    body = {"description": "bench handler", "policies": REQUEST_POLICIES}
    (db.kit / "body.json").write_text(json.dumps(body))
    # GraphQL takes the stored TEXT column as a String: a JSON string of the JSON document.
    (db.kit / "policies_string.json").write_text(
        json.dumps(orjson.dumps(stored_policies()).decode()))
    (db.kit / "pgbench_get.sql").write_text(
        f"\\set n random(1, {db.handlers})\n"
        "SELECT handler_id, account_id, description, policies, is_dynamic, create_time, "
        f"last_update_time FROM handler WHERE handler_id = {SQL_HANDLER_ID};\n")

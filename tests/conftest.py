"""Real PostgreSQL for the tests: one cluster per session, one fresh database per module."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from luna_handlers.config import FailoverSettings
from luna_handlers.db.context import DBContext
from luna_handlers.db.database import Database, Session
from luna_handlers.db.dialects.postgresql.backend import pg_backend
from luna_handlers.db.dialects.postgresql.dsn import parse_pg_dsn
from luna_handlers.db.hosts import HostPort
from luna_handlers.db.pool.hostpool import HostPool
from luna_handlers.db.prepared import Prepared, Row
from luna_handlers.db.schema.migrate import upgrade
from luna_handlers.pgserver.cluster import PgCluster, free_port
from tests.oracle_support import fresh_oracle_database, skip_without_oracle

TEST_USER = "luna"
TEST_PASSWORD = "luna-test-pw"
FAILOVER = FailoverSettings(connect_timeout=2.0, query_timeout=10.0, failure_threshold=3,
                            health_check_interval=0.5, switch_wait=3.0)


@pytest.fixture(scope="session")
def shared_tmp() -> Iterator[Path]:
    """A directory the server user can enter (pytest's own tmp is private to root)."""
    base = Path(tempfile.mkdtemp(prefix="luna-handlers-tests-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def started_cluster(datadir: Path) -> PgCluster:
    """A new, started PostgreSQL in ``datadir`` whose test user may create databases."""
    cluster = PgCluster(datadir=datadir, port=free_port(), superuser_password="postgres-test",
                        settings={"fsync": "off"})
    cluster.initdb()
    cluster.start()
    cluster.ensure_database(TEST_USER, TEST_PASSWORD, "postgres")
    cluster.psql(f'ALTER ROLE "{TEST_USER}" CREATEDB')
    return cluster


def wait_healthy(proc: subprocess.Popen[Any], url: str, output: Callable[[], str]) -> None:
    """Wait until the service process ``proc`` answers ``url`` (its health check) with 200."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, output()
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("service did not become healthy: " + output())


@pytest.fixture(scope="session")
def pg_cluster(shared_tmp: Path) -> Iterator[PgCluster]:
    """One started PostgreSQL server for the whole session."""
    cluster = started_cluster(shared_tmp / "main")
    yield cluster
    cluster.stop("immediate")


def new_database(cluster: PgCluster) -> str:
    """Create an empty database owned by the test user and return its name."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    cluster.psql(f'CREATE DATABASE "{name}" OWNER "{TEST_USER}"')
    return name


def host_pool(cluster: PgCluster, dbname: str, pool_size: int = 5) -> HostPool:
    """A HostPool on ``dbname`` of ``cluster`` as the test user (in a running event loop)."""
    dsn = parse_pg_dsn(f"{TEST_USER}:{TEST_PASSWORD}@{cluster.host}:{cluster.port}/{dbname}")
    return HostPool(pg_backend(dsn, pool_size, FAILOVER), HostPort(cluster.host, cluster.port))


async def run_sql(session: Session, text: str, **params: Any) -> list[Row]:
    """Ad-hoc SQL on a request session (tests only: the service runs fixed statements)."""
    return list(await session.rows(Prepared(lambda _dialect: sa.text(text)), params))


@pytest.fixture(scope="module")
async def migrated_pool(pg_cluster: PgCluster) -> AsyncIterator[HostPool]:
    """A HostPool on a fresh database migrated to head (one per test module)."""
    pool = host_pool(pg_cluster, new_database(pg_cluster), pool_size=25)
    async with pool.engine.connect() as conn:
        await upgrade(conn)
    yield pool
    await pool.close()


BACKENDS = ["postgres", pytest.param("oracle", marks=[pytest.mark.oracle, skip_without_oracle])]


@pytest.fixture(scope="module", params=BACKENDS)
async def backend_database(request: pytest.FixtureRequest,
                           migrated_pool: HostPool) -> AsyncIterator[Database]:
    """The module's migrated database on each backend: PostgreSQL always, Oracle when one is
    given (LUNA_HANDLERS_TEST_ORACLE_DSN); suites that take it run on both."""
    if request.param == "postgres":
        yield migrated_pool
        return
    database = await fresh_oracle_database()
    yield database
    await database.close()


@pytest.fixture(scope="module")
def db_context(backend_database: Database) -> DBContext:
    """The DB context on the module's migrated database (each backend)."""
    return DBContext(backend_database)

"""The service through a real pgbouncer 1.18 in transaction mode, next to direct connections.

pgbouncer runs with ONE server session: every client transaction then meets the same one,
so what transaction pooling breaks (named statements, the same statement name prepared by
two clients) breaks every time, and the probe's check finds it every time.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from luna_handlers.db.context import DBContext, ListFilters
from luna_handlers.db.dialects.postgresql.backend import open_pg_database, pg_backend
from luna_handlers.db.dialects.postgresql.dsn import PgDsn, parse_pg_dsn
from luna_handlers.db.dialects.postgresql.pooler import HINT, pooler_hint
from luna_handlers.db.pool.failover import FailoverDatabase
from luna_handlers.db.pool.hostpool import HostPool
from luna_handlers.db.schema.migrate import check_at_head, upgrade
from luna_handlers.errors import DatabaseError
from luna_handlers.pgserver.cluster import PgCluster
from luna_handlers.pgserver.pgbouncer import PgBouncer
from tests.conftest import FAILOVER, TEST_PASSWORD, TEST_USER, new_database, run_sql
from tests.ha.install import Unavailable, ensure_pgbouncer

DETECTED = "is a pooler in transaction or statement mode"


def _bouncer(base: Path, dbname: str, cluster: PgCluster, mode: str) -> PgBouncer:
    try:
        ensure_pgbouncer()
    except Unavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"pgbouncer is required in CI: {exc}")
        pytest.skip(f"no pgbouncer: {exc}")
    workdir = base / f"pgbouncer-{mode}-{dbname}"
    workdir.mkdir()
    workdir.chmod(0o755)
    # Session mode needs a server session per client: the probe's check takes two.
    bouncer = PgBouncer(workdir, dbname, TEST_USER, TEST_PASSWORD, (cluster.host, cluster.port),
                        pool_mode=mode, pool_size=1 if mode == "transaction" else 5)
    bouncer.start()
    return bouncer


@pytest.fixture(scope="module")
def dbname(pg_cluster: PgCluster) -> str:
    """The module's database: migrated through pgbouncer by the first test."""
    return new_database(pg_cluster)


@pytest.fixture(scope="module")
def bouncer(pg_cluster: PgCluster, shared_tmp: Path, dbname: str) -> Iterator[PgBouncer]:
    """pgbouncer in transaction mode with one server session."""
    running = _bouncer(shared_tmp, dbname, pg_cluster, "transaction")
    yield running
    running.stop()


def dsn_of(host: str, port: int, dbname: str) -> PgDsn:
    return parse_pg_dsn(f"{TEST_USER}:{TEST_PASSWORD}@{host}:{port}/{dbname}")


@pytest.fixture
async def unnamed_db(bouncer: PgBouncer, dbname: str) -> AsyncIterator[FailoverDatabase]:
    """The failover database through pgbouncer with prepared_statements=false, migrated."""
    db = await open_pg_database(dsn_of(bouncer.host, bouncer.port, dbname), 4, FAILOVER,
                                prepared_statements=False)
    async with db.connection() as conn:
        await upgrade(conn)
    yield db
    await db.close()


async def _work(context: DBContext, account: str, n: int) -> None:
    """Every statement shape of the handler store, interleaved with other clients."""
    handler_id = await context.createHandler({"detect_policy": {"detect_face": 1}}, account,
                                             f"h{n}")
    assert (await context.getHandler(handler_id, account)) is not None
    assert await context.putHandler(handler_id, None, f"d{n}", account, isDynamic=True)
    assert await context.getHandlers(ListFilters(account_id=account, description=f"d{n}"))
    assert await context.deleteHandler(handler_id, account)


async def test_migrations_and_requests_through_transaction_pooling(
        unnamed_db: FailoverDatabase) -> None:
    async with unnamed_db.connection() as conn:
        await check_at_head(conn)
    context, account = DBContext(unnamed_db), str(uuid.uuid4())
    # Concurrent clients on one server session: statements of different shapes meet there.
    await asyncio.gather(*(_work(context, account, n) for n in range(12)))
    assert await context.getHandlersCount(ListFilters(account_id=account)) == 0
    # LISTEN cannot work through the pooler: no feed, hence no handler cache.
    assert unnamed_db.changes(lambda _id: None, lambda: None) is None


async def test_unnamed_statements_outlive_no_transaction(unnamed_db: FailoverDatabase) -> None:
    async with unnamed_db.read() as session:
        await run_sql(session, "SELECT 1")
        rows = await run_sql(session, "SELECT count(*) AS n FROM pg_prepared_statements")
    assert rows[0]["n"] == 0


async def test_the_probe_finds_the_pooler(bouncer: PgBouncer, dbname: str,
                                          unnamed_db: FailoverDatabase,
                                          caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "luna_handlers.db"):
        db = await open_pg_database(dsn_of(bouncer.host, bouncer.port, dbname), 4, FAILOVER)
    try:
        assert [r.getMessage() for r in caplog.records if DETECTED in r.getMessage()] != []
        assert db.changes(lambda _id: None, lambda: None) is None
        await asyncio.gather(*(_work(DBContext(db), str(uuid.uuid4()), n) for n in range(8)))
        async with db.connection() as conn:
            await check_at_head(conn)
    finally:
        await db.close()


@pytest.mark.parametrize("via", ["direct", "session-pooler"])
async def test_no_pooler_in_transaction_mode_keeps_named_statements(
        pg_cluster: PgCluster, shared_tmp: Path, dbname: str,
        caplog: pytest.LogCaptureFixture, via: str) -> None:
    session_bouncer = None
    host, port = pg_cluster.host, pg_cluster.port
    if via == "session-pooler":
        session_bouncer = _bouncer(shared_tmp, dbname, pg_cluster, "session")
        host, port = session_bouncer.host, session_bouncer.port
    try:
        with caplog.at_level(logging.WARNING, "luna_handlers.db"):
            db = await open_pg_database(dsn_of(host, port, dbname), 2, FAILOVER)
        try:
            assert not [r for r in caplog.records if DETECTED in r.getMessage()]
            feed = db.changes(lambda _id: None, lambda: None)
            assert feed is not None
            await feed.close()
            async with db.read() as session:
                await run_sql(session, "SELECT 1")
                rows = await run_sql(session, "SELECT count(*) AS n FROM pg_prepared_statements")
            assert rows[0]["n"] >= 1
        finally:
            await db.close()
    finally:
        if session_bouncer is not None:
            session_bouncer.stop()


async def _take_next_name(bouncer: PgBouncer, dbname: str) -> str:
    """Prepare, on the one server session, the name asyncpg gives its next statement: what a
    second process meets (serve's worker after serve's own schema check)."""
    taken = f"__asyncpg_stmt_{asyncpg.connection._uid + 1:x}__"
    other = await asyncpg.connect(host=bouncer.host, port=bouncer.port, user=TEST_USER,
                                  password=TEST_PASSWORD, database=dbname,
                                  statement_cache_size=0)
    try:
        statement = await other.prepare("SELECT 1", name=taken)
        # asyncpg's prepare ends without a Sync: pgbouncer gives the server session back
        # (with the statement) only after the next one; a client gone before that would
        # make it drop the session instead.
        await other.execute("SELECT 1")
        del statement
    finally:
        await other.close()
    return taken


async def test_named_statements_through_the_pooler_name_the_setting(
        bouncer: PgBouncer, dbname: str, caplog: pytest.LogCaptureFixture) -> None:
    # A HostPool does not probe: nothing finds the pooler, the statements stay named.
    dsn = dsn_of(bouncer.host, bouncer.port, dbname)
    pool = HostPool(pg_backend(dsn, 2, FAILOVER), dsn.hosts[0])
    causes: list[str] = []
    try:
        with caplog.at_level(logging.WARNING, "luna_handlers.db"):
            for _ in range(2):
                taken = await _take_next_name(bouncer, dbname)
                with pytest.raises(DatabaseError) as caught:
                    async with pool.read() as session:
                        await run_sql(session, "SELECT 2")
                causes.append(caught.value.cause or "")
                assert taken in causes[-1]
                assert HINT not in str(caught.value.body())  # the operator's, not the client's
    finally:
        await pool.close()
    assert all(HINT in cause and "SQLSTATE 42P05" in cause for cause in causes), causes
    logged = [r.getMessage() for r in caplog.records if HINT in r.getMessage()]
    assert len(logged) == 1, logged  # once per cause and host
    assert TEST_PASSWORD not in caplog.text


@pytest.mark.parametrize(("exc", "hinted"), [
    (asyncpg.exceptions.InvalidSQLStatementNameError(
        'prepared statement "__asyncpg_stmt_1__" does not exist'), True),
    (asyncpg.exceptions.DuplicatePreparedStatementError(
        'prepared statement "__asyncpg_stmt_a__" already exists'), True),
    (asyncpg.exceptions.InvalidSQLStatementNameError(
        'prepared statement "report_1" does not exist'), False),
    (asyncpg.exceptions.UniqueViolationError(
        'duplicate key value violates "__asyncpg_stmt_1__"'), False),
    (OSError("connection refused"), False),
], ids=["does-not-exist", "already-exists", "someone-elses-statement", "other-sqlstate",
        "no-sqlstate"])
def test_the_hint_is_for_our_statements_only(exc: BaseException, hinted: bool) -> None:
    wrapped = RuntimeError("wrapper")
    wrapped.__cause__ = exc  # as SQLAlchemy wraps the driver's error
    assert (pooler_hint(exc) == HINT) is hinted
    assert (pooler_hint(wrapped) == HINT) is hinted

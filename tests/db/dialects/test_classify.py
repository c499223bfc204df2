"""Error classification tables of both dialects: constructed and real driver errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import asyncpg.exceptions as pgx
import oracledb
import pytest
import sqlalchemy as sa
from oracledb import errors as oraerrors
from sqlalchemy.exc import DBAPIError, OperationalError

from luna_handlers.db.dialects.oracle import classify as oracle
from luna_handlers.db.dialects.postgresql import classify as postgresql
from luna_handlers.db.pool.faults import ErrorKind
from luna_handlers.db.pool.hostpool import HostPool
from luna_handlers.pgserver.cluster import PgCluster, free_port
from tests.conftest import TEST_PASSWORD, TEST_USER, host_pool, new_database

C, RO, AUTH, OTHER = (ErrorKind.CONNECTIVITY, ErrorKind.READ_ONLY, ErrorKind.AUTH,
                      ErrorKind.OTHER)


def wrapped(exc: BaseException) -> BaseException:
    """``exc`` as SQLAlchemy hands it over: a DBAPIError whose ``orig`` is the driver error."""
    return OperationalError("SELECT 1", {}, exc)


def caused(exc: BaseException) -> BaseException:
    """``exc`` as the cause of another error (``raise ... from exc``)."""
    outer = RuntimeError("wrapper")
    outer.__cause__ = exc
    return outer


PG_CASES: list[tuple[BaseException, ErrorKind]] = [
    (pgx.ReadOnlySQLTransactionError("cannot execute INSERT in a read-only transaction"), RO),
    (pgx.InvalidPasswordError("password authentication failed"), AUTH),
    (pgx.InvalidAuthorizationSpecificationError("no pg_hba.conf entry"), AUTH),
    (pgx.InvalidCatalogNameError('database "x" does not exist'), AUTH),
    (pgx.InsufficientPrivilegeError("permission denied"), AUTH),
    (pgx.AdminShutdownError("terminating connection due to administrator command"), C),
    (pgx.CrashShutdownError("terminating connection because of crash"), C),
    (pgx.CannotConnectNowError("the database system is starting up"), C),
    (pgx.IdleSessionTimeoutError("idle session timeout"), C),
    (pgx.TooManyConnectionsError("too many clients"), C),
    (pgx.ConnectionFailureError("connection failure"), C),
    (pgx.ProtocolViolationError("protocol violation"), C),
    (pgx.ConnectionDoesNotExistError("connection was closed in the middle of operation"), C),
    (asyncpg.InterfaceError("connection is closed"), C),
    (ConnectionRefusedError(111, "Connect call failed"), C),
    (TimeoutError(), C),
    (EOFError(), C),
    (OSError(113, "No route to host"), C),
    (pgx.UniqueViolationError("duplicate key value"), OTHER),
    (pgx.UndefinedTableError('relation "x" does not exist'), OTHER),
    (pgx.SerializationError("could not serialize access"), OTHER),
    (pgx.QueryCanceledError("canceling statement due to statement timeout"),
     ErrorKind.CANCELED),
    (ValueError("not a driver error"), OTHER),
]


@pytest.mark.parametrize(("exc", "kind"), PG_CASES, ids=lambda v: type(v).__name__)
def test_postgresql_table(exc: BaseException, kind: ErrorKind) -> None:
    assert postgresql.classify(exc) is kind
    assert postgresql.classify(wrapped(exc)) is kind
    assert postgresql.classify(caused(exc)) is kind


def ora(message: str) -> BaseException:
    """An oracledb exception as the driver builds it from a server error message."""
    error = oraerrors._Error(message)
    return error.exc_type(error)


def dpy(code: int) -> BaseException:
    """An oracledb exception for one of its own (DPY) errors."""
    error = oraerrors._create_err(code)
    return error.exc_type(error)


ORACLE_CASES: list[tuple[BaseException, ErrorKind]] = [
    (ora("ORA-03113: end-of-file on communication channel"), C),
    (ora("ORA-03135: connection lost contact"), C),
    (ora("ORA-12514: TNS:listener does not currently know of service"), C),
    (ora("ORA-01089: immediate shutdown or close in progress"), C),
    (ora("ORA-16000: database or pluggable database open for read-only access"), RO),
    (ora("ORA-01017: invalid username/password; logon denied"), AUTH),
    (ora("ORA-28000: the account is locked"), AUTH),
    (ora("ORA-00001: unique constraint violated"), OTHER),
    (ora("ORA-00942: table or view does not exist"), OTHER),
    (dpy(oraerrors.ERR_CONNECTION_CLOSED), C),  # DPY-4011
    (dpy(oraerrors.ERR_NOT_CONNECTED), C),  # DPY-1001
    (Exception("ORA-12541: TNS:no listener"), C),
    (Exception("DPY-6005: cannot connect to database"), C),
    (Exception("ORA-16000 and ORA-03113 in one text: read-only wins"), RO),
    (ConnectionResetError(104, "reset by peer"), C),
    (TimeoutError(), C),
    (ValueError("ORA-"), OTHER),
]


@pytest.mark.parametrize(("exc", "kind"), ORACLE_CASES, ids=str)
def test_oracle_table(exc: BaseException, kind: ErrorKind) -> None:
    assert oracle.classify(exc) is kind
    assert oracle.classify(wrapped(exc)) is kind
    assert oracle.classify(caused(exc)) is kind


async def test_oracle_real_connect_to_closed_port() -> None:
    with pytest.raises(oracledb.Error) as info:
        await oracledb.connect_async(user="luna", password="secret",
                                     dsn=f"127.0.0.1:{free_port()}/luna", tcp_connect_timeout=1)
    assert oracle.classify(info.value) is C


# -- real PostgreSQL errors ------------------------------------------------------------------


def connect(cluster: PgCluster, **overrides: str) -> asyncpg.Connection:
    """asyncpg.connect coroutine to ``cluster`` as the test user (overridable)."""
    args = {"host": cluster.host, "port": cluster.port, "user": TEST_USER,
            "password": TEST_PASSWORD, "database": "postgres", **overrides}
    return asyncpg.connect(timeout=5, **args)


async def classify_raised(coro: object) -> ErrorKind:
    """Await ``coro`` (it must fail) and classify what it raised."""
    try:
        await coro  # type: ignore[misc]
    except Exception as exc:
        return postgresql.classify(exc)
    raise AssertionError("expected an error")


@pytest.fixture(scope="module")
async def pool(pg_cluster: PgCluster) -> AsyncIterator[HostPool]:
    """A HostPool on a fresh database with one table."""
    made = host_pool(pg_cluster, new_database(pg_cluster))
    async with made.engine.begin() as conn:
        await conn.execute(sa.text("CREATE TABLE t (x int PRIMARY KEY)"))
    yield made
    await made.close()


async def test_real_connect_errors(pg_cluster: PgCluster) -> None:
    closed = PgCluster(datadir=pg_cluster.datadir, port=free_port(), superuser_password="")
    assert await classify_raised(connect(closed)) is C
    assert await classify_raised(connect(pg_cluster, password="wrong")) is AUTH
    assert await classify_raised(connect(pg_cluster, database="no_such_db")) is AUTH


async def test_real_session_errors(pg_cluster: PgCluster) -> None:
    conn = await connect(pg_cluster)
    try:
        assert await classify_raised(conn.execute("SELECT pg_sleep(5)", timeout=0.2)) is C
        await conn.execute("SET statement_timeout = '50ms'")
        assert await classify_raised(conn.execute("SELECT pg_sleep(5)")) is ErrorKind.CANCELED
        await conn.execute("RESET statement_timeout")
        assert await classify_raised(conn.execute("SELECT * FROM missing")) is OTHER
        assert await classify_raised(
            conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")) is C  # 57P01
    finally:
        conn.terminate()


async def test_real_errors_through_sqlalchemy(pool: HostPool) -> None:
    async with pool.engine.connect() as conn:
        await conn.execute(sa.text("SET default_transaction_read_only = on"))
        await conn.commit()  # a SET is transactional: commit keeps it for the session
        with pytest.raises(DBAPIError) as read_only:
            await conn.execute(sa.text("INSERT INTO t VALUES (1)"))
        assert pool.classify(read_only.value) is RO
        await conn.rollback()
        await conn.execute(sa.text("SET default_transaction_read_only = off"))
        await conn.commit()
        await conn.execute(sa.text("INSERT INTO t VALUES (2)"))
        with pytest.raises(DBAPIError) as duplicate:
            await conn.execute(sa.text("INSERT INTO t VALUES (2)"))
        assert pool.classify(duplicate.value) is OTHER
        await conn.rollback()
    # Timed out and then terminated under SQLAlchemy: still a connectivity failure.
    async with pool.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        with pytest.raises(asyncio.TimeoutError) as timed_out:
            await driver.execute("SELECT pg_sleep(5)", timeout=0.2)
        assert pool.classify(timed_out.value) is C
        await conn.invalidate()

"""Failover with every DB_FAILOVER key at its default, on real primary + synchronous standby
pairs: a hung primary answers its requests in flight when it is left, a merely busy one keeps
the pool, a demoted one has its cut sessions ended, and running out of file descriptors moves
nothing. Bounds here prove "not waiting for query_timeout", not speed (that is
``bench/failover``'s job).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from luna_handlers.config import default_failover
from luna_handlers.db.context import DBContext
from luna_handlers.db.dialects.postgresql.connections import (
    KEEPCNT,
    KEEPIDLE,
    KEEPINTVL,
    USER_TIMEOUT_MS,
)
from luna_handlers.db.pool.failover import FailoverDatabase
from luna_handlers.errors import DatabaseError, DatabaseOutcomeUnknown, DatabaseUnavailable
from luna_handlers.pgserver.cluster import SUPERUSER, PgCluster
from tests.conftest import TEST_USER, run_sql
from tests.db.pool.test_failover import (
    BOUND,
    POLICIES,
    SU_PASSWORD,
    Hosts,
    fresh_hosts,
    host,
    metric,
    open_pair,
    stored,
    switches,
    until,
)

DEFAULTS = default_failover()

pytestmark = pytest.mark.slow


@pytest.fixture
def hosts(shared_tmp: Path) -> Iterator[Hosts]:
    """A fresh set of servers for one test."""
    yield from fresh_hosts(shared_tmp)


@pytest.fixture
async def pair(hosts: Hosts) -> AsyncIterator[tuple[PgCluster, PgCluster, FailoverDatabase]]:
    """Primary A + synchronous standby B; a pool on A with the default settings."""
    async for made in open_pair(hosts, DEFAULTS):
        yield made


async def test_defaults_are_the_documented_ones() -> None:
    assert (DEFAULTS.connect_timeout, DEFAULTS.health_check_interval,
            DEFAULTS.health_check_timeout, DEFAULTS.query_timeout) == (2.0, 0.5, 1.0, 30.0)


async def test_writes_in_flight_on_a_hung_primary_get_34011_when_it_is_left(
        pair: tuple[PgCluster, PgCluster, FailoverDatabase]) -> None:
    a, b, db = pair
    ctx = DBContext(db)
    acked: list[str] = []
    first_error: dict[int, tuple[str, float]] = {}
    stop = asyncio.Event()
    paused_at = 0.0

    async def writer(n: int) -> None:
        while not stop.is_set():
            try:
                acked.append(await ctx.createHandler(POLICIES, str(uuid.uuid4())))
            except DatabaseError as exc:
                if paused_at and n not in first_error:
                    first_error[n] = (type(exc).__name__, time.monotonic() - paused_at)
                await asyncio.sleep(0.01)

    tasks = [asyncio.create_task(writer(n)) for n in range(4)]
    await until(lambda: len(acked) >= 20)
    a.pause()
    paused_at = time.monotonic()
    try:
        # Every writer was blocked on the hung host: each is answered once the health check
        # gives up on it, long before query_timeout (30 s), while no host qualifies yet.
        await until(lambda: len(first_error) == 4, BOUND)
        assert {name for name, _ in first_error.values()} == {"DatabaseOutcomeUnknown"}
        assert max(at for _, at in first_error.values()) < DEFAULTS.query_timeout / 3
        status = db.status()
        assert status["state"] == "switching" and status["host"] == host(a)
        acked_before = len(acked)
        await asyncio.to_thread(b.promote)
        await until(lambda: len(acked) >= acked_before + 20, BOUND)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        a.resume()
    status = db.status()
    assert (status["host"], status["generation"]) == (host(b), 2)
    assert status["last_switch"]["reason"] == "health_check_timeout"
    assert await stored(db, acked) == len(acked), "an acknowledged write was lost"


async def test_a_busy_host_keeps_the_pool(
        pair: tuple[PgCluster, PgCluster, FailoverDatabase],
        caplog: pytest.LogCaptureFixture) -> None:
    """A long statement, a checkpoint and 300 ms pauses of every server process: no switch,
    no session cut, and every write succeeds."""
    a, _b, db = pair
    caplog.set_level(logging.WARNING, logger="luna_handlers.db")
    before = switches()
    ctx = DBContext(db)
    errors: list[str] = []
    done = 0
    stop = asyncio.Event()

    async def writer() -> None:
        nonlocal done
        while not stop.is_set():
            try:
                await ctx.createHandler(POLICIES, str(uuid.uuid4()))
                done += 1
            except DatabaseError as exc:
                errors.append(type(exc).__name__)

    async def long_statement() -> None:
        async with db.read() as session:
            await run_sql(session, "SELECT pg_sleep(4)")

    tasks = [asyncio.create_task(writer()) for _ in range(2)]
    try:
        slow = asyncio.create_task(long_statement())
        await asyncio.to_thread(a.psql, "CHECKPOINT")
        for _ in range(5):
            a.pause()
            await asyncio.sleep(0.3)
            a.resume()
            await asyncio.sleep(1.0)  # two health checks between pauses
        await slow
        await asyncio.to_thread(a.psql, "CHECKPOINT")
        await asyncio.sleep(4 * DEFAULTS.health_check_interval)
    finally:
        a.resume()
        stop.set()
        await asyncio.gather(*tasks)
    assert errors == [] and done > 0
    assert (db.status()["state"], db.status()["generation"]) == ("active", 1)
    assert switches() == before
    assert not [r for r in caplog.records if "cut" in r.getMessage()]


async def test_a_demoted_host_has_its_sessions_in_flight_cut_and_ended(
        pair: tuple[PgCluster, PgCluster, FailoverDatabase]) -> None:
    """Read-only at once (as a demotion looks to running sessions): the statement in flight
    there is answered 34011 right away and its backend is ended on the host, so nothing it
    sent can commit later."""
    a, b, db = pair
    marker = f"in_flight_{uuid.uuid4().hex[:8]}"
    started = asyncio.Event()

    async def long_write() -> None:
        async with db.write() as session:
            started.set()
            await run_sql(session, f"SELECT pg_sleep(25) AS {marker}")

    task = asyncio.create_task(long_write())
    await started.wait()
    query = ("SELECT count(*) FROM pg_stat_activity "
             f"WHERE query LIKE '%AS {marker}%' AND pid <> pg_backend_pid()")
    await until(lambda: a.psql(query) == "1")
    a.psql("ALTER SYSTEM SET default_transaction_read_only = on")
    a.psql("SELECT pg_reload_conf()")
    began = time.monotonic()
    with pytest.raises(DatabaseOutcomeUnknown):
        await task
    assert time.monotonic() - began < DEFAULTS.query_timeout / 3
    # Closing the socket alone would leave pg_sleep running for 25 s: the backend was ended.
    await until(lambda: a.psql(query) == "0", BOUND)
    await asyncio.to_thread(b.promote)
    await until(lambda: db.status()["generation"] == 2 and db.status()["state"] == "active")
    assert db.status()["last_switch"]["reason"] == "health_check_role"
    assert await DBContext(db).createHandler(POLICIES, str(uuid.uuid4()))


@contextlib.contextmanager
def no_free_descriptors() -> Iterator[Callable[[], None]]:
    """Lower this process's open-file limit to what is open now and fill the rest, so the
    next socket() fails with EMFILE (undone on exit); yields a function that fills again
    the descriptors freed meanwhile."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    opened: list[int] = []

    def fill() -> None:
        with contextlib.suppress(OSError):
            while True:
                opened.append(os.open(os.devnull, os.O_RDONLY))

    resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 8, hard))
    try:
        fill()
        yield fill
    finally:
        for fd in opened:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_running_out_of_file_descriptors_never_moves_the_pool(
        pair: tuple[PgCluster, PgCluster, FailoverDatabase],
        caplog: pytest.LogCaptureFixture) -> None:
    a, _b, db = pair
    caplog.set_level(logging.WARNING, logger="luna_handlers.db")
    before = switches()
    ctx = DBContext(db)
    await ctx.createHandler(POLICIES, str(uuid.uuid4()))
    outcomes: list[str] = []
    admin = await asyncpg.connect(host=a.host, port=a.port, user=SUPERUSER,
                                  password=SU_PASSWORD, database="postgres")
    with no_free_descriptors() as fill:
        # Every pooled connection and the health connection are gone: each request and each
        # health check now needs a socket, and cannot have one.
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE usename = $1", TEST_USER)
        await asyncio.sleep(0.2)  # the driver sees the EOFs and closes those sockets
        fill()  # their descriptors, too
        for _ in range(3 * DEFAULTS.failure_threshold):
            try:
                await ctx.createHandler(POLICIES, str(uuid.uuid4()))
                outcomes.append("ok")
            except DatabaseUnavailable as exc:
                outcomes.append("local" if "local resource" in exc.detail else exc.detail)
            await asyncio.sleep(DEFAULTS.health_check_interval / 2)
        status = db.status()
    await admin.close()
    assert "local" in outcomes and set(outcomes) <= {"local", "ok"}, outcomes
    assert (status["state"], status["generation"], status["consecutive_failures"]) == \
        ("active", 1, 0)
    assert switches() == before
    assert metric("luna_handlers_db_errors_total", kind="local_resource") > 0
    # Descriptors back: the same pool serves again.
    assert await ctx.createHandler(POLICIES, str(uuid.uuid4()))
    assert db.status()["generation"] == 1


async def test_status_tells_whether_the_host_replicates_synchronously(
        pair: tuple[PgCluster, PgCluster, FailoverDatabase]) -> None:
    a, _b, db = pair
    # The login may not see the standbys' sync_state: the status says so, not a guess.
    assert db.status()["replication"] == {"replication": "unknown",
                                          "synchronous_standbys": None,
                                          "synchronous_standby_names": "*"}
    a.psql(f'GRANT pg_monitor TO "{TEST_USER}"')
    a.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
           "WHERE application_name = 'luna-handlers-health'")  # the grant, on a new session
    await until(lambda: (db.status()["replication"] or {}).get("replication") == "synchronous")
    assert db.status()["replication"]["synchronous_standbys"] == 1
    a.psql("ALTER SYSTEM SET synchronous_standby_names = ''")
    a.psql("SELECT pg_reload_conf()")
    await until(lambda: db.status()["replication"]["replication"] == "asynchronous")
    assert db.status()["generation"] == 1  # a killed health connection moves nothing


async def test_pooled_sockets_have_keepalive_and_a_user_timeout(
        pair: tuple[PgCluster, PgCluster, FailoverDatabase]) -> None:
    _a, _b, db = pair
    async with db.read() as session:
        conn = session._conn  # type: ignore[attr-defined]
        sock = conn._transport.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert (sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
                sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
                sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT)) == (
            KEEPIDLE, KEEPINTVL, KEEPCNT, USER_TIMEOUT_MS)

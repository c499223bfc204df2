"""Failover on real PostgreSQL pairs: a killed primary, a hung primary, no flapping.

Every test builds its own servers (own data directory under ``shared_tmp``, own port) and
stops them at the end. Timings are only asserted as generous upper bounds (:data:`BOUND`):
they prove "bounded, not hanging", not speed. The helpers here are shared with
``test_failover_hosts.py``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from luna_handlers.config import FailoverSettings
from luna_handlers.db.context import DBContext
from luna_handlers.db.dialects.postgresql.backend import open_pg_database
from luna_handlers.db.dialects.postgresql.connect import pg_engine
from luna_handlers.db.dialects.postgresql.dsn import PgDsn, parse_pg_dsn
from luna_handlers.db.hosts import HostPort
from luna_handlers.db.pool.failover import FailoverDatabase
from luna_handlers.db.pool.switching import Reason
from luna_handlers.db.schema.migrate import upgrade
from luna_handlers.errors import DatabaseError, DatabaseOutcomeUnknown, DatabaseUnavailable
from luna_handlers.pgserver.cluster import PgCluster, free_port
from tests.conftest import TEST_PASSWORD, TEST_USER, run_sql

DBNAME = "luna_handlers"
SU_PASSWORD = "postgres-test"
FAST = FailoverSettings(connect_timeout=1.0, query_timeout=2.0, failure_threshold=3,
                        health_check_interval=0.25, switch_wait=2.0)
BOUND = 10.0  # seconds: anything slower counts as a hang
POLICIES = {"detect_policy": {"detect_face": 1}}

pytestmark = pytest.mark.slow


class Hosts:
    """The PostgreSQL servers of one test; :meth:`stop_all` resumes and stops them all."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.clusters: list[PgCluster] = []

    def _cluster(self) -> tuple[Path, int]:
        return self.root / f"pg{len(self.clusters)}", free_port()

    def primary(self) -> PgCluster:
        """A started primary with the test role and database (not migrated yet)."""
        datadir, port = self._cluster()
        cluster = PgCluster(datadir=datadir, port=port, superuser_password=SU_PASSWORD,
                            settings={"fsync": "off"})
        self.clusters.append(cluster)
        cluster.initdb()
        cluster.start()
        cluster.ensure_database(TEST_USER, TEST_PASSWORD, DBNAME)
        return cluster

    def standby(self, primary: PgCluster, *, sync: bool = True) -> PgCluster:
        """A started streaming standby of ``primary``; with ``sync``, commits wait for it."""
        datadir, port = self._cluster()
        standby = primary.create_standby(datadir, port)
        self.clusters.append(standby)
        standby.start()
        standby.wait_ready()
        if sync:
            primary.psql("ALTER SYSTEM SET synchronous_standby_names = '*'")
            primary.psql("SELECT pg_reload_conf()")
            deadline = time.monotonic() + BOUND
            while primary.psql("SELECT sync_state FROM pg_stat_replication") != "sync":
                assert time.monotonic() < deadline, "the standby never became synchronous"
                time.sleep(0.05)
        return standby

    def stop_all(self) -> None:
        """Stop every server, hung ones included."""
        for cluster in self.clusters:
            cluster.resume()
            cluster.stop("immediate")


def fresh_hosts(shared_tmp: Path) -> Iterator[Hosts]:
    """Body of a ``hosts`` fixture: servers under their own directory, stopped at the end."""
    root = shared_tmp / f"failover-{uuid.uuid4().hex[:8]}"
    root.mkdir()
    root.chmod(0o755)  # the server user must reach its data directories
    made = Hosts(root)
    yield made
    made.stop_all()


@pytest.fixture
def hosts(shared_tmp: Path) -> Iterator[Hosts]:
    """A fresh set of servers for one test."""
    yield from fresh_hosts(shared_tmp)


def host(cluster: PgCluster) -> str:
    """``host:port`` as status() and logs show it."""
    return str(HostPort(cluster.host, cluster.port))


def make_dsn(*targets: PgCluster | int, tsa: str | None = None,
             password: str = TEST_PASSWORD) -> PgDsn:
    """A multi-host DSN in the given order; an int is a closed port on 127.0.0.1."""
    hosts = ",".join(f"127.0.0.1:{t}" if isinstance(t, int) else host(t) for t in targets)
    query = f"?target_session_attrs={tsa}" if tsa else ""
    return parse_pg_dsn(f"{TEST_USER}:{password}@{hosts}/{DBNAME}{query}")


async def migrate(cluster: PgCluster) -> None:
    """Create the service's schema on ``cluster``."""
    engine = pg_engine(HostPort(cluster.host, cluster.port), make_dsn(cluster), FAST)
    async with engine.connect() as conn:
        await upgrade(conn)
    await engine.dispose()


async def until(check: Callable[[], bool], within: float = BOUND) -> float:
    """Poll ``check`` until true; the seconds it took. Fails after ``within`` seconds."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > within:
            pytest.fail(f"condition not met within {within} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


def metric(name: str, **labels: str) -> float:
    """A sample of the default registry (0 when absent)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


@dataclass
class Writer:
    """Creates handlers in a loop through the DB context; remembers what was acknowledged."""

    ctx: DBContext
    acked: list[str] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    longest: float = 0.0  # the slowest single request, success or failure

    async def run(self, stop: asyncio.Event) -> None:
        """Write until ``stop`` is set."""
        while not stop.is_set():
            started = time.monotonic()
            try:
                self.acked.append(await self.ctx.createHandler(POLICIES, str(uuid.uuid4())))
            except DatabaseError as exc:
                self.errors[type(exc).__name__] += 1
                await asyncio.sleep(0.01)
            self.longest = max(self.longest, time.monotonic() - started)


async def open_pair(hosts: Hosts, settings: FailoverSettings
                    ) -> AsyncIterator[tuple[PgCluster, PgCluster, FailoverDatabase]]:
    """Body of a ``pair`` fixture: primary A + synchronous standby B, and a started pool on
    A (DSN order A, B) with ``settings``, closed at the end."""
    primary = hosts.primary()
    await migrate(primary)
    standby = hosts.standby(primary)
    db = await open_pg_database(make_dsn(primary, standby), 4, settings)
    yield primary, standby, db
    await db.close()


@pytest.fixture
async def pair(hosts: Hosts) -> AsyncIterator[tuple[PgCluster, PgCluster, FailoverDatabase]]:
    """Primary A + synchronous standby B, and a started pool on A (DSN order A, B)."""
    async for made in open_pair(hosts, FAST):
        yield made


async def stored(db: FailoverDatabase, ids: list[str]) -> int:
    """How many of ``ids`` the active host has."""
    async with db.read() as session:
        rows = await run_sql(session, "SELECT count(*) FROM handler WHERE handler_id = ANY(:ids)",
                             ids=ids)
    return int(rows[0][0])


#: What a killed host looks like to the pool: refused requests, a refused health check, or,
#: on a loaded machine, a health check that was in flight at the kill and timed out.
KILL_REASONS = (Reason.FAILURES, Reason.UNREACHABLE, Reason.HUNG)


def switches(*reasons: Reason) -> float:
    """Pool switches counted so far for these reasons (every reason when none is given)."""
    return sum(metric("luna_handlers_db_pool_switches_total", reason=reason)
               for reason in reasons or tuple(Reason))


async def test_killed_primary_promoted_standby_takes_over_without_losing_writes(
        pair: tuple[PgCluster, PgCluster, FailoverDatabase],
        caplog: pytest.LogCaptureFixture) -> None:
    a, b, db = pair
    caplog.set_level(logging.INFO, logger="luna_handlers.db")
    before = switches(*KILL_REASONS)
    writers = [Writer(DBContext(db)) for _ in range(3)]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(w.run(stop)) for w in writers]
    await until(lambda: sum(len(w.acked) for w in writers) >= 30)

    a.kill()
    await asyncio.sleep(0.5)  # requests meet the dead host; three writers fail at once
    # Until the standby is promoted no host qualifies: the switch waits, still showing A.
    assert (db.status()["state"], db.status()["host"]) == ("switching", host(a))
    await asyncio.to_thread(b.promote)
    acked_at_promotion = sum(len(w.acked) for w in writers)
    await until(lambda: sum(len(w.acked) for w in writers) >= acked_at_promotion + 30)
    stop.set()
    await asyncio.gather(*tasks)

    status = db.status()
    assert (status["host"], status["role"], status["generation"]) == (host(b), "primary", 2)
    switch = status["last_switch"]
    assert (switch["from"], switch["to"]) == (host(a), host(b))
    assert switch["reason"] in KILL_REASONS
    assert switch["time"].endswith("Z")
    acked = [handler_id for w in writers for handler_id in w.acked]
    assert await stored(db, acked) == len(acked), "an acknowledged write was lost"
    for w in writers:
        assert w.longest < BOUND
        assert set(w.errors) <= {"DatabaseUnavailable", "DatabaseOutcomeUnknown"}
    # Many concurrent failures, ONE switch: one log line, one count, generation 2.
    lines = [r.getMessage() for r in caplog.records if "pool switched" in r.getMessage()]
    assert len(lines) == 1 and f"from={host(a)} to={host(b)}" in lines[0]
    assert "generation=2" in lines[0] and "elapsed_ms=" in lines[0]
    assert metric("luna_handlers_db_pool_generation") == 2
    assert metric("luna_handlers_db_active_host_info", host=host(b), role="primary") == 1
    assert metric("luna_handlers_db_active_host_info", host=host(a), role="primary") == 0
    assert switches(*KILL_REASONS) == before + 1

    # No flapping: A comes back as a read-write primary; the pool stays on B.
    await asyncio.to_thread(a.start)
    await asyncio.sleep(8 * FAST.health_check_interval)
    assert (db.status()["host"], db.status()["generation"]) == (host(b), 2)
    assert await DBContext(db).createHandler(POLICIES, str(uuid.uuid4()))


async def test_hung_primary_requests_stay_bounded_and_pool_moves(
        pair: tuple[PgCluster, PgCluster, FailoverDatabase]) -> None:
    a, b, db = pair
    ctx = DBContext(db)
    await ctx.createHandler(POLICIES, str(uuid.uuid4()))

    a.pause()
    started = time.monotonic()
    with pytest.raises((DatabaseOutcomeUnknown, DatabaseUnavailable)):
        await ctx.createHandler(POLICIES, str(uuid.uuid4()))
    assert time.monotonic() - started < BOUND
    await asyncio.to_thread(b.promote)

    outcomes: list[str] = []

    async def attempt() -> bool:
        begun = time.monotonic()
        try:
            await ctx.createHandler(POLICIES, str(uuid.uuid4()))
        except DatabaseError as exc:
            outcomes.append(type(exc).__name__)
            return False
        finally:
            # Never longer than a query timeout plus a wait for the switch (and slack).
            assert time.monotonic() - begun < FAST.query_timeout + FAST.switch_wait + 2
        return True

    deadline = time.monotonic() + BOUND
    while not await attempt():
        assert time.monotonic() < deadline, f"no successful write: {outcomes}"
    status = db.status()
    assert (status["host"], status["generation"]) == (host(b), 2)
    assert status["last_switch"]["from"] == host(a)

    # Closing while A is still hung must not wait on it.
    started = time.monotonic()
    await db.close()
    assert time.monotonic() - started < BOUND


async def test_statement_on_hung_host_ends_with_its_timeout(hosts: Hosts) -> None:
    """Nothing waits on a hung host beyond ``query_timeout`` (no graceful close, no rollback)."""
    a = hosts.primary()
    settings = FailoverSettings(connect_timeout=1.0, query_timeout=2.0, failure_threshold=3,
                                health_check_interval=60.0, switch_wait=2.0)
    db = await open_pg_database(make_dsn(a), 2, settings)
    try:
        a.pause()
        for session in (db.read, db.write):
            started = time.monotonic()
            with pytest.raises((DatabaseUnavailable, DatabaseOutcomeUnknown)):
                async with session() as conn:
                    await run_sql(conn, "SELECT 1")
            # SQLAlchemy's graceful close of the timed-out connection would add up to 2 s.
            assert time.monotonic() - started < settings.query_timeout + 1.0
    finally:
        a.resume()
        await db.close()


async def test_concurrent_requests_during_switch_wait_then_succeed(
        pair: tuple[PgCluster, PgCluster, FailoverDatabase]) -> None:
    a, b, db = pair
    ctx = DBContext(db)
    a.kill()
    promote = asyncio.create_task(asyncio.to_thread(b.promote))

    async def patient_write() -> str:
        for _ in range(20):
            try:
                return await ctx.createHandler(POLICIES, str(uuid.uuid4()))
            except (DatabaseUnavailable, DatabaseOutcomeUnknown):
                continue
        raise AssertionError("never written")

    started = time.monotonic()
    ids = await asyncio.gather(*(patient_write() for _ in range(20)))
    await promote
    assert time.monotonic() - started < BOUND
    assert db.status()["generation"] == 2
    assert await stored(db, ids) == len(ids)

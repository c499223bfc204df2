"""Failover across independent servers: hosts down or hung at start, demotion, credentials,
all hosts down, a single host, target_session_attrs, status() and metrics."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from luna_handlers.config import FailoverSettings
from luna_handlers.db.context import DBContext, ListFilters
from luna_handlers.db.dialects.postgresql.backend import open_pg_database
from luna_handlers.db.pool.failover import FailoverDatabase
from luna_handlers.errors import DatabaseUnavailable
from luna_handlers.pgserver.cluster import PgCluster, free_port
from tests.conftest import TEST_PASSWORD, TEST_USER, run_sql
from tests.db.pool.test_failover import (
    BOUND,
    FAST,
    POLICIES,
    Hosts,
    fresh_hosts,
    host,
    make_dsn,
    metric,
    migrate,
    until,
)

pytestmark = pytest.mark.slow
QUIET = dataclasses.replace(FAST, health_check_interval=60.0)  # no background check interferes


@pytest.fixture
def hosts(shared_tmp: Path) -> Iterator[Hosts]:
    """A fresh set of servers for one test."""
    yield from fresh_hosts(shared_tmp)


async def two_primaries(hosts: Hosts) -> tuple[PgCluster, PgCluster]:
    """Two unrelated read-write servers with the same schema, role and password."""
    a, b = hosts.primary(), hosts.primary()
    await migrate(a)
    await migrate(b)
    return a, b


def demote(cluster: PgCluster) -> None:
    """Make every new transaction read-only, as a demoted (or fenced) primary does."""
    cluster.psql("ALTER SYSTEM SET default_transaction_read_only = on")
    cluster.psql("SELECT pg_reload_conf()")
    deadline = time.monotonic() + BOUND
    while cluster.psql("SHOW default_transaction_read_only") != "on":
        assert time.monotonic() < deadline
        time.sleep(0.02)


async def write(db: FailoverDatabase) -> str:
    """One handler written through the DB context."""
    return await DBContext(db).createHandler(POLICIES, str(uuid.uuid4()))


async def test_closed_first_port_costs_nothing(hosts: Hosts) -> None:
    a = hosts.primary()
    started = time.monotonic()
    db = await open_pg_database(make_dsn(free_port(), a), 2, FAST)
    try:
        assert time.monotonic() - started < FAST.connect_timeout  # refused at once
        assert (db.status()["host"], db.status()["generation"]) == (host(a), 1)
    finally:
        await db.close()


async def test_hung_host_costs_at_most_its_own_timeout(hosts: Hosts) -> None:
    hung, a = hosts.primary(), hosts.primary()
    hung.pause()
    settings = dataclasses.replace(QUIET, connect_timeout=2.0)
    started = time.monotonic()
    db = await open_pg_database(make_dsn(hung, a), 2, settings)
    elapsed = time.monotonic() - started
    await db.close()
    # One timeout for the hung host, not two (and not asyncpg's shared budget, never reaching A).
    assert db.status()["hosts"] == [host(hung), host(a)]
    assert elapsed < 2 * settings.connect_timeout
    started = time.monotonic()
    db = await open_pg_database(make_dsn(a, hung), 2, settings)
    await db.close()
    assert time.monotonic() - started < settings.connect_timeout  # A answers first: no wait


async def test_read_only_error_on_demoted_primary_switches_at_once(hosts: Hosts) -> None:
    a, b = await two_primaries(hosts)
    db = await open_pg_database(make_dsn(a, b), 2, QUIET)
    try:
        await write(db)
        read_only_errors = metric("luna_handlers_db_errors_total", kind="read_only")
        demote(a)
        # A pooled session reloads its settings after its next command, so a write or two
        # may still pass; the first one that meets 25006 fails and moves the pool.
        for _ in range(10):
            try:
                await write(db)
            except DatabaseUnavailable as exc:
                assert "read-only" in str(exc)
                break
        else:
            pytest.fail("the demoted host kept accepting writes")
        started = time.monotonic()
        handler_id = await write(db)
        assert time.monotonic() - started < BOUND
        status = db.status()
        assert (status["host"], status["generation"]) == (host(b), 2)
        assert status["last_switch"]["reason"] == "read_only"
        assert metric("luna_handlers_db_errors_total", kind="read_only") == read_only_errors + 1
        async with db.read() as session:
            rows = await run_sql(session, "SELECT count(*) FROM handler WHERE handler_id = :i",
                                 i=handler_id)
        assert rows[0][0] == 1
    finally:
        await db.close()


async def test_health_check_moves_off_a_host_of_the_wrong_role(hosts: Hosts) -> None:
    a, b = await two_primaries(hosts)
    db = await open_pg_database(make_dsn(a, b), 2, FAST)
    try:
        demote(a)
        await until(lambda: db.status()["host"] == host(b))
        assert db.status()["last_switch"]["reason"] == "health_check_role"
        await write(db)
    finally:
        await db.close()


async def test_all_hosts_down_then_one_comes_back(hosts: Hosts) -> None:
    a, b = await two_primaries(hosts)
    db = await open_pg_database(make_dsn(a, b), 2, FAST)
    ctx = DBContext(db)
    try:
        a.stop("immediate")
        b.stop("immediate")
        for _ in range(5):
            started = time.monotonic()
            with pytest.raises(DatabaseUnavailable):
                await ctx.getHandlersCount(ListFilters())
            assert time.monotonic() - started < FAST.switch_wait + 1.0
        assert db.status()["state"] == "switching"
        await asyncio.to_thread(b.start)
        deadline = time.monotonic() + BOUND
        while True:
            try:
                await write(db)
                break
            except DatabaseUnavailable:
                assert time.monotonic() < deadline
        assert (db.status()["host"], db.status()["generation"]) == (host(b), 2)
    finally:
        await db.close()


async def test_single_host_dsn_survives_a_restart(hosts: Hosts) -> None:
    a = hosts.primary()
    await migrate(a)
    db = await open_pg_database(make_dsn(a), 2, FAST)
    try:
        await write(db)
        a.stop("fast")
        await asyncio.sleep(4 * FAST.health_check_interval)  # the check notices
        with pytest.raises(DatabaseUnavailable):
            await write(db)
        await asyncio.to_thread(a.start)
        await until(lambda: db.status()["state"] == "active")
        await write(db)
        status = db.status()
        assert (status["host"], status["generation"]) == (host(a), 2)
        assert (status["last_switch"]["from"], status["last_switch"]["to"]) == (host(a), host(a))
    finally:
        await db.close()


async def test_wrong_password_on_one_host_is_skipped_and_reported(
        hosts: Hosts, caplog: pytest.LogCaptureFixture) -> None:
    a, b = await two_primaries(hosts)
    a.psql(f"ALTER ROLE \"{TEST_USER}\" PASSWORD 'another-password'")
    caplog.set_level(logging.INFO, logger="luna_handlers.db")
    db = await open_pg_database(make_dsn(a, b), 2, QUIET)
    try:
        assert db.status()["host"] == host(b)
        await write(db)
    finally:
        await db.close()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(host(a) in m and "authentication" in m for m in errors), errors
    assert not any(TEST_PASSWORD in r.getMessage() for r in caplog.records)


async def test_start_fails_with_every_host_explained(hosts: Hosts) -> None:
    a = hosts.primary()
    closed = (free_port(), free_port())
    with pytest.raises(DatabaseUnavailable) as refused:
        await open_pg_database(make_dsn(*closed), 2, FAST)
    for port in closed:
        assert f"127.0.0.1:{port}" in str(refused.value)
    assert "connectivity" in str(refused.value)
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable) as rejected:
        await open_pg_database(make_dsn(a, password="not-the-password"), 2, FAST)
    assert time.monotonic() - started < FAST.connect_timeout  # no point retrying credentials
    assert host(a) in str(rejected.value) and "(auth)" in str(rejected.value)
    assert "not-the-password" not in str(rejected.value)


@pytest.fixture(scope="module")
def roles(shared_tmp: Path) -> Iterator[dict[str, PgCluster]]:
    """A primary P and its standby S, shared by the role tests of this module."""
    made = next(gen := fresh_hosts(shared_tmp))
    primary = made.primary()
    yield {"P": primary, "S": made.standby(primary, sync=False)}
    next(gen, None)


@pytest.mark.parametrize(("order", "tsa", "expected", "role"), [
    ("PS", "read-write", "P", "primary"),
    ("SP", "read-write", "P", "primary"),
    ("SP", "primary", "P", "primary"),
    ("PS", "standby", "S", "standby"),
    ("PS", "prefer-standby", "S", "standby"),
    ("P-", "prefer-standby", "P", "primary"),
    ("PS", "read-only", "S", "standby"),
    ("SP", "any", "S", "standby"),
    ("PS", "any", "P", "primary"),
])
async def test_target_session_attrs_pick_the_right_host(
        roles: dict[str, PgCluster], order: str, tsa: str, expected: str, role: str) -> None:
    targets = [roles[c] if c in roles else free_port() for c in order]
    db = await open_pg_database(make_dsn(*targets, tsa=tsa), 2, QUIET)
    try:
        assert (db.status()["host"], db.status()["role"]) == (host(roles[expected]), role)
        async with db.read() as session:
            rows = await run_sql(session, "SELECT pg_is_in_recovery()")
        assert rows[0][0] is (role == "standby")
    finally:
        await db.close()


async def test_read_only_error_on_a_standby_pool_does_not_move_it(
        roles: dict[str, PgCluster]) -> None:
    db = await open_pg_database(make_dsn(roles["S"], roles["P"], tsa="standby"), 2, QUIET)
    try:
        for _ in range(3):
            with pytest.raises(DatabaseUnavailable):
                async with db.write() as session:
                    await run_sql(session, "CREATE TABLE t (x int)")
        assert (db.status()["host"], db.status()["generation"]) == (host(roles["S"]), 1)
    finally:
        await db.close()


async def test_status_and_metrics(roles: dict[str, PgCluster]) -> None:
    p, s = roles["P"], roles["S"]
    settings = FailoverSettings(connect_timeout=1.0, query_timeout=2.0, failure_threshold=3,
                                health_check_interval=60.0, switch_wait=2.0)
    db = await open_pg_database(make_dsn(free_port(), s, p), 2, settings)
    try:
        status = db.status()
        assert status == {
            "dialect": "postgresql", "state": "active", "host": host(p), "role": "primary",
            "generation": 1, "last_switch": None, "hosts": status["hosts"],
            "target_session_attrs": "read-write", "consecutive_failures": 0,
            "replication": status["replication"],
        }
        # Read by the kept health connection; the test login may not see the standbys.
        assert status["replication"]["replication"] in ("asynchronous", "unknown")
        assert status["hosts"][1:] == [host(s), host(p)] and len(status["hosts"]) == 3
        assert TEST_PASSWORD not in repr(status)
        assert db.dialect_name == "postgresql" and db.active is not None
        assert db.active.generation == 1
        assert metric("luna_handlers_db_pool_generation") == 1
        assert metric("luna_handlers_db_active_host_info", host=host(p), role="primary") == 1
    finally:
        await db.close()
    assert db.status()["state"] == "closed" and db.active is None
    assert metric("luna_handlers_db_active_host_info", host=host(p), role="primary") == 0
    with pytest.raises(DatabaseUnavailable):
        async with db.read():
            pass

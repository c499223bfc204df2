"""Host probing: role predicates, the choice in DSN order, backoff, real probes."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from luna_handlers.db.dialects.postgresql.backend import pg_backend, pg_role
from luna_handlers.db.dialects.postgresql.classify import probe_classify
from luna_handlers.db.dialects.postgresql.dsn import parse_pg_dsn
from luna_handlers.db.hosts import HostPort, TargetSessionAttrs
from luna_handlers.db.pool.backend import Backend
from luna_handlers.db.pool.faults import ErrorKind
from luna_handlers.db.pool.probe import (
    AuthReporter,
    Backoff,
    ProbeResult,
    choose,
    no_host_message,
    probe_hosts,
    probe_one,
)
from luna_handlers.db.pool.roles import ROLE_CHECKS, HostRole, acceptable
from luna_handlers.pgserver.cluster import PgCluster, free_port
from tests.conftest import FAILOVER, TEST_PASSWORD, TEST_USER

TSA = TargetSessionAttrs
PRIMARY = HostRole(in_recovery=False, read_only=False)
READ_ONLY_PRIMARY = HostRole(in_recovery=False, read_only=True)
STANDBY = HostRole(in_recovery=True, read_only=True)


@pytest.mark.parametrize(("target", "primary", "ro_primary", "standby"), [
    (TSA.ANY, True, True, True),
    (TSA.READ_WRITE, True, False, False),
    (TSA.READ_ONLY, False, True, True),
    (TSA.PRIMARY, True, True, False),
    (TSA.STANDBY, False, False, True),
    (TSA.PREFER_STANDBY, True, True, True),  # any host may keep the pool; standbys come first
])
def test_role_checks(target: TSA, primary: bool, ro_primary: bool, standby: bool) -> None:
    assert set(ROLE_CHECKS) == set(TSA)
    assert [acceptable(r, target) for r in (PRIMARY, READ_ONLY_PRIMARY, STANDBY)] == [
        primary, ro_primary, standby]
    assert PRIMARY.name == READ_ONLY_PRIMARY.name == "primary" and STANDBY.name == "standby"


def hp(port: int) -> HostPort:
    return HostPort("127.0.0.1", port)


async def results(*items: ProbeResult, read: list[int] | None = None
                  ) -> AsyncIterator[ProbeResult]:
    """Results in DSN order; ``read`` records how many the consumer pulled."""
    for number, item in enumerate(items, 1):
        if read is not None:
            read.append(number)
        yield item


DOWN = ProbeResult(hp(1), None, ErrorKind.CONNECTIVITY, "refused")


@pytest.mark.parametrize(("target", "roles", "expected"), [
    (TSA.READ_WRITE, [None, STANDBY, PRIMARY, PRIMARY], 3),
    (TSA.READ_WRITE, [STANDBY, READ_ONLY_PRIMARY], None),
    (TSA.PRIMARY, [STANDBY, READ_ONLY_PRIMARY], 2),
    (TSA.STANDBY, [PRIMARY, STANDBY, STANDBY], 2),
    (TSA.PREFER_STANDBY, [PRIMARY, None, STANDBY], 3),
    (TSA.PREFER_STANDBY, [None, PRIMARY, READ_ONLY_PRIMARY], 2),
    (TSA.ANY, [None, STANDBY, PRIMARY], 2),
    (TSA.READ_ONLY, [PRIMARY, READ_ONLY_PRIMARY], 2),
])
async def test_choose_first_qualifying_in_dsn_order(
        target: TSA, roles: list[HostRole | None], expected: int | None) -> None:
    items = [ProbeResult(hp(n), role) if role else DOWN for n, role in enumerate(roles, 1)]
    seen: list[ProbeResult] = []
    read: list[int] = []
    chosen = await choose(results(*items, read=read), target, seen)
    assert (None if chosen is None else chosen.host.port) == expected
    if expected is not None and target is not TSA.PREFER_STANDBY:
        assert read[-1] == expected  # stopped at the first match: later hosts not waited for
    assert seen == items[: len(read)]


def test_backoff_grows_to_a_cap_with_jitter() -> None:
    backoff = Backoff(0.05, 0.5)
    delays = [backoff.next() for _ in range(12)]
    assert 0.025 <= delays[0] <= 0.05
    assert all(0.25 <= d <= 0.5 for d in delays[5:])
    assert max(delays) <= 0.5


def backend_for(*ports: int, password: str = TEST_PASSWORD, dbname: str = "postgres",
                tsa: str = "read-write") -> Backend:
    hosts = ",".join(f"127.0.0.1:{port}" for port in ports)
    dsn = parse_pg_dsn(f"{TEST_USER}:{password}@{hosts}/{dbname}?target_session_attrs={tsa}")
    return pg_backend(dsn, 2, FAILOVER)


def test_describe_and_messages_never_show_the_password() -> None:
    backend = backend_for(5432, password="s3cret-pw")
    assert backend.describe(TimeoutError()) == "timed out"
    described = backend.describe(RuntimeError("auth for s3cret-pw failed\nsecond line"))
    assert described == "RuntimeError: auth for *** failed"
    seen = [ProbeResult(hp(5432), None, ErrorKind.AUTH, described)]
    message = no_host_message(seen, backend_for(5432, 5433))
    assert "127.0.0.1:5432: RuntimeError: auth for *** failed (auth)" in message
    assert "127.0.0.1:5433: not probed" in message and "s3cret" not in message


def test_auth_reporter_logs_once_per_episode(caplog: pytest.LogCaptureFixture) -> None:
    reporter = AuthReporter(logging.getLogger("luna_handlers.db"))
    bad = ProbeResult(hp(1), None, ErrorKind.AUTH, "InvalidPasswordError: no")
    with caplog.at_level(logging.ERROR, logger="luna_handlers.db"):
        reporter.report([bad])
        reporter.report([bad])  # still failing: already said
        reporter.report([ProbeResult(hp(1), PRIMARY)])  # accepted us again
        reporter.report([bad])
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and all("127.0.0.1:1" in m and "authentication" in m
                                      for m in messages)


def test_full_server_is_alive_for_the_health_check() -> None:
    full = asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already")
    assert probe_classify(full) is ErrorKind.OTHER
    assert probe_classify(ConnectionRefusedError()) is ErrorKind.CONNECTIVITY


async def test_probe_real_hosts(pg_cluster: PgCluster) -> None:
    closed = free_port()
    backend = backend_for(closed, pg_cluster.port)
    seen = [r async for r in probe_hosts(backend, 2.0)]
    assert [r.host.port for r in seen] == [closed, pg_cluster.port]
    assert seen[0].kind is ErrorKind.CONNECTIVITY and seen[0].role is None
    assert seen[1].role == PRIMARY and seen[1].kind is None
    wrong = await probe_one(backend_for(pg_cluster.port, password="nope"),
                            hp(pg_cluster.port), 2.0)
    assert wrong.kind is ErrorKind.AUTH and "nope" not in wrong.error
    missing = await probe_one(backend_for(pg_cluster.port, dbname="no_such_db"),
                              hp(pg_cluster.port), 2.0)
    assert missing.kind is ErrorKind.AUTH


async def test_pg_role_read_only_by_role_setting_and_by_query(pg_cluster: PgCluster) -> None:
    name = f"ro_{uuid.uuid4().hex[:8]}"
    pg_cluster.psql(f"CREATE ROLE {name} LOGIN PASSWORD 'ro-pw'")
    pg_cluster.psql(f"ALTER ROLE {name} SET default_transaction_read_only = on")
    conn = await asyncpg.connect(host=pg_cluster.host, port=pg_cluster.port, user=name,
                                 password="ro-pw", database="postgres", timeout=5)
    try:
        assert await pg_role(conn, 2.0) == READ_ONLY_PRIMARY  # from ParameterStatus

        class OldServer:
            """The same connection as a server before 14 shows it: no reported role."""

            def get_settings(self) -> object:
                return object()

            async def fetchrow(self, query: str, timeout: float) -> Any:  # noqa: ASYNC109
                return await conn.fetchrow(query, timeout=timeout)

        assert await pg_role(OldServer(), 2.0) == READ_ONLY_PRIMARY  # from the query
    finally:
        await conn.close()
        pg_cluster.psql(f"DROP ROLE {name}")


@pytest.fixture
def hung(shared_tmp: Path) -> Iterator[PgCluster]:
    """A server that accepts TCP connections and never answers."""
    cluster = PgCluster(datadir=shared_tmp / f"hung-{uuid.uuid4().hex[:8]}", port=free_port(),
                        superuser_password="postgres-test", settings={"fsync": "off"})
    cluster.initdb()
    cluster.start()
    cluster.pause()
    yield cluster
    cluster.resume()
    cluster.stop("immediate")


@pytest.mark.slow
async def test_hung_host_probe_is_bounded_and_cancelled_when_not_needed(
        hung: PgCluster, pg_cluster: PgCluster) -> None:
    started = time.monotonic()
    result = await probe_one(backend_for(hung.port), hp(hung.port), 0.5)
    assert (result.kind, result.error) == (ErrorKind.CONNECTIVITY, "timed out")
    assert time.monotonic() - started < 2.0
    # A good host first: the hung one's probe is cancelled, not waited for.
    backend = backend_for(pg_cluster.port, hung.port)
    started = time.monotonic()
    async with aclosing(probe_hosts(backend, 5.0)) as found:
        chosen = await choose(found, TSA.READ_WRITE, [])
    assert chosen is not None and chosen.host.port == pg_cluster.port
    assert time.monotonic() - started < 2.0

"""The Oracle failover backend without an Oracle server: one-address descriptors (with
python-oracledb's own parser as the referee), the role table, and real probes and a real
start against local ports where no Oracle listens (closed, or silent after the TCP accept).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Any

import oracledb
import pytest
from sqlalchemy import event

from luna_handlers.config import DBSettings, FailoverSettings, load_settings
from luna_handlers.db import open_database
from luna_handlers.db.dialects.oracle import classify as oracle
from luna_handlers.db.dialects.oracle.backend import (
    ROLES,
    open_oracle_database,
    oracle_backend,
    oracle_role,
)
from luna_handlers.db.dialects.oracle.dsn import OracleDefaults, OracleDsn, parse_oracle_dsn
from luna_handlers.db.hosts import DsnError, HostPort, TargetSessionAttrs
from luna_handlers.db.pool.faults import ErrorKind
from luna_handlers.db.pool.probe import probe_one
from luna_handlers.db.pool.roles import HostRole, acceptable
from luna_handlers.errors import DatabaseUnavailable
from luna_handlers.pgserver.cluster import free_port

SECRET = "Pw.S3cr3t"
DEFAULTS = OracleDefaults(host="dbhost", port=1600, user="svc", password=SECRET, sid="ORCL")
FAST = FailoverSettings(connect_timeout=1.0, query_timeout=2.0, failure_threshold=3,
                        health_check_interval=1.0, switch_wait=1.0)
TSA = TargetSessionAttrs
TLS_REST = ("(CONNECT_DATA=(SERVER=DEDICATED)(SERVICE_NAME=luna_svc))"
            "(SECURITY=(SSL_SERVER_DN_MATCH=on)))")
TLS_DESCRIPTOR = (
    "(DESCRIPTION=(RETRY_COUNT=2)"
    "(ADDRESS_LIST=(FAILOVER=on)(ADDRESS=(PROTOCOL=TCPS)(HOST=ora1)(PORT=2484))"
    "(ADDRESS=(PROTOCOL=TCPS)(HOST=ora2)(PORT=2484)))"
    "(ADDRESS_LIST=(ADDRESS=(PROTOCOL=TCPS)(HOST=ora3)))" + TLS_REST)
SID_DESCRIPTOR = ("(DESCRIPTION = (ADDRESS=(PROTOCOL=TCP)(HOST=ora1)(PORT=1521)) "
                  "(ADDRESS=(PROTOCOL=TCP)(HOST=ora2)(PORT=1521)) (CONNECT_DATA=(SID=ORCL)))")
EASY_PARAMS = "(DESCRIPTION=(TRANSPORT_CONNECT_TIMEOUT=2500ms)(LOAD_BALANCE=on)(RETRY_COUNT=3)"


def easy_one(protocol: str, host: str, port: int, target: str, params: str = "(DESCRIPTION=",
             ) -> str:
    return (f"{params}(ADDRESS_LIST=(ADDRESS=(PROTOCOL={protocol})(HOST={host})(PORT={port})))"
            f"(CONNECT_DATA=({target})))")


# dsn -> the driver's dsn for each address, in order.
ONE_ADDRESS_CASES: list[tuple[str, list[str]]] = [
    ("luna/pw@ora1,ora2:1522/luna_svc?connect_timeout=2.5&retry_count=3&load_balance=on", [
        easy_one("TCP", "ora1", 1522, "SERVICE_NAME=luna_svc", EASY_PARAMS),
        easy_one("TCP", "ora2", 1522, "SERVICE_NAME=luna_svc", EASY_PARAMS)]),
    ("tcps://ora1:2484,[::1]", [  # no /service: the SID db_name
        easy_one("TCPS", "ora1", 2484, "SID=ORCL"), easy_one("TCPS", "::1", 1600, "SID=ORCL")]),
    ("", [easy_one("TCP", "dbhost", 1600, "SID=ORCL")]),  # the section's keys alone
    (TLS_DESCRIPTOR, [  # other lists go whole; the kept list, SECURITY, SERVER stay as written
        "(DESCRIPTION=(RETRY_COUNT=2)(ADDRESS_LIST=(FAILOVER=on)"
        "(ADDRESS=(PROTOCOL=TCPS)(HOST=ora1)(PORT=2484)))" + TLS_REST,
        "(DESCRIPTION=(RETRY_COUNT=2)(ADDRESS_LIST=(FAILOVER=on)"
        "(ADDRESS=(PROTOCOL=TCPS)(HOST=ora2)(PORT=2484)))" + TLS_REST,
        "(DESCRIPTION=(RETRY_COUNT=2)(ADDRESS_LIST=(ADDRESS=(PROTOCOL=TCPS)(HOST=ora3)))"
        + TLS_REST]),
    ("scott/tiger@" + SID_DESCRIPTOR, [  # addresses straight under DESCRIPTION, a SID
        "(DESCRIPTION = (ADDRESS=(PROTOCOL=TCP)(HOST=ora1)(PORT=1521))  "
        "(CONNECT_DATA=(SID=ORCL)))",
        "(DESCRIPTION =  (ADDRESS=(PROTOCOL=TCP)(HOST=ora2)(PORT=1521)) "
        "(CONNECT_DATA=(SID=ORCL)))"]),
]


@pytest.mark.parametrize(("text", "expected"), ONE_ADDRESS_CASES)
def test_one_address_dsn_per_address(text: str, expected: list[str]) -> None:
    dsn = parse_oracle_dsn(text, DEFAULTS)
    assert [dsn.for_address(hp).to_oracledb_dsn() for hp in dsn.addresses] == expected
    for address in dsn.addresses:
        one = dsn.for_address(address)
        assert one.addresses == (address,)
        assert (one.service_name, one.sid, one.protocol, one.user, one.password) == (
            dsn.service_name, dsn.sid, dsn.protocol, dsn.user, dsn.password)
        if dsn.descriptor is None:
            assert one.options == dsn.options
        # The driver's parser agrees: exactly this one address, same target and protocol.
        params = oracledb.ConnectParams()
        params.parse_connect_string(one.to_oracledb_dsn())
        assert (params.host, params.port, params.protocol) == (
            address.host, address.port, dsn.protocol)
        assert (params.service_name, params.sid) == (dsn.service_name, dsn.sid)


def test_one_address_of_a_duplicated_address_and_of_a_stranger() -> None:
    text = ("(DESCRIPTION=(ADDRESS_LIST=(ADDRESS=(HOST=a)(PORT=1))(ADDRESS=(HOST=b)(PORT=2)))"
            "(ADDRESS_LIST=(ADDRESS=(HOST=a)(PORT=1)))(CONNECT_DATA=(SERVICE_NAME=s)))")
    dsn = parse_oracle_dsn(text)
    assert dsn.for_address(HostPort("a", 1)).descriptor == (
        "(DESCRIPTION=(ADDRESS_LIST=(ADDRESS=(HOST=a)(PORT=1)))(CONNECT_DATA=(SERVICE_NAME=s)))")
    with pytest.raises(ValueError, match="not an address"):
        dsn.for_address(HostPort("c", 1))


@pytest.mark.parametrize(("database_role", "role"), [
    ("PRIMARY", HostRole(in_recovery=False, read_only=False)),
    ("PHYSICAL STANDBY", HostRole(in_recovery=True, read_only=True)),  # Active Data Guard
    ("LOGICAL STANDBY", HostRole(in_recovery=True, read_only=True)),  # guarded: no writes
    ("SNAPSHOT STANDBY", HostRole(in_recovery=True, read_only=True)),  # writes thrown away
    (" primary ", HostRole(in_recovery=False, read_only=False)),
])
def test_database_role_mapping(database_role: str, role: HostRole) -> None:
    assert oracle_role(database_role) == role
    # Only a primary may carry the read-write pool, as on PostgreSQL.
    assert acceptable(role, TSA.READ_WRITE) is (role.name == "primary")


@pytest.mark.parametrize("database_role", ["FAR SYNC", "", None, 1])
def test_unknown_database_role_fails_the_probe(database_role: object) -> None:
    assert set(ROLES) == {"PRIMARY", "PHYSICAL STANDBY", "LOGICAL STANDBY", "SNAPSHOT STANDBY"}
    with pytest.raises(ValueError, match="unknown Oracle DATABASE_ROLE"):
        oracle_role(database_role)
    assert oracle.classify(ValueError("x")) is ErrorKind.OTHER  # skipped, never a switch


def dsn_on(*ports: int, options: str = "") -> OracleDsn:
    hosts = ",".join(f"127.0.0.1:{port}" for port in ports)
    return parse_oracle_dsn(f"luna/{SECRET}@{hosts}/luna_svc{options}", DEFAULTS)


def test_backend_fields() -> None:
    dsn = dsn_on(1601, 1602, 1601)
    backend = oracle_backend(dsn, 3, FAST)
    assert backend.hosts == (HostPort("127.0.0.1", 1601), HostPort("127.0.0.1", 1602))
    assert (backend.dialect, backend.target, backend.secret) == ("oracle", TSA.READ_WRITE,
                                                                 SECRET)
    assert backend.classify is oracle.classify
    assert backend.changes is None  # Oracle sends no change notifications here
    assert backend.connect_timeout == FAST.connect_timeout
    assert oracle_backend(dsn_on(1, options="?connect_timeout=4.5"), 3, FAST).connect_timeout == 4.5
    # A descriptor's timeouts take Oracle Net units: the setting bounds the probe.
    described = parse_oracle_dsn("(DESCRIPTION=(CONNECT_TIMEOUT=9)(ADDRESS=(HOST=a))"
                                 "(CONNECT_DATA=(SID=x)))")
    assert oracle_backend(described, 3, FAST).connect_timeout == FAST.connect_timeout
    assert SECRET not in backend.describe(RuntimeError(f"password {SECRET} leaked"))


def test_source_route_is_refused() -> None:
    dsn = parse_oracle_dsn("(DESCRIPTION=(SOURCE_ROUTE=yes)(ADDRESS=(HOST=cman)(PORT=1630))"
                           "(ADDRESS=(HOST=ora1))(CONNECT_DATA=(SERVICE_NAME=s)))")
    with pytest.raises(DsnError, match="SOURCE_ROUTE"):
        oracle_backend(dsn, 1, FAST)


class Captured(Exception):
    """Stops a connect once SQLAlchemy has handed over the driver's arguments."""


async def test_engine_is_bound_to_one_address() -> None:
    dsn = dsn_on(1601, 1602)
    backend = oracle_backend(dsn, 3, FAST)
    engine = backend.connections(HostPort("127.0.0.1", 1602)).engine
    seen: dict[str, Any] = {}

    @event.listens_for(engine.sync_engine, "do_connect")
    def capture(_dialect: Any, _record: Any, _args: Any, kwargs: dict[str, Any]) -> None:
        seen.update(kwargs)
        raise Captured

    try:
        with pytest.raises(Captured):
            await engine.connect()
    finally:
        await engine.dispose()
    assert seen == {"dsn": easy_one("TCP", "127.0.0.1", 1602, "SERVICE_NAME=luna_svc"),
                    "user": "luna", "password": SECRET, "tcp_connect_timeout": 1.0}
    assert engine.sync_engine.pool.size() == 3  # type: ignore[attr-defined]
    assert engine.dialect.name == "oracle"


async def test_probe_of_a_closed_port_fails_fast_as_connectivity() -> None:
    port = free_port()  # nothing listens there
    backend = oracle_backend(dsn_on(port), 2, FAST)
    started = time.monotonic()
    with pytest.raises(oracledb.Error) as caught:
        await backend.probe(HostPort("127.0.0.1", port), 2.0)
    assert oracle.classify(caught.value) is ErrorKind.CONNECTIVITY
    result = await probe_one(backend, HostPort("127.0.0.1", port), 2.0)
    assert (result.role, result.kind) == (None, ErrorKind.CONNECTIVITY)
    assert "DPY-6005" in result.error and SECRET not in result.error
    assert time.monotonic() - started < 1.0


@pytest.fixture
async def silent_listener() -> AsyncIterator[tuple[int, asyncio.Future[bytes]]]:
    """A port that accepts TCP and never answers; the future gets what the client sent."""
    received: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read()  # until the client closes its socket
        if not received.done():
            received.set_result(data)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1], received
    server.close()
    await server.wait_closed()


async def test_probe_of_a_host_hanging_after_accept_is_bounded_and_closes(
        silent_listener: tuple[int, asyncio.Future[bytes]]) -> None:
    # tcp_connect_timeout cannot help here (the TCP connect succeeded): the probe's own bound.
    port, received = silent_listener
    backend = oracle_backend(dsn_on(port), 2, FAST)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await backend.probe(HostPort("127.0.0.1", port), 0.5)
    assert 0.4 < time.monotonic() - started < 1.5
    assert oracle.classify(TimeoutError()) is ErrorKind.CONNECTIVITY
    # The socket was closed, not left to a hung host; nothing secret went out before auth.
    sent = await asyncio.wait_for(received, 2.0)
    assert b"luna_svc" in sent and SECRET.encode() not in sent


def oracle_db(*ports: int) -> DBSettings:
    hosts = ",".join(f"127.0.0.1:{port}" for port in ports)
    return DBSettings(db_type="oracle", db_host="127.0.0.1", db_port=1521, db_user="luna",
                      db_password="luna", db_name="luna_handlers", connection_pool_size=2,
                      dsn=f"luna/{SECRET}@{hosts}/luna_svc")


async def test_open_on_closed_ports_lists_both_without_the_password() -> None:
    ports = (free_port(), free_port())
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable) as caught:
        await open_oracle_database(oracle_db(*ports), FAST)
    # start() keeps probing for START_PATIENCE (2) connect timeouts, then gives up.
    assert time.monotonic() - started < 5.0
    message = str(caught.value)
    assert "target_session_attrs=read-write" in message
    for port in ports:
        assert f"127.0.0.1:{port}: OperationalError: DPY-6005" in message
        assert message.count(f"127.0.0.1:{port}:") == 1
    assert "(connectivity)" in message and SECRET not in message


async def test_service_opens_oracle_through_the_failover_pool() -> None:
    settings = dataclasses.replace(load_settings(environ={}), db=oracle_db(free_port()),
                                   failover=FAST)
    with pytest.raises(DatabaseUnavailable, match="no database host qualifies"):
        await open_database(settings)

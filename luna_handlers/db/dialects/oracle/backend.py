"""The Oracle backend of the pool: one pool on ONE address of the dsn.

The dsn's addresses are the hosts, in order. A probe connects to one address alone and reads
``sys_context('USERENV', 'DATABASE_ROLE')`` (12c+, no privilege needed); every pool is built
on a one-address copy of the dsn (:meth:`OracleDsn.for_address`), so python-oracledb never
spreads a pool over several addresses. The target is always read-write (an Oracle dsn has
no ``target_session_attrs``): the pool goes to the first PRIMARY in dsn order.

What the role tells, and what it cannot (see :data:`ROLES`): a standby of any kind never
takes the pool. A primary whose database (or PDB) is open READ ONLY still reads as PRIMARY:
telling would need ``v$database`` (a privilege). Its writes fail with ORA-16000 (READ_ONLY),
which starts a switch round like PostgreSQL's 25006; the pool moves only if another host
qualifies. ``LOAD_BALANCE`` no longer shuffles the addresses
(dsn order decides, as with PostgreSQL), and ``SOURCE_ROUTE`` (Connection Manager, where the
addresses are hops, not alternatives) is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from types import MappingProxyType

import oracledb

from luna_handlers.config import DBSettings, FailoverSettings
from luna_handlers.db.dialects.oracle.classify import DRIVER_ERRORS, classify
from luna_handlers.db.dialects.oracle.connect import oracle_connections
from luna_handlers.db.dialects.oracle.dsn import OracleDsn, oracle_dsn_from_settings
from luna_handlers.db.hosts import DsnError, HostPort, TargetSessionAttrs
from luna_handlers.db.pool.backend import Backend
from luna_handlers.db.pool.failover import FailoverDatabase, start_failover_database
from luna_handlers.db.pool.roles import HostRole

ROLE_QUERY = "SELECT sys_context('USERENV', 'DATABASE_ROLE') FROM dual"

# DATABASE_ROLE -> HostRole, on HostRole's PostgreSQL terms: a standby is "in recovery"
# and read-only. A logical standby is open read-write but its database guard (ALL by default)
# refuses our writes; a snapshot standby accepts them but throws them away when it turns back
# into a physical standby: neither may ever carry the read-write pool. A FAR SYNC instance
# cannot be opened, so a probe never gets that far; an unknown role fails the probe.
ROLES: Mapping[str, HostRole] = MappingProxyType({
    "PRIMARY": HostRole(in_recovery=False, read_only=False),
    "PHYSICAL STANDBY": HostRole(in_recovery=True, read_only=True),
    "LOGICAL STANDBY": HostRole(in_recovery=True, read_only=True),
    "SNAPSHOT STANDBY": HostRole(in_recovery=True, read_only=True),
})
_SOURCE_ROUTE_ON = frozenset({"on", "yes", "true"})


def oracle_role(database_role: object) -> HostRole:
    """The :class:`HostRole` of a ``DATABASE_ROLE`` value; ValueError if unknown."""
    role = ROLES.get(str(database_role).strip().upper()) if database_role is not None else None
    if role is None:
        raise ValueError(f"unknown Oracle DATABASE_ROLE {database_role!r}")
    return role


def _abort(conn: oracledb.AsyncConnection) -> None:
    """Close the socket at once, never raising (before python-oracledb 26: left to the GC)."""
    with contextlib.suppress(Exception):
        conn.terminate()


def connect_timeout(dsn: OracleDsn, settings: FailoverSettings) -> float:
    """Seconds a probe may take: Easy Connect's ``connect_timeout`` option, else the setting."""
    # A descriptor's timeouts take Oracle Net units ("10ms", "1min"): the setting bounds it.
    value = dsn.option_map.get("connect_timeout") if dsn.descriptor is None else None
    return settings.connect_timeout if value is None else float(value)


def oracle_backend(dsn: OracleDsn, pool_size: int, settings: FailoverSettings) -> Backend:
    """The Oracle backend: python-oracledb probes and :func:`oracle_connections` pools, per
    address; no change feed (Oracle sends no notifications here)."""
    if dsn.option_map.get("source_route", "").lower() in _SOURCE_ROUTE_ON:
        raise DsnError("SOURCE_ROUTE makes the addresses one route, not alternative hosts; "
                       "the failover pool needs hosts", 0)
    # The same address twice would be probed twice and build the same pool: keep the first.
    hosts = tuple(dict.fromkeys(dsn.addresses))
    one = {host: dsn.for_address(host) for host in hosts}

    async def probe(host: HostPort, limit: float) -> HostRole:
        # tcp_connect_timeout bounds the TCP connect only: a host that accepts and then hangs
        # in the handshake, the query or the logoff must not cost more than ``limit`` either.
        async with asyncio.timeout(limit):
            conn = await oracledb.connect_async(
                dsn=one[host].to_oracledb_dsn(), user=dsn.user, password=dsn.password,
                tcp_connect_timeout=limit)
            try:
                row = await conn.fetchone(ROLE_QUERY)
                role = oracle_role(None if row is None else row[0])
            except BaseException:
                _abort(conn)  # no logoff round trip with a host that may hang
                raise
            try:  # a graceful logoff, so the server logs no broken session
                await conn.close()
            except Exception:  # the role is known; a failed logoff changes nothing
                _abort(conn)
            except BaseException:  # cancelled or timed out: the socket must not stay open
                _abort(conn)
                raise
            return role

    return Backend(
        dialect="oracle", hosts=hosts, target=TargetSessionAttrs.READ_WRITE,
        connect_timeout=connect_timeout(dsn, settings), probe=probe,
        connections=lambda host: oracle_connections(one[host], pool_size, settings),
        classify=classify, driver_errors=DRIVER_ERRORS, secret=dsn.password,
    )


def oracle_backend_from_settings(db: DBSettings, settings: FailoverSettings) -> Backend:
    """The backend of the configured Oracle dsn."""
    return oracle_backend(oracle_dsn_from_settings(db), db.connection_pool_size, settings)


async def open_oracle_database(db: DBSettings, settings: FailoverSettings) -> FailoverDatabase:
    """A started :class:`FailoverDatabase` on the configured Oracle dsn's addresses."""
    return await start_failover_database(oracle_backend_from_settings(db, settings),
                                         db.connection_pool_size, settings)

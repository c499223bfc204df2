"""How the Oracle dialect connects: python-oracledb (thin) arguments and the SQLAlchemy
engine whose pool carries the requests, bound to one address of the dsn."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from luna_handlers.config import FailoverSettings
from luna_handlers.db.database import AUTOCOMMIT
from luna_handlers.db.dialects.oracle.dsn import OracleDsn
from luna_handlers.db.pool.connections import EngineConnections

#: Oracle before 23 has no BOOLEAN; SQLAlchemy assumes 23 until it has connected, so the
#: portable form (SMALLINT with a check constraint) is pinned for DDL and queries alike.
ENGINE_OPTIONS: dict[str, Any] = {"supports_native_boolean": False}


def oracle_connections(dsn: OracleDsn, pool_size: int, failover: FailoverSettings
                       ) -> EngineConnections:
    """The request connections on the (one-address) ``dsn``: :func:`oracle_engine`'s pool."""
    return EngineConnections(oracle_engine(dsn, pool_size, failover))


def oracle_connect_args(dsn: OracleDsn, failover: FailoverSettings) -> dict[str, Any]:
    """python-oracledb (thin) connect arguments: the whole target as ``dsn``, credentials apart."""
    return {
        "dsn": dsn.to_oracledb_dsn(),
        "user": dsn.user,
        "password": dsn.password,
        # Per address; a TRANSPORT_CONNECT_TIMEOUT in the dsn (connect_timeout=...) wins.
        "tcp_connect_timeout": failover.connect_timeout,
    }


def oracle_engine(dsn: OracleDsn, pool_size: int, failover: FailoverSettings) -> AsyncEngine:
    """An async engine on Oracle through python-oracledb in thin mode (no client libraries).

    The URL names only the driver; python-oracledb gets ``dsn`` as its target and tries its
    addresses in order at each connect: give it a one-address dsn
    (:meth:`~luna_handlers.db.dialects.oracle.dsn.OracleDsn.for_address`) to bind the pool
    to a host.
    """
    engine = create_async_engine(
        "oracle+oracledb://", pool_size=pool_size, max_overflow=0,
        pool_timeout=failover.switch_wait, isolation_level=AUTOCOMMIT,
        connect_args=oracle_connect_args(dsn, failover),
        **ENGINE_OPTIONS,
    )
    call_timeout_ms = round(failover.query_timeout * 1000)

    def on_connect(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        # Registered after the dialect's first-connect initialize(), which turns native
        # BOOLEAN on for Oracle 23: keep the SMALLINT 0/1 of the schema on every version.
        engine.dialect.supports_native_boolean = False
        # Bounds each round trip, like asyncpg's command_timeout: a host that stops
        # answering mid-query must not hold a request forever.
        if record.driver_connection is not None:
            record.driver_connection.call_timeout = call_timeout_ms

    event.listen(engine.sync_engine, "connect", on_connect)
    return engine


"""Connections for one host: the request pool (:mod:`luna_handlers.db.sources`) and the
SQLAlchemy engine, over asyncpg (PostgreSQL) and python-oracledb (Oracle).

Everything here is bound to exactly one host, so a pool never spreads over several hosts; the
failover manager decides which host that is.
"""

from __future__ import annotations

import contextlib
from typing import Any

from sqlalchemy import URL, event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, NullPool

from luna_handlers.config import DBSettings, FailoverSettings
from luna_handlers.db.dsn import DsnDefaults, HostPort, PgDsn, parse_pg_dsn
from luna_handlers.db.migrate import dialect_options
from luna_handlers.db.oracle_dsn import OracleDsn
from luna_handlers.db.pgpool import AsyncpgSource
from luna_handlers.db.sources import EngineSource

APPLICATION_NAME = "luna-handlers"
AUTOCOMMIT = "AUTOCOMMIT"


def pg_dsn(db: DBSettings) -> PgDsn:
    """The configured PostgreSQL DSN: ``dsn`` filled from the other keys, or those keys alone."""
    defaults = DsnDefaults(host=db.db_host, port=db.db_port, user=db.db_user,
                           password=db.db_password, dbname=db.db_name)
    return parse_pg_dsn(db.dsn or "", defaults)


def pg_connect_args(dsn: PgDsn, failover: FailoverSettings) -> dict[str, Any]:
    """asyncpg connect arguments: per-host connect timeout, statement timeout, SSL, name."""
    options = dsn.option_map
    connect_timeout = dsn.connect_timeout or failover.connect_timeout
    args: dict[str, Any] = {
        "timeout": connect_timeout,
        # A host that stops answering mid-query must not hold a request forever.
        "command_timeout": failover.query_timeout,
        "server_settings": {"application_name": options.get("application_name",
                                                            APPLICATION_NAME)},
    }
    if "sslmode" in options:
        args["ssl"] = options["sslmode"]
    return args


def pg_engine(host: HostPort, dsn: PgDsn, failover: FailoverSettings) -> AsyncEngine:
    """An SQLAlchemy engine on ``host`` for migrations and schema checks; without a pool of
    its own (requests use :func:`pg_source`'s), each connection is opened for its use."""
    url = URL.create("postgresql+asyncpg", username=dsn.user, password=dsn.password or None,
                     host=host.host, port=host.port, database=dsn.dbname)
    engine = create_async_engine(url, poolclass=NullPool, isolation_level=AUTOCOMMIT,
                                 connect_args=pg_connect_args(dsn, failover))
    event.listen(engine.sync_engine, "handle_error", terminate_timed_out)
    return engine


def pg_source(host: HostPort, dsn: PgDsn, pool_size: int,
              failover: FailoverSettings) -> AsyncpgSource:
    """The request connections on ``host``: an asyncpg pool of ``pool_size``, where waiting
    for a free connection is bounded like waiting for a switch."""
    connect_args = {"host": host.host, "port": host.port, "user": dsn.user,
                    "password": dsn.password or None, "database": dsn.dbname,
                    # The failover manager judges the role; PGTARGETSESSIONATTRS from the
                    # environment must not make a pool connection refuse the chosen host.
                    "target_session_attrs": "any", **pg_connect_args(dsn, failover)}
    return AsyncpgSource(pg_engine(host, dsn, failover), pool_size, failover.switch_wait,
                         failover.query_timeout, connect_args)


def terminate_timed_out(ctx: ExceptionContext) -> None:
    """Close the socket of a connection whose statement timed out, without waiting.

    SQLAlchemy discards such a connection with a graceful close that waits up to 2 s for
    the server (asyncpg first waits for the cancel of the timed-out query): on a hung host
    that is pure delay on top of ``query_timeout``. asyncpg's ``terminate()`` never blocks.
    """
    conn = ctx.connection
    if not isinstance(ctx.original_exception, TimeoutError) or conn is None:
        return
    # An error raised here would replace the original one: this hook must never raise.
    with contextlib.suppress(Exception):
        if not (conn.invalidated or conn.closed):
            terminate = getattr(conn.connection.driver_connection, "terminate", None)
            if callable(terminate):
                terminate()


def oracle_source(dsn: OracleDsn, pool_size: int, failover: FailoverSettings) -> EngineSource:
    """The request connections on the (one-address) ``dsn``: :func:`oracle_engine`'s pool."""
    return EngineSource(oracle_engine(dsn, pool_size, failover))


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
    (:meth:`~luna_handlers.db.oracle_dsn.OracleDsn.for_address`) to bind the pool to a host.
    """
    engine = create_async_engine(
        "oracle+oracledb://", pool_size=pool_size, max_overflow=0,
        pool_timeout=failover.switch_wait, isolation_level=AUTOCOMMIT,
        connect_args=oracle_connect_args(dsn, failover),
        **dialect_options("oracle"),
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


"""How the PostgreSQL dialect connects to one host: asyncpg's arguments, the request
connections, and the SQLAlchemy engine (migrations, schema checks, statement compiling).

Everything here is bound to exactly one host, so a pool never spreads over several hosts; the
failover database decides which host that is.
"""

from __future__ import annotations

import contextlib
from typing import Any

from sqlalchemy import URL, event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from luna_handlers.config import FailoverSettings
from luna_handlers.db.database import AUTOCOMMIT
from luna_handlers.db.dialects.postgresql.connections import AsyncpgConnections
from luna_handlers.db.dialects.postgresql.dsn import PgDsn
from luna_handlers.db.dialects.postgresql.pooler import StatementPolicy
from luna_handlers.db.hosts import HostPort
from luna_handlers.db.pool.connections import ScanShare

APPLICATION_NAME = "luna-handlers"


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


def pg_engine(host: HostPort, dsn: PgDsn, failover: FailoverSettings,
              policy: StatementPolicy | None = None) -> AsyncEngine:
    """An SQLAlchemy engine on ``host`` for migrations and schema checks; without a pool of
    its own (requests use :func:`pg_connections`), each connection is opened for its use.
    ``policy`` (default: named statements) says whether its statements may be named."""
    url = URL.create("postgresql+asyncpg", username=dsn.user, password=dsn.password or None,
                     host=host.host, port=host.port, database=dsn.dbname)
    statements = StatementPolicy(named=True) if policy is None else policy
    engine = create_async_engine(url, poolclass=NullPool, isolation_level=AUTOCOMMIT,
                                 connect_args={**pg_connect_args(dsn, failover),
                                               **statements.engine_args()})
    event.listen(engine.sync_engine, "handle_error", terminate_timed_out)
    return engine


def pg_connections(host: HostPort, dsn: PgDsn, pool_size: int, failover: FailoverSettings,
                   policy: StatementPolicy) -> AsyncpgConnections | ScanShare:
    """The request connections on ``host``: an asyncpg pool of ``pool_size``, where waiting
    for a free connection is bounded like waiting for a switch, named statements or not as
    ``policy`` says now; with ``scan_pool_size``, a :class:`ScanShare` whose scan
    connections start with a server-side ``statement_timeout`` (a startup parameter: no
    round trip per statement, and the connection stays usable after the cancel) and wait
    ``scan_wait`` for a place."""
    connect_args = {"host": host.host, "port": host.port, "user": dsn.user,
                    "password": dsn.password or None, "database": dsn.dbname,
                    # The failover database judges the role; PGTARGETSESSIONATTRS from the
                    # environment must not make a pool connection refuse the chosen host.
                    "target_session_attrs": "any", **pg_connect_args(dsn, failover),
                    **policy.driver_args()}
    engine = pg_engine(host, dsn, failover, policy)
    point = AsyncpgConnections(engine, pool_size, failover.switch_wait,
                               failover.query_timeout, connect_args, named=policy.named)
    if not failover.scan_pool_size:
        return point
    if not policy.named:
        # Behind a transaction pooler: pgbouncer refuses statement_timeout as a startup
        # parameter (08P01) and a SET would not stay with the connection, so scans are
        # bounded by query_timeout only (README: "Behind pgbouncer").
        return ScanShare(point, AsyncpgConnections(
            engine, failover.scan_pool_size, failover.scan_wait, failover.query_timeout,
            connect_args, named=False))
    timeout_ms = max(1, round(failover.scan_statement_timeout * 1000))
    scan_args = {**connect_args, "server_settings": {**connect_args["server_settings"],
                                                     "statement_timeout": str(timeout_ms)}}
    return ScanShare(point, AsyncpgConnections(
        engine, failover.scan_pool_size, failover.scan_wait,
        min(failover.scan_statement_timeout, failover.query_timeout), scan_args,
        named=True))


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

"""Engines for one host: SQLAlchemy async engines over asyncpg (PostgreSQL) and
python-oracledb (Oracle).

Every engine is bound to exactly one host, so a pool never spreads over several hosts; the
failover manager decides which host that is.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from luna_handlers.config import DBSettings, FailoverSettings
from luna_handlers.db.dsn import DsnDefaults, HostPort, PgDsn, parse_pg_dsn
from luna_handlers.db.hostpool import HostPool
from luna_handlers.db.migrate import dialect_options

APPLICATION_NAME = "luna-handlers"


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


def pg_engine(host: HostPort, dsn: PgDsn, pool_size: int,
              failover: FailoverSettings) -> AsyncEngine:
    """An async engine whose every connection goes to ``host``."""
    url = URL.create("postgresql+asyncpg", username=dsn.user, password=dsn.password or None,
                     host=host.host, port=host.port, database=dsn.dbname)
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        # Waiting for a free connection is bounded like waiting for a switch.
        pool_timeout=failover.switch_wait,
        pool_pre_ping=False,
        connect_args=pg_connect_args(dsn, failover),
    )


def oracle_engine(db: DBSettings, failover: FailoverSettings) -> AsyncEngine:
    """An async engine on Oracle through python-oracledb in thin mode (no client libraries).

    ``db_name`` is the SID, as LUNA documents it.
    """
    url = URL.create("oracle+oracledb", username=db.db_user, password=db.db_password or None,
                     host=db.db_host, port=db.db_port, database=db.db_name)
    return create_async_engine(
        url, pool_size=db.connection_pool_size, max_overflow=0,
        pool_timeout=failover.switch_wait,
        connect_args={"tcp_connect_timeout": failover.connect_timeout},
        **dialect_options("oracle"),
    )


def oracle_database(db: DBSettings, failover: FailoverSettings) -> HostPool:
    """The database layer on one Oracle address."""
    return HostPool(oracle_engine(db, failover), label=f"{db.db_host}:{db.db_port}")

"""The three clients the bench compares; each ``write()`` inserts one handler row.

* ``ours``: :class:`FailoverDatabase` through ``DBContext.createHandler``, i.e. the service's
  own DB layer, exactly what an HTTP request uses.
* ``sqlalchemy``: SQLAlchemy + asyncpg with SQLAlchemy's documented multi-host URL
  (``?host=h1:p1&host=h2:p2&target_session_attrs=read-write``) and ``pool_pre_ping=True``.
* ``psycopg``: psycopg_pool's AsyncConnectionPool over a libpq multi-host conninfo
  (``host=h1,h2 port=p1,p2 target_session_attrs=read-write``), with the documented
  ``check_connection`` check at every checkout.

All three get the same pool size and the same timeouts where the library has them.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
import sqlalchemy as sa
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from luna_handlers.config import FailoverSettings
from luna_handlers.db.context import HANDLER, DBContext
from luna_handlers.db.dsn import parse_pg_dsn
from luna_handlers.db.failover import FailoverDatabase, open_failover_database

POOL_SIZE = 4
POLICIES = {"detect_policy": {"detect_face": 1}}
ACCOUNT = "00000000-0000-4000-8000-000000000001"
# libpq (and so psycopg) does not accept a connect_timeout under 2 seconds.
LIBPQ_MIN_CONNECT_TIMEOUT = 2


@dataclass(frozen=True)
class Target:
    """Where the clients connect: the hosts in order (primary first) and the credentials."""

    hosts: tuple[tuple[str, int], ...]
    user: str
    password: str
    dbname: str
    settings: FailoverSettings


class Client(Protocol):
    """One client under test."""

    name: str

    async def open(self) -> None:
        """Connect (the pool is ready when this returns)."""

    async def write(self) -> str:
        """Insert one handler; its id once the commit is acknowledged."""

    async def close(self) -> None:
        """Close every connection."""


def error_class(exc: BaseException) -> str:
    """A short class name for the error report (SQLAlchemy's wrapper shows the driver's)."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        return f"{type(exc).__name__}({type(exc.orig).__name__})"
    return type(exc).__name__


class Ours:
    """luna_handlers: FailoverDatabase + DBContext.createHandler."""

    name = "ours"

    def __init__(self, target: Target) -> None:
        hosts = ",".join(f"{host}:{port}" for host, port in target.hosts)
        self._dsn = parse_pg_dsn(f"{target.user}:{target.password}@{hosts}/{target.dbname}")
        self._settings = target.settings
        self._db: FailoverDatabase | None = None
        self._ctx: DBContext | None = None

    async def open(self) -> None:
        """Start the failover pool."""
        self._db = await open_failover_database(self._dsn, POOL_SIZE, self._settings)
        self._ctx = DBContext(self._db)

    async def write(self) -> str:
        """One handler through the service's DB context."""
        assert self._ctx is not None
        return await self._ctx.createHandler(POLICIES, ACCOUNT, "bench")

    async def close(self) -> None:
        """Close the failover pool."""
        if self._db is not None:
            await self._db.close()


def _row() -> dict[str, Any]:
    return {"handler_id": str(uuid.uuid4()), "account_id": ACCOUNT, "description": "bench",
            "is_dynamic": False, "policies": orjson.dumps(POLICIES).decode()}


class SqlAlchemyMultiHost:
    """SQLAlchemy + asyncpg, multi-host URL, pre-ping on checkout."""

    name = "sqlalchemy"

    def __init__(self, target: Target) -> None:
        query = "&".join(f"host={host}:{port}" for host, port in target.hosts)
        url = (f"postgresql+asyncpg://{target.user}:{target.password}@/{target.dbname}"
               f"?{query}&target_session_attrs=read-write")
        settings = target.settings
        self._engine: AsyncEngine = create_async_engine(
            url, pool_size=POOL_SIZE, max_overflow=0, pool_pre_ping=True,
            pool_timeout=settings.switch_wait,
            connect_args={"timeout": settings.connect_timeout,
                          "command_timeout": settings.query_timeout})

    async def open(self) -> None:
        """Check that a connection can be made."""
        async with self._engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def write(self) -> str:
        """One handler row in its own transaction."""
        row = _row()
        async with self._engine.begin() as conn:
            await conn.execute(sa.insert(HANDLER).values(**row))
        return str(row["handler_id"])

    async def close(self) -> None:
        """Dispose of the engine."""
        await self._engine.dispose()


class PsycopgPool:
    """psycopg_pool with a libpq multi-host conninfo."""

    name = "psycopg"

    def __init__(self, target: Target) -> None:
        settings = target.settings
        conninfo = make_conninfo(
            host=",".join(host for host, _ in target.hosts),
            port=",".join(str(port) for _, port in target.hosts),
            user=target.user, password=target.password, dbname=target.dbname,
            target_session_attrs="read-write",
            connect_timeout=max(LIBPQ_MIN_CONNECT_TIMEOUT, math.ceil(settings.connect_timeout)))
        self._pool = AsyncConnectionPool(
            conninfo, min_size=POOL_SIZE, max_size=POOL_SIZE, open=False,
            timeout=settings.switch_wait, check=AsyncConnectionPool.check_connection)

    async def open(self) -> None:
        """Open the pool and wait for its connections."""
        await self._pool.open(wait=True, timeout=10)

    async def write(self) -> str:
        """One handler row; the connection block commits."""
        row = _row()
        async with self._pool.connection() as conn:
            await conn.execute(
                "INSERT INTO handler (handler_id, account_id, description, is_dynamic, policies)"
                " VALUES (%(handler_id)s, %(account_id)s, %(description)s, %(is_dynamic)s,"
                " %(policies)s)", row)
        return str(row["handler_id"])

    async def close(self) -> None:
        """Close the pool (bounded: it waits for connections in use)."""
        await self._pool.close(timeout=2)


ClientFactory = Callable[[Target], Client]
CLIENTS: tuple[ClientFactory, ...] = (Ours, SqlAlchemyMultiHost, PsycopgPool)

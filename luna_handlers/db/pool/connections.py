"""The connections of one host, per driver, lent out as sessions.

:class:`Connections` holds every connection to ONE host (the failover database decides which)
and lends them out as :class:`~luna_handlers.db.database.Session` objects, which run
:class:`~luna_handlers.db.prepared.Prepared` statements:

* PostgreSQL: :class:`~luna_handlers.db.dialects.postgresql.connections.AsyncpgConnections`,
  a minimal pool of asyncpg connections running statements SQLAlchemy compiled once;
* Oracle, :class:`EngineConnections`: the SQLAlchemy engine's own pool, statements executed
  through SQLAlchemy (python-oracledb).

Each also has an SQLAlchemy ``engine`` on the same host: its dialect compiles the
statements, and it gives the plain SQLAlchemy connections that migrations need.

They raise the driver's errors unchanged (:class:`~luna_handlers.db.pool.hostpool.HostPool`
classifies them), except that waiting too long for a free connection raises ``PoolBusy`` (a
busy pool says nothing about the host) and a pool that stopped lending raises ``PoolRetired``
(:mod:`luna_handlers.db.pool.places`).
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

from luna_handlers.db.database import Session
from luna_handlers.db.pool.places import PoolBusy, PoolRetired
from luna_handlers.db.prepared import Prepared, Row


class Connections(Protocol):
    """Every connection to one host, for one driver."""

    engine: AsyncEngine

    async def acquire(self) -> Session:
        """A session on a free connection (opened if needed); :class:`PoolBusy` when none
        frees up in time, the driver's error when the host cannot be reached."""
        ...

    def stop_lending(self) -> None:
        """Lend no more connections (the pool was replaced); sessions out may finish."""
        ...

    def terminate_all(self) -> None:
        """Close every socket now, in use or not, without asking the host."""
        ...

    async def close(self) -> None:
        """Lend no more and close the pool's connections gracefully."""
        ...


class EngineSession:
    """A connection of an :class:`EngineConnections`."""

    __slots__ = ("_conn", "_transaction")

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self._transaction: AsyncTransaction | None = None

    async def rows(self, prepared: Prepared, params: Mapping[str, Any]) -> Sequence[Row]:
        """Execute ``prepared`` through SQLAlchemy."""
        result = await self._conn.execute(prepared.statement(self._conn.dialect.name),
                                          dict(params))
        return [row._mapping for row in result] if result.returns_rows else []

    async def begin(self) -> None:
        """Leave autocommit for this connection (the pool restores it on return) and begin."""
        await self._conn.execution_options(isolation_level="READ COMMITTED")
        self._transaction = await self._conn.begin()

    async def commit(self) -> None:
        """Commit the transaction."""
        assert self._transaction is not None
        await self._transaction.commit()

    async def rollback(self) -> None:
        """Roll the transaction back."""
        assert self._transaction is not None
        await self._transaction.rollback()

    async def release(self) -> None:
        """Back to the engine's pool."""
        await self._conn.close()

    async def discard(self) -> None:
        """Abort the socket and tell the pool to forget the connection."""
        with contextlib.suppress(Exception):  # the connection may already be half gone
            driver = self._conn.sync_connection.connection.driver_connection  # type: ignore[union-attr]
            _terminate(driver)
        with contextlib.suppress(Exception):
            await self._conn.invalidate()


def _terminate(driver: Any) -> None:
    terminate = getattr(driver, "terminate", None)
    if callable(terminate):
        with contextlib.suppress(Exception):
            terminate()


class EngineDrivers:
    """The driver connections an SQLAlchemy engine opens, so that their sockets can be closed
    without asking the host (asyncpg's and python-oracledb's ``terminate()`` never block)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._drivers: weakref.WeakSet[Any] = weakref.WeakSet()
        event.listen(engine.sync_engine, "connect", self._track)

    def _track(self, dbapi_connection: Any, _record: Any) -> None:
        self._drivers.add(dbapi_connection.driver_connection)

    def terminate_all(self) -> None:
        """Abort every connection the engine opened that is still alive."""
        for driver in list(self._drivers):
            _terminate(driver)


class EngineConnections:
    """The pool of an SQLAlchemy engine bound to one host (python-oracledb on Oracle)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._drivers = EngineDrivers(engine)
        self._lending = True

    async def acquire(self) -> Session:
        """A session on a pooled connection; PoolBusy when the pool times out, PoolRetired
        once it stopped lending."""
        if not self._lending:
            raise PoolRetired
        try:
            return EngineSession(await self.engine.connect())
        except sa_exc.TimeoutError as exc:  # the pool's wait, not a socket's timeout
            raise PoolBusy from exc

    def stop_lending(self) -> None:
        """Lend no more (requests already waiting in SQLAlchemy's pool still get theirs)."""
        self._lending = False

    def terminate_all(self) -> None:
        """Abort every socket this engine opened; lend no more."""
        self._lending = False
        self._drivers.terminate_all()

    async def close(self) -> None:
        """Dispose of the engine's pool."""
        self._lending = False
        await self.engine.dispose()


async def warm(connections: Connections, size: int) -> None:
    """Open ``size`` of ``connections`` at once; they stay pooled, idle. The first
    failure is raised once every attempt has ended (unbounded: the caller times it)."""
    sessions = await asyncio.gather(*(connections.acquire() for _ in range(size)),
                                    return_exceptions=True)
    for session in sessions:
        if not isinstance(session, BaseException):
            await session.release()
    for session in sessions:
        if isinstance(session, BaseException):
            raise session

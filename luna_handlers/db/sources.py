"""The connections of one host, per driver, and the sessions requests run statements on.

A :class:`Source` holds every connection to ONE host (the failover manager decides which) and
lends them out as :class:`Session` objects, which run :class:`~luna_handlers.db.prepared.Prepared`
statements:

* PostgreSQL, :class:`AsyncpgSource`: an asyncpg pool; statements are compiled by SQLAlchemy
  once and run on asyncpg directly. A request then costs one pool checkout and one round
  trip: no SQLAlchemy pool, no greenlet hops, and no reset query when a connection comes back
  (asyncpg's default sends one, a second round trip per request). Nothing needs resetting:
  every statement commits by itself and none changes session state.
* Oracle, :class:`EngineSource`: the SQLAlchemy engine's own pool, statements executed
  through SQLAlchemy (python-oracledb).

Each source also has an SQLAlchemy ``engine`` on the same host: its dialect compiles the
statements, and it gives the plain SQLAlchemy connections that migrations need.

Sources raise the driver's errors unchanged (:class:`~luna_handlers.db.hostpool.HostPool`
classifies them), except that waiting too long for a free connection raises
:class:`PoolBusy`: a busy pool says nothing about the host.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import asyncpg
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from luna_handlers.db.prepared import Prepared, Row


class PoolBusy(Exception):
    """Every connection of the pool stayed in use for the whole acquire timeout."""


class Session(Protocol):
    """One borrowed connection: run statements, then give it back (or drop it)."""

    async def rows(self, prepared: Prepared, params: Mapping[str, Any]) -> Sequence[Row]:
        """Run ``prepared`` with ``params``; its rows (RETURNING rows for DML)."""
        ...

    async def release(self) -> None:
        """Give the connection back to its pool."""
        ...

    async def discard(self) -> None:
        """Close the connection's socket now (never waiting on the host) and forget it."""
        ...


class Source(Protocol):
    """Every connection to one host, for one driver."""

    engine: AsyncEngine

    async def acquire(self) -> Session:
        """A session on a free connection (opened if needed); :class:`PoolBusy` when none
        frees up in time, the driver's error when the host cannot be reached."""
        ...

    async def warm(self, size: int) -> None:
        """Open ``size`` connections at once; they stay pooled (unbounded: the caller times)."""
        ...

    def terminate_all(self) -> None:
        """Close every socket now, in use or not, without asking the host."""
        ...

    async def close(self) -> None:
        """Close the idle connections gracefully, once the sessions are released."""
        ...


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """asyncpg's ``reset`` hook: nothing to reset (see the module docstring)."""


class PgSession:
    """A connection of an :class:`AsyncpgSource`."""

    __slots__ = ("_conn", "_source")

    def __init__(self, source: AsyncpgSource, conn: Any) -> None:
        self._source = source
        self._conn = conn

    async def rows(self, prepared: Prepared, params: Mapping[str, Any]) -> Sequence[Row]:
        """Run ``prepared`` on asyncpg (kept there as a server-side prepared statement)."""
        sql, values = prepared.bind(self._source.dialect, params)
        records: Sequence[Row] = await self._conn.fetch(sql, *values)
        return records

    async def release(self) -> None:
        """Back to the pool; after :meth:`discard`, the pool has taken it back already."""
        try:
            await self._source.pool.release(self._conn)
        finally:
            self._source.free.release()

    async def discard(self) -> None:
        """Abort the socket; the pool replaces the connection at its next checkout."""
        with contextlib.suppress(Exception):  # the connection may already be gone
            self._conn.terminate()


class AsyncpgSource:
    """An asyncpg pool on one host, of fixed maximum size, opened lazily or by :meth:`warm`.

    ``connect_args`` are asyncpg's ``connect()`` arguments for that host. ``acquire_timeout``
    bounds the wait for a free connection; a connect has its own timeout.
    """

    def __init__(self, engine: AsyncEngine, size: int, acquire_timeout: float,
                 connect_args: Mapping[str, Any]) -> None:
        self.engine = engine
        self.dialect: Dialect = engine.dialect
        self.free = asyncio.Semaphore(size)
        self._acquire_timeout = acquire_timeout
        # min_size=0: connections open on demand or in warm(), never by a background task
        # that would keep knocking on a dead host; max_inactive_connection_lifetime=0: an
        # idle connection stays open (a reconnect would land on a request).
        self.pool = asyncpg.create_pool(
            min_size=0, max_size=size, reset=_keep_session, max_inactive_connection_lifetime=0,
            loop=asyncio.get_running_loop(), **connect_args)
        self._started = False

    async def _start(self) -> None:
        # With min_size=0 the pool's initialisation opens nothing: it never waits on a host.
        await self.pool
        self._started = True

    async def acquire(self) -> Session:
        """A session on a free connection; :class:`PoolBusy` after ``acquire_timeout``."""
        if not self._started:
            await self._start()
        # The semaphore counts free connections, so that waiting for one (PoolBusy) is told
        # apart from a slow connect to the host (the driver's own timeout, a host failure).
        try:
            async with asyncio.timeout(self._acquire_timeout):
                await self.free.acquire()
        except TimeoutError:
            raise PoolBusy from None
        try:
            conn = await self.pool.acquire()
        except BaseException:
            self.free.release()
            raise
        return PgSession(self, conn)

    async def warm(self, size: int) -> None:
        """Open ``size`` connections at once and put them back into the pool."""
        sessions = await asyncio.gather(*(self.acquire() for _ in range(size)),
                                        return_exceptions=True)
        for session in sessions:
            if not isinstance(session, BaseException):
                await session.release()
        for session in sessions:
            if isinstance(session, BaseException):
                raise session

    def terminate_all(self) -> None:
        """Abort every connection of the pool (a pool never started has none)."""
        if self._started:
            self.pool.terminate()

    async def close(self) -> None:
        """Close the pool (it waits for the connections in use) and the engine."""
        if self._started:
            await self.pool.close()
        await self.engine.dispose()


class EngineSession:
    """A connection of an :class:`EngineSource`."""

    __slots__ = ("_conn",)

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def rows(self, prepared: Prepared, params: Mapping[str, Any]) -> Sequence[Row]:
        """Execute ``prepared`` through SQLAlchemy."""
        result = await self._conn.execute(prepared.statement(self._conn.dialect.name),
                                          dict(params))
        return [row._mapping for row in result] if result.returns_rows else []

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


class EngineSource:
    """The pool of an SQLAlchemy engine bound to one host (python-oracledb on Oracle)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # Driver connections this engine opened, to close their sockets without the host.
        self._drivers: weakref.WeakSet[Any] = weakref.WeakSet()
        event.listen(engine.sync_engine, "connect", self._track)

    def _track(self, dbapi_connection: Any, _record: Any) -> None:
        self._drivers.add(dbapi_connection.driver_connection)

    async def acquire(self) -> Session:
        """A session on a pooled connection; :class:`PoolBusy` when the pool times out."""
        try:
            return EngineSession(await self.engine.connect())
        except sa_exc.TimeoutError as exc:  # the pool's wait, not a socket's timeout
            raise PoolBusy from exc

    async def warm(self, size: int) -> None:
        """Open ``size`` connections at once; they stay pooled."""
        opened = await asyncio.gather(*(self.engine.connect().start() for _ in range(size)),
                                      return_exceptions=True)
        for conn in opened:
            if isinstance(conn, AsyncConnection):
                await conn.close()
        for conn in opened:
            if isinstance(conn, BaseException):
                raise conn

    def terminate_all(self) -> None:
        """Abort every socket this engine opened."""
        for driver in list(self._drivers):
            _terminate(driver)

    async def close(self) -> None:
        """Dispose of the engine's pool."""
        await self.engine.dispose()

"""The connections of one host, per driver, and the sessions requests run statements on.

A :class:`Source` holds every connection to ONE host (the failover manager decides which) and
lends them out as :class:`Session` objects, which run :class:`~luna_handlers.db.prepared.Prepared`
statements:

* PostgreSQL, :class:`AsyncpgSource`: a minimal pool of asyncpg connections; statements are
  compiled by SQLAlchemy once and run on asyncpg directly. A request then costs a list pop
  and one round trip: no SQLAlchemy pool or greenlet hops, and no reset query when a
  connection comes back (asyncpg's own pool sends one, a second round trip per request).
  Nothing needs resetting: every statement commits by itself and none changes session state.
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

from luna_handlers.db.places import Places, PoolBusy
from luna_handlers.db.prepared import Prepared, Row


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

    def terminate_all(self) -> None:
        """Close every socket now, in use or not, without asking the host."""
        ...

    async def close(self) -> None:
        """Close the idle connections gracefully, once the sessions are released."""
        ...


class PgSession:
    """A connection of an :class:`AsyncpgSource`."""

    __slots__ = ("_conn", "_source")

    def __init__(self, source: AsyncpgSource, conn: asyncpg.Connection) -> None:
        self._source = source
        self._conn = conn

    async def rows(self, prepared: Prepared, params: Mapping[str, Any]) -> Sequence[Row]:
        """Run ``prepared`` on asyncpg (kept there as a server-side prepared statement)."""
        sql, values = prepared.bind(self._source.dialect, params)
        records: Sequence[Row] = await self._conn.fetch(sql, *values)
        return records

    async def release(self) -> None:
        """Back to the pool (a closed connection is dropped there)."""
        self._source.give_back(self._conn)

    async def discard(self) -> None:
        """Abort the socket; the pool opens a new connection when one is next needed."""
        with contextlib.suppress(Exception):  # the connection may already be gone
            self._conn.terminate()


class AsyncpgSource:
    """Up to ``size`` asyncpg connections to one host, opened on demand or by :meth:`warm`.

    Deliberately small: a stack of idle connections and the free :class:`Places`. A
    connection comes back as it is (no reset query), is reused while open, and is replaced
    when it was closed; nothing runs in the background, so a dead host is never knocked on
    between requests. ``connect_args`` are asyncpg's ``connect()`` arguments for that host
    (their ``timeout`` bounds each connect); ``acquire_timeout`` bounds the wait for a free
    place, so that it is told apart from a slow connect (a host failure).
    """

    def __init__(self, engine: AsyncEngine, size: int, acquire_timeout: float,
                 connect_args: Mapping[str, Any]) -> None:
        self.engine = engine
        self.dialect: Dialect = engine.dialect
        self._places = Places(size, acquire_timeout)  # connections to lend, open or not
        self._idle: list[asyncpg.Connection] = []
        self._open: set[asyncpg.Connection] = set()
        self._connect_args = dict(connect_args)
        self._closed = False

    async def acquire(self) -> Session:
        """A session on an idle or new connection; :class:`PoolBusy` after
        ``acquire_timeout`` without a free place."""
        if self._closed:
            raise PoolBusy
        await self._places.take()
        while self._idle:
            conn = self._idle.pop()
            if not conn.is_closed():
                return PgSession(self, conn)
            self._open.discard(conn)
        try:
            conn = await asyncpg.connect(**self._connect_args)
        except BaseException:
            self._places.give()
            raise
        self._open.add(conn)
        if self._closed:  # closed while connecting: nobody may use it
            self.give_back(conn)
            raise PoolBusy
        return PgSession(self, conn)

    def give_back(self, conn: asyncpg.Connection) -> None:
        """Return a lent connection: idle again, or dropped when closed (or the pool is)."""
        if conn.is_closed() or self._closed:
            conn.terminate()  # no-op when closed; a closed pool's stragglers are cut
            self._open.discard(conn)
        else:
            self._idle.append(conn)
        self._places.give()

    def terminate_all(self) -> None:
        """Abort every connection, idle or lent out."""
        for conn in list(self._open):
            conn.terminate()
        self._open.clear()
        self._idle.clear()

    async def close(self) -> None:
        """Close the idle connections gracefully; those still lent out are aborted when
        they come back."""
        self._closed = True
        idle, self._idle = self._idle, []
        # Still in _open meanwhile: a close that overruns is cut by terminate_all().
        await asyncio.gather(*(conn.close() for conn in idle), return_exceptions=True)
        self._open.difference_update(idle)
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

    def terminate_all(self) -> None:
        """Abort every socket this engine opened."""
        for driver in list(self._drivers):
            _terminate(driver)

    async def close(self) -> None:
        """Dispose of the engine's pool."""
        await self.engine.dispose()


async def warm(source: Source, size: int) -> None:
    """Open ``size`` connections of ``source`` at once; they stay pooled, idle. The first
    failure is raised once every attempt has ended (unbounded: the caller times it)."""
    sessions = await asyncio.gather(*(source.acquire() for _ in range(size)),
                                    return_exceptions=True)
    for session in sessions:
        if not isinstance(session, BaseException):
            await session.release()
    for session in sessions:
        if isinstance(session, BaseException):
            raise session

"""The request connections of one PostgreSQL host: a minimal pool over asyncpg.

A request takes an idle connection, runs one statement that SQLAlchemy compiled once
(:class:`~luna_handlers.db.prepared.Prepared`), and gives the connection back as it is: no
SQLAlchemy pool or greenlet hops, and no reset query (asyncpg's own pool sends one, a second
round trip per request). Nothing needs resetting: every statement commits by itself and none
changes session state. A connection closed meanwhile is replaced on demand; nothing runs in
the background, so a dead host is not knocked on between requests.

Bounds, so that no request ever hangs:

* the wait for a free connection (:class:`~luna_handlers.db.pool.places.Places`, PoolBusy);
* each connect (asyncpg's ``timeout``) and each statement (``command_timeout``);
* a watchdog for what those miss (asyncpg closes statements evicted from its cache without
  a timeout, for one): a session lent for longer than ``query_timeout`` plus a second has
  its socket cut, which ends the request with a connectivity error. Sessions are lent in
  order with the same bound, so one timer armed for the oldest serves them all.

After a switch the old pool stops lending at once (:meth:`AsyncpgConnections.stop_lending`):
requests still waiting for one of its connections go to the new pool, while those already
running finish there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine

from luna_handlers.db.database import Session
from luna_handlers.db.pool.connections import EngineDrivers
from luna_handlers.db.pool.places import Places, PoolRetired
from luna_handlers.db.prepared import Prepared, Row

logger = logging.getLogger("luna_handlers.db")

#: How far past ``query_timeout`` the watchdog lets a session run before cutting it.
WATCHDOG_SLACK = 1.0
#: asyncpg closes the statements it evicts from its cache without a timeout: keep every
#: statement of ours (a few hundred shapes at most) and never expire them.
STATEMENT_CACHE = {"statement_cache_size": 1024, "max_cached_statement_lifetime": 0}


class AsyncpgSession:
    """A connection of an :class:`AsyncpgConnections`."""

    __slots__ = ("_conn", "_connections")

    def __init__(self, connections: AsyncpgConnections, conn: asyncpg.Connection) -> None:
        self._connections = connections
        self._conn = conn

    async def rows(self, prepared: Prepared, params: Mapping[str, Any]) -> Sequence[Row]:
        """Run ``prepared`` on asyncpg (kept there as a server-side prepared statement)."""
        sql, values = prepared.bind(self._connections.dialect, params)
        records: Sequence[Row] = await self._conn.fetch(sql, *values)
        return records

    async def begin(self) -> None:
        """BEGIN (the connection is in autocommit between transactions)."""
        await self._conn.execute("BEGIN")

    async def commit(self) -> None:
        """COMMIT."""
        await self._conn.execute("COMMIT")

    async def rollback(self) -> None:
        """ROLLBACK."""
        await self._conn.execute("ROLLBACK")

    async def release(self) -> None:
        """Back to the pool (a closed connection is dropped there)."""
        self._connections.give_back(self)

    async def discard(self) -> None:
        """Abort the socket (the place stays taken until :meth:`release`)."""
        with contextlib.suppress(Exception):  # the connection may already be gone
            self._conn.terminate()


class AsyncpgConnections:
    """Up to ``size`` asyncpg connections to one host, opened on demand or by ``warm()``.

    ``connect_args`` are asyncpg's ``connect()`` arguments for that host; ``acquire_timeout``
    bounds the wait for a free place (told apart from a slow connect, a host failure);
    ``query_timeout`` is the statement timeout the watchdog backs up.
    """

    def __init__(self, engine: AsyncEngine, size: int, acquire_timeout: float,
                 query_timeout: float, connect_args: Mapping[str, Any]) -> None:
        self.engine = engine
        self.dialect: Dialect = engine.dialect
        self._places = Places(size, acquire_timeout)  # connections to lend, open or not
        self._idle: list[asyncpg.Connection] = []
        self._open: set[asyncpg.Connection] = set()
        self._connect_args = {**STATEMENT_CACHE, **connect_args}
        self._lending = True
        self._closed = False
        # Sessions lent, oldest first, with the time by which they must be back.
        self._lent: dict[AsyncpgSession, float] = {}
        self._limit = query_timeout + WATCHDOG_SLACK
        self._watchdog: asyncio.TimerHandle | None = None
        # Connections of the SQLAlchemy engine (migrations, schema checks), for terminate_all.
        self._engine_drivers = EngineDrivers(engine)

    async def acquire(self) -> Session:
        """A session on an idle or new connection: PoolBusy after ``acquire_timeout``
        without a free place, PoolRetired once the pool stopped lending."""
        await self._places.take()
        if not self._lending:  # stopped while this request was being handed its place
            self._places.give()
            raise PoolRetired
        conn = None
        while self._idle and conn is None:
            conn = self._idle.pop()
            if conn.is_closed():
                self._open.discard(conn)
                conn = None
        if conn is None:
            try:
                conn = await asyncpg.connect(**self._connect_args)
            except BaseException:
                self._places.give()
                raise
            self._open.add(conn)
        session = AsyncpgSession(self, conn)
        if not self._lending:  # stopped while connecting: nobody may use it
            self.give_back(session)
            raise PoolRetired
        self._lend(session)
        return session

    def _lend(self, session: AsyncpgSession) -> None:
        loop = asyncio.get_running_loop()
        self._lent[session] = loop.time() + self._limit
        if self._watchdog is None:
            self._watchdog = loop.call_at(self._lent[session], self._overdue, loop)

    def _overdue(self, loop: asyncio.AbstractEventLoop) -> None:
        self._watchdog = None
        now = loop.time()
        for session, deadline in list(self._lent.items()):
            if deadline > now:
                self._watchdog = loop.call_at(deadline, self._overdue, loop)
                return
            del self._lent[session]
            logger.warning("a database session on %s ran past the statement timeout "
                           "(%.1f s): its connection is cut", self._host(), self._limit)
            session._conn.terminate()  # the request fails as "connection lost"

    def _host(self) -> str:
        return f"{self._connect_args.get('host')}:{self._connect_args.get('port')}"

    def give_back(self, session: AsyncpgSession) -> None:
        """Return a lent session: its connection idle again, or dropped when closed (or the
        pool is)."""
        self._lent.pop(session, None)
        conn = session._conn
        if conn.is_closed() or self._closed:
            conn.terminate()  # no-op when closed; a closed pool's stragglers are cut
            self._open.discard(conn)
        else:
            self._idle.append(conn)
        self._places.give()

    def stop_lending(self) -> None:
        """Lend nothing more; requests waiting for a place get PoolRetired now."""
        self._lending = False
        self._places.close()

    def terminate_all(self) -> None:
        """Abort every connection: idle, lent out, and the engine's; lend nothing more."""
        self.stop_lending()
        self._closed = True
        for conn in self._open:
            with contextlib.suppress(Exception):
                conn.terminate()
        self._engine_drivers.terminate_all()
        self._open.clear()
        self._idle.clear()

    async def close(self) -> None:
        """Lend nothing more and close the idle connections gracefully; connections still
        lent out are aborted when they come back."""
        self.stop_lending()
        self._closed = True
        if self._watchdog is not None and not self._lent:
            self._watchdog.cancel()
            self._watchdog = None
        idle, self._idle = self._idle, []
        # Still in _open meanwhile: a close that overruns is cut by terminate_all().
        await asyncio.gather(*(conn.close() for conn in idle), return_exceptions=True)
        self._open.difference_update(idle)
        await self.engine.dispose()

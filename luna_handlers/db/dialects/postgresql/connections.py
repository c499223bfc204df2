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
import socket
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
from asyncpg.prepared_stmt import PreparedStatement
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine

from luna_handlers.db.database import Session
from luna_handlers.db.pool.connections import EngineDrivers
from luna_handlers.db.pool.places import Places, PoolRetired
from luna_handlers.db.prepared import Prepared, Row
from luna_handlers.errors import DatabaseUnavailable

logger = logging.getLogger("luna_handlers.db")

#: TCP keepalive on every socket, so that a peer that went silent (power loss, a dropped
#: route) is noticed with no query running: first probe after KEEPIDLE s idle, then every
#: KEEPINTVL s, dead after KEEPCNT unanswered; TCP_USER_TIMEOUT caps how long sent data may
#: stay unacknowledged (a query sent into a black hole), in ms. Linux option names.
KEEPIDLE, KEEPINTVL, KEEPCNT, USER_TIMEOUT_MS = 5, 1, 3, 8000


def set_keepalive(conn: asyncpg.Connection) -> None:
    """Set the keepalive options above on ``conn``'s TCP socket (none for a Unix socket)."""
    transport = getattr(conn, "_transport", None)  # asyncpg has no public accessor
    sock = None if transport is None else transport.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", KEEPIDLE), ("TCP_KEEPINTVL", KEEPINTVL),
                        ("TCP_KEEPCNT", KEEPCNT), ("TCP_USER_TIMEOUT", USER_TIMEOUT_MS)):
        option = getattr(socket, name, None)  # absent on some platforms: keep the rest
        if option is not None:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)


#: How far past ``query_timeout`` the watchdog lets a session run before cutting it.
WATCHDOG_SLACK = 1.0


class AsyncpgSession:
    """A connection of an :class:`AsyncpgConnections`."""

    __slots__ = ("_conn", "_connections")

    def __init__(self, connections: AsyncpgConnections, conn: asyncpg.Connection) -> None:
        self._connections = connections
        self._conn = conn

    async def rows(self, prepared: Prepared, params: Mapping[str, Any]) -> Sequence[Row]:
        """Run ``prepared`` on asyncpg: a server-side prepared statement (asyncpg's cache),
        or, without named statements, an unnamed one parsed in the same round trip."""
        if self._conn.is_closed():
            # Cut (a switch) or lost before anything was sent: nothing can have happened.
            raise DatabaseUnavailable("the database connection was closed before the "
                                      "statement was sent; retry")
        sql, values = prepared.bind(self._connections.dialect, params)
        if self._connections.named:
            records: Sequence[Row] = await self._conn.fetch(sql, *values)
            return records
        statement = await self._connections.unnamed(self._conn, sql)
        unnamed: Sequence[Row] = await statement.fetch(*values)
        return unnamed

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
    ``query_timeout`` is the statement timeout the watchdog backs up. ``named`` False means
    no named statement may be kept (a pooler in transaction mode, see
    :mod:`~luna_handlers.db.dialects.postgresql.pooler`): ``connect_args`` then turn asyncpg's
    cache off, and the statements are kept here instead, unnamed.
    """

    def __init__(self, engine: AsyncEngine, size: int, acquire_timeout: float,
                 query_timeout: float, connect_args: Mapping[str, Any], *,
                 named: bool = True) -> None:
        self.engine = engine
        self.dialect: Dialect = engine.dialect
        self.named = named
        # Per connection: the unnamed statements it described once, by SQL text.
        self._unnamed: dict[asyncpg.Connection, dict[str, PreparedStatement]] = {}
        self._places = Places(size, acquire_timeout)  # connections to lend, open or not
        self._idle: list[asyncpg.Connection] = []
        self._open: set[asyncpg.Connection] = set()
        self._connect_args = dict(connect_args)
        self._lending = True
        self._closed = False
        self._connecting: set[asyncio.Task[asyncpg.Connection]] = set()
        # Sessions lent, oldest first, with the time by which they must be back.
        self._lent: dict[AsyncpgSession, float] = {}
        self._limit = query_timeout + WATCHDOG_SLACK
        self._watchdog: asyncio.TimerHandle | None = None
        # Connections of the SQLAlchemy engine (migrations, schema checks), for terminate_all.
        self._engine_drivers = EngineDrivers(engine)

    async def acquire(self, scan: bool = False) -> Session:
        """A session on an idle or new connection (scans too: a
        :class:`~luna_handlers.db.pool.connections.ScanShare` gives them a set of their
        own): PoolBusy after ``acquire_timeout`` without a free place, PoolRetired once the
        pool stopped lending."""
        await self._places.take()
        if not self._lending:  # stopped while this request was being handed its place
            self._places.give()
            raise PoolRetired
        conn = None
        while self._idle and conn is None:
            conn = self._idle.pop()
            if conn.is_closed():
                self._open.discard(conn)
                self._unnamed.pop(conn, None)
                conn = None
        if conn is None:
            try:
                conn = await self._connect()
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

    async def _connect(self) -> asyncpg.Connection:
        """A new connection with keepalives set; PoolRetired if :meth:`cut` ends it first."""
        task = asyncio.ensure_future(asyncpg.connect(**self._connect_args))
        self._connecting.add(task)
        try:
            conn: asyncpg.Connection = await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and (current is None or not current.cancelling()):
                raise PoolRetired from None  # cut() ended it: nothing was sent
            raise
        finally:
            self._connecting.discard(task)
        set_keepalive(conn)
        return conn

    async def unnamed(self, conn: asyncpg.Connection, sql: str) -> PreparedStatement:
        """``sql`` as an unnamed statement of ``conn``, described once (a round trip), then
        re-parsed by asyncpg with every execution in that execution's one round trip: no
        statement outlives its transaction on the server, yet the shape's types and row
        decoding are known. At most one entry per statement shape and connection."""
        statements = self._unnamed.setdefault(conn, {})
        statement = statements.get(sql)
        if statement is None:
            # name="": unnamed; asyncpg marks it "unprepared" when its cache is off.
            statement = statements[sql] = await conn.prepare(sql, name="")
        return statement

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
            self._unnamed.pop(conn, None)
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
        self._unnamed.clear()

    def cut(self) -> list[int]:
        """Abort every connection and connect in progress; the server pids of those lent."""
        pids = [session._conn.get_server_pid() for session in self._lent]
        for task in self._connecting:
            task.cancel()
        self.terminate_all()
        return pids

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
        for conn in idle:
            self._unnamed.pop(conn, None)
        await self.engine.dispose()

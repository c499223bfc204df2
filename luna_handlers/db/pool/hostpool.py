"""A pool whose every connection goes to ONE host, with driver errors classified.

Requests get short sessions (``read()``/``write()``) on the host's
:class:`~luna_handlers.db.pool.connections.Connections`; a driver error is classified once
here, by the Backend's ``classify``, and turned into one of the service's database errors.

The failover database keeps one :class:`HostPool` at a time and replaces it as a unit;
alone, a HostPool is the whole database layer for a single-host setup (and for tests).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from luna_handlers.db.changes import ChangeFeed
from luna_handlers.db.database import Session
from luna_handlers.db.hosts import HostPort
from luna_handlers.db.pool.backend import Backend
from luna_handlers.db.pool.faults import ErrorKind
from luna_handlers.db.pool.places import PoolBusy, PoolRetired
from luna_handlers.errors import (
    DatabaseFailure,
    DatabaseOutcomeUnknown,
    DatabaseSwitched,
    DatabaseUnavailable,
)

logger = logging.getLogger("luna_handlers.db")

Listener = Callable[[ErrorKind | None, BaseException | None], None]


def _ignore(_kind: ErrorKind | None, _exc: BaseException | None) -> None:
    return None


class HostPool:
    """The :class:`~luna_handlers.db.pool.connections.Connections` of ``backend`` on
    ``host``, reporting each outcome.

    ``listener(kind, exc)`` is called with ``(None, None)`` after a success and with the
    error kind after a driver failure; the failover database counts them. ``label`` names
    the pool in logs and status (the host by default).
    """

    def __init__(self, backend: Backend, host: HostPort, generation: int = 1,
                 listener: Listener = _ignore, *, label: str | None = None) -> None:
        self.backend = backend
        self.host = host
        self.connections = backend.connections(host)
        self.engine = self.connections.engine
        self.label = str(host) if label is None else label
        self.generation = generation
        self.listener = listener
        self._classify = backend.classify
        self._errors = backend.errors

    @property
    def dialect_name(self) -> str:
        """``postgresql`` or ``oracle``."""
        return self.engine.dialect.name

    def classify(self, exc: BaseException) -> ErrorKind:
        """The :class:`ErrorKind` of a driver error on this dialect."""
        return self._classify(exc)

    def _unavailable(self, exc: BaseException, stage: str) -> DatabaseUnavailable:
        kind = self._classify(exc)
        self.listener(kind, exc)
        self._log(kind, exc, stage)
        return DatabaseUnavailable(f"cannot connect to the database ({kind.value})")

    def _log(self, kind: ErrorKind, exc: BaseException, stage: str) -> None:
        # The driver's message can carry statement parameters; the type and kind suffice.
        level = logging.ERROR if kind is ErrorKind.AUTH else logging.WARNING
        logger.log(level, "database %s failed on %s: %s (%s)", stage, self.label,
                   type(exc).__name__, kind.value)

    def read(self) -> AbstractAsyncContextManager[Session]:
        """A session for reads; a broken read is reported as safe to retry."""
        return Borrow(self, write=False)

    def write(self) -> AbstractAsyncContextManager[Session]:
        """A session for writes (autocommit); one lost on the way is "outcome unknown"."""
        return Borrow(self, write=True)

    def transaction(self) -> AbstractAsyncContextManager[Session]:
        """A session in one transaction (see ``Database.transaction``)."""
        return TransactionBorrow(self)

    async def acquire(self) -> Session:
        """A session from the connections, its failures classified and reported."""
        try:
            return await self.connections.acquire()
        except PoolRetired:
            raise DatabaseSwitched("the database pool moved to another host; retry") from None
        except PoolBusy:
            # Not the host's fault: nothing is reported, no switch can follow.
            raise DatabaseUnavailable("every database connection is busy; retry") from None
        except self._errors as exc:
            raise self._unavailable(exc, "connect") from exc

    async def failed(self, session: Session, exc: BaseException, *, write: bool) -> Exception:
        """The error a request gets for a driver failure on ``session`` (reported, and the
        session discarded when its connection is lost)."""
        kind = self._classify(exc)
        if kind is ErrorKind.CONNECTIVITY:
            await session.discard()
        return self._reported(exc, kind, write=write)

    def _reported(self, exc: BaseException, kind: ErrorKind, *, write: bool) -> Exception:
        """Report a driver failure to the listener and the log; the service error for it."""
        self.listener(kind, exc)
        self._log(kind, exc, "write" if write else "read")
        if kind is ErrorKind.READ_ONLY:
            # The host refused the write: nothing was applied.
            return DatabaseUnavailable("the database host is read-only; retry")
        if kind is ErrorKind.CONNECTIVITY:
            if write:
                return DatabaseOutcomeUnknown(
                    "the database connection was lost; the change may or may not be saved")
            return DatabaseUnavailable("the database connection was lost; retry")
        if kind is ErrorKind.AUTH:
            return DatabaseUnavailable("the database refused the service's credentials")
        return DatabaseFailure("the database rejected the statement")

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        """A plain SQLAlchemy connection to this host, outside the request pool (migrations,
        schema checks); its failures become service errors like a session's."""
        try:
            conn = await self.engine.connect()
        except self._errors as exc:
            raise self._unavailable(exc, "connect") from exc
        try:
            yield conn
        except self._errors as exc:
            raise self._reported(exc, self._classify(exc), write=True) from exc
        finally:
            await conn.close()

    def status(self) -> dict[str, Any]:
        """Facts for the health check."""
        return {"host": self.label, "generation": self.generation}

    def active_host(self) -> tuple[HostPort, int]:
        """The host requests use and the generation of this pool."""
        return self.host, self.generation

    def changes(self, on_change: Callable[[str], None], on_reset: Callable[[], None],
                name: str | None = None) -> ChangeFeed | None:
        """A change feed on this host (see ``Database.changes``)."""
        return self.backend.feed(self.active_host, on_change, on_reset, name)

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.connections.close()


class Borrow:
    """``async with pool.read()/write() as session``: one session borrowed from a host pool
    and given back. A class rather than a generator-based context manager, since it wraps
    every statement of every request."""

    __slots__ = ("_pool", "_session", "_write")

    def __init__(self, pool: HostPool, *, write: bool) -> None:
        self._pool = pool
        self._write = write

    async def __aenter__(self) -> Session:
        self._session = await self._pool.acquire()
        return self._session

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, _tb: TracebackType | None) -> None:
        pool, session = self._pool, self._session
        try:
            if exc is not None:
                if isinstance(exc, pool._errors):
                    raise await pool.failed(session, exc, write=self._write) from exc
                # Cancelled mid-statement, say: what the connection is doing is unknown, and
                # a graceful return would wait on the host for the statement to end.
                await session.discard()
        finally:
            await session.release()
        if exc is None:
            pool.listener(None, None)


class TransactionBorrow:
    """``async with pool.transaction() as session``: BEGIN on entry; COMMIT when the block
    ends without an error, ROLLBACK otherwise.

    Only a failure of the COMMIT itself can leave the outcome unknown: a connection lost
    before it was sent rolled everything back on the server, so that is "unavailable".
    """

    __slots__ = ("_pool", "_session")

    def __init__(self, pool: HostPool) -> None:
        self._pool = pool

    async def __aenter__(self) -> Session:
        self._session = await self._pool.acquire()
        try:
            await self._session.begin()
        except BaseException as exc:
            await self._abandon(exc)
            raise
        return self._session

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, _tb: TracebackType | None) -> None:
        pool, session = self._pool, self._session
        if exc is not None:
            await self._abandon(exc)
            return
        try:
            await session.commit()
        except pool._errors as commit_exc:
            try:
                raise await pool.failed(session, commit_exc, write=True) from commit_exc
            finally:
                await session.release()
        except BaseException:
            await session.discard()  # cancelled during the COMMIT: the connection is unknown
            await session.release()
            raise
        await session.release()
        pool.listener(None, None)

    async def _abandon(self, exc: BaseException) -> None:
        """Roll back (or drop the connection) after ``exc``; a driver error is raised as
        the service error for it, nothing having been committed."""
        pool, session = self._pool, self._session
        try:
            driver_error = isinstance(exc, pool._errors)
            lost = driver_error and pool.classify(exc) is ErrorKind.CONNECTIVITY
            if isinstance(exc, Exception) and not lost:
                try:
                    await session.rollback()
                except Exception:  # unusable now; nothing was committed either way
                    await session.discard()
            elif not lost:
                await session.discard()  # cancelled mid-statement, say
            if driver_error:
                raise await pool.failed(session, exc, write=False) from exc
        finally:
            await session.release()

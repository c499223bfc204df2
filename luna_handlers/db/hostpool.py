"""A pool whose every connection goes to ONE host, with driver errors classified.

The failover manager keeps one :class:`HostPool` at a time and replaces it as a unit; alone,
a HostPool is the whole database layer for a single-host setup (and for tests).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from luna_handlers.db.dialects import ErrorKind, oracle, postgresql
from luna_handlers.errors import DatabaseFailure, DatabaseOutcomeUnknown, DatabaseUnavailable

logger = logging.getLogger("luna_handlers.db")

CLASSIFIERS: dict[str, Callable[[BaseException], ErrorKind]] = {
    "postgresql": postgresql.classify,
    "oracle": oracle.classify,
}
# What can come out of a session besides SQLAlchemy's wrappers: raw socket errors from
# connect, and the driver's own errors from statements run on the driver directly
# (luna_handlers.db.prepared).
COMMON_ERRORS: tuple[type[BaseException], ...] = (SQLAlchemyError, OSError, TimeoutError,
                                                  EOFError)
DRIVER_ERRORS: dict[str, tuple[type[BaseException], ...]] = {
    "postgresql": COMMON_ERRORS + postgresql.DRIVER_ERRORS,
    "oracle": COMMON_ERRORS + oracle.DRIVER_ERRORS,
}

Listener = Callable[[ErrorKind | None, BaseException | None], None]


def _ignore(_kind: ErrorKind | None, _exc: BaseException | None) -> None:
    return None


class HostPool:
    """Connections of one :class:`AsyncEngine` (one host), reporting each outcome.

    ``listener(kind, exc)`` is called with ``(None, None)`` after a success and with the
    error kind after a driver failure; the failover manager counts them.
    """

    def __init__(self, engine: AsyncEngine, label: str, generation: int = 1,
                 listener: Listener = _ignore) -> None:
        self.engine = engine
        self.label = label
        self.generation = generation
        self.listener = listener
        self._classify = CLASSIFIERS[engine.dialect.name]
        self._errors = DRIVER_ERRORS[engine.dialect.name]

    @property
    def dialect_name(self) -> str:
        """``postgresql`` or ``oracle``."""
        return self.engine.dialect.name

    def classify(self, exc: BaseException) -> ErrorKind:
        """The :class:`ErrorKind` of a driver error on this dialect."""
        return self._classify(exc)

    async def _connect(self) -> AsyncConnection:
        try:
            return await self.engine.connect()
        except self._errors as exc:
            kind = self._classify(exc)
            self.listener(kind, exc)
            self._log(kind, exc, "connect")
            raise DatabaseUnavailable(f"cannot connect to the database ({kind.value})") from exc

    def _log(self, kind: ErrorKind, exc: BaseException, stage: str) -> None:
        # The driver's message can carry statement parameters; the type and kind suffice.
        level = logging.ERROR if kind is ErrorKind.AUTH else logging.WARNING
        logger.log(level, "database %s failed on %s: %s (%s)", stage, self.label,
                   type(exc).__name__, kind.value)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads; a broken read is reported as safe to retry."""
        conn = await self._connect()
        try:
            yield conn
            await conn.rollback()
        except self._errors as exc:
            raise await self._failed(conn, exc, write=False) from exc
        finally:
            await conn.close()
        self.listener(None, None)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A connection for writes (autocommit); one lost on the way is "outcome unknown"."""
        conn = await self._connect()
        try:
            yield conn
            await conn.commit()
        except self._errors as exc:
            raise await self._failed(conn, exc, write=True) from exc
        finally:
            await conn.close()
        self.listener(None, None)

    async def _failed(self, conn: AsyncConnection, exc: BaseException, *,
                      write: bool) -> Exception:
        kind = self._classify(exc)
        if kind is ErrorKind.CONNECTIVITY:
            await _discard(conn)
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

    def status(self) -> dict[str, Any]:
        """Facts for the health check."""
        return {"host": self.label, "generation": self.generation}

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


async def _discard(conn: AsyncConnection) -> None:
    """Drop a broken connection from the pool without waiting on its host.

    A statement run on the driver directly bypasses SQLAlchemy, which then cannot know the
    connection broke; the socket is closed at once (``terminate()`` never blocks, a graceful
    close would wait on a hung host) and the pool told to forget the connection.
    """
    with contextlib.suppress(Exception):  # the connection may already be half gone
        driver = conn.sync_connection.connection.driver_connection  # type: ignore[union-attr]
        terminate = getattr(driver, "terminate", None)
        if callable(terminate):
            terminate()
    with contextlib.suppress(Exception):
        await conn.invalidate()

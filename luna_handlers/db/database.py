"""The face of the database layer: :class:`Database`, and the :class:`Session` it lends.

Implementations: :class:`luna_handlers.db.pool.failover.FailoverDatabase` (what
:func:`luna_handlers.db.open_database` returns) and, for a single host and the tests,
:class:`luna_handlers.db.pool.hostpool.HostPool`. Both raise only errors of
:mod:`luna_handlers.errors` from ``read()``/``write()``:

- ``DatabaseUnavailable``: nothing was changed, a retry is safe;
- ``DatabaseOutcomeUnknown``: a write may or may not have been committed;
- ``DatabaseFailure``: the database rejected the statement (not a connectivity problem).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from luna_handlers.db.changes import ChangeFeed
from luna_handlers.db.hosts import HostPort
from luna_handlers.db.prepared import Prepared, Row

#: The isolation level of every connection the dialects open: each statement commits itself.
AUTOCOMMIT = "AUTOCOMMIT"


class Session(Protocol):
    """One borrowed connection: run statements, then :meth:`release` it; a broken one is
    :meth:`discard`-ed first (and still released: that frees its place)."""

    async def rows(self, prepared: Prepared, params: Mapping[str, Any]) -> Sequence[Row]:
        """Run ``prepared`` with ``params``; its rows (RETURNING rows for DML)."""
        ...

    async def begin(self) -> None:
        """Start a transaction (sessions of ``Database.transaction()`` only)."""
        ...

    async def commit(self) -> None:
        """Commit the transaction :meth:`begin` started."""
        ...

    async def rollback(self) -> None:
        """Roll back the transaction :meth:`begin` started."""
        ...

    async def release(self) -> None:
        """Give the connection back to its pool."""
        ...

    async def discard(self) -> None:
        """Close the connection's socket now, never waiting on the host."""
        ...


class Database(Protocol):
    """What the DB context and the application need from the database layer."""

    @property
    def dialect_name(self) -> str:
        """``postgresql`` or ``oracle``."""
        ...

    def read(self) -> AbstractAsyncContextManager[Session]:
        """A session for reads."""
        ...

    def scan(self) -> AbstractAsyncContextManager[Session]:
        """A session for lists, counts and searches: a read on connections of their own
        (the scan share: its own size, wait and statement timeout), so that slow scans
        never hold the connections of reads by id and writes. Over the share:
        ``ScansBusy``; past its statement timeout: ``ScanTimedOut``."""
        ...

    def write(self) -> AbstractAsyncContextManager[Session]:
        """A session for writes.

        Connections are in autocommit: each statement commits by itself, so a change that
        needs several statements must be one statement (a CTE), or a :meth:`transaction`.
        """
        ...

    def transaction(self) -> AbstractAsyncContextManager[Session]:
        """A session whose statements are one transaction, committed when the block ends
        without an error and rolled back otherwise: all or nothing.

        A connection lost before the COMMIT was sent raises ``DatabaseUnavailable`` (nothing
        was stored, a retry is safe); lost while the COMMIT was on its way,
        ``DatabaseOutcomeUnknown``.
        """
        ...

    def connection(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A plain SQLAlchemy connection to the current host, outside the request pool, for
        migrations and schema checks (autocommit, unless they set an isolation level)."""
        ...

    def status(self) -> dict[str, Any]:
        """Facts for the health check (no secrets)."""
        ...

    def active_host(self) -> tuple[HostPort, int] | None:
        """The host requests use now and the pool's generation (a new one after every
        switch); None while there is no pool."""
        ...

    def changes(self, on_change: Callable[[str], None], on_reset: Callable[[], None],
                name: str | None = None) -> ChangeFeed | None:
        """A feed of handler changes that follows the current host (not started), or None
        when the dialect sends none (see :mod:`luna_handlers.db.changes`)."""
        ...

    async def close(self) -> None:
        """Close every connection."""
        ...

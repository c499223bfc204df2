"""The access point the DB context uses: short sessions on the current pool.

Implementations: :class:`luna_handlers.db.hostpool.HostPool` (every connection to one host)
and the failover manager that moves such a pool between hosts. Both raise only errors of
:mod:`luna_handlers.errors` from ``read()``/``write()``:

- ``DatabaseUnavailable``: nothing was changed, a retry is safe;
- ``DatabaseOutcomeUnknown``: a write may or may not have been committed;
- ``DatabaseFailure``: the database rejected the statement (not a connectivity problem).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from luna_handlers.db.sources import Session


class Database(Protocol):
    """What the DB context needs from the database layer."""

    @property
    def dialect_name(self) -> str:
        """``postgresql`` or ``oracle``."""
        ...

    def read(self) -> AbstractAsyncContextManager[Session]:
        """A session for reads."""
        ...

    def write(self) -> AbstractAsyncContextManager[Session]:
        """A session for writes.

        Connections are in autocommit: each statement commits by itself, so a change that
        needs several statements must be one statement (a CTE).
        """
        ...

    def connection(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A plain SQLAlchemy connection to the current host, outside the request pool, for
        migrations and schema checks (autocommit, unless they set an isolation level)."""
        ...

    def status(self) -> dict[str, Any]:
        """Facts for the health check (no secrets)."""
        ...

    async def close(self) -> None:
        """Close every connection."""
        ...

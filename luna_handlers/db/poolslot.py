"""One generation of the pool: a HostPool plus its session count, warmed before the swap,
drained and closed after it.

The failover manager (:mod:`luna_handlers.db.failover`) chooses the host and decides when to
switch; this module is the lifecycle of what it switches between:

* :func:`open_slot`: a :class:`Slot` on a probed host with every connection opened at once
  (bounded by the connect timeout), so the swap hands requests a warm pool; the pool's
  session outcomes go to the manager tagged with the generation, so that those of a
  retired pool can be ignored;
* :class:`Slot`: counts the request sessions running on the pool and keeps its driver
  connections, so that their sockets can be closed without asking the host;
* :func:`retire`: after the swap, lets the sessions finish and closes the pool, terminating
  sockets rather than waiting on a host that may hang.

Dialect-neutral, like :mod:`luna_handlers.db.probe`: the dialect comes in as a
:class:`~luna_handlers.db.probe.Backend`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection

from luna_handlers.db.dialects import ErrorKind
from luna_handlers.db.dsn import HostPort
from luna_handlers.db.hostpool import HostPool, Listener
from luna_handlers.db.probe import Backend, HostRole, ProbeResult

logger = logging.getLogger("luna_handlers.db")

# The manager's hook: (generation, kind, exc) of each session, kind None when it succeeded.
OutcomeHandler = Callable[[int, ErrorKind | None, BaseException | None], None]


@dataclass(eq=False)
class Slot:
    """One pool with its host and role, and the request sessions running on it."""

    pool: HostPool
    host: HostPort
    role: HostRole
    users: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    # Driver connections this pool opened, to close their sockets without asking the host.
    drivers: weakref.WeakSet[Any] = field(default_factory=weakref.WeakSet)

    def __post_init__(self) -> None:
        self.idle.set()
        event.listen(self.pool.engine.sync_engine, "connect", self._track)

    def _track(self, dbapi_connection: Any, _record: Any) -> None:
        self.drivers.add(dbapi_connection.driver_connection)

    def enter(self) -> None:
        """A request session starts on this pool."""
        self.users += 1
        self.idle.clear()

    def leave(self) -> None:
        """A request session ended."""
        self.users -= 1
        if self.users == 0:
            self.idle.set()

    @asynccontextmanager
    async def session(self, *, write: bool) -> AsyncIterator[AsyncConnection]:
        """A request session on this pool: a transaction when ``write``, else a read."""
        self.enter()  # counted, so that a retired pool is closed only once its sessions end
        try:
            async with self.pool.write() if write else self.pool.read() as conn:
                yield conn
        finally:
            self.leave()

    def terminate_all(self) -> None:
        """Close every socket of this pool now (asyncpg's ``terminate()`` never blocks)."""
        for driver in list(self.drivers):
            terminate = getattr(driver, "terminate", None)
            if callable(terminate):
                with contextlib.suppress(Exception):
                    terminate()


def _listener(on_outcome: OutcomeHandler, generation: int) -> Listener:
    ref = weakref.WeakMethod(on_outcome)  # the pool must not keep its manager alive

    def listener(kind: ErrorKind | None, exc: BaseException | None) -> None:
        handler = ref()
        if handler is not None:
            handler(generation, kind, exc)

    return listener


async def open_slot(backend: Backend, size: int, chosen: ProbeResult, generation: int, *,
                    on_outcome: OutcomeHandler, seen: list[ProbeResult]) -> Slot | None:
    """A warmed pool on the chosen host, or None (logged, and noted in ``seen``).

    ``on_outcome`` must be a bound method: it is held weakly.
    """
    assert chosen.role is not None
    engine = backend.engine(chosen.host)
    pool = HostPool(engine, str(chosen.host), generation, _listener(on_outcome, generation))
    slot = Slot(pool, chosen.host, chosen.role)
    try:
        await _warm(slot, size, backend.connect_timeout)
    except asyncio.CancelledError:
        slot.terminate_all()
        raise
    except Exception as exc:  # any failure means "not this host, for now"
        error = backend.describe(exc)
        logger.warning("cannot open the pool on %s: %s", chosen.host, error)
        seen.append(ProbeResult(chosen.host, None, backend.classify(exc),
                                f"pool warm-up failed: {error}"))
        await retire(slot, 0.0, backend.connect_timeout, suspect=True)
        return None
    return slot


async def _warm(slot: Slot, size: int, limit: float) -> None:
    """Open every connection of the new pool at once (bounded); they stay pooled."""
    async with asyncio.timeout(limit):
        opened = await asyncio.gather(
            *(slot.pool.engine.connect().start() for _ in range(size)),
            return_exceptions=True)
    for conn in opened:  # back into the pool, still open
        if isinstance(conn, AsyncConnection):
            await conn.close()
    for conn in opened:
        if isinstance(conn, BaseException):
            raise conn


async def retire(slot: Slot, grace: float, limit: float, *, suspect: bool) -> None:
    """Let a pool's sessions finish (at most ``grace`` s), then close it within ``limit`` s.

    A graceful close waits for the host; on a hung host it would wait for ever, so sockets of
    a suspect host, or of a close that overruns, are terminated instead.
    """
    try:
        async with asyncio.timeout(grace):
            await slot.idle.wait()
    except TimeoutError:
        logger.warning("old pool on %s still had %d sessions after %.1f s: closing it",
                       slot.host, slot.users, grace)
        suspect = True
    if suspect:
        slot.terminate_all()
    try:
        async with asyncio.timeout(limit):
            await slot.pool.close()
    except Exception:  # a timeout or a dead socket: abort what is left
        slot.terminate_all()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(limit):
                await slot.pool.close()

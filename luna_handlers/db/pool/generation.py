"""One generation: a HostPool plus its session count, warmed before the swap, drained and
closed after it.

The failover database (:mod:`luna_handlers.db.pool.failover`) chooses the host and decides
when to switch; this module is the lifecycle of what it switches between:

* :func:`open_generation`: a :class:`Generation` on a probed host with every connection
  opened at once (bounded by the connect timeout), so the swap hands requests a warm pool;
  the pool's session outcomes go to the failover database tagged with the generation
  number, so that those of a retired pool can be ignored;
* :class:`Generation`: counts the request sessions running on its pool
  (:class:`CountedBorrow`), and closes its sockets without asking the host when it must;
* :func:`retire`: after the swap, lets the sessions finish and closes the pool, terminating
  sockets rather than waiting on a host that may hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from luna_handlers.db.database import Session
from luna_handlers.db.hosts import HostPort
from luna_handlers.db.pool.backend import Backend
from luna_handlers.db.pool.connections import warm
from luna_handlers.db.pool.faults import ErrorKind
from luna_handlers.db.pool.hostpool import HostPool, Listener
from luna_handlers.db.pool.probe import ProbeResult
from luna_handlers.db.pool.roles import HostRole
from luna_handlers.errors import DatabaseSwitched

logger = logging.getLogger("luna_handlers.db")

# The failover database's hook: (generation, kind, exc) of each session; kind None on success.
OutcomeHandler = Callable[[int, ErrorKind | None, BaseException | None], None]


@dataclass(eq=False)
class Generation:
    """One pool with its host and role, and the request sessions running on it."""

    pool: HostPool
    host: HostPort
    role: HostRole
    users: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.idle.set()

    def enter(self) -> None:
        """A request session starts on this generation's pool."""
        self.users += 1
        self.idle.clear()

    def leave(self) -> None:
        """A request session ended."""
        self.users -= 1
        if self.users == 0:
            self.idle.set()

    def terminate_all(self) -> None:
        """Close every socket of this pool now, without asking the host."""
        self.pool.connections.terminate_all()


class CountedBorrow:
    """``async with CountedBorrow(pick, write=...) as session``: a session borrowed from the
    generation ``pick()`` returns, counted on it so that a retired pool is closed only once
    its sessions end. A class rather than a generator: it wraps every statement of every
    request."""

    __slots__ = ("_borrow", "_generation", "_pick", "_transaction", "_write")

    def __init__(self, pick: Callable[[], Awaitable[Generation]], *, write: bool,
                 transaction: bool = False) -> None:
        self._pick = pick
        self._write = write
        self._transaction = transaction

    async def __aenter__(self) -> Session:
        try:
            return await self._enter()
        except DatabaseSwitched:
            # Nothing was sent: the new pool, picked anew, takes the request.
            return await self._enter()

    async def _enter(self) -> Session:
        generation = self._generation = await self._pick()
        generation.enter()
        try:
            pool = generation.pool
            self._borrow = (pool.transaction() if self._transaction
                            else pool.write() if self._write else pool.read())
            return await self._borrow.__aenter__()
        except BaseException:
            generation.leave()
            raise

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        try:
            await self._borrow.__aexit__(exc_type, exc, tb)
        finally:
            self._generation.leave()


def _listener(on_outcome: OutcomeHandler, generation: int) -> Listener:
    ref = weakref.WeakMethod(on_outcome)  # the pool must not keep its failover database alive

    def listener(kind: ErrorKind | None, exc: BaseException | None) -> None:
        handler = ref()
        if handler is not None:
            handler(generation, kind, exc)

    return listener


async def open_generation(backend: Backend, size: int, chosen: ProbeResult, number: int, *,
                          on_outcome: OutcomeHandler, seen: list[ProbeResult]
                          ) -> Generation | None:
    """A warmed pool on the chosen host, or None (logged, and noted in ``seen``).

    ``on_outcome`` must be a bound method: it is held weakly.
    """
    assert chosen.role is not None
    pool = HostPool(backend, chosen.host, number, _listener(on_outcome, number))
    generation = Generation(pool, chosen.host, chosen.role)
    try:
        await _warm(generation, size, backend.connect_timeout)
    except asyncio.CancelledError:
        generation.terminate_all()
        raise
    except Exception as exc:  # any failure means "not this host, for now"
        error = backend.describe(exc)
        logger.warning("cannot open the pool on %s: %s", chosen.host, error)
        seen.append(ProbeResult(chosen.host, None, backend.classify_probe(exc),
                                f"pool warm-up failed: {error}"))
        await retire(generation, 0.0, backend.connect_timeout, suspect=True)
        return None
    return generation


async def _warm(generation: Generation, size: int, limit: float) -> None:
    """Open every connection of the new pool at once (bounded); they stay pooled."""
    async with asyncio.timeout(limit):
        await warm(generation.pool.connections, size)


def retire(generation: Generation, grace: float, limit: float, *, suspect: bool
           ) -> Coroutine[Any, Any, None]:
    """Stop the pool lending at once (requests waiting for one of its connections go to the
    pool that replaced it), and return the coroutine that retires it: see :func:`_drain`."""
    generation.pool.connections.stop_lending()
    return _drain(generation, grace, limit, suspect=suspect)


async def _drain(generation: Generation, grace: float, limit: float, *, suspect: bool
                 ) -> None:
    """Let a pool's sessions finish (at most ``grace`` s), then close it within ``limit`` s.

    A graceful close waits for the host; on a hung host it would wait for ever, so sockets of
    a suspect host, or of a close that overruns, are terminated instead.
    """
    try:
        async with asyncio.timeout(grace):
            await generation.idle.wait()
    except TimeoutError:
        logger.warning("old pool on %s still had %d sessions after %.1f s: closing it",
                       generation.host, generation.users, grace)
        suspect = True
    if suspect:
        generation.terminate_all()
    try:
        async with asyncio.timeout(limit):
            await generation.pool.close()
    except Exception:  # a timeout or a dead socket: abort what is left
        generation.terminate_all()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(limit):
                await generation.pool.close()

"""One generation of the pool: a HostPool plus its session count, warmed before the swap,
drained and closed after it.

The failover manager (:mod:`luna_handlers.db.failover`) chooses the host and decides when to
switch; this module is the lifecycle of what it switches between:

* :func:`open_slot`: a :class:`Slot` on a probed host with every connection opened at once
  (bounded by the connect timeout), so the swap hands requests a warm pool; the pool's
  session outcomes go to the manager tagged with the generation, so that those of a
  retired pool can be ignored;
* :class:`Slot`: counts the request sessions running on the pool (:class:`Lease`), and
  closes its sockets without asking the host when it must;
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
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from luna_handlers.db.dialects import ErrorKind
from luna_handlers.db.dsn import HostPort
from luna_handlers.db.hostpool import HostPool, Listener
from luna_handlers.db.probe import Backend, HostRole, ProbeResult
from luna_handlers.db.sources import Session, warm
from luna_handlers.errors import DatabaseSwitched

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

    def __post_init__(self) -> None:
        self.idle.set()

    def enter(self) -> None:
        """A request session starts on this pool."""
        self.users += 1
        self.idle.clear()

    def leave(self) -> None:
        """A request session ended."""
        self.users -= 1
        if self.users == 0:
            self.idle.set()

    def terminate_all(self) -> None:
        """Close every socket of this pool now, without asking the host."""
        self.pool.source.terminate_all()


class Lease:
    """``async with Lease(pick, write=...) as session``: a session on the slot ``pick()``
    returns, counted on that slot so that a retired pool is closed only once its sessions
    end. A class rather than a generator: it wraps every statement of every request."""

    __slots__ = ("_pick", "_slot", "_use", "_write")

    def __init__(self, pick: Callable[[], Awaitable[Slot]], *, write: bool) -> None:
        self._pick = pick
        self._write = write

    async def __aenter__(self) -> Session:
        try:
            return await self._enter()
        except DatabaseSwitched:
            # Nothing was sent: the new pool, picked anew, takes the request.
            return await self._enter()

    async def _enter(self) -> Session:
        slot = self._slot = await self._pick()
        slot.enter()
        try:
            self._use = slot.pool.write() if self._write else slot.pool.read()
            return await self._use.__aenter__()
        except BaseException:
            slot.leave()
            raise

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        try:
            await self._use.__aexit__(exc_type, exc, tb)
        finally:
            self._slot.leave()


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
    pool = HostPool(backend.source(chosen.host), str(chosen.host), generation,
                    _listener(on_outcome, generation))
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
        await warm(slot.pool.source, size)


def retire(slot: Slot, grace: float, limit: float, *, suspect: bool
           ) -> Coroutine[Any, Any, None]:
    """Stop the pool lending at once (requests waiting for one of its connections go to the
    pool that replaced it), and return the coroutine that retires it: see :func:`_drain`."""
    slot.pool.source.stop_lending()
    return _drain(slot, grace, limit, suspect=suspect)


async def _drain(slot: Slot, grace: float, limit: float, *, suspect: bool) -> None:
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

"""The failover database: the whole pool on ONE host, rebuilt on another host as a unit.

* Start: all hosts are probed at once (each with its own connect timeout); the pool goes
  to the first host, in DSN order, whose role fits target_session_attrs.
* Triggers: ``failure_threshold`` connectivity failures of requests in a row; one read-only
  error (25006) on a read-write pool; a check every ``health_check_interval`` finding the
  host unreachable or hung (the probe's own timeout) or of the wrong role. Authentication
  errors never move the pool: they are logged at ERROR (a host rejecting us is skipped).
* Switch (one at a time): probe again, the host being left last (a hung one must not hold
  up the others); warm a new pool, swap it in, retire the old one (its sessions get up to
  ``query_timeout``; :mod:`~luna_handlers.db.pool.generation`). Meanwhile requests wait up to
  ``switch_wait``, then get ``DatabaseUnavailable``. When no host qualifies, rounds repeat
  after a jittered backoff capped at :data:`RETRY_CAP`, cut short by waiting requests, so a
  promotion is found fast.
* No flapping: a pool that works is never moved, whatever other hosts do; a switch whose
  first round finds only the current host fit keeps the pool.

This module serves requests (start, sessions, status, close);
:mod:`~luna_handlers.db.pool.switching` decides and performs the switches. Dialect-neutral:
a dialect comes in as a :class:`~luna_handlers.db.pool.backend.Backend`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from luna_handlers.config import FailoverSettings
from luna_handlers.db.changes import ChangeFeed
from luna_handlers.db.database import Session
from luna_handlers.db.hosts import HostPort
from luna_handlers.db.pool import metrics, probe
from luna_handlers.db.pool.backend import Backend
from luna_handlers.db.pool.faults import ErrorKind
from luna_handlers.db.pool.generation import CountedBorrow, Generation, open_generation, retire
from luna_handlers.db.pool.hostpool import HostPool
from luna_handlers.db.pool.probe import Backoff, ProbeResult
from luna_handlers.db.pool.switching import RETRY_BASE, RETRY_CAP, Switching, health_loop
from luna_handlers.errors import DatabaseUnavailable

logger = logging.getLogger("luna_handlers.db")

START_PATIENCE = 2.0  # start() keeps probing for this many connect timeouts


class FailoverDatabase(Switching):
    """The :class:`~luna_handlers.db.database.Database` over the hosts of ``backend``.

    The backend holds every dialect-specific piece (probe, engine, error classes); a
    single-host DSN is the degenerate case of the same logic.
    """

    def __init__(self, backend: Backend, pool_size: int, settings: FailoverSettings) -> None:
        self._backend = backend
        self._settings = settings
        self._pool_size = pool_size
        self._active: Generation | None = None
        self._retired: set[Generation] = set()
        self._generation = 0
        self._failures = 0
        self._ready = asyncio.Event()  # set while a pool is active and no switch runs
        self._demand = asyncio.Event()  # set when a request starts waiting for a switch
        self._waiting = 0  # requests waiting for a switch now
        self._switch_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_switch: dict[str, Any] | None = None
        self._labels: tuple[str, str] | None = None  # of the active-host metric
        self._auth = probe.AuthReporter(logger)
        self._logged: dict[str, float] = {}
        self._started = False
        self._closed = False

    @property
    def dialect_name(self) -> str:
        """``postgresql`` or ``oracle``."""
        return self._backend.dialect

    @property
    def active(self) -> HostPool | None:
        """The pool requests use now (kept during a switch); None before start and after close."""
        return None if self._active is None else self._active.pool

    def active_host(self) -> tuple[HostPort, int] | None:
        """The host requests use now and its generation; None before start and after close."""
        active = self._active
        return None if active is None else (active.host, active.pool.generation)

    def changes(self, on_change: Callable[[str], None], on_reset: Callable[[], None],
                name: str | None = None) -> ChangeFeed | None:
        """A change feed that follows the active host (see ``Database.changes``)."""
        return self._backend.feed(self.active_host, on_change, on_reset, name)

    # -- start and stop ------------------------------------------------------------------

    async def start(self) -> None:
        """Probe the hosts and build the first pool; DatabaseUnavailable if none qualifies.

        Probing repeats (with backoff) for up to ``START_PATIENCE`` connect timeouts, unless
        every host refused our credentials; the error lists each host and why.
        """
        if self._started:
            raise RuntimeError("FailoverDatabase.start() was already called")
        self._started = True
        limit = self._backend.connect_timeout
        deadline = time.monotonic() + START_PATIENCE * limit
        backoff = Backoff(RETRY_BASE, RETRY_CAP)
        while True:
            seen: list[ProbeResult] = []
            chosen = await self._probe_round(min(limit, max(deadline - time.monotonic(), 0.1)),
                                             seen)
            active = None if chosen is None else await open_generation(
                self._backend, self._pool_size, chosen, 1, on_outcome=self._on_outcome, seen=seen)
            if active is not None:
                break
            delay = backoff.next()
            all_auth = bool(seen) and all(r.kind is ErrorKind.AUTH for r in seen)
            if all_auth or time.monotonic() + delay >= deadline:
                raise DatabaseUnavailable(probe.no_host_message(seen, self._backend))
            await asyncio.sleep(delay)
        self._active, self._generation = active, 1
        self._show_active(active)
        self._ready.set()
        logger.info("pool started on=%s role=%s generation=1 target_session_attrs=%s hosts=%s",
                    active.host, active.role.name, self._backend.target.value,
                    ",".join(map(str, self._backend.hosts)))
        self._spawn(health_loop(weakref.ref(self)), "luna-db-health")

    async def close(self) -> None:
        """Stop background work and close every pool, never waiting long on a dead host."""
        if self._closed:
            return
        self._closed = True
        self._ready.set()  # waiting requests wake up and get DatabaseUnavailable
        generations = [active for active in (self._active, *self._retired) if active is not None]
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._active = None
        metrics.clear_active(self._labels)
        await asyncio.gather(*(retire(active, 0.0, self._backend.connect_timeout, suspect=False)
                               for active in generations))

    # -- requests --------------------------------------------------------------------------

    async def _for_request(self) -> Generation:
        if not self._ready.is_set():
            self._demand.set()
            self._waiting += 1
            try:
                async with asyncio.timeout(self._settings.switch_wait):
                    await self._ready.wait()
            except TimeoutError:
                raise DatabaseUnavailable(
                    f"no database host is available after {self._settings.switch_wait:g} s "
                    f"({self._state()}); retry") from None
            finally:
                self._waiting -= 1
        active = self._active
        if active is None or self._closed:
            raise DatabaseUnavailable("the database layer is closed")
        return active

    def read(self) -> AbstractAsyncContextManager[Session]:
        """A session for reads on the active host (see ``Database.read``)."""
        return CountedBorrow(self._for_request, write=False)

    def write(self) -> AbstractAsyncContextManager[Session]:
        """A session for writes on the active host (see ``Database.write``)."""
        return CountedBorrow(self._for_request, write=True)

    def transaction(self) -> AbstractAsyncContextManager[Session]:
        """A transaction on the active host (see ``Database.transaction``)."""
        return CountedBorrow(self._for_request, write=True, transaction=True)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        """A plain SQLAlchemy connection to the active host (see ``Database.connection``)."""
        active = await self._for_request()
        active.enter()
        try:
            async with active.pool.connection() as conn:
                yield conn
        finally:
            active.leave()

    def status(self) -> dict[str, Any]:
        """Active host and role, generation, last switch, configured hosts (no secrets)."""
        active = self._active
        return {
            "dialect": self._backend.dialect,
            "state": self._state(),
            "host": None if active is None else str(active.host),
            "role": None if active is None else active.role.name,
            "generation": self._generation,
            "last_switch": None if self._last_switch is None else dict(self._last_switch),
            "hosts": [str(host) for host in self._backend.hosts],
            "target_session_attrs": self._backend.target.value,
            "consecutive_failures": self._failures,
        }

    def _state(self) -> str:
        if self._closed:
            return "closed"
        if self._switching():
            return "switching"
        return "starting" if self._active is None else "active"


async def start_failover_database(backend: Backend, pool_size: int,
                                  settings: FailoverSettings) -> FailoverDatabase:
    """A started :class:`FailoverDatabase` on ``backend`` (see :meth:`FailoverDatabase.start`)."""
    database = FailoverDatabase(backend, pool_size, settings)
    try:
        await database.start()
    except BaseException:
        await database.close()
        raise
    return database

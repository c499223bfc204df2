"""The failover manager: the whole pool on ONE host, rebuilt on another host as a unit.

* Start: all hosts are probed at once (each with its own connect timeout); the pool goes
  to the first host, in DSN order, whose role fits target_session_attrs.
* Triggers: ``failure_threshold`` connectivity failures of requests in a row; one read-only
  error (25006) on a read-write pool; a check every ``health_check_interval`` finding the
  host unreachable or hung (the probe's own timeout) or of the wrong role. Authentication
  errors never move the pool: they are logged at ERROR (a host rejecting us is skipped).
* Switch (one at a time): probe again, the host being left last (a hung one must not hold
  up the others); warm a new pool, swap it in, retire the old one (its sessions get up to
  ``query_timeout``; :mod:`~luna_handlers.db.poolslot`). Meanwhile requests wait up to
  ``switch_wait``, then get ``DatabaseUnavailable``. When no host qualifies, rounds repeat
  after a jittered backoff capped at :data:`RETRY_CAP`, cut short by waiting requests, so a
  promotion is found fast.
* No flapping: a pool that works is never moved, whatever other hosts do; a switch whose
  first round finds only the current host fit keeps the pool.

Dialect-neutral: PostgreSQL specifics live in :func:`luna_handlers.db.probe.pg_backend`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import AsyncIterator, Coroutine
from contextlib import AbstractAsyncContextManager, aclosing, asynccontextmanager
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from luna_handlers.config import FailoverSettings
from luna_handlers.db import metrics, probe
from luna_handlers.db.dialects import ErrorKind
from luna_handlers.db.dsn import HostPort, PgDsn
from luna_handlers.db.hostpool import HostPool
from luna_handlers.db.poolslot import Lease, Slot, open_slot, retire
from luna_handlers.db.probe import Backend, Backoff, HostRole, ProbeResult, pg_backend
from luna_handlers.db.sources import Session
from luna_handlers.errors import DatabaseUnavailable

logger = logging.getLogger("luna_handlers.db")

RETRY_BASE = 0.05  # seconds before the second probe round when no host qualifies
RETRY_CAP = 0.5  # longest pause between rounds: bounds the delay after a promotion
RETRY_BUSY = 0.02  # pause between rounds while requests wait: they pace the search
START_PATIENCE = 2.0  # start() keeps probing for this many connect timeouts
REPEAT_LOG_S = 30.0  # a condition that persists is logged again after this long


class Reason(StrEnum):
    """Why the pool moved: the ``reason`` of status(), logs and the switch metric."""

    FAILURES = "connectivity_failures"
    READ_ONLY = "read_only"
    UNREACHABLE = "health_check_unreachable"
    WRONG_ROLE = "health_check_role"


SUSPECT_REASONS = frozenset({Reason.FAILURES, Reason.UNREACHABLE})  # the host may hang


class FailoverDatabase:
    """The :class:`~luna_handlers.db.database.Database` over the hosts of ``backend``.

    The backend holds every dialect-specific piece (probe, engine, error classes); a
    single-host DSN is the degenerate case of the same logic.
    """

    def __init__(self, backend: Backend, pool_size: int, settings: FailoverSettings) -> None:
        self._backend = backend
        self._settings = settings
        self._pool_size = pool_size
        self._slot: Slot | None = None
        self._retired: set[Slot] = set()
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
        return None if self._slot is None else self._slot.pool

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
            slot = None if chosen is None else await open_slot(
                self._backend, self._pool_size, chosen, 1, on_outcome=self._on_outcome, seen=seen)
            if slot is not None:
                break
            delay = backoff.next()
            all_auth = bool(seen) and all(r.kind is ErrorKind.AUTH for r in seen)
            if all_auth or time.monotonic() + delay >= deadline:
                raise DatabaseUnavailable(probe.no_host_message(seen, self._backend))
            await asyncio.sleep(delay)
        self._slot, self._generation = slot, 1
        self._show_active(slot)
        self._ready.set()
        logger.info("pool started on=%s role=%s generation=1 target_session_attrs=%s hosts=%s",
                    slot.host, slot.role.name, self._backend.target.value,
                    ",".join(map(str, self._backend.hosts)))
        self._spawn(_health_loop(weakref.ref(self)), "luna-db-health")

    async def close(self) -> None:
        """Stop background work and close every pool, never waiting long on a dead host."""
        if self._closed:
            return
        self._closed = True
        self._ready.set()  # waiting requests wake up and get DatabaseUnavailable
        slots = [slot for slot in (self._slot, *self._retired) if slot is not None]
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._slot = None
        metrics.clear_active(self._labels)
        await asyncio.gather(*(retire(slot, 0.0, self._backend.connect_timeout, suspect=False)
                               for slot in slots))

    # -- requests --------------------------------------------------------------------------

    async def _slot_for_request(self) -> Slot:
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
        slot = self._slot
        if slot is None or self._closed:
            raise DatabaseUnavailable("the database layer is closed")
        return slot

    def read(self) -> AbstractAsyncContextManager[Session]:
        """A session for reads on the active host (see ``Database.read``)."""
        return Lease(self._slot_for_request, write=False)

    def write(self) -> AbstractAsyncContextManager[Session]:
        """A session for writes on the active host (see ``Database.write``)."""
        return Lease(self._slot_for_request, write=True)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        """A plain SQLAlchemy connection to the active host (see ``Database.connection``)."""
        slot = await self._slot_for_request()
        slot.enter()
        try:
            async with slot.pool.connection() as conn:
                yield conn
        finally:
            slot.leave()

    def status(self) -> dict[str, Any]:
        """Active host and role, generation, last switch, configured hosts (no secrets)."""
        slot = self._slot
        return {
            "dialect": self._backend.dialect,
            "state": self._state(),
            "host": None if slot is None else str(slot.host),
            "role": None if slot is None else slot.role.name,
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
        return "starting" if self._slot is None else "active"

    # -- outcomes and switches -----------------------------------------------------------

    def _on_outcome(self, generation: int, kind: ErrorKind | None,
                    exc: BaseException | None) -> None:
        if kind is not None:
            metrics.count_error(kind.value)
        # Sessions of a retired pool, or failures while a switch already runs, change nothing.
        if self._closed or generation != self._generation or self._switching():
            return
        if kind is None:
            self._failures = 0
            return
        detail = "" if exc is None else self._backend.describe(exc)
        if kind is ErrorKind.READ_ONLY and self._backend.target in probe.WRITABLE_TARGETS:
            self._begin_switch(Reason.READ_ONLY, detail)
        elif kind is ErrorKind.CONNECTIVITY:
            self._failures += 1
            if self._failures >= self._settings.failure_threshold:
                self._begin_switch(Reason.FAILURES,
                                   f"{self._failures} in a row, last: {detail}")

    def _switching(self) -> bool:
        return self._switch_task is not None and not self._switch_task.done()

    def _begin_switch(self, reason: Reason, detail: str) -> None:
        """Start THE switch (concurrent triggers join the one already running)."""
        if self._closed or self._switching():
            return
        self._ready.clear()
        self._switch_task = self._spawn(
            _switch_loop(weakref.ref(self), reason, detail, time.monotonic()), "luna-db-switch")

    async def _switch_round(self, reason: Reason, detail: str, triggered: float,
                            round_no: int) -> bool:
        """One probe round of a switch; True when a pool is ready again."""
        seen: list[ProbeResult] = []
        old = self._slot
        # The host we are leaving goes last: if it hangs, its timeout must not hold up a
        # healthy host behind it; and it is taken back only when nothing else qualifies.
        hosts = [h for h in self._backend.hosts if old is None or h != old.host]
        chosen = await self._probe_round(self._backend.connect_timeout, seen,
                                         hosts + ([old.host] if old else []))
        if chosen is None:
            self._log_limited("no-host", "no database host qualifies, retrying: %s",
                              probe.no_host_message(seen, self._backend))
            return False
        assert chosen.role is not None
        if old is not None and round_no == 0 and chosen.host == old.host:
            # The host passes a fresh probe right away: the failures were sessions', not the
            # host's (broken connections were discarded; new ones open on demand). Staying
            # is "no flapping".
            self._show_active(old, chosen.role)
            self._failures = 0
            self._ready.set()
            logger.info("pool kept on=%s reason=%s: the host still qualifies (%s)",
                        old.host, reason.value, detail)
            return True
        slot = await open_slot(self._backend, self._pool_size, chosen, self._generation + 1,
                               on_outcome=self._on_outcome, seen=seen)
        if slot is None:
            return False
        self._swap(slot, reason, detail, triggered)
        return True

    def _swap(self, slot: Slot, reason: Reason, detail: str, triggered: float) -> None:
        old = self._slot
        self._slot, self._generation, self._failures = slot, slot.pool.generation, 0
        self._show_active(slot)
        self._ready.set()
        elapsed_ms = round((time.monotonic() - triggered) * 1000)
        source = None if old is None else str(old.host)
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self._last_switch = {"time": now, "reason": reason.value, "detail": detail,
                             "from": source, "to": str(slot.host)}
        metrics.count_switch(reason.value)
        logger.warning("pool switched from=%s to=%s reason=%s generation=%d elapsed_ms=%d "
                       "role=%s detail=%r", source, slot.host, reason.value, self._generation,
                       elapsed_ms, slot.role.name, detail)
        if old is not None:
            self._retired.add(old)
            task = self._spawn(retire(old, self._settings.query_timeout + 1.0,
                                       self._backend.connect_timeout,
                                       suspect=reason in SUSPECT_REASONS),
                               f"luna-db-retire-{old.host}")
            task.add_done_callback(lambda _task: self._retired.discard(old))

    async def _check_health(self) -> None:
        """Probe the active host once; start a switch if it is gone or of the wrong role."""
        slot = self._slot
        if slot is None or self._switching() or self._closed:
            return
        result = await probe.probe_one(self._backend, slot.host, self._backend.connect_timeout)
        if slot is not self._slot or self._switching() or self._closed:
            return  # the pool moved while we probed: this result is about the past
        self._auth.report([result])
        target = self._backend.target
        if result.role is None:
            if result.kind is ErrorKind.CONNECTIVITY:
                self._begin_switch(Reason.UNREACHABLE, result.error)
            elif result.kind is not ErrorKind.AUTH:
                self._log_limited(f"health-{slot.host}", "health check of %s: %s",
                                  slot.host, result.error)
        elif not probe.acceptable(result.role, target):
            self._begin_switch(Reason.WRONG_ROLE, result.explain(target))
        else:
            self._show_active(slot, result.role)

    # -- building blocks -----------------------------------------------------------------

    async def _probe_round(self, limit: float, seen: list[ProbeResult],
                           hosts: list[HostPort] | None = None) -> ProbeResult | None:
        async with aclosing(probe.probe_hosts(self._backend, limit, hosts)) as results:
            chosen = await probe.choose(results, self._backend.target, seen)
        self._auth.report(seen)
        return chosen

    def _show_active(self, slot: Slot, role: HostRole | None = None) -> None:
        slot.role = role or slot.role  # a standby promoted under "any" is a primary now
        labels = (str(slot.host), slot.role.name)
        metrics.set_active(*labels, self._generation, previous=self._labels)
        self._labels = labels

    def _log_limited(self, key: str, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._logged.get(key, -REPEAT_LOG_S) >= REPEAT_LOG_S:
            self._logged[key] = now
            logger.warning(message, *args)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)  # asyncio keeps only a weak reference to running tasks
        task.add_done_callback(self._tasks.discard)
        return task


async def _switch_loop(ref: weakref.ref[FailoverDatabase], reason: Reason, detail: str,
                       triggered: float) -> None:
    """Probe rounds until a pool is ready (or the manager is closed or collected)."""
    backoff = Backoff(RETRY_BASE, RETRY_CAP)
    round_no = 0
    while True:
        db = ref()
        if db is None or db._closed:
            return
        try:
            if await db._switch_round(reason, detail, triggered, round_no):
                return
        except Exception:  # a bug must not leave requests waiting for ever: log, go on
            logger.exception("pool switch round failed")
        round_no += 1
        # The backoff spares the hosts while nobody needs the pool; waiting requests pace
        # the rounds instead (RETRY_BUSY), so a promotion is found at once.
        demand, pause = db._demand, RETRY_BUSY if db._waiting else backoff.next()
        demand.clear()
        del db
        await asyncio.sleep(RETRY_BUSY)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(pause - RETRY_BUSY, 0.0)):
                await demand.wait()


async def _health_loop(ref: weakref.ref[FailoverDatabase]) -> None:
    """Check the active host every ``health_check_interval`` until the manager goes."""
    while True:
        db = ref()
        if db is None or db._closed:
            return
        interval = db._settings.health_check_interval
        del db
        await asyncio.sleep(interval)
        db = ref()
        if db is None:
            return
        try:
            await db._check_health()
        except Exception:
            logger.exception("database health check failed")
        del db


async def open_failover_database(dsn: PgDsn, pool_size: int,
                                 settings: FailoverSettings) -> FailoverDatabase:
    """A started :class:`FailoverDatabase` on the hosts of a PostgreSQL DSN."""
    return await start_failover_database(pg_backend(dsn, pool_size, settings), pool_size,
                                         settings)


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

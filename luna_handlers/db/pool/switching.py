"""What moves the pool: session outcomes counted, health checks, switch rounds, the swap.

:class:`Switching` is the half of :class:`~luna_handlers.db.pool.failover.FailoverDatabase`
that decides and performs switches (see the triggers in that module's docstring); the other
half serves requests. Split by concept, not by size alone: nothing here runs in a request's
path except :meth:`Switching._on_outcome`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from contextlib import aclosing
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from luna_handlers.config import FailoverSettings
from luna_handlers.db.hosts import HostPort
from luna_handlers.db.pool import metrics, probe
from luna_handlers.db.pool.backend import Backend
from luna_handlers.db.pool.faults import ErrorKind
from luna_handlers.db.pool.generation import Generation, open_generation, retire
from luna_handlers.db.pool.health import HostHealth
from luna_handlers.db.pool.probe import Backoff, ProbeResult
from luna_handlers.db.pool.roles import WRITABLE_TARGETS, HostRole, acceptable

logger = logging.getLogger("luna_handlers.db")

RETRY_BASE = 0.05  # seconds before the second probe round when no host qualifies
RETRY_CAP = 0.5  # longest pause between rounds: bounds the delay after a promotion
RETRY_BUSY = 0.02  # pause between rounds while requests wait: they pace the search
REPEAT_LOG_S = 30.0  # a condition that persists is logged again after this long


class Reason(StrEnum):
    """Why the pool moved: the ``reason`` of status(), logs and the switch metric."""

    FAILURES = "connectivity_failures"
    READ_ONLY = "read_only"
    UNREACHABLE = "health_check_unreachable"
    HUNG = "health_check_timeout"
    WRONG_ROLE = "health_check_role"


# The health check saw it: the host is gone, hung or demoted, so the requests in flight
# there are answered (cut) when the switch begins, not when a new host is found.
CUT_AT_ONCE = frozenset({Reason.UNREACHABLE, Reason.HUNG, Reason.WRONG_ROLE})


class Switching:
    """The switching state and logic of a failover database (set up by its ``__init__``)."""

    _backend: Backend
    _settings: FailoverSettings
    _pool_size: int
    _active: Generation | None
    _retired: set[Generation]
    _generation: int
    _failures: int
    _ready: asyncio.Event  # set while a pool is active and no switch runs
    _demand: asyncio.Event  # set when a request starts waiting for a switch
    _waiting: int  # requests waiting for a switch now
    _switch_task: asyncio.Task[None] | None
    _tasks: set[asyncio.Task[None]]
    _last_switch: dict[str, Any] | None
    _labels: tuple[str, str] | None  # of the active-host metric
    _auth: probe.AuthReporter
    _health: HostHealth
    _logged: dict[str, float]
    _closed: bool

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
        if kind is ErrorKind.LOCAL:
            return  # this process is short of fds or memory: says nothing about the host
        if kind is ErrorKind.READ_ONLY and self._backend.target in WRITABLE_TARGETS:
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
        if reason in CUT_AT_ONCE and self._active is not None:
            self._cut(self._active, reason)
        self._switch_task = self._spawn(
            _switch_loop(weakref.ref(self), reason, detail, time.monotonic()), "luna-db-switch")

    async def _switch_round(self, reason: Reason, detail: str, triggered: float,
                            round_no: int) -> bool:
        """One probe round of a switch; True when a pool is ready again."""
        seen: list[ProbeResult] = []
        old = self._active
        # The host we are leaving goes last: if it hangs, its timeout must not hold up a
        # healthy host behind it; and it is taken back only when nothing else qualifies.
        hosts = [h for h in self._backend.hosts if old is None or h != old.host]
        # A host left for hanging gets only a health check's time: while it hangs, each
        # round would otherwise wait out its connect timeout before trying again.
        limits = ({old.host: min(self._settings.health_check_timeout,
                                 self._backend.connect_timeout)}
                  if old is not None and old.cut else None)
        chosen = await self._probe_round(self._backend.connect_timeout, seen,
                                         hosts + ([old.host] if old else []), limits)
        if old is not None and (chosen is None or chosen.host != old.host):
            self._cut(old, reason)  # the host is left: nothing may wait on it any more
        if chosen is None:
            self._log_limited("no-host", "no database host qualifies, retrying: %s",
                              probe.no_host_message(seen, self._backend))
            return False
        assert chosen.role is not None
        if old is not None and round_no == 0 and chosen.host == old.host and not old.cut:
            # The host passes a fresh probe right away: the failures were sessions', not the
            # host's (broken connections were discarded; new ones open on demand). Staying
            # is "no flapping".
            self._show_active(old, chosen.role)
            self._failures = 0
            self._ready.set()
            logger.info("pool kept on=%s reason=%s: the host still qualifies (%s)",
                        old.host, reason.value, detail)
            return True
        fresh = await open_generation(self._backend, self._pool_size, chosen,
                                      self._generation + 1, on_outcome=self._on_outcome,
                                      seen=seen)
        if fresh is None:
            return False
        self._swap(fresh, reason, detail, triggered)
        return True

    def _swap(self, active: Generation, reason: Reason, detail: str, triggered: float) -> None:
        old = self._active
        self._active, self._generation, self._failures = active, active.pool.generation, 0
        self._show_active(active)
        self._ready.set()
        elapsed_ms = round((time.monotonic() - triggered) * 1000)
        source = None if old is None else str(old.host)
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self._last_switch = {"time": now, "reason": reason.value, "detail": detail,
                             "from": source, "to": str(active.host)}
        metrics.count_switch(reason.value)
        logger.warning("pool switched from=%s to=%s reason=%s generation=%d elapsed_ms=%d "
                       "role=%s detail=%r", source, active.host, reason.value, self._generation,
                       elapsed_ms, active.role.name, detail)
        if old is not None:
            self._cut(old, reason)
            self._retired.add(old)
            task = self._spawn(retire(old, self._settings.query_timeout + 1.0,
                                       self._backend.connect_timeout, suspect=True),
                               f"luna-db-retire-{old.host}")
            task.add_done_callback(lambda _task: self._retired.discard(old))

    def _cut(self, generation: Generation, reason: Reason) -> None:
        """Answer every request in flight on ``generation`` now (see ``Generation.cut_all``);
        where the host still answers, end their server sessions too."""
        if generation.cut:
            return
        pids = generation.cut_all()
        logger.warning("pool on %s cut: %d sessions in flight answered at once (reason=%s)",
                       generation.host, len(pids), reason.value)
        end = self._backend.end_sessions
        if pids and end is not None and generation.identity:
            self._spawn(_end_sessions(end, generation, pids, self._backend.connect_timeout),
                        f"luna-db-end-sessions-{generation.host}")

    async def _check_health(self) -> None:
        """Check the active host once; start a switch if it is gone, hung or of the wrong
        role (:mod:`~luna_handlers.db.pool.health`)."""
        active = self._active
        if active is None or self._switching() or self._closed:
            return
        result = await self._health.check(active.host)
        if active is not self._active or self._switching() or self._closed:
            return  # the pool moved while we probed: this result is about the past
        self._auth.report([result])
        if self._health.facts is not None:
            active.identity = self._health.facts.identity
        target = self._backend.target
        if result.role is None:
            if result.kind is ErrorKind.CONNECTIVITY:
                self._begin_switch(Reason.HUNG if self._health.timed_out
                                   else Reason.UNREACHABLE, result.error)
            elif result.kind is not ErrorKind.AUTH:
                self._log_limited(f"health-{active.host}", "health check of %s: %s",
                                  active.host, result.error)
        elif not acceptable(result.role, target):
            self._begin_switch(Reason.WRONG_ROLE, result.explain(target))
        else:
            self._show_active(active, result.role)

    # -- building blocks -----------------------------------------------------------------

    async def _probe_round(self, limit: float, seen: list[ProbeResult],
                           hosts: list[HostPort] | None = None,
                           limits: dict[HostPort, float] | None = None) -> ProbeResult | None:
        async with aclosing(probe.probe_hosts(self._backend, limit, hosts, limits)) as results:
            chosen = await probe.choose(results, self._backend.target, seen)
        self._auth.report(seen)
        return chosen

    def _show_active(self, active: Generation, role: HostRole | None = None) -> None:
        active.role = role or active.role  # a standby promoted under "any" is a primary now
        labels = (str(active.host), active.role.name)
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


async def _end_sessions(end: Callable[[HostPort, Sequence[int], str, float], Awaitable[int]],
                        generation: Generation, pids: Sequence[int], limit: float) -> None:
    """End the cut sessions' server backends, so that what they sent cannot commit later
    (possible only while the host answers: a hung one is left to its own fate)."""
    try:
        ended = await end(generation.host, pids, generation.identity, limit)
    except Exception as exc:  # unreachable or hung: nothing more can be done from here
        logger.info("could not end the %d cut sessions on %s: %s", len(pids), generation.host,
                    type(exc).__name__)
    else:
        logger.info("ended %d of the %d cut sessions on %s", ended, len(pids), generation.host)


async def _switch_loop(ref: weakref.ref[Switching], reason: Reason, detail: str,
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


async def health_loop(ref: weakref.ref[Switching]) -> None:
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

"""The free places of a connection pool: taken first come, first served, waits bounded.

Under load most requests wait for a place (32 clients on 10 connections, say), so the wait
must cost little: a future per waiter and ONE timer for the whole queue. Every wait has the
same bound and the queue is FIFO, so the head always has the nearest deadline; the timer is
armed for it and, when it fires, expires what is due and re-arms for the new head. A timer per
waiter (or ``asyncio.timeout`` around a semaphore) cost several percent of a request.
"""

from __future__ import annotations

import asyncio
from collections import deque


class PoolBusy(Exception):
    """No connection can be lent: all stayed in use for the acquire timeout."""


class PoolRetired(PoolBusy):
    """The pool stopped lending (it was retired after a switch, or closed): the request
    should go to the pool that replaced it."""


class Places:
    """``size`` places; :meth:`take` waits at most ``timeout`` s for one (else PoolBusy)."""

    def __init__(self, size: int, timeout: float) -> None:
        self._free = size
        self._timeout = timeout
        self._waiters: deque[tuple[float, asyncio.Future[None]]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    async def take(self) -> None:
        """Take a place, waiting in line for one when none is free (PoolRetired once
        :meth:`close` ran)."""
        if self._closed:
            raise PoolRetired
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append((loop.time() + self._timeout, waiter))
        if self._timer is None:
            self._arm(loop)
        try:
            await waiter
        except BaseException:
            # Handed a place and cancelled before taking it: pass the place on.
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.give()
            raise

    def give(self) -> None:
        """A place came free: hand it to the first live waiter, or keep it."""
        while self._waiters:
            _deadline, waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1

    def close(self) -> None:
        """Lend no more: every waiter in line gets PoolRetired now, and so does every later
        :meth:`take`; places given back are kept for nobody."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiters, self._waiters = self._waiters, deque()
        for _deadline, waiter in waiters:
            if not waiter.done():
                waiter.set_exception(PoolRetired())

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = loop.call_at(self._waiters[0][0], self._expire, loop)

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        while self._waiters and self._waiters[0][0] <= now:
            _deadline, waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(PoolBusy())
        self._timer = None
        if self._waiters:
            self._arm(loop)

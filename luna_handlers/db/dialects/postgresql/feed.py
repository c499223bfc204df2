"""The PostgreSQL change feed: LISTEN on :data:`~luna_handlers.db.changes.CHANNEL`, per instance.

Every service instance keeps one :class:`ListenFeed`: a dedicated asyncpg connection (not
pooled: a pooled connection is reset and shared, a LISTEN must stay put) to the host the pool
currently uses. It calls ``on_change(handler_id)`` per notification and ``on_reset()`` after
every (re)connect, because notifications sent while it was away are lost for good. While it is
not listening it reports ``healthy = False`` and the cache refuses to serve: a stale handler
is worse than a slower one.

Every failure ends in a reconnect with backoff, whatever the driver raises (asyncpg's
``InternalClientError`` once stopped it for good): only close() ends the loop.

The stale-read bound (:data:`STALE_BOUND`): the server sends a listening session its pending
notifications whenever that session waits for its next command, so once a ping is answered,
every change committed before the previous answered ping was sent has been heard (the
session waited for a command in between). ``healthy`` is therefore True only while that
previous ping was sent at most STALE_BOUND seconds ago (about two ping intervals in steady
state): a handler served from the cache is never older than that on any instance, even when
its feed's host or the network goes silent (it then stops serving within the bound, without
waiting for a timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Literal

import asyncpg

from luna_handlers.config import FailoverSettings
from luna_handlers.db.changes import CHANNEL, Target
from luna_handlers.db.dialects.postgresql.connect import APPLICATION_NAME, pg_connect_args
from luna_handlers.db.dialects.postgresql.connections import set_keepalive
from luna_handlers.db.dialects.postgresql.dsn import PgDsn
from luna_handlers.db.hosts import HostPort
from luna_handlers.db.pool import metrics

logger = logging.getLogger("luna_handlers.db.notify")

FEED_APPLICATION_NAME = f"{APPLICATION_NAME}-feed"

#: Seconds: the oldest a change may be and still not be reflected by a serving cache.
STALE_BOUND = 1.0


class ListenFeed:
    """One LISTEN connection that follows the pool's current host; see the module docstring.

    ``target`` is polled every ``poll_interval`` seconds; a new host or generation means a
    reconnect. The same tick pings the host (``pg_is_in_recovery()``, bounded by
    ``ping_timeout``): a hung host or one that became a standby (where no write can happen,
    so no notification either) makes the feed unhealthy and reconnect.
    """

    def __init__(
        self, target: Target, *, user: str, password: str, dbname: str,
        on_change: Callable[[str], None], on_reset: Callable[[], None],
        connect_args: dict[str, Any] | None = None, poll_interval: float = 0.25,
        ping_timeout: float = 0.5, backoff_initial: float = 0.1, backoff_max: float = 2.0,
    ) -> None:
        self._target = target
        self._credentials = {"user": user, "password": password or None, "database": dbname}
        self._connect_args = dict(connect_args or {})
        self._on_change = on_change
        self._on_reset = on_reset
        self.poll_interval = poll_interval
        self.ping_timeout = ping_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._listening = False
        # Loop times: changes committed before _confirmed have been heard; _answered is when
        # the last answered ping was sent (it confirms that much at the next answer).
        self._confirmed = self._answered = float("-inf")
        self._connected_to: HostPort | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.resets = 0  # completed (re)connects, for the health check and tests
        self.failures = 0  # connections lost or refused, whatever the cause

    @classmethod
    def from_dsn(cls, target: Target, dsn: PgDsn, failover: FailoverSettings, *,
                 on_change: Callable[[str], None], on_reset: Callable[[], None],
                 application_name: str = FEED_APPLICATION_NAME) -> ListenFeed:
        """A feed with the pool's credentials, timeouts and SSL (``pg_dsn(settings.db)``)."""
        args = pg_connect_args(dsn, failover)
        # Its own name: an operator (or a test) can tell the listener from pooled sessions.
        args["server_settings"] = {**args.get("server_settings", {}),
                                   "application_name": application_name}
        return cls(target, user=dsn.user, password=dsn.password, dbname=dsn.dbname,
                   on_change=on_change, on_reset=on_reset, connect_args=args)

    @property
    def healthy(self) -> bool:
        """True while the LISTEN is active on the current host and every change committed
        more than :data:`STALE_BOUND` seconds ago is known to have been heard (the cache may
        serve)."""
        if not self._listening:
            return False
        return asyncio.get_running_loop().time() - self._confirmed <= STALE_BOUND

    def status(self) -> dict[str, Any]:
        """Facts for the health check."""
        host = self._connected_to
        return {"healthy": self.healthy, "resets": self.resets, "failures": self.failures,
                "host": None if host is None else f"{host.host}:{host.port}"}

    def start(self) -> None:
        """Start listening in the background (idempotent)."""
        if self._task is None:
            self._stop.clear()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="change-feed")

    async def wait_healthy(self, seconds: float) -> bool:
        """Wait until the feed listens (True) or ``seconds`` pass (False)."""
        deadline = asyncio.get_running_loop().time() + seconds
        while not self.healthy:
            if asyncio.get_running_loop().time() >= deadline:
                return False
            await asyncio.sleep(0.02)  # polled: used at startup and in tests only
        return True

    async def close(self) -> None:
        """Stop listening and close the connection; prompt even while a host hangs."""
        self._stop.set()
        task, self._task = self._task, None
        if task is None:
            return
        done, _pending = await asyncio.wait({task}, timeout=self.ping_timeout)
        if not done:
            # Stuck in a connect to a host that does not answer: no goodbye is owed.
            task.cancel()
            await asyncio.wait({task})

    # -- the loop --------------------------------------------------------------------------

    async def _sleep(self, seconds: float) -> None:
        # Wakes early on close(), so shutdown never waits for a backoff.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _run(self) -> None:
        delay = self.backoff_initial
        while not self._stop.is_set():
            try:
                ended = await self._once()
            except Exception:
                # The driver in a state it did not expect (InternalClientError) or a bug:
                # either way the feed must outlive it; the traceback says which.
                logger.exception("change feed failed; reconnecting")
                ended = "failed"
            self._set_listening(False)
            if self._stop.is_set():
                return
            if ended == "moved":
                continue  # follow the pool at once: nothing failed
            if ended == "lost":
                delay = self.backoff_initial
            self.failures += 1
            metrics.count_feed_failure()
            await self._sleep(delay)
            delay = min(delay * 2, self.backoff_max)

    async def _once(self) -> Literal["moved", "lost", "failed"]:
        """Connect and listen until the connection is lost or the pool moves; how it ended
        (``failed``: it never got as far as listening)."""
        target = self._target()
        while target is None:
            await self._sleep(self.poll_interval)
            if self._stop.is_set():
                return "moved"
            target = self._target()
        conn = await self._connect(target)
        if conn is None:
            return "failed"
        try:
            moved = await self._listen(conn, target)
        finally:
            self._connected_to = None
            await self._close_conn(conn)
        return "moved" if moved else "lost"

    def _set_listening(self, listening: bool) -> None:
        self._listening = listening
        metrics.set_feed_up(listening)

    async def _connect(self, target: tuple[HostPort, int]) -> asyncpg.Connection | None:
        host, port = target[0].host, target[0].port
        try:
            conn: asyncpg.Connection = await asyncpg.connect(
                host=host, port=port, **self._credentials, **self._connect_args)
        except Exception as exc:
            # Whatever fails a connect (network, auth, TLS, a server starting up) is retried
            # with backoff: the feed must outlive it, and is unhealthy meanwhile.
            logger.warning("change feed cannot connect to %s:%s: %s", host, port,
                           type(exc).__name__)
            return None
        set_keepalive(conn)
        try:
            await conn.add_listener(CHANNEL, self._notified)
        except Exception as exc:
            logger.warning("change feed cannot LISTEN on %s:%s: %s", host, port,
                           type(exc).__name__)
            await self._close_conn(conn)
            return None
        return conn

    async def _listen(self, conn: asyncpg.Connection, target: tuple[HostPort, int]) -> bool:
        """Listen until the connection is lost or fails a ping (False), the pool moves or
        the feed is closed (True)."""
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        # Flush only once LISTEN is active: every commit after this point will be notified,
        # every one before it is visible to the reads that refill the cache.
        # Changes before this point are visible to the reads that refill the cache.
        self._confirmed = self._answered = asyncio.get_running_loop().time()
        self._on_reset()
        self.resets += 1
        self._connected_to = target[0]
        self._set_listening(True)
        logger.info("change feed listening on %s:%s (generation %s)", target[0].host,
                    target[0].port, target[1])
        while not self._stop.is_set() and not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), self.poll_interval)
            if lost.is_set() or self._stop.is_set():
                break
            if self._target() != target:
                logger.info("change feed: the pool moved, reconnecting")
                return True
            if not await self._ping(conn):
                return False
        if lost.is_set():
            logger.warning("change feed lost its connection to %s:%s", target[0].host,
                           target[0].port)
            return False
        return True

    async def _ping(self, conn: asyncpg.Connection) -> bool:
        sent = asyncio.get_running_loop().time()
        try:
            in_recovery = await conn.fetchval("SELECT pg_is_in_recovery()",
                                              timeout=self.ping_timeout)
        except Exception as exc:
            logger.warning("change feed ping failed: %s", type(exc).__name__)
            return False
        if in_recovery:
            logger.warning("change feed host became a standby, reconnecting")
            return False
        self._confirmed, self._answered = self._answered, sent
        return True

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            self._on_change(payload)
        except Exception:
            # A failing callback must not kill the listener; the cache is then suspect.
            logger.exception("change feed callback failed; flushing")
            self._on_reset()

    async def _close_conn(self, conn: asyncpg.Connection) -> None:
        try:
            await asyncio.wait_for(conn.close(), self.ping_timeout)
        except Exception:
            # A hung host never answers the goodbye; drop the socket instead.
            conn.terminate()
        except asyncio.CancelledError:
            conn.terminate()
            raise

"""The PostgreSQL change feed: LISTEN on :data:`~luna_handlers.db.changes.CHANNEL`, per instance.

Every service instance keeps one :class:`ListenFeed`: a dedicated asyncpg connection (not
pooled: a pooled connection is reset and shared, a LISTEN must stay put) to the host the pool
currently uses. It calls ``on_change(handler_id)`` per notification and ``on_reset()`` after
every (re)connect, because notifications sent while it was away are lost for good. While it is
not listening it reports ``healthy = False`` and the cache refuses to serve: a stale handler
is worse than a slower one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg

from luna_handlers.config import FailoverSettings
from luna_handlers.db.changes import CHANNEL, Target
from luna_handlers.db.dialects.postgresql.connect import APPLICATION_NAME, pg_connect_args
from luna_handlers.db.dialects.postgresql.dsn import PgDsn
from luna_handlers.db.hosts import HostPort

logger = logging.getLogger("luna_handlers.db.notify")

FEED_APPLICATION_NAME = f"{APPLICATION_NAME}-feed"

# What the feed catches from a connect or a ping; anything else is a bug and propagates.
_FEED_ERRORS = (OSError, TimeoutError, EOFError, asyncpg.PostgresError, asyncpg.InterfaceError)


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
        connect_args: dict[str, Any] | None = None, poll_interval: float = 0.5,
        ping_timeout: float = 1.0, backoff_initial: float = 0.1, backoff_max: float = 2.0,
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
        self._healthy = False
        self._connected_to: HostPort | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.resets = 0  # completed (re)connects, for the health check and tests

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
        """True while the LISTEN is active on the current host (the cache may serve)."""
        return self._healthy

    def status(self) -> dict[str, Any]:
        """Facts for the health check."""
        host = self._connected_to
        return {"healthy": self._healthy, "resets": self.resets,
                "host": None if host is None else f"{host.host}:{host.port}"}

    def start(self) -> None:
        """Start listening in the background (idempotent)."""
        if self._task is None:
            self._stop.clear()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="change-feed")

    async def wait_healthy(self, seconds: float) -> bool:
        """Wait until the feed listens (True) or ``seconds`` pass (False)."""
        deadline = asyncio.get_running_loop().time() + seconds
        while not self._healthy:
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
        try:
            await self._loop()
        except Exception:
            # A bug, not a database problem: stay unhealthy (the cache bypasses itself).
            logger.exception("change feed stopped")

    async def _loop(self) -> None:
        delay = self.backoff_initial
        while not self._stop.is_set():
            target = self._target()
            if target is None:
                await self._sleep(self.poll_interval)
                continue
            conn = await self._connect(target)
            if conn is None:
                await self._sleep(delay)
                delay = min(delay * 2, self.backoff_max)
                continue
            delay = self.backoff_initial
            try:
                await self._listen(conn, target)
            finally:
                self._healthy = False
                self._connected_to = None
                await self._close_conn(conn)

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
        try:
            await conn.add_listener(CHANNEL, self._notified)
        except _FEED_ERRORS as exc:
            logger.warning("change feed cannot LISTEN on %s:%s: %s", host, port,
                           type(exc).__name__)
            await self._close_conn(conn)
            return None
        return conn

    async def _listen(self, conn: asyncpg.Connection, target: tuple[HostPort, int]) -> None:
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        # Flush only once LISTEN is active: every commit after this point will be notified,
        # every one before it is visible to the reads that refill the cache.
        self._on_reset()
        self.resets += 1
        self._connected_to = target[0]
        self._healthy = True
        logger.info("change feed listening on %s:%s (generation %s)", target[0].host,
                    target[0].port, target[1])
        while not self._stop.is_set() and not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), self.poll_interval)
            if lost.is_set() or self._stop.is_set():
                break
            if self._target() != target:
                logger.info("change feed: the pool moved, reconnecting")
                return
            if not await self._ping(conn):
                return
        if lost.is_set():
            logger.warning("change feed lost its connection to %s:%s", target[0].host,
                           target[0].port)

    async def _ping(self, conn: asyncpg.Connection) -> bool:
        try:
            in_recovery = await conn.fetchval("SELECT pg_is_in_recovery()",
                                              timeout=self.ping_timeout)
        except _FEED_ERRORS as exc:
            logger.warning("change feed ping failed: %s", type(exc).__name__)
            return False
        if in_recovery:
            logger.warning("change feed host became a standby, reconnecting")
            return False
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
        except _FEED_ERRORS:
            # A hung host never answers the goodbye; drop the socket instead.
            conn.terminate()
        except asyncio.CancelledError:
            conn.terminate()
            raise

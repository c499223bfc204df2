"""The health check of the active host over a kept connection: no login per check.

One :class:`HostHealth` per failover database. Each check is one cheap round trip on a
connection kept to the active host, bounded by ``health_check_timeout`` (much shorter than a
statement's ``query_timeout``: the check does no work, so a host that cannot answer it within
that time is hung, not busy). A kept connection that broke (an admin killed it, an idle
timeout) is replaced at once within the same check, so only a host that also refuses a fresh
connection counts as unreachable. A dialect without a monitor falls back to a fresh probe.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from luna_handlers.config import FailoverSettings
from luna_handlers.db.hosts import HostPort
from luna_handlers.db.pool import probe
from luna_handlers.db.pool.backend import Backend, HealthFacts, HealthLink
from luna_handlers.db.pool.faults import ErrorKind
from luna_handlers.db.pool.probe import ProbeResult


class HostHealth:
    """Checks one host at a time over a kept connection; remembers the last facts."""

    def __init__(self, backend: Backend, settings: FailoverSettings) -> None:
        self._backend = backend
        self._timeout = settings.health_check_timeout
        self._link: HealthLink | None = None
        self._host: HostPort | None = None
        self.facts: HealthFacts | None = None  # of the last check that succeeded
        self.timed_out = False  # the last check failed because nothing answered in time

    async def check(self, host: HostPort) -> ProbeResult:
        """Check ``host`` (never raises; lets cancellation through)."""
        self.timed_out = False
        if self._backend.monitor is None:
            return await probe.probe_one(self._backend, host, self._backend.connect_timeout)
        if host != self._host:
            self.close()
            self.facts = None
        started = time.monotonic()
        fresh = self._link is None
        result = await self._round_trip(host, started)
        if result.role is None and not fresh and not self.timed_out:
            # The kept connection broke, which says little: ask once more on a new one.
            result = await self._round_trip(host, time.monotonic())
        return result

    async def _round_trip(self, host: HostPort, started: float) -> ProbeResult:
        backend = self._backend
        try:
            if self._link is None:
                monitor = backend.monitor
                assert monitor is not None
                async with asyncio.timeout(backend.connect_timeout):
                    self._link = await monitor(host, backend.connect_timeout)
                self._host = host
            async with asyncio.timeout(self._timeout):
                facts = await self._link.check()
        except TimeoutError:
            self.close()
            self.timed_out = True
            return ProbeResult(host, None, ErrorKind.CONNECTIVITY,
                               f"no answer to the health check within {self._timeout:g} s",
                               time.monotonic() - started)
        except Exception as exc:
            self.close()
            return ProbeResult(host, None, backend.classify_probe(exc), backend.describe(exc),
                               time.monotonic() - started)
        self.facts = facts
        return ProbeResult(host, facts.role, elapsed=time.monotonic() - started)

    def replication(self) -> dict[str, Any] | None:
        """Replication facts of the active host from the last check, for the status."""
        return None if self.facts is None else dict(self.facts.replication)

    def close(self) -> None:
        """Drop the kept connection (its socket is closed at once)."""
        link, self._link, self._host = self._link, None, None
        if link is not None:
            link.terminate()

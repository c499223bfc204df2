"""Host probing: which configured host may carry the pool, by reachability and role.

* :func:`probe_hosts`: every probe starts at once, each bounded by its own timeout, and
  results are taken in DSN order, so a hung first host costs only its own timeout;
* :func:`choose`: the first qualifying host in DSN order (two passes for prefer-standby);
* :class:`Backoff` between rounds, :class:`AuthReporter` for hosts that refuse us.

The probe itself (connect, read the role, disconnect) is the Backend's.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass

from luna_handlers.db.hosts import HostPort, TargetSessionAttrs
from luna_handlers.db.pool.backend import Backend
from luna_handlers.db.pool.faults import ErrorKind
from luna_handlers.db.pool.roles import PASSES, HostRole, acceptable


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of one probe: a role, or why there is none."""

    host: HostPort
    role: HostRole | None
    kind: ErrorKind | None = None  # why the probe failed; None when it succeeded
    error: str = ""  # one line for logs and messages, never the password
    elapsed: float = 0.0

    def explain(self, target: TargetSessionAttrs) -> str:
        """``host: what happened`` for error messages."""
        if self.role is None:
            kind = self.kind.value if self.kind else "error"
            return f"{self.host}: {self.error} ({kind})"
        verdict = "qualifies" if acceptable(self.role, target) else "wrong role"
        ro = ", read-only" if self.role.read_only else ""
        return f"{self.host}: {self.role.name}{ro} ({verdict} for {target.value})"



async def probe_one(backend: Backend, host: HostPort, limit: float) -> ProbeResult:
    """Probe ``host`` within ``limit`` seconds; never raises (lets cancellation through)."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(limit):
            role = await backend.probe(host, limit)
    except Exception as exc:
        kind = backend.classify_probe(exc)
        if kind is not ErrorKind.AUTH:  # those are the AuthReporter's, at ERROR
            backend.report(logging.WARNING, host, "probe", exc)
        return ProbeResult(host, None, kind, backend.describe(exc),
                           time.monotonic() - started)
    return ProbeResult(host, role, elapsed=time.monotonic() - started)


async def probe_hosts(backend: Backend, limit: float,
                      hosts: Sequence[HostPort] | None = None,
                      limits: Mapping[HostPort, float] | None = None,
                      ) -> AsyncGenerator[ProbeResult, None]:
    """Start one probe per host at once; yield the results in DSN order.

    Every probe has its own ``limit`` (seconds; ``limits`` may shorten it per host), so the
    whole round is bounded by it too.
    Probes the consumer did not wait for (it stopped early) are cancelled when the generator
    is closed: use it under ``contextlib.aclosing``.
    """
    short = limits or {}
    tasks = [asyncio.create_task(probe_one(backend, host, short.get(host, limit)),
                                 name=f"luna-db-probe-{host}")
             for host in (backend.hosts if hosts is None else hosts)]
    try:
        for task in tasks:
            yield await task
    finally:
        for task in tasks:
            task.cancel()
        # Reap them so no "Task exception was never retrieved" surfaces; they end at once.
        await asyncio.gather(*tasks, return_exceptions=True)


class Backoff:
    """Jittered exponential pauses between probe rounds: base, 2*base, ... up to cap."""

    def __init__(self, base: float, cap: float) -> None:
        self.base, self.cap, self._attempt = base, cap, 0

    def next(self) -> float:
        """The next pause in seconds (scaled by U(0.5, 1) so instances do not march in step)."""
        delay = min(self.cap, self.base * 2.0 ** self._attempt)
        self._attempt = min(self._attempt + 1, 30)
        return delay * random.uniform(0.5, 1.0)  # noqa: S311 -- jitter, not cryptography


async def choose(results: AsyncIterator[ProbeResult], target: TargetSessionAttrs,
                 seen: list[ProbeResult]) -> ProbeResult | None:
    """The first qualifying result in DSN order (best pass first); every result read is
    appended to ``seen`` for the caller's report.

    A first-pass match ends the round at once; a later-pass match (prefer-standby's "any")
    must wait for every host, since a standby further down the list would win.
    """
    passes = PASSES[target]
    best: tuple[int, ProbeResult] | None = None
    async for result in results:
        seen.append(result)
        if result.role is None:
            continue
        for rank, check in enumerate(passes):
            if check(result.role):
                if rank == 0:
                    return result
                if best is None or rank < best[0]:
                    best = (rank, result)
                break
    return None if best is None else best[1]


def no_host_message(seen: Sequence[ProbeResult], backend: Backend) -> str:
    """Why no host was taken: one ``host: reason`` per configured host, no password."""
    told = {result.host for result in seen}
    parts = [result.explain(backend.target) for result in seen]
    parts += [f"{host}: not probed" for host in backend.hosts if host not in told]
    return (f"no database host qualifies for target_session_attrs={backend.target.value}: "
            + "; ".join(parts))


class AuthReporter:
    """Logs at ERROR each host that rejects our credentials, once until it accepts them.

    Such a host is skipped, never silently; moving the pool cannot fix a configuration.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._reported: set[HostPort] = set()

    def report(self, results: Sequence[ProbeResult]) -> None:
        """Log the new authentication failures among ``results``."""
        for result in results:
            if result.kind is ErrorKind.AUTH and result.host not in self._reported:
                self._reported.add(result.host)
                self._logger.error(
                    "database host %s rejected the configured credentials or database "
                    "(authentication failure): %s; it is skipped until it accepts them",
                    result.host, result.error)
            elif result.role is not None:
                self._reported.discard(result.host)

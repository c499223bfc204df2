"""Host probing: which configured host may carry the pool, by reachability and role.

Dialect-neutral part, used by the failover manager:

* :class:`HostRole` and the table :data:`ROLE_CHECKS` of one predicate per
  ``target_session_attrs`` value (libpq's semantics, PG14+);
* :class:`Backend`, the few functions a dialect supplies (probe, pool, classifier);
* :func:`probe_hosts`: every probe starts at once, each bounded by its own timeout, and
  results are taken in DSN order, so a hung first host costs only its own timeout;
* :func:`choose`: the first qualifying host in DSN order (two passes for prefer-standby).

PostgreSQL part: :func:`pg_role` and :func:`pg_backend` (asyncpg probe + :func:`pg_source`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import asyncpg

from luna_handlers.config import FailoverSettings
from luna_handlers.db.dialects import ErrorKind, postgresql
from luna_handlers.db.dsn import HostPort, PgDsn, TargetSessionAttrs
from luna_handlers.db.engine import pg_connect_args, pg_source
from luna_handlers.db.sources import Source

TSA = TargetSessionAttrs


@dataclass(frozen=True)
class HostRole:
    """What a probe learnt about a host: hot standby or not, read-only sessions or not."""

    in_recovery: bool
    read_only: bool  # new sessions are read-only: a standby, or default_transaction_read_only

    @property
    def name(self) -> str:
        """``primary`` or ``standby`` (a read-only primary is still a primary)."""
        return "standby" if self.in_recovery else "primary"


RoleCheck = Callable[[HostRole], bool]


def _any(_role: HostRole) -> bool:
    return True


def _standby(role: HostRole) -> bool:
    return role.in_recovery


# Whether a host of this role may carry the pool, per target_session_attrs. prefer-standby
# accepts any host; the standby preference is the extra first pass of PASSES.
ROLE_CHECKS: Mapping[TSA, RoleCheck] = MappingProxyType({
    TSA.ANY: _any,
    TSA.READ_WRITE: lambda role: not role.read_only,
    TSA.READ_ONLY: lambda role: role.read_only,
    TSA.PRIMARY: lambda role: not role.in_recovery,
    TSA.STANDBY: _standby,
    TSA.PREFER_STANDBY: _any,
})
# The passes of the host choice, best first (libpq: prefer-standby tries standbys, then any).
PASSES: Mapping[TSA, tuple[RoleCheck, ...]] = MappingProxyType({
    tsa: ((_standby, _any) if tsa is TSA.PREFER_STANDBY else (check,))
    for tsa, check in ROLE_CHECKS.items()
})
# Targets whose pool must accept writes: a read-only error (25006) there means "wrong host".
WRITABLE_TARGETS = frozenset({TSA.READ_WRITE})


def acceptable(role: HostRole, target: TSA) -> bool:
    """True when a host of ``role`` may keep carrying a pool for ``target``."""
    return ROLE_CHECKS[target](role)


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of one probe: a role, or why there is none."""

    host: HostPort
    role: HostRole | None
    kind: ErrorKind | None = None  # why the probe failed; None when it succeeded
    error: str = ""  # one line for logs and messages, never the password
    elapsed: float = 0.0

    def explain(self, target: TSA) -> str:
        """``host: what happened`` for error messages."""
        if self.role is None:
            kind = self.kind.value if self.kind else "error"
            return f"{self.host}: {self.error} ({kind})"
        verdict = "qualifies" if acceptable(self.role, target) else "wrong role"
        ro = ", read-only" if self.role.read_only else ""
        return f"{self.host}: {self.role.name}{ro} ({verdict} for {target.value})"


@dataclass(frozen=True)
class Backend:
    """What the failover manager needs from a dialect; everything else is dialect-neutral.

    ``probe(host, timeout)`` connects to one host, reads its role and disconnects, raising
    the driver's error on failure; ``classify`` maps those errors (and warm-up failures) to
    :class:`ErrorKind`; ``source(host)`` makes the pool's connections on one host (the pool's own
    errors are classified by :class:`~luna_handlers.db.hostpool.HostPool`).
    """

    dialect: str
    hosts: tuple[HostPort, ...]
    target: TSA
    connect_timeout: float
    probe: Callable[[HostPort, float], Awaitable[HostRole]]
    source: Callable[[HostPort], Source]
    classify: Callable[[BaseException], ErrorKind]
    secret: str = ""  # scrubbed from every error text (the password)

    def describe(self, exc: BaseException) -> str:
        """One short line naming the error, with the secret scrubbed (before any cut)."""
        lines = str(exc).strip().splitlines()  # later lines may hold SQL and parameters
        text = lines[0] if lines else ""
        if self.secret:
            text = text.replace(self.secret, "***")
        if text:
            return f"{type(exc).__name__}: {text[:200]}"
        return "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__


async def probe_one(backend: Backend, host: HostPort, limit: float) -> ProbeResult:
    """Probe ``host`` within ``limit`` seconds; never raises (lets cancellation through)."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(limit):
            role = await backend.probe(host, limit)
    except Exception as exc:
        return ProbeResult(host, None, backend.classify(exc), backend.describe(exc),
                           time.monotonic() - started)
    return ProbeResult(host, role, elapsed=time.monotonic() - started)


async def probe_hosts(backend: Backend, limit: float,
                      hosts: Sequence[HostPort] | None = None,
                      ) -> AsyncGenerator[ProbeResult, None]:
    """Start one probe per host at once; yield the results in DSN order.

    Every probe has its own ``limit`` (seconds), so the whole round is bounded by it too.
    Probes the consumer did not wait for (it stopped early) are cancelled when the generator
    is closed: use it under ``contextlib.aclosing``.
    """
    tasks = [asyncio.create_task(probe_one(backend, host, limit), name=f"luna-db-probe-{host}")
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


async def choose(results: AsyncIterator[ProbeResult], target: TSA,
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


# -- PostgreSQL ------------------------------------------------------------------------------

# For servers that do not report in_hot_standby (before 14) as a ParameterStatus.
ROLE_QUERY = ("SELECT pg_catalog.pg_is_in_recovery(), "
              "pg_catalog.current_setting('default_transaction_read_only') = 'on'")
TOO_MANY_CONNECTIONS = "53300"


async def pg_role(conn: Any, limit: float) -> HostRole:
    """The role of the server behind an asyncpg connection.

    PG14+ reports ``in_hot_standby`` and ``default_transaction_read_only`` in the startup
    ParameterStatus messages, so a fresh connection needs no extra round trip (libpq does
    the same for target_session_attrs).
    """
    settings = conn.get_settings()
    hot = getattr(settings, "in_hot_standby", None)
    read_only = getattr(settings, "default_transaction_read_only", None)
    if hot is None or read_only is None:
        row = await conn.fetchrow(ROLE_QUERY, timeout=limit)
        return HostRole(in_recovery=bool(row[0]), read_only=bool(row[0] or row[1]))
    return HostRole(in_recovery=hot == "on", read_only=hot == "on" or read_only == "on")


def pg_probe_classify(exc: BaseException) -> ErrorKind:
    """:func:`postgresql.classify`, except that a full server is alive (OTHER), not gone.

    53300 counts towards a switch when pooled sessions meet it, but a health check that
    cannot get one extra connection has still heard the server answer: no reason to move.
    """
    for item in (exc, exc.__cause__, exc.__context__):
        if getattr(item, "sqlstate", None) == TOO_MANY_CONNECTIONS:
            return ErrorKind.OTHER
    return postgresql.classify(exc)


def pg_backend(dsn: PgDsn, pool_size: int, settings: FailoverSettings) -> Backend:
    """The PostgreSQL backend: asyncpg probes and :func:`pg_source` pools."""
    connect_args = pg_connect_args(dsn, settings)
    timeout = float(connect_args.pop("timeout"))
    connect_args.pop("command_timeout", None)

    async def probe(host: HostPort, limit: float) -> HostRole:
        # target_session_attrs="any": we judge the role ourselves, and PGTARGETSESSIONATTRS
        # from the environment must not change what a probe sees.
        conn = await asyncpg.connect(
            host=host.host, port=host.port, user=dsn.user, password=dsn.password or None,
            database=dsn.dbname, timeout=limit, target_session_attrs="any", **connect_args)
        try:
            role = await pg_role(conn, limit)
        except BaseException:
            conn.terminate()
            raise
        # A graceful close (so the server logs no "unexpected EOF"); bounded, then abort.
        with contextlib.suppress(Exception):
            await conn.close(timeout=limit)
        return role

    return Backend(
        dialect="postgresql", hosts=dsn.hosts, target=dsn.target_session_attrs,
        connect_timeout=timeout, probe=probe,
        source=lambda host: pg_source(host, dsn, pool_size, settings),
        classify=pg_probe_classify, secret=dsn.password,
    )

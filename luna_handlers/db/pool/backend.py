"""What a dialect hands in to the pool: :class:`Backend`.

Everything the failover machinery needs to know about a dialect is here, as data and
functions; :mod:`luna_handlers.db.pool` itself never imports a dialect.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from luna_handlers.db.changes import ChangeFeed, FeedFactory, Target
from luna_handlers.db.hosts import HostPort, TargetSessionAttrs
from luna_handlers.db.pool.connections import Connections
from luna_handlers.db.pool.failurelog import FailureLog, scrub
from luna_handlers.db.pool.faults import COMMON_ERRORS, ErrorKind
from luna_handlers.db.pool.roles import HostRole


@dataclass(frozen=True)
class HealthFacts:
    """What one health round trip learnt: the role, the server's identity (to tell a restarted
    or different server apart), and replication facts for the health check."""

    role: HostRole
    identity: str
    replication: dict[str, Any] = field(default_factory=dict)


class HealthLink(Protocol):
    """A connection kept to the active host for health checks (no login per check)."""

    async def check(self) -> HealthFacts:
        """One cheap round trip (the caller bounds it); the driver's error on failure."""
        ...

    def terminate(self) -> None:
        """Close the socket now, without asking the host."""
        ...


@dataclass(frozen=True)
class Backend:
    """One configured database as the pool sees it: its hosts and its dialect's functions.

    ``probe(host, timeout)`` connects to one host, reads its role and disconnects, raising
    the driver's error on failure; ``connections(host)`` makes a pool's connections on one
    host; ``classify`` maps the driver errors of sessions to :class:`ErrorKind`, and
    ``probe_classify`` (when it differs) those of probes and warm-ups; ``driver_errors`` are
    the driver's own exception roots; ``changes`` makes the change feed, None when the
    dialect sends no notifications (or cannot now); ``monitor`` and ``end_sessions`` are
    optional (below). ``code`` names the driver's error code (``SQLSTATE 28P01``), ``hint``
    what an operator should do about an error, if the dialect knows; ``failures`` logs
    connect and probe failures once per cause and host.
    """

    dialect: str
    hosts: tuple[HostPort, ...]
    target: TargetSessionAttrs
    connect_timeout: float
    probe: Callable[[HostPort, float], Awaitable[HostRole]]
    connections: Callable[[HostPort], Connections]
    classify: Callable[[BaseException], ErrorKind]
    driver_errors: tuple[type[BaseException], ...]
    probe_classify: Callable[[BaseException], ErrorKind] | None = None
    changes: FeedFactory | None = None
    secret: str = ""  # scrubbed from every error text (the password)
    # A kept health connection to one host (None: every health check is a fresh probe).
    monitor: Callable[[HostPort, float], Awaitable[HealthLink]] | None = None
    # Ends server sessions by id on ``host`` if it is still the server ``identity`` names
    # (so that ids are never matched against another server's); how many were ended.
    end_sessions: Callable[[HostPort, Sequence[int], str, float], Awaitable[int]] | None = None
    code: Callable[[BaseException], str | None] = lambda _exc: None
    hint: Callable[[BaseException], str | None] = lambda _exc: None
    failures: FailureLog = field(
        default_factory=lambda: FailureLog(logging.getLogger("luna_handlers.db")))

    @property
    def errors(self) -> tuple[type[BaseException], ...]:
        """Everything a session or connect of this backend can raise for the pool to classify."""
        return COMMON_ERRORS + self.driver_errors

    def classify_probe(self, exc: BaseException) -> ErrorKind:
        """The :class:`ErrorKind` of a failed probe or warm-up."""
        return (self.probe_classify or self.classify)(exc)

    def feed(self, target: Target, on_change: Callable[[str], None],
             on_reset: Callable[[], None], name: str | None) -> ChangeFeed | None:
        """A change feed following ``target``, or None without notifications."""
        return None if self.changes is None else self.changes(target, on_change, on_reset,
                                                                 name)

    def cause(self, exc: BaseException) -> str:
        """The error's type and code, e.g. ``InvalidPasswordError SQLSTATE 28P01``: what
        :attr:`failures` tells causes apart by."""
        code = self.code(exc)
        return type(exc).__name__ if code is None else f"{type(exc).__name__} {code}"

    def describe(self, exc: BaseException) -> str:
        """One short line naming the error: type, the driver's first line, its code, and the
        dialect's hint; secrets scrubbed (before any cut)."""
        lines = str(exc).strip().splitlines()  # later lines may hold SQL and parameters
        text = scrub(lines[0], self.secret)[:200] if lines else ""
        code, hint = self.code(exc), self.hint(exc)
        if text:
            line = f"{type(exc).__name__}: {text}"
        else:
            line = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
        if code is not None:
            line += f" ({code})"
        return line if hint is None else f"{line}; {hint}"

    def report(self, level: int, host: HostPort | str, stage: str,
               exc: BaseException) -> None:
        """Log a connect or probe failure of ``host`` with the driver's message (see
        :attr:`failures`)."""
        self.failures.report(level, host, stage, self.cause(exc), self.describe(exc))

"""Prometheus metrics of the database layer, in prometheus_client's default ``REGISTRY``.

The same facts as ``FailoverDatabase.status()``: the pool generation, switches by reason,
the active host and its role, and driver errors by kind. Label values come from small
closed sets (reasons, error kinds, configured hosts), never from error texts.
"""

from __future__ import annotations

import contextlib

from prometheus_client import Counter, Gauge

POOL_GENERATION = Gauge(
    "luna_handlers_db_pool_generation",
    "Generation of the active database pool: 1 at start, +1 per switch to another pool.",
)
POOL_SWITCHES = Counter(
    "luna_handlers_db_pool_switches_total",
    "Pool switches (rebuilds on another host), by reason.",
    ["reason"],
)
ACTIVE_HOST = Gauge(
    "luna_handlers_db_active_host_info",
    "1 for the host:port the pool uses now, with its role (primary or standby).",
    ["host", "role"],
)
ERRORS = Counter(
    "luna_handlers_db_errors_total",
    "Driver errors met by requests, by kind (connectivity, read_only, auth, other).",
    ["kind"],
)


def set_active(host: str, role: str, generation: int,
               previous: tuple[str, str] | None = None) -> None:
    """Show ``host`` (``role``) as the active host at ``generation``; drop ``previous``."""
    if previous is not None and previous != (host, role):
        # Removed rather than set to 0: exactly one series is 1, so a sum() alerts cleanly.
        with contextlib.suppress(KeyError):
            ACTIVE_HOST.remove(*previous)
    ACTIVE_HOST.labels(host, role).set(1)
    POOL_GENERATION.set(generation)


def clear_active(previous: tuple[str, str] | None) -> None:
    """No active host any more (the database layer was closed)."""
    if previous is not None:
        with contextlib.suppress(KeyError):
            ACTIVE_HOST.remove(*previous)


def count_switch(reason: str) -> None:
    """One more switch for ``reason``."""
    POOL_SWITCHES.labels(reason).inc()


def count_error(kind: str) -> None:
    """One more driver error of ``kind``."""
    ERRORS.labels(kind).inc()

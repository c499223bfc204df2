"""Prometheus metrics of the database layer, in prometheus_client's default ``REGISTRY``.

The same facts as ``FailoverDatabase.status()``: the pool generation, switches by reason,
the active host and its role, and driver errors by kind. Label values come from small
closed sets (reasons, error kinds, configured hosts), never from error texts.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

# Every worker has its own pool: with several workers (multiprocess mode, see
# luna_handlers.app.metrics) the gauges are per worker ("liveall": a pid label, live ones only).
POOL_GENERATION = Gauge(
    "luna_handlers_db_pool_generation",
    "Generation of the active database pool: 1 at start, +1 per switch to another pool.",
    multiprocess_mode="liveall",
)
POOL_SWITCHES = Counter(
    "luna_handlers_db_pool_switches_total",
    "Pool switches (rebuilds on another host), by reason.",
    ["reason"],
)
ACTIVE_HOST = Gauge(
    "luna_handlers_db_active_host_info",
    "1 for the host:port the pool uses now, with its role (primary or standby); 0 for one "
    "it used before.",
    ["host", "role"],
    multiprocess_mode="liveall",
)
ERRORS = Counter(
    "luna_handlers_db_errors_total",
    "Driver errors met by requests, by kind (connectivity, read_only, auth, other).",
    ["kind"],
)

FEED_UP = Gauge(
    "luna_handlers_cache_feed_up",
    "1 while the read cache's change feed listens (the cache serves), 0 otherwise.",
    multiprocess_mode="liveall",
)
FEED_FAILURES = Counter(
    "luna_handlers_cache_feed_reconnects_total",
    "Times the change feed lost or could not open its connection and reconnected.",
)


def set_active(host: str, role: str, generation: int,
               previous: tuple[str, str] | None = None) -> None:
    """Show ``host`` (``role``) as the active host at ``generation``; drop ``previous``."""
    if previous is not None and previous != (host, role):
        # Set to 0, not removed: a removed series would live on in the files of multiprocess
        # mode. Exactly one series per pool is 1, so a sum() still alerts cleanly.
        ACTIVE_HOST.labels(*previous).set(0)
    ACTIVE_HOST.labels(host, role).set(1)
    POOL_GENERATION.set(generation)


def clear_active(previous: tuple[str, str] | None) -> None:
    """No active host any more (the database layer was closed)."""
    if previous is not None:
        ACTIVE_HOST.labels(*previous).set(0)


def count_switch(reason: str) -> None:
    """One more switch for ``reason``."""
    POOL_SWITCHES.labels(reason).inc()


def count_error(kind: str) -> None:
    """One more driver error of ``kind``."""
    ERRORS.labels(kind).inc()


def set_feed_up(up: bool) -> None:
    """The change feed listens (True) or not."""
    FEED_UP.set(1 if up else 0)


def count_feed_failure() -> None:
    """The change feed lost its connection, or could not open it, once more."""
    FEED_FAILURES.inc()

"""Prometheus metrics of the matching index, in prometheus_client's default ``REGISTRY``
(style of :mod:`luna_handlers.db.pool.metrics`).

Every worker process has its own index: the gauge is per worker (``liveall``).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

#: How a probe by list was answered: ``hit`` (nothing changed since the last one), ``delta``
#: (changed faces re-read), ``load`` (the list read whole), ``sql`` (not held: too big for
#: the bound, or a pool switch during its read).
PROBES = Counter(
    "luna_handlers_match_cache_probes_total",
    "Probes of matching by list, by how the in-process index answered them.",
    ["outcome"],
)
DESCRIPTORS = Gauge(
    "luna_handlers_match_cache_descriptors",
    "Descriptors held by the in-process matching index of this worker.",
    multiprocess_mode="liveall",
)
EVICTIONS = Counter(
    "luna_handlers_match_cache_evictions_total",
    "Lists dropped from the matching index to stay within its bound.",
)
FLUSHES = Counter(
    "luna_handlers_match_cache_flushes_total",
    "Times the matching index dropped every list (a pool switch: the new host may lack rows).",
)


def count_probe(outcome: str) -> None:
    """One more probe answered as ``outcome``."""
    PROBES.labels(outcome).inc()


def set_held(descriptors: int) -> None:
    """The index holds ``descriptors`` now."""
    DESCRIPTORS.set(descriptors)


def count_eviction() -> None:
    """One list was evicted."""
    EVICTIONS.inc()


def count_flush() -> None:
    """Every list was dropped."""
    FLUSHES.inc()

"""Prometheus metrics: HTTP counters here; the DB layer registers its own gauges.

Everything lives in prometheus_client's default ``REGISTRY`` so one scrape of ``/metrics``
shows the whole process. The ``route`` label is the route template (``/1/handlers/{handler_id}``)
or ``unmatched``, never the raw path: raw paths would make the label set unbounded.

With several workers, a scrape reaches one of them at random; so ``serve`` runs them in
prometheus_client's multiprocess mode (:func:`shared_by_workers`): each worker writes its
values to files in one directory, and ``/metrics`` of any worker reads them all. Counters and
histograms are summed over the workers; per-pool gauges get a ``pid`` label, since every
worker has its own pool.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.requests import Request
from starlette.responses import Response

#: prometheus_client's switch to multiprocess mode, read when a process first imports it.
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

UNMATCHED_ROUTE = "unmatched"

HTTP_REQUESTS = Counter(
    "luna_handlers_http_requests_total",
    "HTTP requests served, by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "luna_handlers_http_request_duration_seconds",
    "Time from the start of a request to the end of its response, by method and route.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
# Methods outside this set are counted as OTHER, so a client cannot invent label values.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


#: (method, route, status) -> the counter and histogram children of that label set. Bounded:
#: methods are folded into KNOWN_METHODS, routes are templates and statuses are few.
_CHILDREN: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}


def _children(method: str, route: str, status: int) -> tuple[Counter, Histogram]:
    label = method if method in KNOWN_METHODS else "OTHER"
    children = (HTTP_REQUESTS.labels(label, route, str(status)),
                HTTP_DURATION.labels(label, route))
    if len(_CHILDREN) < 10_000:  # a safety net; never reached by real traffic
        _CHILDREN[method, route, status] = children
    return children


def observe(method: str, route: str, status: int, seconds: float) -> None:
    """Record one finished request."""
    # ``labels()`` validates and hashes its arguments under a lock: do it once per label set.
    children = _CHILDREN.get((method, route, status)) or _children(method, route, status)
    children[0].inc()
    children[1].observe(seconds)


def _scraped_registry() -> CollectorRegistry:
    if os.environ.get(MULTIPROCESS_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


_SCRAPED = _scraped_registry()


def _forget_dead_workers(path: Path) -> None:
    # A worker that was killed (SIGKILL, OOM, or restarted by uvicorn's supervisor when it
    # stopped answering its pings) never ran worker_stopped(): its live gauges would be shown
    # beside its successor's for good.
    for file in path.glob("gauge_live*_*.db"):
        pid = int(file.stem.rpartition("_")[2])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
        except PermissionError:  # alive, another user's: not ours to judge
            pass


async def metrics_endpoint(_request: Request) -> Response:
    """GET /metrics: the Prometheus text exposition (of every worker, see the docstring)."""
    shared = os.environ.get(MULTIPROCESS_ENV)
    if shared:
        _forget_dead_workers(Path(shared))
    return Response(generate_latest(_SCRAPED), media_type=CONTENT_TYPE_LATEST)


@contextmanager
def shared_by_workers(workers: int) -> Iterator[Path | None]:
    """Run ``workers`` > 1 in multiprocess mode: yield the directory of their metric files
    (None for one worker). A directory named by ``PROMETHEUS_MULTIPROC_DIR`` is used (its old
    files removed, as prometheus_client requires); otherwise a fresh one, removed afterwards.
    Must be entered before the workers start: they inherit the environment."""
    given = os.environ.get(MULTIPROCESS_ENV)
    if workers <= 1 and not given:
        yield None
        return
    path = Path(given) if given else Path(tempfile.mkdtemp(prefix="luna-handlers-metrics-"))
    for old in path.glob("*.db"):
        old.unlink()
    os.environ[MULTIPROCESS_ENV] = str(path)
    try:
        yield path
    finally:
        if not given:
            del os.environ[MULTIPROCESS_ENV]
            shutil.rmtree(path, ignore_errors=True)


def worker_stopped() -> None:
    """Drop this worker's live gauges from the shared files (multiprocess mode only)."""
    if os.environ.get(MULTIPROCESS_ENV):
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]

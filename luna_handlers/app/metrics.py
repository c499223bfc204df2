"""Prometheus metrics: HTTP counters here; the DB layer registers its own gauges.

Everything lives in prometheus_client's default ``REGISTRY`` so one scrape of ``/metrics``
shows the whole process. The ``route`` label is the route template (``/1/handlers/{handler_id}``)
or ``unmatched``, never the raw path: raw paths would make the label set unbounded.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response

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


async def metrics_endpoint(_request: Request) -> Response:
    """GET /metrics: the Prometheus text exposition of the default registry."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

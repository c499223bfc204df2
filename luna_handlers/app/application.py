"""The Starlette application: routes, middleware, error handlers and the database lifespan.

Middleware, outermost first:

1. :class:`~.middleware.RequestMiddleware`: request id, access log, metrics; it sees every
   response, error responses included;
2. :class:`~.errors.ErrorMiddleware`: every exception becomes a LUNA error body (routing
   404/405 included);
3. :class:`~.middleware.AuthMiddleware` (only when a token is configured);
4. :class:`~.gate.LargePageGate`: large list pages a few at a time, sent in pieces;
5. the router (:class:`_Router`), then one ASGI endpoint per path (:class:`_PathEndpoint`).

Starlette's own layers are left out (:class:`_Service`): ``ServerErrorMiddleware`` was inert
behind ``ErrorMiddleware``, and ``ExceptionMiddleware`` plus the per-route exception wrapper of
``request_response`` duplicated it. Each layer is a coroutine and a ``send`` wrapper on every
request, which is a measurable part of a cached GET.
"""

from __future__ import annotations

import gc
import re
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import orjson
from starlette._utils import get_route_path
from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.routing import BaseRoute, Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from luna_handlers.app import docs, health, metrics, routes_handlers, routes_verifiers
from luna_handlers.app.cache import HandlerCache, cache_with_feed
from luna_handlers.app.deps import Endpoint
from luna_handlers.app.errors import ErrorMiddleware
from luna_handlers.app.gate import LargePageGate
from luna_handlers.app.middleware import AuthMiddleware, RequestMiddleware
from luna_handlers.app.openapi import build_openapi
from luna_handlers.config import Settings
from luna_handlers.db.context import DBContext
from luna_handlers.db.database import Database
from luna_handlers.db.engine import pg_dsn
from luna_handlers.db.notify import ChangeFeed, database_target

SERVICE_ROUTES: dict[str, dict[str, Endpoint]] = {
    "/1/healthcheck": {"GET": health.healthcheck},
    "/1/version": {"GET": health.version},
    "/1/docs/spec": {"GET": docs.spec_endpoint},
    "/1/docs": {"GET": docs.docs_endpoint},
    "/metrics": {"GET": metrics.metrics_endpoint},
}


class _IdSegment(Convertor[str]):
    """A path segment holding an object id, passed on as is (the route checks it is a UUID).

    Subclasses exclude the fixed sub-resources of their collection, so that
    ``/1/handlers/count`` is never read as the handler ``count``: ``PUT`` on it is then a 405
    with ``Allow``, not a 404 for a handler that cannot exist.
    """

    def convert(self, value: str) -> str:
        """The segment as is."""
        return value

    def to_string(self, value: str) -> str:
        """The segment as is."""
        return value


class _HandlerIdSegment(_IdSegment):
    regex = "(?!(?:count|validator)$)[^/]+"


class _VerifierIdSegment(_IdSegment):
    regex = "(?!count$)[^/]+"


# registered under the name of the path parameter they parse: {handler_id:handler_id}
for _name, _convertor in (("handler_id", _HandlerIdSegment()),
                          ("verifier_id", _VerifierIdSegment())):
    register_url_convertor(_name, _convertor)


def route_table() -> dict[str, dict[str, Endpoint]]:
    """Every path of the service with its methods; routes come first where paths overlap."""
    # Insertion order matters: /1/handlers/count must be tried before /1/handlers/{handler_id}.
    return {**routes_handlers.ROUTES, **routes_verifiers.ROUTES, **SERVICE_ROUTES}


class _PathEndpoint:
    """The ASGI app of one path: one endpoint per method, so a 405 lists them all in ``Allow``.

    An ASGI app rather than a request function, so Starlette does not wrap it in
    ``request_response`` (a closure per request and an exception wrapper around ``send``):
    errors go straight to :class:`~.errors.ErrorMiddleware`.
    """

    def __init__(self, methods: Mapping[str, Endpoint]) -> None:
        self.methods = dict(methods)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request with the endpoint of its method."""
        request = Request(scope, receive, send)
        handler = self.methods.get(scope["method"])
        if handler is not None:
            response = await handler(request)
        else:
            # HEAD of a path without its own HEAD: the GET answer without the body.
            response = await self.methods["GET"](request)
            response.body = b""
        await response(scope, receive, send)


class _Router(Router):
    """Starlette's router with the same matching rules, minus most of its per-request cost.

    A route is tried only when the path starts with the literal text before its first
    parameter, and its regex is run only then; the rest (first full match wins, else the
    first route of the path answers 405, else 404) is Starlette's ``Router.app``.
    """

    def __init__(self, routes: list[BaseRoute], lifespan: Callable[[Starlette],
                 AbstractAsyncContextManager[None]]) -> None:
        super().__init__(routes=routes, lifespan=lifespan, redirect_slashes=False)
        self._plan = [(route, route.path.partition("{")[0]) for route in routes
                      if isinstance(route, Route)]
        self._generic = len(self._plan) != len(routes)

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch one request (lifespan and anything unusual: Starlette's own code)."""
        if scope["type"] != "http" or self._generic or self.redirect_slashes:
            await super().app(scope, receive, send)
            return
        if "router" not in scope:
            scope["router"] = self
        path = get_route_path(scope)
        method = scope["method"]
        partial: tuple[Route, dict[str, object]] | None = None
        for route, prefix in self._plan:
            if not path.startswith(prefix):
                continue
            match = route.path_regex.match(path)
            if match is None:
                continue
            params: dict[str, object] = dict(scope.get("path_params", {}))
            for key, value in match.groupdict().items():
                params[key] = route.param_convertors[key].convert(value)
            if not route.methods or method in route.methods:
                scope["route"] = route
                scope["endpoint"] = route.endpoint
                scope["path_params"] = params
                await route.app(scope, receive, send)
                return
            if partial is None:
                partial = (route, params)
        if partial is not None:
            route, params = partial
            scope["route"] = route
            scope["endpoint"] = route.endpoint
            scope["path_params"] = params
            await route.handle(scope, receive, send)  # raises the 405 with Allow
            return
        await self.default(scope, receive, send)  # raises the 404


class _Service(Starlette):
    """The application with only its own middleware (see the module docstring)."""

    def build_middleware_stack(self) -> ASGIApp:
        """The user middleware around the router, without Starlette's error layers."""
        app: ASGIApp = self.router
        for cls, args, kwargs in reversed(self.user_middleware):
            app = cls(app, *args, **kwargs)
        return app


_PARAMETER = re.compile(r"\{(\w+)\}")


def _routes() -> list[BaseRoute]:
    # The route name is the documented template; metrics label requests with it.
    return [Route(_PARAMETER.sub(r"{\1:\1}", path), _PathEndpoint(methods),
                  methods=list(methods), name=path)
            for path, methods in route_table().items()]


def _freeze_startup_objects() -> None:
    """Keep what start-up built (modules, schemas, SQLAlchemy metadata) out of every later
    garbage collection: full collections over those objects stalled the event loop for tens
    of milliseconds under load (measured: p99 of POST 66 ms with, 26 ms without GC)."""
    gc.collect()
    gc.freeze()


def _handler_cache(settings: Settings, database: Database
                   ) -> tuple[HandlerCache, ChangeFeed | None]:
    """The read cache of GET /1/handlers/{id}, kept correct by PostgreSQL notifications."""
    if database.dialect_name != "postgresql":
        return HandlerCache(0), None  # no notifications, so no cache: correctness first
    return cache_with_feed(settings.api.cache_size, database.dialect_name,
                           database_target(database), pg_dsn(settings.db), settings.failover)


def create_app(
    settings: Settings,
    database_factory: Callable[[], AbstractAsyncContextManager[Database]],
) -> Starlette:
    """The application; its lifespan opens ``database_factory()`` and closes it on shutdown."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # The server drains in-flight requests before it sends the lifespan shutdown, so
        # leaving this block (which closes the database) is a graceful stop.
        async with database_factory() as database:
            app.state.database = database
            app.state.db = DBContext(database)
            app.state.cache, feed = _handler_cache(settings, database)
            if feed is not None:
                feed.start()
            _freeze_startup_objects()
            try:
                yield
            finally:
                if feed is not None:
                    await feed.close()
                metrics.worker_stopped()

    token = settings.api.token
    middleware = [Middleware(RequestMiddleware), Middleware(ErrorMiddleware)]
    if token:
        middleware.append(Middleware(AuthMiddleware, token=token))
    middleware.append(Middleware(LargePageGate))
    app = _Service(middleware=middleware)
    # An explicit API: '/1/handlers/' is not '/1/handlers', so no redirect, just 404.
    app.router = _Router(_routes(), lifespan)
    document = build_openapi(token_required=bool(token))
    app.state.settings = settings
    app.state.openapi_json = orjson.dumps(document)
    app.state.openapi_html = docs.render_html(document)
    return app

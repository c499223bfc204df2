"""The Starlette application: routes, middleware, error handlers and the database lifespan.

Middleware, outermost first (Starlette's inert ``ServerErrorMiddleware`` wraps them all):

1. :class:`~.middleware.RequestMiddleware`: request id, access log, metrics; it sees every
   response, error responses included;
2. :class:`~.errors.ErrorMiddleware`: anything that escapes becomes a LUNA error body;
3. :class:`~.middleware.AuthMiddleware` (only when a token is configured);
4. Starlette's ``ExceptionMiddleware`` with the handlers of :mod:`.errors`, then the router.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import orjson
from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from luna_handlers.app import docs, health, metrics, routes_handlers, routes_verifiers
from luna_handlers.app.cache import HandlerCache, cache_with_feed
from luna_handlers.app.deps import Endpoint
from luna_handlers.app.errors import EXCEPTION_HANDLERS, ErrorMiddleware
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


def _dispatch(methods: Mapping[str, Endpoint]) -> Endpoint:
    """One endpoint per path, so a 405 lists every method of the path in ``Allow``."""

    async def endpoint(request: Request) -> Response:
        handler = methods.get(request.method)
        if handler is not None:
            return await handler(request)
        # HEAD of a path without its own HEAD: the GET answer without the body.
        response = await methods["GET"](request)
        response.body = b""
        return response

    return endpoint


_PARAMETER = re.compile(r"\{(\w+)\}")


def _routes() -> list[Route]:
    # The route name is the documented template; metrics label requests with it.
    return [Route(_PARAMETER.sub(r"{\1:\1}", path), _dispatch(methods),
                  methods=list(methods), name=path)
            for path, methods in route_table().items()]


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
            try:
                yield
            finally:
                if feed is not None:
                    await feed.close()

    token = settings.api.token
    middleware = [Middleware(RequestMiddleware), Middleware(ErrorMiddleware)]
    if token:
        middleware.append(Middleware(AuthMiddleware, token=token))
    app = Starlette(routes=_routes(), middleware=middleware,
                    exception_handlers=EXCEPTION_HANDLERS, lifespan=lifespan)
    # An explicit API: '/1/handlers/' is not '/1/handlers', so no redirect, just 404.
    app.router.redirect_slashes = False
    document = build_openapi(token_required=bool(token))
    app.state.settings = settings
    app.state.openapi_json = orjson.dumps(document)
    app.state.openapi_html = docs.render_html(document)
    return app

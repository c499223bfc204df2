"""Routing on Starlette, lean: path convertors, one ASGI endpoint per path, the router and
the application class without Starlette's own error layers.

Starlette's private pieces this relies on (hence ``starlette>=1.10,<1.11`` in pyproject.toml,
and tests/app/test_starlette_contract.py, which fails when one of them changes):

* ``starlette._utils.get_route_path`` (the path below ``root_path``);
* ``Router.app`` overridden, with ``Route.path_regex``, ``Route.param_convertors``,
  ``Route.handle`` (the 405) and ``Router.default`` (the 404);
* ``Starlette.build_middleware_stack`` overridden (only our middleware around the router);
* :class:`~luna_handlers.app.serialize.RawResponse`, a ``Response`` made without its
  ``__init__``.

Each is a measured part of a cached GET (a coroutine and a ``send`` wrapper per layer, the
header encoding of a Response); the public API would cost it back.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager

from starlette._utils import get_route_path
from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.routing import BaseRoute, Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from luna_handlers.app.deps import Endpoint


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
class _CountedIdSegment(_IdSegment):
    """Lists, faces, events: ``count`` is their only fixed sub-resource."""

    regex = "(?!count$)[^/]+"


class _SampleIdSegment(_IdSegment):
    regex = "[^/]+"


for _name, _convertor in (("handler_id", _HandlerIdSegment()),
                          ("verifier_id", _VerifierIdSegment()),
                          ("list_id", _CountedIdSegment()), ("face_id", _CountedIdSegment()),
                          ("event_id", _CountedIdSegment()), ("sample_id", _SampleIdSegment())):
    register_url_convertor(_name, _convertor)


class PathEndpoint:
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


class PrefixRouter(Router):
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


class ServiceApp(Starlette):
    """The application with only its own middleware (see the module docstring)."""

    def build_middleware_stack(self) -> ASGIApp:
        """The user middleware around the router, without Starlette's error layers."""
        app: ASGIApp = self.router
        for cls, args, kwargs in reversed(self.user_middleware):
            app = cls(app, *args, **kwargs)
        return app


_PARAMETER = re.compile(r"\{(\w+)\}")


def routes(table: Mapping[str, Mapping[str, Endpoint]]) -> list[BaseRoute]:
    """One route per path of ``table`` (path -> method -> endpoint), in its order."""
    # The route name is the documented template; metrics label requests with it.
    return [Route(_PARAMETER.sub(r"{\1:\1}", path), PathEndpoint(methods),
                  methods=list(methods), name=path)
            for path, methods in table.items()]

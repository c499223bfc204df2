"""The pieces of Starlette that luna_handlers.app.routing and RawResponse rely on beyond its
public API (pinned in pyproject.toml): each test fails when one of them changes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette._utils import get_route_path
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, Router
from starlette.types import Message, Receive, Scope, Send

from luna_handlers.app.application import create_app
from luna_handlers.app.errors import ErrorMiddleware
from luna_handlers.app.gate import LargePageGate
from luna_handlers.app.middleware import RequestMiddleware
from luna_handlers.app.routing import PrefixRouter, routes
from luna_handlers.app.serialize import RawResponse
from tests.app.conftest import make_settings, shared


@pytest.mark.parametrize(("path", "root_path", "expected"), [
    ("/1/handlers", "", "/1/handlers"),
    ("/api/1/handlers", "/api", "/1/handlers"),
    ("/api", "/api", ""),
    ("/apiary/1", "/api", "/apiary/1"),  # not below root_path: the whole path
    ("/other/1", "/api", "/other/1"),
])
def test_get_route_path_is_the_path_below_root_path(path: str, root_path: str,
                                                    expected: str) -> None:
    assert get_route_path({"type": "http", "path": path, "root_path": root_path}) == expected


async def _sent(response: Response) -> list[Message]:
    messages: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        messages.append(message)

    await response({"type": "http", "method": "GET"}, receive, send)
    return messages


@pytest.mark.parametrize("status", [200, 201, 204])
async def test_raw_response_is_a_response_built_without_its_init(status: int) -> None:
    body = b"" if status == 204 else b'{"a":1}'
    theirs = Response(body or None, status,
                      headers={} if status == 204 else {"content-type": "application/json"})
    ours = RawResponse(body, list(theirs.raw_headers), status)
    # Response.__call__ reads only what __init__ sets: a new attribute there would be one
    # RawResponse lacks.
    assert set(vars(ours)) == set(vars(theirs))
    assert await _sent(ours) == await _sent(theirs)


class _Endpoint:
    """An ASGI endpoint, as the service's PathEndpoint is: it tells which route matched."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await PlainTextResponse(f"{self.name} {scope['path_params']}")(scope, receive, send)


ROUTES = [Route("/items/count", _Endpoint("count"), methods=["GET"]),
          Route("/items/{item_id}", _Endpoint("item"), methods=["GET", "PUT"]),
          Route("/items", _Endpoint("items"), methods=["GET", "POST"])]


async def _dispatch(router: Router, method: str, path: str, *,
                    reference: bool) -> list[Message]:
    # Without "app" in the scope, the 404 and 405 are sent as responses (with Allow), not
    # raised: every message can be compared.
    scope: Scope = {"type": "http", "method": method, "path": path, "root_path": "",
                    "query_string": b"", "headers": []}
    messages: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        messages.append(message)

    if reference:
        await Router.app(router, scope, receive, send)
    else:
        await router.app(scope, receive, send)
    return messages


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/items"), ("POST", "/items"), ("GET", "/items/count"), ("PUT", "/items/count"),
    ("GET", "/items/42"), ("PUT", "/items/42"), ("DELETE", "/items/42"), ("GET", "/nope"),
    ("GET", "/items/"), ("GET", "/items/42/more"),
])
async def test_the_prefix_router_dispatches_as_starlettes_router(method: str,
                                                                 path: str) -> None:
    async def no_lifespan(_app: Starlette) -> Any:
        raise AssertionError("not used")

    router = PrefixRouter(list(ROUTES), no_lifespan)  # type: ignore[arg-type]
    ours = await _dispatch(router, method, path, reference=False)
    assert ours == await _dispatch(router, method, path, reference=True)
    assert ours[0]["status"] in (200, 404, 405)


def test_the_service_routes_are_plain_routes_so_the_fast_path_serves_them() -> None:
    from luna_handlers.app.application import route_table

    assert all(isinstance(route, Route) for route in routes(route_table()))


async def test_starlette_builds_the_stack_we_give_it() -> None:
    app = create_app(make_settings(), shared(None))  # type: ignore[arg-type]  # no DB used
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://testserver") as client:
        assert (await client.get("/1/version")).status_code == 200
    # Starlette.__call__ built the stack through our build_middleware_stack: our layers
    # around the router, none of Starlette's own.
    layers = []
    layer: Any = app.middleware_stack
    while layer is not None and not isinstance(layer, Router):
        layers.append(type(layer))
        layer = getattr(layer, "app", None)
    assert layers == [RequestMiddleware, ErrorMiddleware, LargePageGate]
    assert layer is app.router


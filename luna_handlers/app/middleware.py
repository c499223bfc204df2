"""Pure ASGI middleware: request id + access log + metrics, and the optional API token.

Pure ASGI rather than ``BaseHTTPMiddleware``: the latter runs the app in a separate task and
copies every body through a memory stream, which costs a lot per request.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from luna_handlers.app import metrics
from luna_handlers.app.logging import request_id_var
from luna_handlers.errors import Unauthorized

access_logger = logging.getLogger("luna_handlers.access")

REQUEST_ID_HEADER = "Luna-Request-Id"
#: A client's request id is echoed when it is 1..128 visible ASCII characters; anything else
#: (too long, spaces, non-ASCII) is replaced by a generated one so logs stay one token wide.
REQUEST_ID_PATTERN = re.compile(r"[\x21-\x7e]{1,128}")
#: Requests that need no token: probes and scrapers usually cannot send one.
PUBLIC_ENDPOINTS = frozenset({("GET", "/1/healthcheck"), ("HEAD", "/1/healthcheck"),
                              ("GET", "/metrics"), ("HEAD", "/metrics")})


def _printable(path: str) -> str:
    # The path is percent-decoded: "%0A" would otherwise forge a second log line.
    return path if path.isprintable() else path.encode("unicode_escape").decode("ascii")


def new_request_id() -> str:
    """A LUNA request id: ``<unix seconds>,<uuid4>``."""
    return f"{int(time.time())},{uuid.uuid4()}"


class RequestMiddleware:
    """Sets and echoes ``Luna-Request-Id``, logs one access line and records HTTP metrics."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request inside its request-id context."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = Headers(scope=scope).get(REQUEST_ID_HEADER)
        request_id = given if given and REQUEST_ID_PATTERN.fullmatch(given) else new_request_id()
        token = request_id_var.set(request_id)
        # 499 (nginx's "client closed request") stays only if no response was ever started.
        status = 499

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            # application.py names each route after its documented path template
            template = getattr(route, "name", None) or metrics.UNMATCHED_ROUTE
            metrics.observe(scope["method"], template, status, elapsed)
            # The request id is on every line through the log filter (see logging.py).
            access_logger.info("%s %s %d %.2fms", scope["method"], _printable(scope["path"]),
                               status, elapsed * 1000)
            request_id_var.reset(token)


class AuthMiddleware:
    """Requires ``Authorization: Bearer <token>`` on every request but the public endpoints."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = token.encode()

    def _authorized(self, scope: Scope) -> bool:
        header = Headers(scope=scope).get("authorization", "")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "bearer":
            return False
        # Constant time: the comparison must not reveal how many leading bytes matched.
        return hmac.compare_digest(credentials.strip().encode(), self._expected)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Reject the request with 401 unless it is public or carries the token."""
        if scope["type"] == "http" and (scope["method"], scope["path"]) not in PUBLIC_ENDPOINTS \
                and not self._authorized(scope):
            raise Unauthorized()
        await self.app(scope, receive, send)

"""Pure ASGI middleware: request id + access log + metrics, and the optional API token.

Pure ASGI rather than ``BaseHTTPMiddleware``: the latter runs the app in a separate task and
copies every body through a memory stream, which costs a lot per request.

Everything here runs on every request, so it is written for speed: headers are read from the
raw ASGI list (no ``Headers`` object), request ids come from ``random.getrandbits`` rather than
``os.urandom``, metric label children are looked up once per label set, and the access line is
only formatted when its level is enabled.
"""

from __future__ import annotations

import hmac
import logging
import random
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from luna_handlers.app import metrics
from luna_handlers.app.logging import request_id_var
from luna_handlers.errors import DuplicateHeader, Unauthorized
from luna_handlers.http.scope import CLIENT_GONE

access_logger = logging.getLogger("luna_handlers.access")

REQUEST_ID_HEADER = "Luna-Request-Id"
_REQUEST_ID_KEY = REQUEST_ID_HEADER.lower().encode("latin-1")
_AUTHORIZATION_KEY = b"authorization"
#: A client's request id is echoed when it is 1..128 visible ASCII characters; anything else
#: (too long, spaces, non-ASCII) is replaced by a generated one so logs stay one token wide.
REQUEST_ID_PATTERN = re.compile(r"[\x21-\x7e]{1,128}")
#: Requests that need no token: probes and scrapers usually cannot send one.
PUBLIC_ENDPOINTS = frozenset({("GET", "/1/healthcheck"), ("HEAD", "/1/healthcheck"),
                              ("GET", "/metrics"), ("HEAD", "/metrics")})

# The version (4) and variant (RFC 4122) bits of a UUID, as ``uuid.UUID(version=4)`` sets them.
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def _printable(path: str) -> str:
    # The path is percent-decoded: "%0A" would otherwise forge a second log line.
    return path if path.isprintable() else path.encode("unicode_escape").decode("ascii")


def new_request_id() -> str:
    """A LUNA request id: ``<unix seconds>,<uuid4>``.

    The random part comes from the ``random`` module (reseeded in every forked worker), which
    is several times cheaper than ``uuid.uuid4()``'s ``os.urandom``: a request id must be
    unique, not unguessable.
    """
    h = "%032x" % (random.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET)
    return f"{int(time.time())},{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def header(scope: Scope, key: bytes) -> bytes | None:
    """The first value of the (lower-case) header ``key``, straight from the ASGI scope."""
    for name, value in scope["headers"]:
        if name == key:
            return value  # type: ignore[no-any-return]
    return None


def single_header(scope: Scope, key: bytes, name: str) -> bytes | None:
    """The value of the (lower-case) header ``key``; ``DuplicateHeader`` (400) when it comes
    more than once, since which one the client meant is ambiguous."""
    found: bytes | None = None
    for header_name, value in scope["headers"]:
        if header_name == key:
            if found is not None:
                raise DuplicateHeader(name)
            found = value
    return found


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
        given = header(scope, _REQUEST_ID_KEY)
        request_id = None
        if given is not None:
            # latin-1 as Starlette decodes headers; the pattern then keeps visible ASCII only
            text = given.decode("latin-1")
            if REQUEST_ID_PATTERN.fullmatch(text):
                request_id = text
        if request_id is None:
            request_id = new_request_id()
        id_header = (_REQUEST_ID_KEY, request_id.encode("latin-1"))
        token = request_id_var.set(request_id)
        # 499 (nginx's "client closed request") stays if no response was ever started, and is
        # set when the protocol saw the client leave before the answer was complete.
        status = 499

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers")
                # A new list: a response object may reuse its header list for several sends.
                message["headers"] = [*headers, id_header] if headers else [id_header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            if CLIENT_GONE in scope:
                status = 499
            route = scope.get("route")
            # application.py names each route after its documented path template
            template = getattr(route, "name", None) or metrics.UNMATCHED_ROUTE
            method = scope["method"]
            metrics.observe(method, template, status, elapsed)
            # The request id is on every line through the log filter (see logging.py).
            if access_logger.isEnabledFor(logging.INFO):
                access_logger.info("%s %s %d %.2fms", method, _printable(scope["path"]),
                                   status, elapsed * 1000)
            request_id_var.reset(token)


class AuthMiddleware:
    """Requires ``Authorization: Bearer <token>`` on every request but the public endpoints."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = token.encode()

    def _authorized(self, scope: Scope) -> bool:
        raw = single_header(scope, _AUTHORIZATION_KEY, "Authorization")
        value = "" if raw is None else raw.decode("latin-1")
        scheme, _, credentials = value.partition(" ")
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

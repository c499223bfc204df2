"""The one place where errors become HTTP responses.

Route code and middleware only raise :class:`~luna_handlers.errors.LunaError` subclasses.
:class:`ErrorMiddleware` catches every exception of the routes, the router and the auth
middleware and answers it with the LUNA body ``{"error_code", "desc", "detail", "link"}``,
always through :func:`error_response`:

* a ``LunaError`` with its own status and code;
* Starlette's routing ``HTTPException`` 404/405 as ``PageNotFound``/``MethodNotAllowed``
  (:func:`http_exception_response`);
* any other exception as ``InternalError`` 500, with the traceback logged and never sent;
* the cancellation of a request still running when the graceful-shutdown period ends as
  ``StoppedOutcomeUnknown`` (503, 34011) rather than uvicorn's plain-text 500.

The HTTP protocol (``luna_handlers.http.protocol``) answers what fails before any request
exists (a header block too large, a timeout, too many connections) with
:func:`raw_error_response`: the same body, as bytes for the socket.

One middleware rather than Starlette's ``ExceptionMiddleware`` plus per-route exception
wrappers: every layer costs a coroutine (and a ``send`` wrapper) on every request.
"""

from __future__ import annotations

import asyncio
import http
import logging
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from luna_handlers.app.serialize import ORJSONResponse
from luna_handlers.errors import (
    DatabaseOutcomeUnknown,
    DatabaseUnavailable,
    EngineBusy,
    InternalError,
    LunaError,
    MethodNotAllowed,
    PageNotFound,
    PayloadTooLarge,
    RequestTimeout,
    StoppedOutcomeUnknown,
    TooManyConnections,
    Unauthorized,
)

logger = logging.getLogger("luna_handlers.app")

#: Errors after which the client may simply try again; they tell it when.
RETRY_AFTER_SECONDS = "1"
_RETRYABLE = (DatabaseUnavailable, DatabaseOutcomeUnknown, TooManyConnections, EngineBusy)
#: Errors that leave the request body unread: the connection cannot carry another request.
_CLOSING = (PayloadTooLarge, RequestTimeout)


def error_response(exc: LunaError, *, head: bool = False,
                   extra: dict[str, Any] | None = None) -> Response:
    """The HTTP response of ``exc``: its status and LUNA body (no body for HEAD)."""
    headers: dict[str, str] = {}
    if isinstance(exc, _RETRYABLE):
        headers["Retry-After"] = RETRY_AFTER_SECONDS
    elif isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    elif isinstance(exc, _CLOSING):
        headers["Connection"] = "close"
    if head:
        # HEAD answers carry the status only; a body would break HTTP framing.
        return Response(status_code=exc.status, headers=headers)
    body = exc.body()
    if extra:
        body.update(extra)
    return ORJSONResponse(body, status_code=exc.status, headers=headers)


def raw_error_response(exc: LunaError) -> bytes:
    """The whole HTTP/1.1 answer of ``exc`` (LUNA body, ``Connection: close``), for the
    protocol to write to a socket that has no request cycle."""
    body = orjson.dumps(exc.body())
    head = [f"HTTP/1.1 {exc.status} {http.HTTPStatus(exc.status).phrase}",
            "content-type: application/json", f"content-length: {len(body)}",
            "connection: close"]
    if isinstance(exc, _RETRYABLE):
        head.append(f"retry-after: {RETRY_AFTER_SECONDS}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def _log(exc: LunaError) -> None:
    # Client errors are visible in the access log; only server-side failures are logged here.
    if exc.status >= 500:
        logger.warning("%s %d: %s", type(exc).__name__, exc.code, exc.detail)


def http_exception_response(request: Request, exc: HTTPException) -> Response:
    """A routing error (404 and 405) in the LUNA format."""
    head = request.method == "HEAD"
    if exc.status_code == 404:
        return error_response(PageNotFound(f"Page '{request.url.path}' not found"), head=head)
    if exc.status_code == 405:
        response = error_response(
            MethodNotAllowed(f"Method '{request.method}' is not allowed for '{request.url.path}'"),
            head=head)
        # Starlette lists the route's methods in Allow (RFC 9110 requires it on 405).
        response.headers.update(exc.headers or {})
        return response
    # Nothing in this service raises other HTTPExceptions; one would be a bug.
    logger.error("unexpected HTTPException %d: %s", exc.status_code, exc.detail)
    return error_response(InternalError(), head=head)


class ErrorMiddleware:
    """Pure ASGI middleware: every exception of what it wraps becomes a LUNA error response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app; turn an escaping exception into a LUNA error response."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except ClientDisconnect:
            # Nobody is left to answer; not a server fault, so no traceback either. The
            # access line (status 499) is the one record of it.
            logger.debug("client disconnected during %s %r", scope["method"], scope["path"])
        except (LunaError, asyncio.CancelledError) as exc:
            if started:
                raise
            # Only uvicorn cancels a request task: its graceful-shutdown period is over. The
            # client gets a LUNA answer instead of uvicorn's plain-text 500, and the task ends
            # normally: the server is stopping and waits for nothing more from it.
            error = exc if isinstance(exc, LunaError) else StoppedOutcomeUnknown()
            _log(error)
            await error_response(error, head=scope["method"] == "HEAD")(scope, receive, send)
        except HTTPException as exc:
            if started:
                raise
            await http_exception_response(Request(scope, receive), exc)(scope, receive, send)
        except Exception:
            # The traceback goes to the log only: it can reveal internals to a client.
            logger.exception("unhandled error in %s %r", scope["method"], scope["path"])
            if started:
                raise
            response = error_response(InternalError(), head=scope["method"] == "HEAD")
            await response(scope, receive, send)


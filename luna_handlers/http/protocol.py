"""uvicorn's httptools protocol with the limits a production proxy enforces.

uvicorn bounds only the idle time between two requests (``timeout_keep_alive``). This
subclass adds, per connection:

* a deadline for the request line and headers (``header_timeout``, nginx's
  ``client_header_timeout``), armed when the connection opens and when a request begins:
  a connection that sends nothing, or its headers at one byte a second, is closed (with a 408
  when a request had begun); the body's own timeout is the app's (``deps.read_json``);
* size limits: a request target over ``max_url_length`` is a 414 (a 400 12012 naming the query
  parameter when the query is what is long), header fields over ``max_header_size`` a 431,
  both refused while they arrive, before they are buffered;
* a limit on open connections (``max_connections``): at the limit the oldest connection that
  waits for a request (nothing sent yet, or idle between two) is closed to make room, as
  nginx reuses such connections; when every one is busy, the next client gets a 503 at once;
* a lingering close: when a connection is closed with a request body still unread (a 413, a
  refused header block), it is half-closed and what the client still sends is read and thrown
  away for a bounded time, so the answer reaches a client that is still sending instead of
  being lost to a TCP reset;
* every error the protocol answers itself has the LUNA body (``raw_error_response``), uvicorn's
  plain-text 400 for unparseable bytes included;
* a request whose client goes away before its answer is complete is marked in its scope
  (:data:`~luna_handlers.http.scope.CLIENT_GONE`) for the access log.

This reaches into uvicorn's ``HttpToolsProtocol`` and ``RequestResponseCycle``: pyproject pins
the uvicorn version and ``tests/http/test_uvicorn_contract.py`` fails when the methods relied
on change.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, ClassVar, cast
from urllib.parse import unquote

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from luna_handlers.app.errors import raw_error_response
from luna_handlers.errors import (
    BadQueryParams,
    HeaderFieldsTooLarge,
    LunaError,
    MalformedRequest,
    RequestTimeout,
    TooManyConnections,
    URITooLong,
)
from luna_handlers.http.limits import MAX_REFUSED_LINGERING, HttpLimits
from luna_handlers.http.scope import CLIENT_GONE

logger = logging.getLogger("luna_handlers.http")

#: A lingering close ends when the client has been silent this long (nginx's
#: ``lingering_timeout``) or after ``LINGER_TIME`` in all (nginx's ``lingering_time``).
LINGER_IDLE = 5.0
LINGER_TIME = 30.0
#: A refused connection waits this long for its request, which is read and thrown away so
#: that closing does not reset the connection before the client has read its 503.
REFUSED_LINGER = 1.0
#: Seconds between two warnings about refused connections.
REFUSAL_WARNING_INTERVAL = 10.0


class _CycleTransport(asyncio.Transport):
    """The transport as a request cycle sees it: its ``close`` leaves an unread request body
    to the protocol's lingering close."""

    def __init__(self, protocol: LunaHttpProtocol) -> None:
        super().__init__()
        self._protocol = protocol
        self._transport = protocol.transport

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Write to the connection."""
        self._transport.write(data)

    def is_closing(self) -> bool:
        """Whether the connection is closing."""
        return self._transport.is_closing()

    def close(self) -> None:
        """Close after the answer, lingering if the request body was not read to its end."""
        self._protocol.close_after_response()


class LunaHttpProtocol(HttpToolsProtocol):
    """One HTTP/1.1 connection (see the module docstring)."""

    #: Connections of this process waiting for a request, oldest first: the ones closed to
    #: make room at the connection limit.
    _waiting: ClassVar[dict[LunaHttpProtocol, None]] = {}
    _refused_lingering: ClassVar[int] = 0
    _refused_since_warning: ClassVar[int] = 0
    _last_refusal_warning: ClassVar[float] = 0.0

    def __init__(self, *args: Any, limits: HttpLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self._timer: asyncio.TimerHandle | None = None
        self._in_headers = False  # between the first byte of a request and its last header
        self._began_in_chunk = False
        self._header_bytes = 0
        self._field_bytes = 0
        self._message_complete = True  # False while a request body is still unread
        self._refusal: LunaError | None = None
        self._lingering = False
        self._linger_until = 0.0
        self._refused = False

    # -- connection ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Take the connection (making room if need be), or answer 503 at once."""
        if len(self.connections) >= self.limits.max_connections:
            oldest = next(iter(self._waiting), None)
            if oldest is None:
                self._refuse_connection(transport)
                return
            del self._waiting[oldest]
            oldest.transport.close()
        super().connection_made(transport)
        self._waiting[self] = None
        self._timer = self.loop.call_later(self.limits.header_timeout, self._header_timeout)

    def _refuse_connection(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        cls = LunaHttpProtocol
        cls._refused_since_warning += 1
        now = time.monotonic()
        if now - cls._last_refusal_warning >= REFUSAL_WARNING_INTERVAL:
            logger.warning("refused %d connection(s): %d open (LUNA_HANDLERS_SERVER."
                           "max_connections)", cls._refused_since_warning, len(self.connections))
            cls._last_refusal_warning = now
            cls._refused_since_warning = 0
        transport.write(raw_error_response(TooManyConnections()))
        if cls._refused_lingering >= MAX_REFUSED_LINGERING:
            transport.close()
            return
        self._refused = True
        cls._refused_lingering += 1
        self._linger(REFUSED_LINGER)

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection; mark a request left without its answer."""
        self._cancel_timer()
        self._waiting.pop(self, None)
        if self._refused:
            LunaHttpProtocol._refused_lingering -= 1
            self._refused = False
        if self.cycle is not None and not self.cycle.response_complete:
            cast(dict[str, Any], self.cycle.scope)[CLIENT_GONE] = True
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Parse what arrived (uvicorn's own code, with our refusals), or throw it away while
        lingering."""
        if self._lingering:
            self._linger_more()
            return
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            refusal = self._refusal
            if refusal is None:
                logger.warning("Invalid HTTP request received.")
                refusal = MalformedRequest()
            self._refuse(refusal)
            return
        if self._in_headers:
            # Headers still arriving: count them here, before httptools buffers a huge field
            # whole. The chunk the request began in is left out (it may end another request).
            if self._began_in_chunk:
                self._began_in_chunk = False
            else:
                self._header_bytes += len(data)
            if self._header_bytes > self.limits.max_url_length + self.limits.max_header_size:
                self._refuse(HeaderFieldsTooLarge(self.limits.max_header_size))

    def _refuse(self, error: LunaError) -> None:
        """Answer ``error`` for a request that never reached the app, then linger."""
        self._refusal = None
        if self.cycle is not None and not self.cycle.response_complete:
            # Pipelined behind a request still being answered: close after that answer.
            self.cycle.keep_alive = False
            self._message_complete = False
            self.flow.pause_reading()
            return
        self.transport.write(raw_error_response(error))
        self._linger(LINGER_TIME)

    # -- parser callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        """A request begins: its headers are counted and timed from here."""
        super().on_message_begin()
        self._waiting.pop(self, None)
        self._in_headers = True
        self._began_in_chunk = True
        self._header_bytes = 0
        self._field_bytes = 0
        self._message_complete = False
        if self._timer is None:
            self._timer = self.loop.call_later(self.limits.header_timeout, self._header_timeout)

    def on_url(self, url: bytes) -> None:
        """Collect the request target, refusing it once it is over the limit."""
        super().on_url(url)
        if len(self.url) > self.limits.max_url_length:
            self._refusal = self._url_error()
            raise self._refusal

    def _url_error(self) -> LunaError:
        limit = self.limits.max_url_length
        _, query_sign, query = self.url.partition(b"?")
        if not query_sign:
            return URITooLong(limit)
        # The parameter being received when the limit was reached is the long one.
        name = unquote(query.rpartition(b"&")[2].partition(b"=")[0].decode("latin-1"))
        if not name.isprintable() or len(name) > 64:
            name = "query"
        return BadQueryParams(name, f"the request target is longer than {limit} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        """Collect one header field, refusing the block once it is over the limit."""
        self._field_bytes += len(name) + len(value) + 4  # ": " and CRLF
        if self._field_bytes > self.limits.max_header_size:
            self._refusal = HeaderFieldsTooLarge(self.limits.max_header_size)
            raise self._refusal
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        """Hand the request to the app (uvicorn), its cycle closing through us."""
        self._in_headers = False
        self._cancel_timer()
        existing = self.cycle
        super().on_headers_complete()
        if self.cycle is not existing:
            self.cycle.transport = _CycleTransport(self)

    def on_message_complete(self) -> None:
        """The request body has been read to its end."""
        self._message_complete = True
        super().on_message_complete()

    def on_response_complete(self) -> None:
        """Start the next pipelined request, unless the connection is lingering."""
        if self._lingering:
            self.server_state.total_requests += 1
            return
        super().on_response_complete()
        if self.timeout_keep_alive_task is not None:  # idle until the next request
            self._waiting[self] = None

    # -- timers and closing ----------------------------------------------------------------

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _header_timeout(self) -> None:
        self._timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            # Pipelined headers stalled behind a request being answered: close after it.
            self.cycle.keep_alive = False
            return
        if self._in_headers:
            self.transport.write(raw_error_response(
                RequestTimeout("headers", self.limits.header_timeout)))
        self.transport.close()

    def close_after_response(self) -> None:
        """Close once an answer is sent: at once, or lingering over an unread body."""
        if self._message_complete:
            self.transport.close()
        else:
            self._linger(LINGER_TIME)

    def _linger(self, total: float) -> None:
        """Half-close: the client reads our answer and EOF while what it still sends is read
        and dropped, until it closes, is silent for ``LINGER_IDLE`` or ``total`` is over."""
        self._lingering = True
        self._waiting.pop(self, None)
        self._cancel_timer()
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._linger_until = self.loop.time() + total
        self._timer = self.loop.call_later(min(LINGER_IDLE, total), self.transport.close)
        if self.flow is not None:
            self.flow.resume_reading()

    def _linger_more(self) -> None:
        self._cancel_timer()
        left = self._linger_until - self.loop.time()
        if left <= 0:
            self.transport.close()
            return
        self._timer = self.loop.call_later(min(LINGER_IDLE, left), self.transport.close)

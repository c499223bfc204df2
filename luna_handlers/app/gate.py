"""A gate for large list pages, so that many of them starve no other request.

A ``page_size=1000`` page is about 2-3 MB: fetching, rendering and writing it keeps the event
loop busy for tens of milliseconds. With hundreds of connections pipelining such pages every
other request waited behind all of them (measured with ``bench/hostile``: a cached GET's median
went from 2 ms to 140 ms). The gate lets :data:`SLOTS` of them run at a time per worker, the
rest wait without costing the loop anything; a page's body is handed to the server in
:data:`CHUNK` pieces with a yield between, so writing one never holds the loop for long
and a slow reader's connection applies back-pressure (uvicorn waits for the socket to drain).
"""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The list routes and the page size from which a page counts as large.
LIST_PATHS = frozenset({"/1/handlers", "/1/verifiers"})
LARGE_PAGE = 100
SLOTS = 2
CHUNK = 256 * 1024


def is_large_page(scope: Scope) -> bool:
    """Whether the request asks a list route for more than :data:`LARGE_PAGE` items."""
    if scope["path"] not in LIST_PATHS or scope["method"] not in ("GET", "HEAD"):
        return False
    query: bytes = scope["query_string"]
    if b"page_size=" not in query:
        return False
    for name, value in parse_qsl(query.decode("latin-1")):
        if name == "page_size":
            return value.isdigit() and int(value) > LARGE_PAGE
    return False


class LargePageGate:
    """Pure ASGI middleware: at most :data:`SLOTS` large list pages at a time, sent in chunks."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._slots = asyncio.Semaphore(SLOTS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request, through the gate when it asks for a large page."""
        if scope["type"] != "http" or not is_large_page(scope):
            await self.app(scope, receive, send)
            return

        async def chunked_send(message: Message) -> None:
            body = message.get("body", b"")
            if message["type"] != "http.response.body" or len(body) <= CHUNK:
                await send(message)
                return
            more_body = message.get("more_body", False)
            for start in range(0, len(body), CHUNK):
                last = start + CHUNK >= len(body)
                await send({"type": "http.response.body", "body": body[start:start + CHUNK],
                            "more_body": more_body or not last})
                if not last:
                    await asyncio.sleep(0)  # let other requests run between two pieces

        async with self._slots:
            await self.app(scope, receive, chunked_send)

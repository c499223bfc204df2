"""What route functions take from a request: the per-app state (DB context, caches), the
account, path ids, the JSON body."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import cast
from urllib.parse import parse_qsl

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from luna_handlers.app.cache import HandlerCache
from luna_handlers.app.middleware import header, single_header
from luna_handlers.app.params import canonical_uuid
from luna_handlers.app.serialize import RawResponse
from luna_handlers.config import Settings
from luna_handlers.db import DBContext
from luna_handlers.engine import FaceEngine
from luna_handlers.errors import (
    BadAccountId,
    BadContentType,
    BadInputJson,
    LunaError,
    PayloadTooLarge,
    RequestTimeout,
    RequiredParamsNotFound,
    UnsupportedContentEncoding,
)

#: A route function.
Endpoint = Callable[[Request], Awaitable[Response]]

ACCOUNT_HEADER = "Luna-Account-Id"
_ACCOUNT_KEY = ACCOUNT_HEADER.lower().encode("latin-1")
JSON_MEDIA_TYPE = "application/json"


def db(request: Request) -> DBContext:
    """The DB context built by the application's lifespan."""
    return cast(DBContext, request.app.state.db)


def engine(request: Request) -> FaceEngine:
    """The face engine started by the application's lifespan."""
    return cast(FaceEngine, request.app.state.engine)


def cache(request: Request) -> HandlerCache:
    """The handler read cache built by the application's lifespan."""
    return cast(HandlerCache, request.app.state.cache)


def settings(request: Request) -> Settings:
    """The service settings the application was created with."""
    return cast(Settings, request.app.state.settings)


def query_items(request: Request) -> list[tuple[str, str]]:
    """The query's (name, value) pairs in order, read as Starlette's ``QueryParams`` reads
    them, without building that object."""
    query: bytes = request.scope["query_string"]
    return parse_qsl(query.decode("latin-1"), keep_blank_values=True)


def account(request: Request) -> str | None:
    """The ``Luna-Account-Id`` header as a canonical UUID, or None (an unscoped read)."""
    # From the raw ASGI list, decoded as Starlette does: no Headers object per request.
    value = single_header(request.scope, _ACCOUNT_KEY, ACCOUNT_HEADER)
    if value is None:
        return None
    canonical = canonical_uuid(value.decode("latin-1"))
    if canonical is None:
        raise BadAccountId()
    return canonical


def required_account(request: Request) -> str:
    """The ``Luna-Account-Id`` header, which every state-changing request must carry."""
    value = account(request)
    if value is None:
        raise RequiredParamsNotFound(ACCOUNT_HEADER)
    return value


def path_id(request: Request, name: str, not_found: Callable[[str], LunaError]) -> str:
    """The UUID path parameter ``name`` in canonical form.

    A malformed id names no object, so it is answered with the caller's "not found" error.
    """
    raw = request.path_params[name]
    object_id = canonical_uuid(raw)
    if object_id is None:
        raise not_found(raw)
    return object_id


def created(prefix: str, key: str, object_id: str) -> Response:
    """201 with ``{key: id, "url": ...}`` and a ``Location`` header."""
    url = f"{prefix}/{object_id}"
    body = orjson.dumps({key: object_id, "url": url})
    # What ORJSONResponse(..., headers={"Location": url}) sends, in its order, without
    # Starlette encoding the header dict and scanning it for the content headers.
    return RawResponse(body, [(b"location", url.encode("latin-1")),
                              (b"content-length", str(len(body)).encode()),
                              (b"content-type", b"application/json")], 201)


def no_content() -> Response:
    """204 without a body or headers, exactly as ``Response(status_code=204)`` sends it."""
    return RawResponse(b"", [], 204)


def _is_json(content_type: str) -> bool:
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type == JSON_MEDIA_TYPE


def _check_encoding(request: Request) -> None:
    """Refuse a body with any ``Content-Encoding`` but identity: it is not decoded here, and
    reading compressed bytes as JSON would only give a misleading 400."""
    for name, value in request.scope["headers"]:
        if name == b"content-encoding":
            for token in value.decode("latin-1").split(","):
                encoding = token.strip().lower()
                if encoding and encoding != "identity":
                    raise UnsupportedContentEncoding(encoding[:32])


def _refuse_announced(request: Request, limit: int) -> None:
    # Refuse before reading a byte when the client announces too much.
    declared = header(request.scope, b"content-length")
    if declared is not None and declared.isascii() and declared.isdigit() \
            and int(declared) > limit:
        raise PayloadTooLarge(limit)


async def _receive(request: Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    timeout = settings(request).server.body_timeout
    # Straight from ``receive``, as Request.stream() reads it but without an async generator
    # (the event loop registers every one in a WeakSet). Content-Length can be absent
    # (chunked) or wrong: count what actually arrives. The timeout is between two reads, as
    # nginx's client_body_timeout: a body that stops short of its Content-Length is a 408.
    while True:
        try:
            async with asyncio.timeout(timeout):
                message = await request.receive()
        except TimeoutError:
            raise RequestTimeout("body", timeout) from None
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()


async def read_bounded(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes (announced or received)."""
    _refuse_announced(request, limit)
    _check_encoding(request)
    return await _receive(request, limit)


async def read_json(request: Request) -> object:
    """The decoded JSON body, within the size limit (``Content-Length`` and streamed bytes)."""
    limit = settings(request).api.max_body_size
    _refuse_announced(request, limit)
    content_type = header(request.scope, b"content-type")
    if content_type is None or not _is_json(content_type.decode("latin-1")):
        raise BadContentType(f"Bad content type: expected '{JSON_MEDIA_TYPE}'")
    _check_encoding(request)
    return decode_json(request, await _receive(request, limit))


def decode_json(request: Request, body: bytes) -> object:
    """``body`` decoded as JSON, with at most ``API.max_json_members`` members."""
    # Decoding runs on the event loop and costs about 1 us per object member: 50,000 members
    # held the loop ~60 ms a request. Every member has a ':' (colons in strings count too:
    # an upper bound), so counting them (a C loop, ~0.1 ms per MB) bounds that cost first.
    max_members = settings(request).api.max_json_members
    if body.count(b":") > max_members:
        raise BadInputJson("", f"Request body has more than {max_members} members")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadContentType("Request body is not valid JSON") from None

"""Routes of /1/handlers: parse the request, call the DB context, shape the answer."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from luna_handlers.app import deps
from luna_handlers.app.cache import CachedHandler
from luna_handlers.app.params import (
    HANDLER_COUNT_PARAMS,
    HANDLER_LIST_PARAMS,
    list_filters,
    parse_query,
)
from luna_handlers.app.policies import parse_handler_body, parse_validator_body
from luna_handlers.app.rendered import HANDLER_ITEMS
from luna_handlers.app.serialize import ORJSONResponse, RawResponse, format_time, handler_json
from luna_handlers.errors import HandlerNotFound

PREFIX = "/1/handlers"


def _handler_id(request: Request) -> str:
    return deps.path_id(request, "handler_id", HandlerNotFound)


async def create_handler(request: Request) -> Response:
    """POST /1/handlers: 201 with the new id and its URL."""
    account = deps.required_account(request)
    body = parse_handler_body(await deps.read_json(request))
    handler_id = await deps.db(request).createHandler(
        body.policies, account, body.description, body.is_dynamic)
    return deps.created(PREFIX, "handler_id", handler_id)


async def list_handlers(request: Request) -> Response:
    """GET /1/handlers: one page, newest first."""
    values = parse_query(deps.query_items(request), HANDLER_LIST_PARAMS)
    filters = list_filters(values, deps.account(request), "handler_ids")
    records = [] if filters is None else await deps.db(request).getHandlers(
        filters, values["page"], values["page_size"])
    return HANDLER_ITEMS.page("handlers", records)


async def count_handlers(request: Request) -> Response:
    """GET /1/handlers/count: how many handlers match the filters."""
    values = parse_query(deps.query_items(request), HANDLER_COUNT_PARAMS)
    filters = list_filters(values, deps.account(request), "handler_ids")
    count = 0 if filters is None else await deps.db(request).getHandlersCount(filters)
    return ORJSONResponse({"handlers_count": count})


async def validate_policies(request: Request) -> Response:
    """POST /1/handlers/validator: 204 when the policies are valid (nothing is stored)."""
    deps.required_account(request)
    parse_validator_body(await deps.read_json(request))
    return deps.no_content()


RawHeaders = list[tuple[bytes, bytes]]

#: handler id -> (the cache entry, the response headers of a hit on it). A hit answers with
#: the entry's pre-rendered body: its headers are computed once per entry too (the version
#: timestamp formatting alone was a sizeable part of a hit). Checked by identity against the
#: current entry, so a replaced entry never gets old headers; cleared when it grows past the
#: limit, so evicted entries are not kept alive for long.
_HIT_HEADERS: dict[str, tuple[CachedHandler, RawHeaders]] = {}
HIT_HEADERS_LIMIT = 16_384


def _handler_headers(state: bytes, last_update_time: str, body: bytes) -> RawHeaders:
    # The order and names of ``Response(body, media_type=..., headers={...})``.
    return [(b"luna-cache", state), (b"cache-handler-version", last_update_time.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"application/json")]


def _hit_headers(handler_id: str, entry: CachedHandler, body: bytes) -> RawHeaders:
    known = _HIT_HEADERS.get(handler_id)
    if known is not None and known[0] is entry:
        return list(known[1])  # a copy: whoever holds the response may change its headers
    headers = _handler_headers(b"hit", format_time(entry.record.last_update_time), body)
    if len(_HIT_HEADERS) >= HIT_HEADERS_LIMIT:
        _HIT_HEADERS.clear()
    _HIT_HEADERS[handler_id] = (entry, headers)
    return list(headers)


async def get_handler(request: Request) -> Response:
    """GET /1/handlers/{handler_id}, from the read cache when it holds the handler.

    The cache holds handlers of every account (keyed by id alone), so the account check is
    made here, on hits and misses alike. ``Luna-Cache`` says where the answer came from.
    """
    account = deps.account(request)
    handler_id = _handler_id(request)
    cache = deps.cache(request)
    entry = cache.get(handler_id)
    if entry is not None and entry.body is not None:
        if account is not None and entry.record.account_id != account:
            raise HandlerNotFound(handler_id)
        return RawResponse(entry.body, _hit_headers(handler_id, entry, entry.body))
    token = cache.begin_read(handler_id)  # before the read: a racing change wins
    found = await deps.db(request).getHandler(handler_id)
    if found is None:
        raise HandlerNotFound(handler_id)
    body = orjson.dumps(handler_json(found))
    # The body says it all: the stored policies need not be kept a second time.
    cache.put(found._replace(policies_json=None), token, body)
    if account is not None and found.account_id != account:
        raise HandlerNotFound(handler_id)
    return RawResponse(body, _handler_headers(b"miss", format_time(found.last_update_time),
                                              body))


async def head_handler(request: Request) -> Response:
    """HEAD /1/handlers/{handler_id}: 200 when it exists (in this account), else 404."""
    account = deps.account(request)
    handler_id = _handler_id(request)
    if not await deps.db(request).doesHandlerExist(handler_id, account):
        raise HandlerNotFound(handler_id)
    return Response(status_code=200)


async def put_handler(request: Request) -> Response:
    """PUT /1/handlers/{handler_id}: replace description, type and policies; 204."""
    account = deps.required_account(request)
    handler_id = _handler_id(request)
    body = parse_handler_body(await deps.read_json(request))
    changed = await deps.db(request).putHandler(handler_id, body.policies, body.description,
                                                account, body.is_dynamic)
    # This instance sees its own change at once; the others through the notification.
    deps.cache(request).invalidate(handler_id)
    if not changed:
        raise HandlerNotFound(handler_id)
    return deps.no_content()


async def delete_handler(request: Request) -> Response:
    """DELETE /1/handlers/{handler_id}: 204."""
    account = deps.required_account(request)
    handler_id = _handler_id(request)
    deleted = await deps.db(request).deleteHandler(handler_id, account)
    deps.cache(request).invalidate(handler_id)
    if not deleted:
        raise HandlerNotFound(handler_id)
    return deps.no_content()


#: path -> method -> endpoint; the application builds its routes from this table.
ROUTES: dict[str, dict[str, deps.Endpoint]] = {
    PREFIX: {"GET": list_handlers, "POST": create_handler},
    f"{PREFIX}/count": {"GET": count_handlers},
    f"{PREFIX}/validator": {"POST": validate_policies},
    f"{PREFIX}/{{handler_id}}": {"GET": get_handler, "HEAD": head_handler, "PUT": put_handler,
                                 "DELETE": delete_handler},
}

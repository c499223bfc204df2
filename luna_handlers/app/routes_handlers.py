"""Routes of /1/handlers: parse the request, call the DB context, shape the answer."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from luna_handlers.app import deps
from luna_handlers.app.list_items import page
from luna_handlers.app.params import (
    HANDLER_COUNT_PARAMS,
    HANDLER_LIST_PARAMS,
    list_filters,
    parse_query,
)
from luna_handlers.app.policies import parse_handler_body, parse_validator_body
from luna_handlers.app.serialize import ORJSONResponse, RawResponse, handler_json
from luna_handlers.db import HandlerRecord
from luna_handlers.errors import HandlerNotFound
from luna_handlers.processing import check_supported

PREFIX = "/1/handlers"


def _handler_id(request: Request) -> str:
    return deps.path_id(request, "handler_id", HandlerNotFound)


async def create_handler(request: Request) -> Response:
    """POST /1/handlers: 201 with the new id and its URL."""
    account = deps.required_account(request)
    body = parse_handler_body(await deps.read_json(request))
    if body.policies is not None:
        check_supported(body.policies)
    handler_id = await deps.db(request).createHandler(
        body.policies, account, body.description, body.is_dynamic, rendered=body.rendered)
    return deps.created(PREFIX, "handler_id", handler_id)


async def list_handlers(request: Request) -> Response:
    """GET /1/handlers: one page, newest first."""
    values = parse_query(deps.query_items(request), HANDLER_LIST_PARAMS)
    filters = list_filters(values, deps.account(request), "handler_ids")
    records = [] if filters is None else await deps.db(request).getHandlers(
        filters, values["page"], values["page_size"])
    return page("handlers", records, handler_json)


async def count_handlers(request: Request) -> Response:
    """GET /1/handlers/count: how many handlers match the filters."""
    values = parse_query(deps.query_items(request), HANDLER_COUNT_PARAMS)
    filters = list_filters(values, deps.account(request), "handler_ids")
    count = 0 if filters is None else await deps.db(request).getHandlersCount(filters)
    return ORJSONResponse({"handlers_count": count})


async def validate_policies(request: Request) -> Response:
    """POST /1/handlers/validator: 204 when the policies are valid (nothing is stored)."""
    deps.required_account(request)
    check_supported(parse_validator_body(await deps.read_json(request)))
    return deps.no_content()


def render_handler(record: HandlerRecord) -> bytes:
    """The GET body of a handler (what the read cache keeps)."""
    return orjson.dumps(handler_json(record))


async def get_handler(request: Request) -> Response:
    """GET /1/handlers/{handler_id}, from the read cache when it holds the handler.

    The cache holds handlers of every account (keyed by id alone), so the account check is
    made here, on hits and misses alike. ``Luna-Cache`` says where the answer came from.
    """
    account = deps.account(request)
    handler_id = _handler_id(request)
    served = await deps.cache(request).serve(handler_id, deps.db(request).getHandler,
                                             render_handler)
    if served is None or (account is not None and served.record.account_id != account):
        raise HandlerNotFound(handler_id)
    return RawResponse(served.body, served.headers)


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
    if body.policies is not None:
        check_supported(body.policies)
    changed = await deps.db(request).putHandler(handler_id, body.policies, body.description,
                                                account, body.is_dynamic, rendered=body.rendered)
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

"""POST /1/handlers/{handler_id}/events: run a handler on images, 201 with the events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from luna_handlers.app import deps
from luna_handlers.app.event_params import EVENT_PARAMS, event_times, query
from luna_handlers.app.image_body import ImagesBody, read_images
from luna_handlers.app.policies import parse_validator_body
from luna_handlers.app.routes_handlers import PREFIX, render_handler
from luna_handlers.app.serialize import ORJSONResponse
from luna_handlers.errors import (
    DynamicHandlerWithoutPolicies,
    HandlerCorrupted,
    HandlerNotFound,
    StaticHandlerPolicies,
)
from luna_handlers.processing import EventContext, ImageJob, check_supported, run_handler


@dataclass(frozen=True)
class LoadedHandler:
    """A handler to run: its id, type and (static) normalised policies."""

    handler_id: str
    is_dynamic: bool
    policies: dict[str, Any] | None


async def _handler(request: Request, account: str) -> LoadedHandler:
    handler_id = deps.path_id(request, "handler_id", HandlerNotFound)
    served = await deps.cache(request).serve(handler_id, deps.db(request).getHandler,
                                             render_handler)
    if served is None or served.record.account_id != account:
        raise HandlerNotFound(handler_id)
    # The rendered body holds the normalised policies (a cached record does not keep them):
    # one JSON decode instead of a validation per request.
    policies: dict[str, Any] | None = orjson.loads(served.body)["policies"]
    return LoadedHandler(handler_id, served.record.is_dynamic, policies)


def handler_policies(handler: LoadedHandler, body: ImagesBody) -> dict[str, Any]:
    """The normalised policies to run: the stored ones, or a dynamic handler's request ones."""
    if handler.is_dynamic:
        if body.policies is None:
            raise DynamicHandlerWithoutPolicies()
        policies = parse_validator_body({"policies": body.policies})
        check_supported(policies)
        return policies
    if body.policies is not None:
        raise StaticHandlerPolicies()
    if handler.policies is None:
        raise HandlerCorrupted(handler.handler_id)
    return handler.policies


def image_jobs(body: ImagesBody, values: dict[str, Any]) -> list[ImageJob]:
    """The body's images as engine jobs, with the query's reading options."""
    return [ImageJob(data, index, use_exif_info=values["use_exif_info"],
                     is_warp=values["image_type"] == 1)
            for index, data in enumerate(body.images)]


async def create_events(request: Request) -> Response:
    """POST /1/handlers/{handler_id}/events: 201 ``{"events": [...]}``."""
    account = deps.required_account(request)
    values = query(request, EVENT_PARAMS)
    create_time, end_time = event_times(request)
    record = await _handler(request, account)
    body = await read_images(request)
    policies = handler_policies(record, body)
    context = EventContext(
        account_id=account, handler_id=record.handler_id, create_time=create_time,
        end_time=end_time, source=values["source"], tags=tuple(values["tags"] or ()),
        track_id=values["track_id"], external_id=values["external_id"],
        user_data=values["user_data"] or "")
    events = await run_handler(deps.engine(request), deps.db(request), policies,
                               image_jobs(body, values), context)
    return ORJSONResponse({"events": events}, status_code=201)


#: path -> method -> endpoint.
ROUTES: dict[str, dict[str, deps.Endpoint]] = {
    f"{PREFIX}/{{handler_id}}/events": {"POST": create_events},
}

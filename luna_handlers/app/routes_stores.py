"""Routes of /1/lists, /1/faces, /1/events and /1/samples/faces: parse the request, call the
DB context, shape the answer (POST /1/faces from an image belongs to the processing routes)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from luna_handlers.app import deps
from luna_handlers.app.params import list_filters, parse_query
from luna_handlers.app.serialize import ORJSONResponse
from luna_handlers.app.store_json import (
    EVENTS,
    FACE_SAMPLES,
    FACES,
    LISTS,
    event_json,
    face_json,
    list_json,
)
from luna_handlers.app.store_params import (
    EVENT_COUNT_PARAMS,
    EVENT_LIST_PARAMS,
    FACE_COUNT_PARAMS,
    FACE_LIST_PARAMS,
    LIST_COUNT_PARAMS,
    LIST_LIST_PARAMS,
    event_filters,
    parse_link_body,
    parse_list_body,
)
from luna_handlers.errors import EventNotFound, FaceNotFound, ListNotFound, SampleNotFound


def _list_id(request: Request) -> str:
    return deps.path_id(request, "list_id", ListNotFound)


def _face_id(request: Request) -> str:
    return deps.path_id(request, "face_id", FaceNotFound)


# -- lists ------------------------------------------------------------------------------------

async def create_list(request: Request) -> Response:
    """POST /1/lists: 201 with the new id and its URL."""
    account = deps.required_account(request)
    description = parse_list_body(await deps.read_json(request))
    return deps.created(LISTS, "list_id", await deps.db(request).createList(account, description))


async def list_lists(request: Request) -> Response:
    """GET /1/lists: one page, newest first."""
    values = parse_query(deps.query_items(request), LIST_LIST_PARAMS)
    filters = list_filters(values, deps.account(request), "list_ids")
    records = [] if filters is None else await deps.db(request).getLists(
        filters, values["page"], values["page_size"])
    return ORJSONResponse({"lists": [list_json(record) for record in records]})


async def count_lists(request: Request) -> Response:
    """GET /1/lists/count."""
    values = parse_query(deps.query_items(request), LIST_COUNT_PARAMS)
    filters = list_filters(values, deps.account(request), "list_ids")
    count = 0 if filters is None else await deps.db(request).countLists(filters)
    return ORJSONResponse({"lists_count": count})


async def get_list(request: Request) -> Response:
    """GET /1/lists/{list_id}."""
    list_id = _list_id(request)
    record = await deps.db(request).getList(list_id, deps.account(request))
    if record is None:
        raise ListNotFound(list_id)
    return ORJSONResponse(list_json(record))


async def head_list(request: Request) -> Response:
    """HEAD /1/lists/{list_id}: 200 when it exists (in this account), else 404."""
    list_id = _list_id(request)
    if not await deps.db(request).listExists(list_id, deps.account(request)):
        raise ListNotFound(list_id)
    return Response(status_code=200)


async def delete_list(request: Request) -> Response:
    """DELETE /1/lists/{list_id}: 204; its faces stay."""
    account = deps.required_account(request)
    list_id = _list_id(request)
    if not await deps.db(request).deleteList(list_id, account):
        raise ListNotFound(list_id)
    return deps.no_content()


async def link_faces(request: Request) -> Response:
    """PATCH /1/lists/{list_id}/faces: attach or detach faces; 204."""
    account = deps.required_account(request)
    list_id = _list_id(request)
    attach, face_ids = parse_link_body(await deps.read_json(request))
    db = deps.db(request)
    if attach:
        await db.attachFacesToList(list_id, face_ids, account)
    else:
        await db.detachFacesFromList(list_id, face_ids, account)
    return deps.no_content()


# -- faces ------------------------------------------------------------------------------------

async def list_faces(request: Request) -> Response:
    """GET /1/faces: one page, newest first, each face with its lists."""
    values = parse_query(deps.query_items(request), FACE_LIST_PARAMS)
    records = await deps.db(request).getFaces(
        deps.account(request), values["list_id"], values["face_ids"], values["page"],
        values["page_size"])
    return ORJSONResponse({"faces": [face_json(record) for record in records]})


async def count_faces(request: Request) -> Response:
    """GET /1/faces/count."""
    values = parse_query(deps.query_items(request), FACE_COUNT_PARAMS)
    count = await deps.db(request).countFaces(deps.account(request), values["list_id"],
                                              values["face_ids"])
    return ORJSONResponse({"faces_count": count})


async def get_face(request: Request) -> Response:
    """GET /1/faces/{face_id}."""
    face_id = _face_id(request)
    record = await deps.db(request).getFace(face_id, deps.account(request))
    if record is None:
        raise FaceNotFound(face_id)
    return ORJSONResponse(face_json(record))


async def delete_face(request: Request) -> Response:
    """DELETE /1/faces/{face_id}: 204; its list links go with it."""
    account = deps.required_account(request)
    face_id = _face_id(request)
    if not await deps.db(request).deleteFace(face_id, account):
        raise FaceNotFound(face_id)
    return deps.no_content()


# -- events and samples ---------------------------------------------------------------------

async def list_events(request: Request) -> Response:
    """GET /1/events: one page, newest first."""
    values = parse_query(deps.query_items(request), EVENT_LIST_PARAMS)
    records = await deps.db(request).getEvents(
        event_filters(values, deps.account(request)), values["page"], values["page_size"])
    return ORJSONResponse({"events": [event_json(record) for record in records]})


async def count_events(request: Request) -> Response:
    """GET /1/events/count."""
    values = parse_query(deps.query_items(request), EVENT_COUNT_PARAMS)
    count = await deps.db(request).countEvents(event_filters(values, deps.account(request)))
    return ORJSONResponse({"events_count": count})


async def get_event(request: Request) -> Response:
    """GET /1/events/{event_id}."""
    event_id = deps.path_id(request, "event_id", EventNotFound)
    record = await deps.db(request).getEvent(event_id, deps.account(request))
    if record is None:
        raise EventNotFound(event_id)
    return ORJSONResponse(event_json(record))


async def get_face_sample(request: Request) -> Response:
    """GET /1/samples/faces/{sample_id}: the JPEG."""
    sample_id = deps.path_id(request, "sample_id", SampleNotFound)
    image = await deps.db(request).getSample(sample_id, deps.account(request))
    if image is None:
        raise SampleNotFound(sample_id)
    return Response(image, media_type="image/jpeg")


#: path -> method -> endpoint; the count paths come before the paths with an id.
ROUTES: dict[str, dict[str, deps.Endpoint]] = {
    LISTS: {"GET": list_lists, "POST": create_list},
    f"{LISTS}/count": {"GET": count_lists},
    f"{LISTS}/{{list_id}}": {"GET": get_list, "HEAD": head_list, "DELETE": delete_list},
    f"{LISTS}/{{list_id}}/faces": {"PATCH": link_faces},
    FACES: {"GET": list_faces},
    f"{FACES}/count": {"GET": count_faces},
    f"{FACES}/{{face_id}}": {"GET": get_face, "DELETE": delete_face},
    EVENTS: {"GET": list_events},
    f"{EVENTS}/count": {"GET": count_events},
    f"{EVENTS}/{{event_id}}": {"GET": get_event},
    f"{FACE_SAMPLES}/{{sample_id}}": {"GET": get_face_sample},
}

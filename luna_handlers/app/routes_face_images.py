"""POST /1/faces: a face from an image (the other /1/faces routes are the store's)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from luna_handlers.app import deps
from luna_handlers.app.event_params import FACE_PARAMS, query
from luna_handlers.app.image_body import read_images
from luna_handlers.app.routes_events import image_jobs
from luna_handlers.errors import BadContentType
from luna_handlers.processing import NewFace, create_face

PREFIX = "/1/faces"


async def create_face_from_image(request: Request) -> Response:
    """POST /1/faces?list_ids=&external_id=&user_data=: 201 ``{face_id, url}``."""
    account = deps.required_account(request)
    values = query(request, FACE_PARAMS)
    body = await read_images(request)
    if len(body.images) != 1 or body.policies is not None:
        raise BadContentType("POST /1/faces takes exactly one image and no policies")
    [job] = image_jobs(body, values)
    face_id, _ = await create_face(deps.engine(request), deps.db(request), account, job,
                                   NewFace(values["list_ids"] or (), values["external_id"],
                                           values["user_data"] or ""))
    return deps.created(PREFIX, "face_id", face_id)


#: path -> method -> endpoint.
ROUTES: dict[str, dict[str, deps.Endpoint]] = {
    PREFIX: {"POST": create_face_from_image},
}

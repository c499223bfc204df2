"""Query parameters and headers of the processing routes (events, verifications, faces)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request

from luna_handlers.app import deps
from luna_handlers.app.middleware import header
from luna_handlers.app.params import (
    QueryParam,
    _date_time,
    _flag,
    _ids,
    _table,
    _text,
    parse_query,
)
from luna_handlers.errors import BadQueryParams, UnsupportedImageType
from luna_handlers.processing.times import now_utc

MAX_TAGS = 100
EVENT_TIME_HEADER = "Luna-Event-Time"
EVENT_END_TIME_HEADER = "Luna-Event-End-Time"


def _tags(text: str) -> list[str]:
    tags = [_text(tag) for tag in text.split(",")]
    if len(tags) > MAX_TAGS or any(not tag for tag in tags):
        raise ValueError(f"must be a comma-separated list of 1..{MAX_TAGS} non-empty tags")
    return tags


def _image_type(text: str) -> int:
    if text not in ("0", "1"):
        raise UnsupportedImageType(text)
    return int(text)


def _str(name: str, description: str) -> QueryParam:
    return QueryParam(name, _text, {"type": "string", "maxLength": 128}, description)


SOURCE = _str("source", "Source of the images (camera, app...), kept with the events.")
TAGS = QueryParam("tags", _tags,
                  {"type": "array", "items": {"type": "string", "minLength": 1,
                                              "maxLength": 128},
                   "minItems": 1, "maxItems": MAX_TAGS},
                  "Tags of every event, comma-separated.",
                  openapi_extra={"style": "form", "explode": False})
TRACK_ID = _str("track_id", "Track id, kept with the events.")
EXTERNAL_ID = _str("external_id", "External id of the events and of the faces they store.")
USER_DATA = _str("user_data", "User data of the events and of the faces they store.")
USE_EXIF = QueryParam("use_exif_info", _flag, {"type": "integer", "enum": [0, 1], "default": 0},
                      "1: rotate the image by its EXIF orientation before detection.",
                      default=False)
IMAGE_TYPE = QueryParam("image_type", _image_type,
                        {"type": "integer", "enum": [0, 1], "default": 0},
                        "0: raw image (faces are detected); 1: an aligned face warp "
                        "(112x112; no detection). Body warps (2) are refused (400 36003).",
                        default=0)
FACE_IDS = _ids("face_ids", "face")
EVENT_IDS = _ids("event_ids", "event")
LIST_IDS = _ids("list_ids", "list")

EVENT_PARAMS = _table(SOURCE, TAGS, TRACK_ID, EXTERNAL_ID, USER_DATA, USE_EXIF, IMAGE_TYPE)
VERIFICATION_PARAMS = _table(FACE_IDS, EVENT_IDS, USE_EXIF, IMAGE_TYPE)
FACE_PARAMS = _table(LIST_IDS, EXTERNAL_ID, USER_DATA, USE_EXIF, IMAGE_TYPE)


def _header_time(request: Request, name: str) -> datetime | None:
    value = header(request.scope, name.lower().encode("latin-1"))
    if value is None:
        return None
    try:
        return _date_time(value.decode("latin-1"))
    except ValueError as exc:
        raise BadQueryParams(name, str(exc)) from None


def event_times(request: Request) -> tuple[datetime, datetime]:
    """(create, end) times of the events: the ``Luna-Event-Time`` / ``Luna-Event-End-Time``
    headers (RFC 3339), by default now; the end defaults to the start."""
    start = _header_time(request, EVENT_TIME_HEADER) or now_utc()
    end = _header_time(request, EVENT_END_TIME_HEADER) or start
    if end < start:
        raise BadQueryParams(EVENT_END_TIME_HEADER, f"must not be before {EVENT_TIME_HEADER}")
    return start, end


def query(request: Request, params: dict[str, QueryParam]) -> dict[str, Any]:
    """The parsed query of a processing route."""
    return parse_query(deps.query_items(request), params)

"""Query parameters and bodies of the store routes (lists, faces, events), declared in
tables like :mod:`luna_handlers.app.params` so that the parser and the OpenAPI document agree."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from luna_handlers.app.params import (
    ACCOUNT_ID,
    CREATE_TIME_GTE,
    CREATE_TIME_LT,
    DESCRIPTION,
    MAX_IDS,
    NO_NUL_PATTERN,
    PAGE,
    PAGE_SIZE,
    UUID_SCHEMA,
    QueryParam,
    _ids,
    _table,
    _text,
    _uuid,
    canonical_uuid,
)
from luna_handlers.app.policy_types import MAX_STR_LENGTH
from luna_handlers.db import EventFilters
from luna_handlers.errors import BadInputJson

_TAG_SCHEMA = {"type": "string", "minLength": 1, "maxLength": MAX_STR_LENGTH,
               "pattern": "^[^,\\x00]*$"}


def _tags(text: str) -> list[str]:
    tags = text.split(",")
    if len(tags) > MAX_IDS or not all(tags):
        raise ValueError(f"must be a comma-separated list of 1 to {MAX_IDS} non-empty tags")
    return [_text(tag) for tag in tags]


LIST_IDS = _ids("list_ids", "list")
FACE_IDS = _ids("face_ids", "face")
LIST_ID = QueryParam("list_id", _uuid, UUID_SCHEMA, "Only faces in this list.")
HANDLER_ID = QueryParam("handler_id", _uuid, UUID_SCHEMA, "Only events of this handler.")
FACE_ID = QueryParam("face_id", _uuid, UUID_SCHEMA, "Only events that stored this face.")
SOURCE = QueryParam("source", _text, {"type": "string", "maxLength": MAX_STR_LENGTH,
                                      "pattern": NO_NUL_PATTERN},
                    "Only events of this source (exact).")
TAGS = QueryParam("tags", _tags, {"type": "array", "items": _TAG_SCHEMA, "minItems": 1},
                  "Only events with every one of these tags, comma-separated.",
                  openapi_extra={"style": "form", "explode": False})

LIST_COUNT_PARAMS = _table(DESCRIPTION, LIST_IDS, CREATE_TIME_GTE, CREATE_TIME_LT, ACCOUNT_ID)
LIST_LIST_PARAMS = _table(PAGE, PAGE_SIZE, *LIST_COUNT_PARAMS.values())
FACE_COUNT_PARAMS = _table(LIST_ID, FACE_IDS)
FACE_LIST_PARAMS = _table(PAGE, PAGE_SIZE, *FACE_COUNT_PARAMS.values())
EVENT_COUNT_PARAMS = _table(HANDLER_ID, CREATE_TIME_GTE, CREATE_TIME_LT, SOURCE, TAGS, FACE_ID)
EVENT_LIST_PARAMS = _table(PAGE, PAGE_SIZE, *EVENT_COUNT_PARAMS.values())


def event_filters(values: Mapping[str, Any], account_id: str | None) -> EventFilters:
    """The DB filters of parsed event query ``values`` (scoped by the account header)."""
    return EventFilters(
        account_id=account_id, handler_id=values["handler_id"],
        create_time__gte=values["create_time__gte"], create_time__lt=values["create_time__lt"],
        source=values["source"], tags=values["tags"], face_id=values["face_id"])


def _object(body: object, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadInputJson("", "must be an object")
    for key in body:
        if key not in allowed:
            raise BadInputJson(key, "extra fields not permitted")
    return body


def parse_list_body(body: object) -> str:
    """POST /1/lists ``{"description"?: str <= 128}``: the description."""
    description = _object(body, {"description"}).get("description", "")
    if not isinstance(description, str) or len(description) > MAX_STR_LENGTH \
            or "\x00" in description:
        raise BadInputJson("description", f"must be a string of at most {MAX_STR_LENGTH} "
                                          "characters, without NUL")
    return description


def parse_link_body(body: object) -> tuple[bool, list[str]]:
    """PATCH /1/lists/{id}/faces ``{"action": "attach"|"detach", "face_ids": [uuid...]}``:
    (attach?, the face ids)."""
    fields = _object(body, {"action", "face_ids"})
    action = fields.get("action")
    if action not in ("attach", "detach"):
        raise BadInputJson("action", "must be 'attach' or 'detach'")
    face_ids = fields.get("face_ids")
    if not isinstance(face_ids, list) or not 1 <= len(face_ids) <= MAX_IDS:
        raise BadInputJson("face_ids", f"must be a list of 1 to {MAX_IDS} UUIDs")
    canonical = [canonical_uuid(item) if isinstance(item, str) else None for item in face_ids]
    for index, face_id in enumerate(canonical):
        if face_id is None:
            raise BadInputJson(f"face_ids.{index}", "must be a UUID")
    return action == "attach", [face_id for face_id in canonical if face_id is not None]


LIST_BODY_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "properties": {"description": {"type": "string", "maxLength": MAX_STR_LENGTH,
                                   "pattern": NO_NUL_PATTERN}}}
LINK_BODY_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["action", "face_ids"],
    "properties": {"action": {"type": "string", "enum": ["attach", "detach"]},
                   "face_ids": {"type": "array", "items": UUID_SCHEMA, "minItems": 1,
                                "maxItems": MAX_IDS}}}

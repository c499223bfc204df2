"""The JSON shapes of lists, faces and events (the store routes' answers)."""

from __future__ import annotations

from typing import Any

from luna_handlers.app.serialize import format_time
from luna_handlers.db import EventRecord, FaceRecord, ListRecord

LISTS = "/1/lists"
FACES = "/1/faces"
EVENTS = "/1/events"
FACE_SAMPLES = "/1/samples/faces"


def sample_url(sample_id: str) -> str:
    """Where a face sample is served."""
    return f"{FACE_SAMPLES}/{sample_id}"


def list_json(record: ListRecord) -> dict[str, Any]:
    """A list."""
    return {"list_id": record.list_id, "account_id": record.account_id,
            "description": record.description, "create_time": format_time(record.create_time),
            "last_update_time": format_time(record.last_update_time)}


def face_json(record: FaceRecord) -> dict[str, Any]:
    """A face; ``avatar`` is its sample's URL, or "" when it has none (as in LUNA)."""
    return {"face_id": record.face_id, "account_id": record.account_id,
            "event_id": record.event_id, "external_id": record.external_id,
            "user_data": record.user_data, "lists": list(record.lists),
            "create_time": format_time(record.create_time),
            "avatar": "" if record.avatar_sample_id is None else sample_url(
                record.avatar_sample_id)}


def event_json(record: EventRecord) -> dict[str, Any]:
    """An event as stored: the detections, matches and top match the processing produced."""
    return {"event_id": record.event_id, "url": f"{EVENTS}/{record.event_id}",
            "handler_id": record.handler_id, "account_id": record.account_id,
            "source": record.source, "tags": list(record.tags), "track_id": record.track_id,
            "external_id": record.external_id, "user_data": record.user_data,
            "create_time": format_time(record.create_time),
            "end_time": format_time(record.end_time), "face_id": record.face_id,
            "detections": record.detections, "matches": record.matches or [],
            "top_match": record.top_match}

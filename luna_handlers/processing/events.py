"""A handler run on images: detect, extract, match, conditional tags, storage, in that order.

One event per kept face; an image without a face (or with ``detect_face`` 0) gives one event
without detections, and nothing is stored for faces then. Everything the request stores is
written by one ``saveEvents`` call after every image was processed: an engine or database
error on any image stores nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from luna_handlers.db import DBContext, EventWrite
from luna_handlers.engine import DESCRIPTOR_VERSION, Face, FaceEngine
from luna_handlers.processing.detection import ImageJob, faces_of, needs_descriptor
from luna_handlers.processing.filters import passes
from luna_handlers.processing.matching import (
    MatchGroup,
    match_descriptor,
    similarities,
    top_match,
)
from luna_handlers.processing.storage import choose
from luna_handlers.processing.times import now_utc, rfc3339

EVENTS_URL = "/1/events"
SAMPLES_URL = "/1/samples/faces"


@dataclass(frozen=True)
class EventContext:
    """What the request says about its events (times naive UTC)."""

    account_id: str
    handler_id: str
    create_time: datetime
    end_time: datetime
    source: str | None = None
    tags: tuple[str, ...] = ()
    track_id: str | None = None
    external_id: str | None = None
    user_data: str = ""


@dataclass
class _Pending:
    face: Face | None
    groups: list[MatchGroup] = field(default_factory=list)


def descriptor_bytes(face: Face) -> bytes | None:
    """The descriptor as stored: little-endian float32."""
    if face.descriptor is None:
        return None
    return np.asarray(face.descriptor, dtype="<f4").tobytes()


def detection_json(face: Face, sample_id: str | None, detect_time: str) -> dict[str, Any]:
    """The reference's detection: where the face is and its sample (ids None when the
    sample was not stored). ``image_origin`` is None: original images are not stored."""
    rect = face.rect
    return {
        "detect_time": detect_time,
        "detect_ts": None,
        "image_origin": None,
        "samples": {"face": {
            "sample_id": sample_id,
            "url": None if sample_id is None else f"{SAMPLES_URL}/{sample_id}",
            "detection": {
                "rect": {"x": round(rect.x), "y": round(rect.y),
                         "width": round(rect.width), "height": round(rect.height)},
                "landmarks5": [[round(x, 2), round(y, 2)] for x, y in face.landmarks5],
                "detection_score": round(face.score, 6),
            },
        }},
    }


async def _faces(engine: FaceEngine, policies: Mapping[str, Any],
                 jobs: Sequence[ImageJob]) -> list[list[Face]]:
    extract = needs_descriptor(policies)
    # All images go to the engine's pool at once: several workers can share one request.
    return list(await asyncio.gather(*(faces_of(engine, job, policies, extract=extract)
                                       for job in jobs)))


def _conditional_tags(policies: Mapping[str, Any], pending: _Pending) -> tuple[str, ...]:
    sims = similarities(pending.groups)
    return tuple(item["tag"] for item in policies["conditional_tags_policy"]
                 if passes(item["filters"], sims))


def _event(context: EventContext, policies: Mapping[str, Any], pending: _Pending,
           detect_time: str) -> tuple[EventWrite | None, dict[str, Any]]:
    """The write (None when nothing is stored) and the answer of one event."""
    face = pending.face
    sims = similarities(pending.groups)
    descriptor = None if face is None else descriptor_bytes(face)
    choice = choose(policies["storage_policy"], sims,
                    warp_jpeg=None if face is None else face.warp_jpeg, descriptor=descriptor,
                    descriptor_version=None if descriptor is None else DESCRIPTOR_VERSION,
                    external_id=context.external_id, user_data=context.user_data)
    tags = tuple(dict.fromkeys(context.tags + _conditional_tags(policies, pending)))
    sample_id = None if choice.sample is None else choice.sample.sample_id
    detections = [] if face is None else [detection_json(face, sample_id, detect_time)]
    matches = [group.as_json() for group in pending.groups]
    top = top_match(pending.groups)
    write = EventWrite(
        handler_id=context.handler_id, detections=detections, source=context.source,
        tags=tags, track_id=context.track_id, external_id=context.external_id,
        user_data=context.user_data, create_time=context.create_time,
        end_time=context.end_time, matches=matches, top_match=top, descriptor=descriptor,
        descriptor_version=None if descriptor is None else DESCRIPTOR_VERSION,
        face=choice.face, samples=() if choice.sample is None else (choice.sample,),
        store_event=choice.store_event)
    answer = {
        "event_id": write.event_id,
        "url": f"{EVENTS_URL}/{write.event_id}" if choice.store_event else None,
        "handler_id": context.handler_id,
        "account_id": context.account_id,
        "source": context.source,
        "tags": list(tags),
        "track_id": context.track_id,
        "external_id": context.external_id,
        "user_data": context.user_data,
        "create_time": rfc3339(context.create_time),
        "end_time": rfc3339(context.end_time),
        "face_id": None if choice.face is None else choice.face.face_id,
        "detections": detections,
        "matches": matches,
        "top_match": top,
    }
    stores_something = choice.store_event or choice.face is not None or bool(write.samples)
    return (write if stores_something else None), answer


async def run_handler(engine: FaceEngine, db: DBContext, policies: Mapping[str, Any],
                      jobs: Sequence[ImageJob], context: EventContext) -> list[dict[str, Any]]:
    """Run normalised handler ``policies`` on ``jobs``; the events as answered (JSON-ready).

    Raises the engine's errors (bad image, busy), ``MultipleFaces`` and the database's;
    nothing is stored unless every image was processed and the one write succeeded.
    """
    now = now_utc()
    detect_time = rfc3339(now)
    pending: list[_Pending] = []
    for faces in await _faces(engine, policies, jobs):
        pending.extend(_Pending(face) for face in faces)
        if not faces:
            pending.append(_Pending(None))
    for item in pending:
        descriptor = None if item.face is None else descriptor_bytes(item.face)
        if descriptor is not None and policies["match_policy"]:
            item.groups = await match_descriptor(db, context.account_id, descriptor,
                                                 policies["match_policy"], now)
    results = [_event(context, policies, item, detect_time) for item in pending]
    writes = [write for write, _ in results if write is not None]
    if writes:
        await db.saveEvents(context.account_id, writes)
    return [answer for _, answer in results]

"""What the stores of lists, faces, events and samples read and take (part of the DB-context
API, exported by :mod:`luna_handlers.db`).

Reads come back as named tuples (``*Record``); writes go in as frozen dataclasses
(``*Write``) whose ids default to fresh uuid4s, so that a caller knows every id (to render
its answer) before the write. Descriptors are the engine's float32 vector as raw bytes
(little-endian, 128 x 4 = 512 bytes for version 1), stored with their version: descriptors of
different versions are never compared.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NamedTuple

import orjson

SampleKind = Literal["face_warp", "face_crop"]


def new_id() -> str:
    """A fresh object id (uuid4)."""
    return str(uuid.uuid4())


class ListRecord(NamedTuple):
    """A list of faces as stored."""

    list_id: str
    account_id: str
    description: str
    create_time: datetime
    last_update_time: datetime


class FaceRecord(NamedTuple):
    """A face as stored, without its descriptor; ``lists``: the ids of the lists it is in."""

    face_id: str
    account_id: str
    event_id: str | None
    external_id: str | None
    user_data: str
    create_time: datetime
    avatar_sample_id: str | None
    descriptor_version: int | None
    lists: tuple[str, ...]


class EventRecord(NamedTuple):
    """An event as stored, without its descriptor. ``detections``, ``matches`` and
    ``top_match`` are the JSON the processing stored, decoded."""

    event_id: str
    account_id: str
    handler_id: str
    source: str | None
    tags: tuple[str, ...]
    track_id: str | None
    external_id: str | None
    user_data: str
    create_time: datetime
    end_time: datetime
    face_id: str | None
    detections: list[dict[str, Any]]
    matches: list[dict[str, Any]] | None
    top_match: dict[str, Any] | None
    descriptor_version: int | None


@dataclass(frozen=True)
class SampleWrite:
    """A face sample to store: the aligned 112x112 warp or the detection crop, as JPEG."""

    kind: SampleKind
    image: bytes
    sample_id: str = field(default_factory=new_id)


@dataclass(frozen=True)
class FaceWrite:
    """A face to store, linked to ``list_ids`` (each must exist in the account, or nothing
    is stored: ``ListNotFound``)."""

    descriptor: bytes | None
    descriptor_version: int | None
    list_ids: tuple[str, ...] = ()
    external_id: str | None = None
    user_data: str = ""
    event_id: str | None = None
    avatar_sample_id: str | None = None
    face_id: str = field(default_factory=new_id)


@dataclass(frozen=True)
class EventWrite:
    """One processed face (or image) to store with :meth:`saveEvents`.

    ``face`` (``store_face``) is stored with ``event_id`` set to this event's id when the
    event is stored, and the event's ``face_id`` is the face's; ``samples`` are stored too.
    With ``store_event`` False only the face and the samples are stored (the face then has
    no event id). ``create_time`` None means "now" on the database server's clock;
    ``end_time`` None means ``create_time``.
    """

    handler_id: str
    detections: Sequence[dict[str, Any]] = ()
    source: str | None = None
    tags: tuple[str, ...] = ()
    track_id: str | None = None
    external_id: str | None = None
    user_data: str = ""
    create_time: datetime | None = None
    end_time: datetime | None = None
    matches: Sequence[dict[str, Any]] | None = None
    top_match: dict[str, Any] | None = None
    descriptor: bytes | None = None
    descriptor_version: int | None = None
    face: FaceWrite | None = None
    samples: tuple[SampleWrite, ...] = ()
    store_event: bool = True
    event_id: str = field(default_factory=new_id)


@dataclass(frozen=True)
class EventFilters:
    """Filters of :meth:`getEvents` / :meth:`countEvents`; ``None`` means "any". ``tags``:
    events that have every one of them."""

    account_id: str | None = None
    handler_id: str | None = None
    create_time__gte: datetime | None = None
    create_time__lt: datetime | None = None
    source: str | None = None
    tags: Sequence[str] | None = None
    face_id: str | None = None


@dataclass(frozen=True)
class FaceMatchFilters:
    """Which faces of the account are candidates of :meth:`matchFaces`."""

    list_id: str | None = None
    face_ids: Sequence[str] | None = None
    create_time__gte: datetime | None = None
    create_time__lt: datetime | None = None


@dataclass(frozen=True)
class EventMatchFilters:
    """Which events of the account are candidates of :meth:`matchEvents`."""

    handler_ids: Sequence[str] | None = None
    create_time__gte: datetime | None = None
    create_time__lt: datetime | None = None


class FaceMatch(NamedTuple):
    """A candidate face and its cosine with the probe."""

    face_id: str
    external_id: str | None
    cosine: float


class EventMatch(NamedTuple):
    """A candidate event and its cosine with the probe."""

    event_id: str
    face_id: str | None
    cosine: float


class StoredDescriptor(NamedTuple):
    """A stored descriptor with its version."""

    descriptor: bytes
    version: int


class DescriptorLookup(NamedTuple):
    """Descriptors by id: ``found`` by id, ``missing``: the ids not found in the account
    (or stored without a descriptor), in the order asked."""

    found: dict[str, StoredDescriptor]
    missing: tuple[str, ...]


def dump_json(value: Any) -> str | None:
    """JSON text as stored (None stays NULL)."""
    return None if value is None else orjson.dumps(value).decode()

"""Verifiers: each face of the posted images against given faces and events (1:1 checks),
and the raw form on descriptors only.

The verifier's detect and extract policies choose the faces (a descriptor is always
extracted: a check needs it); similarity is the engine's mapping of the cosine and ``status``
is ``similarity >= verification_threshold``. Candidates are looked up in the request's
account before any image is processed: unknown ones (another account's included) are one
404 naming them. Descriptors of another engine version are never compared: such a candidate
counts as unknown. The verifier's ``face_sample_policy`` stores the faces' samples, in one
write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from luna_handlers.db import DBContext, DescriptorLookup, SampleWrite
from luna_handlers.engine import DESCRIPTOR_VERSION, FaceEngine, similarity_of
from luna_handlers.errors import EventNotFound, FaceNotFound
from luna_handlers.processing.detection import ImageJob, faces_of
from luna_handlers.processing.events import descriptor_bytes, detection_json
from luna_handlers.processing.storage import sample_of
from luna_handlers.processing.times import now_utc, rfc3339

Vector = np.ndarray[Any, np.dtype[np.float32]]


@dataclass(frozen=True)
class Candidate:
    """A stored face or event (``kind``) and its descriptor."""

    kind: str
    object_id: str
    vector: Vector

    @property
    def key(self) -> dict[str, Any]:
        """How an answer names it: ``{"face": {"face_id": ...}}``."""
        return {self.kind: {f"{self.kind}_id": self.object_id}}


def vector_of(descriptor: bytes) -> Vector:
    """A stored descriptor (little-endian float32 bytes) as a vector."""
    return np.frombuffer(descriptor, dtype="<f4").astype(np.float32)


def _usable(lookup: DescriptorLookup) -> tuple[dict[str, Vector], list[str]]:
    found = {key: vector_of(stored.descriptor) for key, stored in lookup.found.items()
             if stored.version == DESCRIPTOR_VERSION}
    missing = list(lookup.missing) + [key for key in lookup.found if key not in found]
    return found, missing


async def candidates_of(db: DBContext, account_id: str, face_ids: Sequence[str],
                        event_ids: Sequence[str]) -> list[Candidate]:
    """The candidates' descriptors, faces first, in the order asked; 404 for unknown ones."""
    result: list[Candidate] = []
    for not_found, ids, key, lookup in (
            (FaceNotFound, face_ids, "face", db.getFaceDescriptors),
            (EventNotFound, event_ids, "event", db.getEventDescriptors)):
        if not ids:
            continue
        found, missing = _usable(await lookup(account_id, list(ids)))
        if missing:
            raise not_found(*missing)
        result.extend(Candidate(key, object_id, found[object_id])
                      for object_id in dict.fromkeys(ids))
    return result


def similarity(one: Vector, other: Vector) -> float:
    """LUNA similarity of two L2-normalised descriptors."""
    return similarity_of(float(np.dot(one, other)))


async def verify_images(engine: FaceEngine, db: DBContext, policies: Mapping[str, Any],
                        jobs: Sequence[ImageJob], *, filenames: Sequence[str | None],
                        account_id: str, candidates: Sequence[Candidate]
                        ) -> list[dict[str, Any]]:
    """The ``images`` of a verification answer: every face of every image against every
    candidate. The samples are stored only after every image was processed, all in one
    write: all of them or none."""
    threshold = policies["verification_threshold"]
    detect_time = rfc3339(now_utc())
    per_image = await asyncio.gather(*(faces_of(engine, job, policies, extract=True)
                                       for job in jobs))
    images = []
    samples: list[SampleWrite] = []
    for filename, faces in zip(filenames, per_image, strict=True):
        detections = []
        for face in faces:
            sample = sample_of(policies["storage_policy"]["face_sample_policy"], {},
                               face.warp_jpeg)
            if sample is not None:
                samples.append(sample)
            probe = vector_of(descriptor_bytes(face) or b"")
            checks = []
            for candidate in candidates:
                value = similarity(probe, candidate.vector)
                checks.append({**candidate.key, "similarity": value,
                               "status": value >= threshold})
            detection = detection_json(face, None if sample is None else sample.sample_id,
                                       detect_time)
            detections.append({"sample": detection["samples"]["face"],
                               "verifications": checks})
        images.append({"filename": filename, "status": 1,
                       "detections": {"face_detections": detections}})
    await db.storeSamples(account_id, samples)
    return images

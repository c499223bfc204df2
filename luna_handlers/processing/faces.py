"""``POST /1/faces`` from an image: exactly one face, stored with its descriptor and avatar."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from luna_handlers.db import DBContext, FaceWrite, SampleWrite
from luna_handlers.engine import DESCRIPTOR_VERSION, DetectOptions, FaceEngine
from luna_handlers.errors import NoFaceFound
from luna_handlers.processing.detection import ImageJob
from luna_handlers.processing.events import descriptor_bytes


@dataclass(frozen=True)
class NewFace:
    """What the request says about the face to create."""

    list_ids: Sequence[str] = ()
    external_id: str | None = None
    user_data: str = ""


async def create_face(engine: FaceEngine, db: DBContext, account_id: str, job: ImageJob,
                      new: NewFace) -> tuple[str, str]:
    """Store the one face of ``job`` (its 112x112 warp as the avatar sample, in the same
    transaction); (face id, sample id). ``NoFaceFound`` unless there is exactly one face;
    ``ListNotFound`` (nothing stored) when a list is not in the account."""
    if job.is_warp:
        faces = [await engine.extract_from_warp(job.data)]
    else:
        faces = await engine.detect_and_extract(
            job.data, DetectOptions(use_exif_info=job.use_exif_info))
    if len(faces) != 1:
        raise NoFaceFound(len(faces))
    [face] = faces
    sample = SampleWrite(kind="face_warp", image=face.warp_jpeg)
    write = FaceWrite(descriptor=descriptor_bytes(face), descriptor_version=DESCRIPTOR_VERSION,
                      list_ids=tuple(dict.fromkeys(new.list_ids)),
                      external_id=new.external_id, user_data=new.user_data,
                      avatar_sample_id=sample.sample_id)
    face_id = await db.createFace(account_id, write, (sample,))
    return face_id, sample.sample_id

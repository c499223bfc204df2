"""Detect and extract policies on one image: which faces an event gets.

* ``detect_policy.detect_face`` 0: no face is looked for (the event has no detections).
* ``multiface_policy`` 0: more than one face is :class:`~luna_handlers.errors.MultipleFaces`;
  1: every face; 2: the best face (highest detector score). The detector's own score
  threshold is ``FACE_ENGINE.detection_threshold`` (0.5 by default, LUNA's).
* ``extract_policy.fd_score_threshold``: SFace gives no descriptor quality score, so the
  detector score stands in for it: faces scoring lower are dropped. Documented in README.
* ``image_type`` 1: the image is an aligned face warp; detection is skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from luna_handlers.engine import DetectOptions, Face, FaceEngine
from luna_handlers.errors import MultipleFaces


@dataclass(frozen=True)
class ImageJob:
    """One image to process and how to read it."""

    data: bytes
    index: int
    use_exif_info: bool = False
    is_warp: bool = False


async def faces_of(engine: FaceEngine, job: ImageJob, policies: Mapping[str, Any], *,
                   extract: bool) -> list[Face]:
    """The faces of ``job`` kept by the detect and extract policies, best score first."""
    detect = policies["detect_policy"]
    if job.is_warp:
        faces = [await engine.extract_from_warp(job.data)]
    elif not detect["detect_face"]:
        return []
    else:
        multiface = detect["multiface_policy"]
        options = DetectOptions(use_exif_info=job.use_exif_info, extract_descriptor=extract,
                                max_faces=1 if multiface == 2 else None)
        faces = await engine.detect_and_extract(job.data, options)
        if multiface == 0 and len(faces) > 1:
            raise MultipleFaces(job.index, len(faces))
    threshold = policies["extract_policy"]["fd_score_threshold"]
    return [face for face in faces if face.score >= threshold]


def needs_descriptor(policies: Mapping[str, Any]) -> bool:
    """Extraction is done when asked for, or when matching or a stored face needs it."""
    return bool(policies["extract_policy"]["extract_face_descriptor"]
                or policies.get("match_policy")
                or policies.get("storage_policy", {}).get("face_policy", {}).get("store_face"))

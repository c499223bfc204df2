"""``storage_policy``: what of one processed face is stored, as the DB context's writes.

Each sub-policy has a switch and ``filters`` (on the match similarities, :mod:`.filters`):

* ``face_sample_policy.store_sample``: the aligned 112x112 face (JPEG) is stored as the
  detection's sample (``sample_id``, served at ``/1/samples/faces/{id}``);
* ``face_policy.store_face``: a face with the descriptor (and its engine version), the
  request's ``external_id`` and ``user_data``, the sample as avatar when
  ``set_sample_as_avatar`` and a sample was stored, linked to every list of
  ``link_to_lists_policy`` whose filters pass;
* ``event_policy.store_event``: the event (detections, matches, top match, descriptor);
* ``attribute_policy``, ``image_origin_policy``, ``body_sample_policy``,
  ``notification_policy``: accepted and without effect here: there is no attribute store (the
  descriptor is kept with the stored event, which is what event matching uses), original
  images are not stored, bodies are not detected and there is no notification channel.

Everything a request stores goes to ONE ``saveEvents`` call: all of it or none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from luna_handlers.db import FaceWrite, SampleWrite
from luna_handlers.processing.filters import Similarities, passes


@dataclass(frozen=True)
class StorageChoice:
    """What to store of one face: the sample, the face (with its lists), the event."""

    sample: SampleWrite | None
    face: FaceWrite | None
    store_event: bool


def sample_of(sample_policy: Mapping[str, Any], similarities: Similarities,
              warp_jpeg: bytes | None) -> SampleWrite | None:
    """The sample to store by ``face_sample_policy`` (handlers and verifiers), or None."""
    if warp_jpeg is None or not sample_policy["store_sample"] \
            or not passes(sample_policy["filters"], similarities):
        return None
    return SampleWrite(kind="face_warp", image=warp_jpeg)


def choose(storage: Mapping[str, Any], similarities: Similarities, *, warp_jpeg: bytes | None,
           descriptor: bytes | None, descriptor_version: int | None, external_id: str | None,
           user_data: str) -> StorageChoice:
    """Apply ``storage`` (normalised ``storage_policy``) to one face (or to a faceless event:
    ``warp_jpeg`` and ``descriptor`` None)."""
    sample = sample_of(storage["face_sample_policy"], similarities, warp_jpeg)
    face_policy = storage["face_policy"]
    face = None
    if descriptor is not None and face_policy["store_face"] \
            and passes(face_policy["filters"], similarities):
        lists = tuple(link["list_id"] for link in face_policy["link_to_lists_policy"]
                      if passes(link["filters"], similarities))
        avatar = sample.sample_id if sample is not None and face_policy["set_sample_as_avatar"] \
            else None
        face = FaceWrite(descriptor=descriptor, descriptor_version=descriptor_version,
                         list_ids=tuple(dict.fromkeys(lists)), external_id=external_id,
                         user_data=user_data, avatar_sample_id=avatar)
    event_policy = storage["event_policy"]
    store_event = bool(event_policy["store_event"]) and passes(event_policy["filters"],
                                                               similarities)
    return StorageChoice(sample, face, store_event)

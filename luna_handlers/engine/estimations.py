"""What the built-in engine cannot estimate, as data for policy validation.

The engine detects faces (box, 5 landmarks, score) and extracts identity descriptors; it has
no model for anything else. A policy that asks for one of the estimations below must be
refused with :class:`~luna_handlers.errors.EstimationNotAvailable` naming the flag, never
answered with an invented value.

Head pose is in the list by measurement: roll from the eye line of YuNet's landmarks on
rotated copies of the reference photos (10..40 degrees) was off by 15 degrees on average and
by up to 41 (the landmarks lag the rotation), and there is no ground truth here for yaw and
pitch, so ``estimate_head_pose`` and the angle thresholds that depend on it are refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from luna_handlers.errors import EstimationNotAvailable

#: Policy path (dots through nested objects) -> what it asks for. A path counts as asked for
#: when its value is truthy (1 for flags, a non-empty list for state filters) or, for the
#: angle thresholds, when it is set at all (0 degrees is a threshold too).
UNAVAILABLE_ESTIMATIONS: Mapping[str, str] = {
    "detect_policy.detect_body": "body detection",
    "detect_policy.detect_landmarks68": "68 face landmarks",
    "detect_policy.estimate_head_pose": "head pose",
    "detect_policy.yaw_threshold": "head pose (yaw)",
    "detect_policy.pitch_threshold": "head pose (pitch)",
    "detect_policy.roll_threshold": "head pose (roll)",
    "detect_policy.estimate_gaze": "gaze direction",
    "detect_policy.estimate_eyes_attributes": "eye attributes",
    "detect_policy.estimate_mouth_attributes": "mouth attributes",
    "detect_policy.estimate_emotions": "emotions",
    "detect_policy.estimate_mask": "mask",
    "detect_policy.mask_states": "mask",
    "detect_policy.estimate_quality": "image quality",
    "detect_policy.face_quality.estimate": "face quality",
    "detect_policy.face_quality.filter": "face quality",
    "detect_policy.estimate_glasses": "glasses",
    "detect_policy.estimate_liveness.estimate": "liveness",
    "detect_policy.liveness_states": "liveness",
    "detect_policy.body_attributes.estimate_basic_attributes": "body attributes",
    "detect_policy.body_attributes.estimate_upper_body": "upper body attributes",
    "detect_policy.body_attributes.estimate_lower_body": "lower body attributes",
    "detect_policy.body_attributes.estimate_accessories": "body accessories",
    "extract_policy.extract_basic_attributes": "age, gender and ethnicity",
    "extract_policy.extract_body_descriptor": "body descriptor",
}


#: The paths above, split once, and whether being set at all asks (the angle thresholds):
#: this runs on every write of a handler or verifier.
_PARTS = tuple((path, tuple(path.split(".")), path.endswith("_threshold"))
               for path in UNAVAILABLE_ESTIMATIONS)


def _value_at(policies: Mapping[str, Any], parts: tuple[str, ...]) -> Any:
    node: Any = policies
    for part in parts:
        # type() first: a dict (what JSON gives) skips the slower ABC check.
        if type(node) is not dict and not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def unavailable_requested(policies: Mapping[str, Any]) -> list[str]:
    """The paths of :data:`UNAVAILABLE_ESTIMATIONS` that ``policies`` (JSON-like) asks for."""
    asked = []
    for path, parts, when_set in _PARTS:
        value = _value_at(policies, parts)
        if value is not None if when_set else bool(value):
            asked.append(path)
    return asked


def check_estimations(policies: Mapping[str, Any]) -> None:
    """Raise :class:`EstimationNotAvailable` for the first unavailable estimation asked for."""
    asked = unavailable_requested(policies)
    if asked:
        raise EstimationNotAvailable(asked[0], UNAVAILABLE_ESTIMATIONS[asked[0]])

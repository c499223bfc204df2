"""The list of estimations the engine refuses, and the check that names the flag."""

from __future__ import annotations

from typing import Any

import pytest

from luna_handlers.engine import UNAVAILABLE_ESTIMATIONS, check_estimations, unavailable_requested
from luna_handlers.errors import EstimationNotAvailable


@pytest.mark.parametrize(("policies", "asked"), [
    ({}, []),
    ({"detect_policy": {"detect_face": 1, "multiface_policy": 2}}, []),
    ({"detect_policy": {"estimate_emotions": 0, "mask_states": []}}, []),
    ({"extract_policy": {"extract_face_descriptor": 1, "fd_score_threshold": 0.5}}, []),
    ({"detect_policy": {"estimate_emotions": 1}}, ["detect_policy.estimate_emotions"]),
    ({"detect_policy": {"estimate_head_pose": 1}}, ["detect_policy.estimate_head_pose"]),
    ({"detect_policy": {"yaw_threshold": 0}}, ["detect_policy.yaw_threshold"]),
    ({"detect_policy": {"mask_states": [0]}}, ["detect_policy.mask_states"]),
    ({"detect_policy": {"estimate_liveness": {"estimate": 1}}},
     ["detect_policy.estimate_liveness.estimate"]),
    ({"detect_policy": {"body_attributes": {"estimate_upper_body": 1}}},
     ["detect_policy.body_attributes.estimate_upper_body"]),
    ({"extract_policy": {"extract_basic_attributes": 1}},
     ["extract_policy.extract_basic_attributes"]),
    ({"detect_policy": {"estimate_mask": 1, "estimate_glasses": 1}},
     ["detect_policy.estimate_glasses", "detect_policy.estimate_mask"]),
    ({"detect_policy": "not an object"}, []),
], ids=["empty", "plain-detect", "zeros", "descriptor", "emotions", "head-pose",
        "yaw-zero-is-set", "mask-states", "liveness", "body", "age-gender", "two", "malformed"])
def test_requested(policies: dict[str, Any], asked: list[str]) -> None:
    assert sorted(unavailable_requested(policies)) == asked


def test_error_names_the_flag() -> None:
    with pytest.raises(EstimationNotAvailable) as caught:
        check_estimations({"extract_policy": {"extract_basic_attributes": 1}})
    error = caught.value
    assert (error.status, error.code, error.flag) == (400, 35004,
                                                      "extract_policy.extract_basic_attributes")
    assert "'extract_policy.extract_basic_attributes'" in error.detail
    assert "age, gender and ethnicity" in error.detail
    check_estimations({"detect_policy": {"detect_face": 1}})


def test_every_path_is_refused_when_set() -> None:
    for path in UNAVAILABLE_ESTIMATIONS:
        policies: dict[str, Any] = {}
        node = policies
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = [1] if leaf.endswith("_states") else 1
        assert unavailable_requested(policies) == [path]

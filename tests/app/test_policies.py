"""Tests of handler / verifier body validation, policy normalisation and the body schemas."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from luna_handlers.app.policies import (
    DYNAMIC_WITH_POLICIES,
    STATIC_WITHOUT_POLICIES,
    HandlerInput,
    VerifierInput,
    handler_body_schema,
    normalise_handler_policies,
    normalise_verifier_policies,
    parse_handler_body,
    parse_validator_body,
    parse_verifier_body,
    validator_body_schema,
    verifier_body_schema,
)
from luna_handlers.app.policy_types import MAX_POLICY_LIST_LENGTH
from luna_handlers.errors import BadInputJson

UUID1 = "6d8f8f9e-6a9b-4c1e-9f57-0c7e2b1d2a3f"
UUID2 = "0b8e5a3c-1d2f-4e6a-8b9c-0d1e2f3a4b5c"
TOP_LEVEL = {
    "detect_policy", "extract_policy", "match_policy", "storage_policy", "conditional_tags_policy",
}


def match_item(**extra: Any) -> dict[str, Any]:
    return {"candidates": {"origin": "faces"}, **extra}


def handler(policies: dict[str, Any]) -> dict[str, Any]:
    return {"policies": policies}


def detect(**fields: Any) -> dict[str, Any]:
    return handler({"detect_policy": fields})


def storage(name: str, **fields: Any) -> dict[str, Any]:
    return handler({"storage_policy": {name: fields}})


FULL_FILTERS: dict[str, Any] = {
    "age__gte": 18, "age__lt": 60, "gender": 1, "liveness": [1],
    "match": [{"label": "staff", "similarity__gte": 0.8, "similarity__lt": 1}],
}
FULL_HANDLER_POLICIES: dict[str, Any] = {
    "detect_policy": {
        "detect_face": 1, "detect_body": 1, "multiface_policy": 2, "detect_landmarks68": 1,
        "estimate_head_pose": 1, "estimate_gaze": 1, "estimate_eyes_attributes": 1,
        "estimate_mouth_attributes": 1, "estimate_emotions": 1, "estimate_mask": 1,
        "estimate_quality": 1, "estimate_glasses": 1, "extract_exif": 1,
        "estimate_liveness": {"estimate": 1, "quality_threshold": 0.5},
        "liveness_states": [0, 1, 2], "mask_states": [0, 1, 2],
        "face_quality": {"estimate": 1, "filter": 1},
        "body_attributes": {
            "estimate_basic_attributes": 1, "estimate_upper_body": 1,
            "estimate_lower_body": 1, "estimate_accessories": 1,
        },
        "pitch_threshold": 30, "roll_threshold": 0, "yaw_threshold": 180,
    },
    "extract_policy": {
        "extract_basic_attributes": 1, "extract_face_descriptor": 1,
        "extract_body_descriptor": 1, "fd_score_threshold": 0.5,
    },
    "match_policy": [
        {
            "candidates": {
                "origin": "faces", "account_id": UUID1, "list_id": UUID2,
                "face_ids": [UUID1, UUID2], "user_data": "vip",
                "create_time__gte": "now-3h", "create_time__lt": "2024-01-31T10:00:00.123+03:00",
            },
            "filters": FULL_FILTERS, "label": "staff", "limit": 1000,
            "targets": ["similarity", "face_id", "user_data"], "threshold": 0.75,
        },
        {
            "candidates": {
                "origin": "events", "event_ids": [UUID1], "handler_ids": [UUID2],
                "end_time__gte": "2024-01-01T00:00:00Z", "end_time__lt": "now-1M",
            },
            "label": "seen", "limit": 1,
        },
        {"candidates": {"origin": "attributes", "attribute_ids": [UUID2]}},
    ],
    "storage_policy": {
        "face_sample_policy": {"filters": FULL_FILTERS, "store_sample": 0},
        "body_sample_policy": {"store_sample": 0},
        "image_origin_policy": {"store_image": 0, "use_external_references": 1},
        "attribute_policy": {"store_attribute": 0, "ttl": 31536000},
        "face_policy": {
            "store_face": 1, "set_sample_as_avatar": 0,
            "link_to_lists_policy": [{"list_id": UUID1, "filters": {"gender": 0}}],
        },
        "event_policy": {"store_event": 0, "wait_saving": 1},
        "notification_policy": {"send_notification": 0},
    },
    "conditional_tags_policy": [
        {"tag": "vip", "filters": {"match": [{"label": "staff", "similarity__gte": 0.9}]}},
        {"tag": "young", "filters": {"age__lt": 25}},
    ],
}
FULL_VERIFIER_POLICIES: dict[str, Any] = {
    "detect_policy": {"multiface_policy": 0, "estimate_liveness": {"estimate": 1}},
    "extract_policy": {"extract_face_descriptor": 1, "fd_score_threshold": 0},
    "storage_policy": {
        "face_sample_policy": {"store_sample": 1},
        "attribute_policy": {"store_attribute": 1, "ttl": 60, "filters": {"liveness": [1]}},
    },
    "verification_threshold": 0.97,
}

VALID_HANDLER_BODIES: list[dict[str, Any]] = [
    {"policies": {}},
    {"is_dynamic": True},
    {"is_dynamic": True, "policies": None, "description": "dynamic"},
    {"is_dynamic": False, "policies": {}, "description": ""},
    {"description": "full", "is_dynamic": False, "policies": FULL_HANDLER_POLICIES},
    {"description": "Камера №1 — вход 🚪", "policies": {"match_policy": [match_item()]}},
    {"description": "x" * 128, "policies": {}},
    {"description": "🚪" * 128, "policies": {}},
    detect(detect_face=1.0, pitch_threshold=None),
    handler({"match_policy": [match_item()] * MAX_POLICY_LIST_LENGTH}),
    handler({"match_policy": [match_item(threshold=1, limit=1)]}),
    storage("attribute_policy", ttl=1),
]
VALID_VERIFIER_BODIES: list[dict[str, Any]] = [
    {},
    {"description": "v"},
    {"policies": {}},
    {"description": "x" * 128, "policies": FULL_VERIFIER_POLICIES},
    {"policies": {"verification_threshold": 0}},
    {"policies": {"verification_threshold": 1}},
]
VALID_VALIDATOR_BODIES: list[dict[str, Any]] = [
    {"policies": {}},
    {"policies": FULL_HANDLER_POLICIES},
]

# (body, expected path, expected message or None to skip the message check)
INVALID_HANDLER_BODIES: list[tuple[object, str, str | None]] = [
    ([], "", "must be an object"),
    ("policies", "", "must be an object"),
    (None, "", "must be an object"),
    ({"description": 1, "policies": {}}, "description", "Input should be a valid string"),
    ({"description": "x" * 129, "policies": {}}, "description",
     "String should have at most 128 characters"),
    ({"description": "🚪" * 129, "policies": {}}, "description", None),
    ({"is_dynamic": 1, "policies": {}}, "is_dynamic", "Input should be a valid boolean"),
    ({"is_dynamic": "true"}, "is_dynamic", None),
    ({"is_dynamic": 1.0}, "is_dynamic", None),
    ({"unknown": 1, "policies": {}}, "unknown", "Extra inputs are not permitted"),
    ({"account_id": UUID1, "policies": {}}, "account_id", None),
    ({"is_dynamic": True, "policies": {}}, "policies", DYNAMIC_WITH_POLICIES),
    ({"is_dynamic": True, "policies": FULL_HANDLER_POLICIES}, "policies", DYNAMIC_WITH_POLICIES),
    ({}, "policies", STATIC_WITHOUT_POLICIES),
    ({"is_dynamic": False, "policies": None}, "policies", STATIC_WITHOUT_POLICIES),
    ({"policies": []}, "policies", "Input should be an object"),
    (handler({"foo": {}}), "policies.foo", "Extra inputs are not permitted"),
    (handler({"detect_policy": []}), "policies.detect_policy", "Input should be an object"),
    (detect(detect_face=True), "policies.detect_policy.detect_face",
     "Input should be a valid integer"),
    (detect(detect_face="1"), "policies.detect_policy.detect_face", None),
    (detect(detect_face=2), "policies.detect_policy.detect_face",
     "Input should be less than or equal to 1"),
    (detect(detect_face=0.5), "policies.detect_policy.detect_face", None),
    (detect(estimate_gaze=-1), "policies.detect_policy.estimate_gaze", None),
    (detect(multiface_policy=3), "policies.detect_policy.multiface_policy", None),
    (detect(multiface_policy=None), "policies.detect_policy.multiface_policy", None),
    (detect(pitch_threshold=181), "policies.detect_policy.pitch_threshold", None),
    (detect(yaw_threshold=10.5), "policies.detect_policy.yaw_threshold", None),
    (detect(roll_threshold=-1), "policies.detect_policy.roll_threshold", None),
    (detect(liveness_states=[1, 3]), "policies.detect_policy.liveness_states[1]", None),
    (detect(mask_states="1"), "policies.detect_policy.mask_states", None),
    (detect(mask_states=[True]), "policies.detect_policy.mask_states[0]", None),
    (detect(estimate_liveness={"quality_threshold": 1.5}),
     "policies.detect_policy.estimate_liveness.quality_threshold", None),
    (detect(estimate_liveness={"estimate": 1, "mode": 2}),
     "policies.detect_policy.estimate_liveness.mode", "Extra inputs are not permitted"),
    (detect(face_quality={"filter": 2}), "policies.detect_policy.face_quality.filter", None),
    (detect(body_attributes={"estimate_upper_body": "1"}),
     "policies.detect_policy.body_attributes.estimate_upper_body", None),
    (detect(detect_eyes=1), "policies.detect_policy.detect_eyes", None),
    (handler({"extract_policy": {"fd_score_threshold": -0.1}}),
     "policies.extract_policy.fd_score_threshold", None),
    (handler({"extract_policy": {"fd_score_threshold": "0.5"}}),
     "policies.extract_policy.fd_score_threshold", "Input should be a valid number"),
    (handler({"extract_policy": {"extract_face_descriptor": False}}),
     "policies.extract_policy.extract_face_descriptor", None),
    (handler({"match_policy": {}}), "policies.match_policy", "Input should be a valid list"),
    (handler({"match_policy": [{}]}), "policies.match_policy[0].candidates", "Field required"),
    (handler({"match_policy": [match_item(), {"candidates": {"origin": "lists"}}]}),
     "policies.match_policy[1].candidates.origin",
     "Input should be 'faces', 'events' or 'attributes'"),
    (handler({"match_policy": [match_item(threshold=1.01)]}),
     "policies.match_policy[0].threshold", None),
    (handler({"match_policy": [match_item(threshold=True)]}),
     "policies.match_policy[0].threshold", None),
    (handler({"match_policy": [match_item(limit=0)]}), "policies.match_policy[0].limit", None),
    (handler({"match_policy": [match_item(limit=1001)]}), "policies.match_policy[0].limit", None),
    (handler({"match_policy": [match_item(limit=True)]}), "policies.match_policy[0].limit", None),
    (handler({"match_policy": [match_item(targets=["similarity", "nope"])]}),
     "policies.match_policy[0].targets[1]", None),
    (handler({"match_policy": [match_item(label="x" * 129)]}),
     "policies.match_policy[0].label", None),
    (handler({"match_policy": [match_item(extra=1)]}), "policies.match_policy[0].extra", None),
    (handler({"match_policy": [{"candidates": {"origin": "faces", "list_id": "not-a-uuid"}}]}),
     "policies.match_policy[0].candidates.list_id", "String should be a valid UUID"),
    (handler({"match_policy": [{"candidates": {"origin": "faces", "list_id": UUID1 + "0"}}]}),
     "policies.match_policy[0].candidates.list_id", None),
    (handler({"match_policy": [{"candidates": {"origin": "faces", "face_ids": [UUID1, 1]}}]}),
     "policies.match_policy[0].candidates.face_ids[1]", None),
    (handler({"match_policy": [{"candidates": {"origin": "events",
                                               "create_time__gte": "yesterday"}}]}),
     "policies.match_policy[0].candidates.create_time__gte", None),
    (handler({"match_policy": [{"candidates": {"origin": "events",
                                               "end_time__lt": "2024-01-31T10:00:00"}}]}),
     "policies.match_policy[0].candidates.end_time__lt", None),
    (handler({"match_policy": [{"candidates": {"origin": "faces", "lists": [UUID1]}}]}),
     "policies.match_policy[0].candidates.lists", None),
    (handler({"match_policy": [match_item()] * (MAX_POLICY_LIST_LENGTH + 1)}),
     "policies.match_policy", None),
    (handler({"match_policy": [match_item(filters={"age__gte": 201})]}),
     "policies.match_policy[0].filters.age__gte", None),
    (handler({"match_policy": [match_item(filters={"match": [{"similarity__gte": 0.5}]})]}),
     "policies.match_policy[0].filters.match[0].label", "Field required"),
    (handler({"match_policy": [match_item(filters={"match": [{"label": "a",
                                                              "similarity__lt": 2}]})]}),
     "policies.match_policy[0].filters.match[0].similarity__lt", None),
    (storage("face_sample_policy", store_sample=True),
     "policies.storage_policy.face_sample_policy.store_sample", None),
    (storage("face_sample_policy", filters={"gender": 2}),
     "policies.storage_policy.face_sample_policy.filters.gender", None),
    (storage("body_sample_policy", store_sample=2),
     "policies.storage_policy.body_sample_policy.store_sample", None),
    (storage("image_origin_policy", use_external_references="0"),
     "policies.storage_policy.image_origin_policy.use_external_references", None),
    (storage("attribute_policy", ttl=0), "policies.storage_policy.attribute_policy.ttl", None),
    (storage("attribute_policy", ttl=31536001),
     "policies.storage_policy.attribute_policy.ttl", None),
    (storage("face_policy", link_to_lists_policy=[{"list_id": UUID1}, {}]),
     "policies.storage_policy.face_policy.link_to_lists_policy[1].list_id", "Field required"),
    (storage("face_policy", set_sample_as_avatar=False),
     "policies.storage_policy.face_policy.set_sample_as_avatar", None),
    (storage("event_policy", wait_saving=2),
     "policies.storage_policy.event_policy.wait_saving", None),
    (storage("notification_policy", send_notification=-1),
     "policies.storage_policy.notification_policy.send_notification", None),
    (storage("unknown_policy"), "policies.storage_policy.unknown_policy", None),
    (handler({"conditional_tags_policy": {}}), "policies.conditional_tags_policy", None),
    (handler({"conditional_tags_policy": [{"tag": ""}]}),
     "policies.conditional_tags_policy[0].tag", None),
    (handler({"conditional_tags_policy": [{"tag": "a"}, {"filters": {}}]}),
     "policies.conditional_tags_policy[1].tag", "Field required"),
    (handler({"conditional_tags_policy": [{"tag": "a", "filters": {"age": 3}}]}),
     "policies.conditional_tags_policy[0].filters.age", None),
]
INVALID_VERIFIER_BODIES: list[tuple[object, str, str | None]] = [
    ([], "", "must be an object"),
    ({"description": "x" * 129}, "description", None),
    ({"is_dynamic": False}, "is_dynamic", "Extra inputs are not permitted"),
    ({"policies": None}, "policies", "Input should be an object"),
    ({"policies": {"match_policy": []}}, "policies.match_policy", None),
    ({"policies": {"verification_threshold": 1.1}}, "policies.verification_threshold", None),
    ({"policies": {"verification_threshold": None}}, "policies.verification_threshold", None),
    ({"policies": {"verification_threshold": "0.9"}}, "policies.verification_threshold", None),
    ({"policies": {"verification_threshold": True}}, "policies.verification_threshold", None),
    ({"policies": {"storage_policy": {"face_policy": {}}}},
     "policies.storage_policy.face_policy", None),
    ({"policies": {"storage_policy": {"attribute_policy": {"ttl": -5}}}},
     "policies.storage_policy.attribute_policy.ttl", None),
    ({"policies": {"detect_policy": {"multiface_policy": 5}}},
     "policies.detect_policy.multiface_policy", None),
    ({"policies": {"extract_policy": {"extract_body_descriptor": 2}}},
     "policies.extract_policy.extract_body_descriptor", None),
]
INVALID_VALIDATOR_BODIES: list[tuple[object, str, str | None]] = [
    ("x", "", "must be an object"),
    ({}, "policies", "Field required"),
    ({"policies": None}, "policies", "Input should be an object"),
    ({"policies": {}, "account_id": UUID1}, "account_id", None),
    ({"policies": {"match_policy": [{}]}}, "policies.match_policy[0].candidates", None),
    ({"policies": {"detect_policy": {"detect_face": True}}},
     "policies.detect_policy.detect_face", None),
]


def check_error(exc: BadInputJson, path: str, message: str | None) -> None:
    assert exc.path == path
    if message is not None:
        assert exc.message == message
    assert exc.code == 12022
    assert exc.status == 400
    assert f"Path: '{path}'" in exc.detail
    assert "HandlerPolicies" not in exc.message  # no class names leak to clients


# --- handler bodies --------------------------------------------------------------------------


def test_there_are_enough_invalid_cases() -> None:
    assert len(INVALID_HANDLER_BODIES) >= 15


@pytest.mark.parametrize("body", VALID_HANDLER_BODIES)
def test_valid_handler_bodies(body: dict[str, Any]) -> None:
    parsed = parse_handler_body(copy.deepcopy(body))
    assert isinstance(parsed, HandlerInput)
    assert parsed.description == body.get("description", "")
    assert parsed.is_dynamic is body.get("is_dynamic", False)
    if parsed.is_dynamic:
        assert parsed.policies is None
    else:
        assert parsed.policies is not None
        assert parsed.policies == body["policies"]  # stored as sent; defaults come on read
        normalised = normalise_handler_policies(parsed.policies)
        assert set(normalised) == TOP_LEVEL
        assert json.loads(json.dumps(normalised)) == normalised  # JSON-ready


@pytest.mark.parametrize(("body", "path", "message"), INVALID_HANDLER_BODIES)
def test_invalid_handler_bodies(body: object, path: str, message: str | None) -> None:
    with pytest.raises(BadInputJson) as info:
        parse_handler_body(body)
    check_error(info.value, path, message)


def test_minimal_static_handler_gets_all_defaults() -> None:
    parsed = parse_handler_body({"policies": {}})
    assert parsed == HandlerInput("", False, {})
    policies = normalise_handler_policies({})
    assert policies["match_policy"] == []
    assert policies["conditional_tags_policy"] == []
    detect_policy = policies["detect_policy"]
    assert detect_policy["detect_face"] == 1
    assert detect_policy["detect_body"] == 0
    assert detect_policy["multiface_policy"] == 1
    assert detect_policy["estimate_liveness"] == {"estimate": 0, "quality_threshold": None}
    assert detect_policy["pitch_threshold"] is None
    assert detect_policy["liveness_states"] is None
    assert policies["extract_policy"] == {
        "extract_basic_attributes": 0, "extract_face_descriptor": 0,
        "extract_body_descriptor": 0, "fd_score_threshold": 0.0,
    }
    store = policies["storage_policy"]
    assert store["face_sample_policy"]["store_sample"] == 1
    assert store["body_sample_policy"]["store_sample"] == 1
    assert store["image_origin_policy"]["store_image"] == 1
    assert store["image_origin_policy"]["use_external_references"] == 0
    assert store["attribute_policy"]["store_attribute"] == 1
    assert store["attribute_policy"]["ttl"] is None
    assert store["face_policy"] == {
        "filters": store["face_policy"]["filters"], "store_face": 0,
        "set_sample_as_avatar": 1, "link_to_lists_policy": [],
    }
    assert store["event_policy"]["store_event"] == 1
    assert store["event_policy"]["wait_saving"] == 0
    assert store["notification_policy"]["send_notification"] == 1
    assert store["event_policy"]["filters"] == {
        "age__gte": None, "age__lt": None, "gender": None, "liveness": None, "match": None,
    }


def test_match_policy_item_defaults_and_values() -> None:
    policies = parse_handler_body(handler({"match_policy": [match_item(threshold=1)]})).policies
    assert policies is not None
    item = normalise_handler_policies(policies)["match_policy"][0]
    assert item["label"] == ""
    assert item["limit"] == 3
    assert item["targets"] is None
    assert item["threshold"] == 1.0
    assert item["candidates"]["origin"] == "faces"
    assert item["candidates"]["list_id"] is None


def test_full_handler_keeps_given_values() -> None:
    policies = parse_handler_body({"policies": FULL_HANDLER_POLICIES}).policies
    assert policies is not None
    assert policies["detect_policy"] == FULL_HANDLER_POLICIES["detect_policy"]
    assert policies["extract_policy"] == FULL_HANDLER_POLICIES["extract_policy"]
    assert policies["match_policy"][0]["candidates"]["face_ids"] == [UUID1, UUID2]
    assert policies["match_policy"][0]["filters"] == FULL_FILTERS
    assert policies["storage_policy"]["face_policy"]["link_to_lists_policy"][0]["list_id"] == UUID1
    assert [tag["tag"] for tag in policies["conditional_tags_policy"]] == ["vip", "young"]


def test_integral_float_is_an_int_and_is_normalised() -> None:
    sent = parse_handler_body(detect(detect_face=1.0, multiface_policy=2.0)).policies
    assert sent is not None
    policies = normalise_handler_policies(sent)
    assert policies["detect_policy"]["detect_face"] == 1
    assert type(policies["detect_policy"]["detect_face"]) is int


def test_input_is_not_mutated() -> None:
    body = {"policies": {"detect_policy": {"detect_face": 0}}}
    before = copy.deepcopy(body)
    parse_handler_body(body)
    assert body == before


def test_description_limits_and_unicode() -> None:
    assert parse_handler_body({"description": "a" * 128, "policies": {}}).description == "a" * 128
    text = "Камера №1 — вход 🚪 入口"
    assert parse_handler_body({"description": text, "is_dynamic": True}).description == text
    with pytest.raises(BadInputJson) as info:
        parse_handler_body({"description": "a" * 129, "policies": {}})
    check_error(info.value, "description", "String should have at most 128 characters")


def test_only_first_error_is_reported() -> None:
    body = {"description": 5, "policies": {"detect_policy": {"detect_face": 7}}}
    with pytest.raises(BadInputJson) as info:
        parse_handler_body(body)
    check_error(info.value, "description", None)


def test_field_errors_come_before_the_dynamic_rule() -> None:
    with pytest.raises(BadInputJson) as info:
        parse_handler_body({"is_dynamic": True, "policies": {"bad": 1}})
    check_error(info.value, "policies.bad", "Extra inputs are not permitted")


# --- verifier and validator bodies ----------------------------------------------------------


@pytest.mark.parametrize("body", VALID_VERIFIER_BODIES)
def test_valid_verifier_bodies(body: dict[str, Any]) -> None:
    parsed = parse_verifier_body(body)
    assert isinstance(parsed, VerifierInput)
    assert parsed.description == body.get("description", "")
    assert parsed.policies == body.get("policies", {})  # stored as sent
    normalised = normalise_verifier_policies(parsed.policies)
    assert set(normalised) == {
        "detect_policy", "extract_policy", "storage_policy", "verification_threshold",
    }
    assert set(normalised["storage_policy"]) == {"face_sample_policy", "attribute_policy"}


@pytest.mark.parametrize(("body", "path", "message"), INVALID_VERIFIER_BODIES)
def test_invalid_verifier_bodies(body: object, path: str, message: str | None) -> None:
    with pytest.raises(BadInputJson) as info:
        parse_verifier_body(body)
    check_error(info.value, path, message)


def test_verifier_defaults() -> None:
    policies = normalise_verifier_policies(parse_verifier_body({}).policies)
    assert policies == normalise_verifier_policies(parse_verifier_body({"policies": {}}).policies)
    assert policies["verification_threshold"] == 0.9
    assert policies["storage_policy"]["face_sample_policy"]["store_sample"] == 0
    assert policies["storage_policy"]["attribute_policy"]["store_attribute"] == 0
    assert policies["storage_policy"]["attribute_policy"]["ttl"] is None
    assert policies["detect_policy"]["multiface_policy"] == 1
    full = normalise_verifier_policies(
        parse_verifier_body({"policies": FULL_VERIFIER_POLICIES}).policies)
    assert full["verification_threshold"] == 0.97
    assert full["storage_policy"]["attribute_policy"]["ttl"] == 60


@pytest.mark.parametrize("body", VALID_VALIDATOR_BODIES)
def test_valid_validator_bodies(body: dict[str, Any]) -> None:
    policies = parse_validator_body(body)
    sent = parse_handler_body(body).policies
    assert sent is not None and policies == normalise_handler_policies(sent)


@pytest.mark.parametrize(("body", "path", "message"), INVALID_VALIDATOR_BODIES)
def test_invalid_validator_bodies(body: object, path: str, message: str | None) -> None:
    with pytest.raises(BadInputJson) as info:
        parse_validator_body(body)
    check_error(info.value, path, message)


# --- normalisation of stored policies --------------------------------------------------------


def test_normalising_empty_policies_gives_all_top_level_keys() -> None:
    normalised = normalise_handler_policies({})
    assert set(normalised) >= TOP_LEVEL
    assert normalised == parse_validator_body({"policies": {}})


@pytest.mark.parametrize("policies", [{}, FULL_HANDLER_POLICIES, {"match_policy": [match_item()]}])
def test_normalise_handler_policies_is_idempotent(policies: dict[str, Any]) -> None:
    once = normalise_handler_policies(policies)
    assert normalise_handler_policies(once) == once
    assert parse_validator_body({"policies": policies}) == once


def test_normalise_fills_defaults_into_partial_stored_policies() -> None:
    normalised = normalise_handler_policies({"detect_policy": {"estimate_mask": 1}})
    assert normalised["detect_policy"]["estimate_mask"] == 1
    assert normalised["detect_policy"]["detect_face"] == 1
    assert normalised["storage_policy"]["event_policy"]["store_event"] == 1


def test_normalise_verifier_policies() -> None:
    once = normalise_verifier_policies({"verification_threshold": 0.5})
    assert once["verification_threshold"] == 0.5
    assert once["storage_policy"]["face_sample_policy"]["store_sample"] == 0
    assert normalise_verifier_policies(once) == once


@pytest.mark.parametrize(
    ("function", "stored"),
    [
        (normalise_handler_policies, {"detect_policy": {"detect_face": 9}}),
        (normalise_handler_policies, {"whatever": 1}),
        (normalise_verifier_policies, {"match_policy": []}),
    ],
)
def test_normalise_corrupted_stored_policies_raises_value_error(
    function: Any, stored: dict[str, Any],
) -> None:
    with pytest.raises(ValueError, match="stored policies are invalid at 'policies\\."):
        function(stored)


# --- JSON Schemas ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def validator_cls() -> Any:
    return pytest.importorskip("jsonschema").Draft202012Validator


SCHEMAS = [
    (handler_body_schema, VALID_HANDLER_BODIES, INVALID_HANDLER_BODIES),
    (verifier_body_schema, VALID_VERIFIER_BODIES, INVALID_VERIFIER_BODIES),
    (validator_body_schema, VALID_VALIDATOR_BODIES, INVALID_VALIDATOR_BODIES),
]


@pytest.mark.parametrize(("schema_fn", "valid", "invalid"), SCHEMAS)
def test_schema_agrees_with_parser(
    validator_cls: Any, schema_fn: Any, valid: list[Any], invalid: list[Any],
) -> None:
    schema = schema_fn()
    validator_cls.check_schema(schema)
    validator = validator_cls(schema)
    for body in valid:
        assert validator.is_valid(body), body
    for body, path, _ in invalid:
        assert not validator.is_valid(body), (path, body)


@pytest.mark.parametrize("schema_fn", [fn for fn, _, _ in SCHEMAS])
def test_schema_is_self_contained_json(schema_fn: Any) -> None:
    schema = schema_fn()
    text = json.dumps(schema)
    assert "$ref" not in text
    assert "$defs" not in text
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    schema["properties"].clear()  # a fresh copy each call: callers may mutate it
    assert schema_fn()["properties"]


def test_handler_schema_describes_fields() -> None:
    schema = handler_body_schema()
    description = schema["properties"]["description"]
    assert description["maxLength"] == 128
    policies = schema["properties"]["policies"]["anyOf"][0]
    detect_face = policies["properties"]["detect_policy"]["properties"]["detect_face"]
    assert detect_face == {"default": 1, "maximum": 1, "minimum": 0, "type": "integer"}
    assert policies["properties"]["match_policy"]["maxItems"] == MAX_POLICY_LIST_LENGTH


@pytest.mark.parametrize("parse", [parse_handler_body, parse_verifier_body])
def test_nul_in_description_is_refused_by_the_parser(parse: Any) -> None:
    # PostgreSQL text cannot store NUL: every caller of the parsers gets the check.
    with pytest.raises(BadInputJson) as info:
        parse({"description": "a\x00b", "policies": {}})
    check_error(info.value, "description", "String should not contain NUL characters")

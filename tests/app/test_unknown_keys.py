"""The unknown-key walk that runs before pydantic: same path as pydantic's, first one only."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from luna_handlers.app.policies import parse_handler_body
from luna_handlers.app.policy_models import HandlerBody, VerifierBody
from luna_handlers.app.unknown_keys import first_unknown_key
from luna_handlers.errors import BadInputJson

CASES: list[tuple[type[BaseModel], dict[str, Any], str | None]] = [
    (HandlerBody, {"policies": {}}, None),
    (HandlerBody, {"bad": 1}, "bad"),
    (HandlerBody, {"policies": {"bad": 1}}, "policies.bad"),
    (HandlerBody, {"policies": {"detect_policy": {"detect_face": 1, "bad": 1}}},
     "policies.detect_policy.bad"),
    (HandlerBody, {"policies": {"match_policy": [{"candidates": {"origin": "faces"}},
                                                  {"candidates": {"origin": "faces"}, "bad": 1}]}},
     "policies.match_policy[1].bad"),
    (HandlerBody, {"policies": {"storage_policy": {"face_policy": {"bad": 1}}}},
     "policies.storage_policy.face_policy.bad"),
    (HandlerBody, {"policies": {"conditional_tags_policy": [{"tag": "t",
                                                             "filters": {"bad": 1}}]}},
     "policies.conditional_tags_policy[0].filters.bad"),
    (VerifierBody, {"policies": {"storage_policy": {"attribute_policy": {"bad": 1}}}},
     "policies.storage_policy.attribute_policy.bad"),
    # values of the wrong shape are left to pydantic
    (HandlerBody, {"policies": {"match_policy": "not a list"}}, None),
    (HandlerBody, {"policies": {"detect_policy": [1, 2]}}, None),
]


def _pydantic_first_path(model: type[BaseModel], data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    path = ""
    for part in caught.value.errors()[0]["loc"]:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


@pytest.mark.parametrize(("model", "data", "expected"), CASES)
def test_first_unknown_key(model: type[BaseModel], data: dict[str, Any],
                           expected: str | None) -> None:
    assert first_unknown_key(model, data) == expected
    if expected is not None:  # the very path pydantic itself reports first
        assert _pydantic_first_path(model, data) == expected


def test_fifty_thousand_unknown_keys_are_one_error_about_the_first() -> None:
    body = {"policies": {f"key{i:05d}": 1 for i in range(50_000)}}
    with pytest.raises(BadInputJson) as caught:
        parse_handler_body(body)
    assert caught.value.path == "policies.key00000"
    assert caught.value.message == "Extra inputs are not permitted"


def test_lists_are_walked_only_as_far_as_a_model_accepts() -> None:
    items = [{"candidates": {"origin": "faces"}}] * 100 + [{"bad": 1}]
    assert first_unknown_key(HandlerBody, {"policies": {"match_policy": items}}) is None

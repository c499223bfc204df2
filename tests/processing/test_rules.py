"""The pure rules of processing: capability checks, time filters, match filters."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from luna_handlers.errors import BadInputJson, EstimationNotAvailable
from luna_handlers.processing import check_supported
from luna_handlers.processing.filters import passes
from luna_handlers.processing.times import resolve_time

NOW = datetime(2026, 6, 1, 12, 0, 0)
LIST = "5a8f1e2c-1d2b-4c3d-8e4f-123456789abc"


def _match(**candidates: Any) -> dict[str, Any]:
    return {"match_policy": [{"candidates": candidates}]}


def _storage(name: str, filters: dict[str, Any]) -> dict[str, Any]:
    return {"storage_policy": {name: {"filters": filters}}}


REFUSED_ESTIMATIONS = [
    ({"detect_policy": {"estimate_mask": 1}}, "detect_policy.estimate_mask"),
    ({"detect_policy": {"yaw_threshold": 0}}, "detect_policy.yaw_threshold"),
    ({"extract_policy": {"extract_basic_attributes": 1}},
     "extract_policy.extract_basic_attributes"),
    ({"match_policy": [{"candidates": {"origin": "faces"}, "filters": {"age__gte": 18}}]},
     "match_policy[0].filters.age__gte"),
    ({"conditional_tags_policy": [{"tag": "t", "filters": {"gender": 1}}]},
     "conditional_tags_policy[0].filters.gender"),
    (_storage("event_policy", {"liveness": [1]}), "storage_policy.event_policy.filters.liveness"),
    (_storage("face_sample_policy", {"age__lt": 30}),
     "storage_policy.face_sample_policy.filters.age__lt"),
    ({"storage_policy": {"face_policy": {"link_to_lists_policy": [
        {"list_id": LIST, "filters": {"gender": 0}}]}}},
     "storage_policy.face_policy.link_to_lists_policy[0].filters.gender"),
]


@pytest.mark.parametrize(("policies", "flag"), REFUSED_ESTIMATIONS)
def test_what_the_engine_cannot_estimate_is_refused_by_name(policies: dict[str, Any],
                                                            flag: str) -> None:
    with pytest.raises(EstimationNotAvailable) as caught:
        check_supported(policies)
    assert caught.value.flag == flag
    assert flag in caught.value.detail


REFUSED_CANDIDATES = [
    (_match(origin="attributes"), "policies.match_policy[0].candidates.origin"),
    (_match(origin="faces", event_ids=[LIST]), "policies.match_policy[0].candidates.event_ids"),
    (_match(origin="faces", handler_ids=[LIST]),
     "policies.match_policy[0].candidates.handler_ids"),
    (_match(origin="events", list_id=LIST), "policies.match_policy[0].candidates.list_id"),
    (_match(origin="events", user_data="x"), "policies.match_policy[0].candidates.user_data"),
    (_match(origin="events", end_time__lt="now-1h"),
     "policies.match_policy[0].candidates.end_time__lt"),
]


@pytest.mark.parametrize(("policies", "path"), REFUSED_CANDIDATES)
def test_candidate_filters_the_stores_cannot_apply_are_refused(policies: dict[str, Any],
                                                               path: str) -> None:
    with pytest.raises(BadInputJson) as caught:
        check_supported(policies)
    assert caught.value.path == path


ACCEPTED = [
    {},
    {"detect_policy": {"multiface_policy": 0, "yaw_threshold": None}},
    _match(origin="faces", list_id=LIST, face_ids=[LIST], create_time__gte="now-3h",
           account_id=LIST),
    _match(origin="events", handler_ids=[LIST], create_time__lt="2026-01-01T00:00:00Z"),
    {"conditional_tags_policy": [{"tag": "known", "filters": {"match": [
        {"label": "staff", "similarity__gte": 0.9}]}}]},
    _storage("attribute_policy", {"match": [{"label": "x"}]}),
]


@pytest.mark.parametrize("policies", ACCEPTED)
def test_supported_policies_pass(policies: dict[str, Any]) -> None:
    check_supported(policies)


TIMES = [
    (None, None),
    ("now-3h", NOW - timedelta(hours=3)),
    ("now-90s", NOW - timedelta(seconds=90)),
    ("now-2m", NOW - timedelta(minutes=2)),
    ("now-1d", NOW - timedelta(days=1)),
    ("now-1w", NOW - timedelta(days=7)),
    ("now-1M", NOW - timedelta(days=30)),
    ("now-1y", NOW - timedelta(days=365)),
    ("now-999999999y", datetime.min),
    ("2026-01-31T10:00:00Z", datetime(2026, 1, 31, 10)),
    ("2026-01-31T13:00:00.5+03:00", datetime(2026, 1, 31, 10, 0, 0, 500000)),
]


@pytest.mark.parametrize(("text", "expected"), TIMES)
def test_time_filters(text: str | None, expected: datetime | None) -> None:
    assert resolve_time(text, NOW) == expected


SIMILARITIES = {"staff": [0.95, 0.6], "guests": []}
FILTERS: list[tuple[dict[str, Any] | None, bool]] = [
    (None, True),
    ({}, True),
    ({"match": None}, True),
    ({"match": [{"label": "staff"}]}, True),
    ({"match": [{"label": "staff", "similarity__gte": 0.9}]}, True),
    ({"match": [{"label": "staff", "similarity__gte": 0.96}]}, False),
    ({"match": [{"label": "staff", "similarity__lt": 0.6}]}, False),
    ({"match": [{"label": "staff", "similarity__gte": 0.5, "similarity__lt": 0.7}]}, True),
    ({"match": [{"label": "guests"}]}, False),
    ({"match": [{"label": "unknown"}]}, False),
    ({"match": [{"label": "staff"}, {"label": "guests"}]}, False),
]


@pytest.mark.parametrize(("filters", "expected"), FILTERS)
def test_match_filters(filters: dict[str, Any] | None, expected: bool) -> None:
    assert passes(filters, SIMILARITIES) is expected

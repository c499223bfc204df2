"""What a handler's or verifier's policies may ask for, checked before anything runs.

The schema (``app/policy_models.py``) says what a policy may *say*; this module says what the
service can *do*. A policy asking for something the built-in engine cannot estimate is
refused with :class:`~luna_handlers.errors.EstimationNotAvailable` naming the flag, at the
moment it is written (POST/PUT of handlers and verifiers, the validator) and when a dynamic
handler's policies arrive with the images. Besides the engine's own list
(:data:`~luna_handlers.engine.UNAVAILABLE_ESTIMATIONS`), every ``filters`` object that filters
on age, gender or liveness asks for that estimation too, and match candidates of origin
``attributes`` need LUNA's temporary-attribute store, which this service does not have;
candidate filters that the stores cannot apply (not in :data:`ORIGIN_FILTERS`: ``event_ids``,
``user_data``, ``end_time__*``...) are refused rather than ignored, as an ignored filter would
widen the match.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, TypeGuard

from luna_handlers.engine import check_estimations
from luna_handlers.errors import BadInputJson, EstimationNotAvailable

#: Filter key -> the estimation it needs.
FILTER_ESTIMATIONS: Mapping[str, str] = {
    "age__gte": "age",
    "age__lt": "age",
    "gender": "gender",
    "liveness": "liveness",
}
#: Candidate filters of each origin; the others are refused (e.g. ``list_id`` for events).
ORIGIN_FILTERS: Mapping[str, frozenset[str]] = {
    "faces": frozenset({"list_id", "face_ids", "create_time__gte", "create_time__lt"}),
    "events": frozenset({"handler_ids", "create_time__gte", "create_time__lt"}),
}
_STORAGE_POLICIES = ("face_sample_policy", "body_sample_policy", "image_origin_policy",
                     "attribute_policy", "face_policy", "event_policy", "notification_policy")


def _is_mapping(value: object) -> TypeGuard[Mapping[str, Any]]:
    # type() first: a dict (what JSON gives) skips the slower ABC check; this runs on
    # every write of a handler or verifier.
    return type(value) is dict or isinstance(value, Mapping)


def _items(policies: Mapping[str, Any], key: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    value = policies.get(key)
    if isinstance(value, list):
        for index, item in enumerate(value):
            if _is_mapping(item):
                yield f"{key}[{index}]", item


def _filters(policies: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(path, item holding ``filters``) for every filtered item of the policies."""
    yield from _items(policies, "match_policy")
    yield from _items(policies, "conditional_tags_policy")
    storage = policies.get("storage_policy")
    if not _is_mapping(storage):
        return
    for name in _STORAGE_POLICIES:
        policy = storage.get(name)
        if _is_mapping(policy):
            yield f"storage_policy.{name}", policy
            if name == "face_policy":
                for path, link in _items(policy, "link_to_lists_policy"):
                    yield f"storage_policy.face_policy.{path}", link


def check_supported(policies: Mapping[str, Any]) -> None:
    """Raise for the first thing ``policies`` (as sent or normalised) asks that cannot be done.

    ``EstimationNotAvailable`` (35004) names the flag or filter; an ``attributes`` match origin
    is ``BadInputJson`` (12022) at its path.
    """
    check_estimations(policies)
    for path, item in _filters(policies):
        filters = item.get("filters")
        if _is_mapping(filters):
            for key, what in FILTER_ESTIMATIONS.items():
                if filters.get(key) is not None:
                    raise EstimationNotAvailable(f"{path}.filters.{key}", what)
    for path, item in _items(policies, "match_policy"):
        candidates = item.get("candidates")
        if _is_mapping(candidates):
            _check_candidates(f"policies.{path}.candidates", candidates)


def _check_candidates(path: str, candidates: Mapping[str, Any]) -> None:
    origin = candidates.get("origin")
    allowed = ORIGIN_FILTERS.get(str(origin))
    if allowed is None:
        raise BadInputJson(f"{path}.origin", f"origin {origin!r} is not supported: there is "
                           "no attribute store, match 'faces' or 'events'")
    for key, value in candidates.items():
        if value is not None and key not in allowed | {"origin", "account_id"}:
            raise BadInputJson(f"{path}.{key}",
                               f"filter {key!r} is not supported for origin {origin!r}")

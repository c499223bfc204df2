"""OpenAPI pieces of the processing routes: image request bodies and the answers' schemas."""

from __future__ import annotations

from typing import Any

from luna_handlers.app.openapi_schemas import JSON
from luna_handlers.engine import UNAVAILABLE_ESTIMATIONS
from luna_handlers.processing.checks import FILTER_ESTIMATIONS, ORIGIN_FILTERS

_IMAGE = {"type": "string", "contentMediaType": "image/*",
          "description": "JPEG, PNG, BMP, TIFF or WebP (recognised by content)"}
_OBJECT: dict[str, Any] = {"type": "object"}


def images_body(*, policies: bool) -> dict[str, Any]:
    """``requestBody.content`` of a route taking images (and, for events, policies)."""
    parts: dict[str, Any] = {"image": {"type": "array", "items": _IMAGE, "minItems": 1}}
    if policies:
        parts["policies"] = {"$ref": "#/components/schemas/HandlerPolicies",
                             "description": "policies of a dynamic handler (JSON)"}
    item = {"type": "object", "additionalProperties": False, "required": ["image"],
            "properties": {"image": {"type": "string", "contentEncoding": "base64",
                                     "description": "the image file, base64"},
                           "mimetype": {"type": "string", "pattern": "^image/"},
                           "filename": {"type": "string"}}}
    fields: dict[str, Any] = {"images": {"type": "array", "items": item, "minItems": 1}}
    if policies:
        fields["policies"] = parts["policies"]
    return {"image/*": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {"schema": {"type": "object", "properties": parts,
                                               "required": ["image"]}},
            JSON: {"schema": {"type": "object", "properties": fields, "required": ["images"],
                              "additionalProperties": False}}}


def raw_body() -> dict[str, Any]:
    """``requestBody.content`` of POST /1/verifiers/{id}/raw."""
    item = {"type": "object", "properties": {
        "type": {"enum": ["face", "event", "descriptor"]}, "id": {"type": "string"},
        "data": {"type": "string", "contentEncoding": "base64"},
        "descriptor_version": {"type": "integer"}}, "required": ["type"]}
    items = {"type": "array", "items": item, "minItems": 1, "maxItems": 1000}
    return {JSON: {"schema": {"type": "object", "properties": {
        "references": items, "candidates": items}, "required": ["references", "candidates"]}}}


def _array_of(key: str) -> dict[str, Any]:
    return {"type": "object", "properties": {key: {"type": "array", "items": _OBJECT}},
            "required": [key]}


def processing_schemas() -> dict[str, Any]:
    """Component schemas of the processing answers (shapes: README, "Processing")."""
    return {
        "CreatedEvents": _array_of("events"),
        "Verifications": _array_of("images"),
        "RawMatches": _array_of("matches"),
        "FaceCreated": {"type": "object", "properties": {
            "face_id": {"type": "string", "format": "uuid"}, "url": {"type": "string"}},
            "required": ["face_id", "url"]},
    }


# --- what the engine can do, in the published policy schemas ---------------------------------

_NULL: dict[str, Any] = {"type": "null", "default": None}


def _not_asking(schema: dict[str, Any], path: str, what: str) -> dict[str, Any]:
    """The schema of a policy value that does not ask for ``what`` (see ``_asks`` in
    ``engine/estimations.py``): a flag is 0, a threshold null, a list null or empty."""
    note = f"not available: the engine cannot estimate {what} (35004)"
    if path.endswith("_threshold"):
        return {**_NULL, "description": note}
    if schema.get("type") == "integer":
        return {"const": 0, "default": 0, "description": note}
    return {"anyOf": [{"type": "null"}, {"type": "array", "maxItems": 0}], "default": None,
            "description": note}


def _node(schema: dict[str, Any], path: str) -> tuple[dict[str, Any], str] | None:
    *parents, name = path.split(".")
    node = schema
    for part in parents:
        node = node.get("properties", {}).get(part, {})
    properties = node.get("properties")
    return (properties, name) if properties and name in properties else None


def _restrict_filters(node: Any) -> None:
    """Every ``filters`` object: age, gender and liveness only null (nothing estimates them)."""
    if isinstance(node, list):
        for item in node:
            _restrict_filters(item)
        return
    if not isinstance(node, dict):
        return
    properties = node.get("properties")
    if isinstance(properties, dict) and "liveness" in properties and "match" in properties:
        for key, what in FILTER_ESTIMATIONS.items():
            properties[key] = {**_NULL, "description": f"not available: no {what} (35004)"}
    if isinstance(properties, dict) and "origin" in properties and "handler_ids" in properties:
        node.clear()
        node.update(_candidates(properties))
        return
    for value in node.values():
        _restrict_filters(value)


def _candidates(properties: dict[str, Any]) -> dict[str, Any]:
    """``candidates``: one object per supported origin, its other filters only null."""
    variants = []
    for origin, allowed in ORIGIN_FILTERS.items():
        variant = {key: value if key in allowed | {"account_id"} else _NULL
                   for key, value in properties.items() if key != "origin"}
        variants.append({"type": "object", "additionalProperties": False,
                         "properties": {"origin": {"const": origin}, **variant},
                         "required": ["origin"]})
    return {"oneOf": variants, "description": "match candidates: origin 'faces' or 'events'"}


def restrict_to_engine(schemas: dict[str, Any]) -> dict[str, Any]:
    """``HandlerPolicies`` and ``VerifierPolicies`` as this service accepts them: what the
    engine cannot estimate and candidate filters the stores cannot apply are refused by
    :func:`luna_handlers.processing.check_supported`, so the document says so."""
    for name in ("HandlerPolicies", "VerifierPolicies"):
        policies = schemas[name]
        for path, what in UNAVAILABLE_ESTIMATIONS.items():
            found = _node(policies, path)
            if found is not None:
                properties, key = found
                properties[key] = _not_asking(properties[key], path, what)
        _restrict_filters(policies)
    return schemas

"""OpenAPI pieces of the processing routes: image request bodies and the answers' schemas."""

from __future__ import annotations

from typing import Any

from luna_handlers.app.openapi_schemas import JSON

_IMAGE = {"type": "string", "contentMediaType": "image/*",
          "description": "JPEG, PNG, BMP, TIFF or WebP (recognised by content)"}
_OBJECT: dict[str, Any] = {"type": "object"}


def images_body(*, policies: bool) -> dict[str, Any]:
    """``requestBody.content`` of a route taking images (and, for events, policies)."""
    parts: dict[str, Any] = {"image": {"type": "array", "items": _IMAGE, "minItems": 1}}
    if policies:
        parts["policies"] = {"type": "object",
                             "description": "policies of a dynamic handler (JSON)"}
    return {"image/*": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {"schema": {"type": "object", "properties": parts,
                                               "required": ["image"]}}}


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
        "Events": _array_of("events"),
        "Verifications": _array_of("images"),
        "RawMatches": _array_of("matches"),
        "FaceCreated": {"type": "object", "properties": {
            "face_id": {"type": "string", "format": "uuid"}, "url": {"type": "string"}},
            "required": ["face_id", "url"]},
    }

"""``POST /1/verifiers/{id}/raw``: references against candidates, descriptors only.

Each item is ``{"type": "face" | "event", "id": uuid}`` (a stored object of the account) or
``{"type": "descriptor", "data": base64 of the engine's 128 float32 (little-endian),
"descriptor_version": 1, "id"?: any label}``. Every reference is compared with every
candidate; ``status`` is ``similarity >= verification_threshold``.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Mapping
from typing import Any

import numpy as np

from luna_handlers.db import DBContext
from luna_handlers.engine import DESCRIPTOR_SIZE, DESCRIPTOR_VERSION
from luna_handlers.errors import BadInputJson
from luna_handlers.processing.verification import Vector, candidates_of, similarity, vector_of

MAX_ITEMS = 1000


def _descriptor(path: str, item: Mapping[str, Any]) -> Vector:
    if item.get("descriptor_version") != DESCRIPTOR_VERSION:
        raise BadInputJson(f"{path}.descriptor_version",
                           f"must be {DESCRIPTOR_VERSION}, the engine's descriptor version")
    data = item.get("data")
    try:
        raw = base64.b64decode(data, validate=True) if isinstance(data, str) else b""
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != DESCRIPTOR_SIZE * 4:
        raise BadInputJson(f"{path}.data",
                           f"must be base64 of {DESCRIPTOR_SIZE} little-endian float32")
    vector = vector_of(raw)
    norm = float(np.linalg.norm(vector))
    if not np.isfinite(vector).all() or norm == 0.0:
        raise BadInputJson(f"{path}.data", "must be a finite, non-zero descriptor")
    return (vector / np.float32(norm)).astype(np.float32)


def _uuid(value: object) -> str:
    """``value`` as a canonical UUID, or "" when it is not one."""
    try:
        return str(uuid.UUID(value)) if isinstance(value, str) and len(value) == 36 else ""
    except ValueError:
        return ""


async def _resolve(db: DBContext, account_id: str, name: str,
                   items: object) -> list[tuple[Any, Vector]]:
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_ITEMS:
        raise BadInputJson(name, f"must be a list of 1..{MAX_ITEMS} items")
    stored: dict[str, list[str]] = {"face": [], "event": []}
    for index, item in enumerate(items):
        path = f"{name}[{index}]"
        if not isinstance(item, dict) or item.get("type") not in ("face", "event", "descriptor"):
            raise BadInputJson(f"{path}.type", "must be 'face', 'event' or 'descriptor'")
        if item["type"] != "descriptor":
            object_id = _uuid(item.get("id"))
            if not object_id:
                raise BadInputJson(f"{path}.id", "must be a face or event id (a UUID)")
            stored[item["type"]].append(object_id)
    found = await candidates_of(db, account_id, stored["face"], stored["event"])
    by_id = {(c.kind, c.object_id): c.vector for c in found}
    result = []
    for index, item in enumerate(items):
        if item["type"] == "descriptor":
            result.append((item.get("id"), _descriptor(f"{name}[{index}]", item)))
        else:
            object_id = _uuid(item["id"])
            result.append((object_id, by_id[item["type"], object_id]))
    return result


async def raw_matches(db: DBContext, account_id: str, body: object,
                      threshold: float) -> list[dict[str, Any]]:
    """The ``matches`` of a raw verification body."""
    if not isinstance(body, dict):
        raise BadInputJson("", "must be an object")
    references = await _resolve(db, account_id, "references", body.get("references"))
    candidates = await _resolve(db, account_id, "candidates", body.get("candidates"))
    answer = []
    for reference_id, reference in references:
        answer.append({"reference_id": reference_id, "matches": [
            {"candidate_id": candidate_id, "similarity": value, "status": value >= threshold}
            for candidate_id, candidate in candidates
            for value in (similarity(reference, candidate),)]})
    return answer



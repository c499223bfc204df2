"""``match_policy``: each new descriptor against the candidates of each item.

Candidates are always the request's account (``candidates.account_id`` naming another account
selects nothing: matching never sees another account). ``origin`` ``faces`` takes
``list_id``, ``face_ids``, ``create_time__gte/__lt``; ``events`` takes ``handler_ids`` and
the create times (absolute or ``now-3h``). The database returns the exact top ``limit`` by
cosine; cosines become LUNA similarities with the engine's monotone mapping and those under
``threshold`` are dropped, so a group is best first, at most ``limit`` long. The other
candidate keys are refused before anything runs (:mod:`.checks`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from luna_handlers.db import DBContext, EventMatchFilters, FaceMatchFilters
from luna_handlers.engine import DESCRIPTOR_VERSION, similarity_of
from luna_handlers.processing.filters import Similarities
from luna_handlers.processing.times import resolve_time


@dataclass(frozen=True)
class MatchGroup:
    """The candidates of one ``match_policy`` item, best first: JSON-ready dicts
    ``{"face": {...}, "similarity"}`` or ``{"event": {...}, "similarity"}``."""

    label: str
    candidates: list[dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        """The reference's match shape."""
        return {"label": self.label, "candidates": self.candidates}


async def _candidates(db: DBContext, account_id: str, descriptor: bytes,
                      item: Mapping[str, Any], now: datetime) -> list[dict[str, Any]]:
    candidates = item["candidates"]
    if candidates.get("account_id") not in (None, account_id):
        return []
    gte = resolve_time(candidates.get("create_time__gte"), now)
    lt = resolve_time(candidates.get("create_time__lt"), now)
    limit = item["limit"]
    if candidates["origin"] == "faces":
        faces = await db.matchFaces(account_id, descriptor, FaceMatchFilters(
            list_id=candidates.get("list_id"), face_ids=candidates.get("face_ids"),
            create_time__gte=gte, create_time__lt=lt), limit, DESCRIPTOR_VERSION)
        return [{"face": {"face_id": found.face_id, "external_id": found.external_id},
                 "similarity": similarity_of(found.cosine)} for found in faces]
    events = await db.matchEvents(account_id, descriptor, EventMatchFilters(
        handler_ids=candidates.get("handler_ids"), create_time__gte=gte,
        create_time__lt=lt), limit, DESCRIPTOR_VERSION)
    return [{"event": {"event_id": found.event_id, "face_id": found.face_id},
             "similarity": similarity_of(found.cosine)} for found in events]


async def match_descriptor(db: DBContext, account_id: str, descriptor: bytes,
                           policies: Sequence[Mapping[str, Any]],
                           now: datetime) -> list[MatchGroup]:
    """One group per ``match_policy`` item (in their order)."""
    groups = []
    for item in policies:
        found = await _candidates(db, account_id, descriptor, item, now)
        threshold = item["threshold"]
        kept = [c for c in found if threshold is None or c["similarity"] >= threshold]
        groups.append(MatchGroup(item["label"], kept))
    return groups


def similarities(groups: Sequence[MatchGroup]) -> Similarities:
    """label -> similarities, for the ``match`` filters."""
    by_label: dict[str, list[float]] = {}
    for group in groups:
        by_label.setdefault(group.label, []).extend(c["similarity"] for c in group.candidates)
    return by_label


def top_match(groups: Sequence[MatchGroup]) -> dict[str, Any] | None:
    """LUNA's ``top_match``: the best candidate over every group, with its label."""
    best: tuple[float, str, dict[str, Any]] | None = None
    for group in groups:
        for candidate in group.candidates:
            if best is None or candidate["similarity"] > best[0]:
                best = (candidate["similarity"], group.label, candidate)
    if best is None:
        return None
    similarity, label, candidate = best
    ids = candidate.get("face") or candidate["event"]
    return {**ids, "label": label, "similarity": similarity}

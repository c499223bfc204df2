"""Matching: exact top-k by cosine over the candidates the filters select, and stored
descriptors by id (for verification).

Portable by construction: SQL selects the candidates' descriptors of the probe's version in
the account (nothing but the filters' indexes is needed, on PostgreSQL or Oracle, no
extension); the scoring is one matrix product and a partial sort in numpy, in a worker
thread, never on the event loop. Descriptors are L2-normalised, so the dot product is the
cosine. ``bench/engine/matching.py`` measures it against a real database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa

from luna_handlers.db.listing import StatementsByShape, any_of
from luna_handlers.db.prepared import Prepared, Row
from luna_handlers.db.store_records import (
    DescriptorLookup,
    EventMatch,
    EventMatchFilters,
    FaceMatch,
    FaceMatchFilters,
    StoredDescriptor,
)
from luna_handlers.db.stores.common import Store
from luna_handlers.db.stores.events import EVENT, utc_naive
from luna_handlers.db.stores.faces import FACE, LIST_FACE

Vectors = npt.NDArray[np.float32]


def _clause(table: sa.Table, name: str, dialect: str) -> sa.ColumnElement[bool]:
    if name == "create_time__gte":
        return table.c.create_time >= sa.bindparam(name)
    if name == "create_time__lt":
        return table.c.create_time < sa.bindparam(name)
    if name == "face_ids":
        return any_of(table.c.face_id, name, dialect)
    if name == "handler_ids":
        return any_of(table.c.handler_id, name, dialect)
    return table.c[name] == sa.bindparam(name)  # account_id, descriptor_version


def _candidates(table: sa.Table, shape: tuple[str, ...]) -> Prepared:
    def build(dialect: str) -> Any:
        other = table.c.external_id if table is FACE else table.c.face_id
        select = sa.select(table.c[f"{table.name}_id"], other, table.c.descriptor)
        if "list_id" in shape:
            select = select.join(LIST_FACE, sa.and_(
                LIST_FACE.c.face_id == FACE.c.face_id,
                LIST_FACE.c.list_id == sa.bindparam("list_id")))
        return select.where(*(_clause(table, name, dialect) for name in shape
                              if name != "list_id"))
    return Prepared(build)


CANDIDATES = StatementsByShape(_candidates)


def _descriptors(table: sa.Table, _shape: tuple[str, ...]) -> Prepared:
    return Prepared(lambda dialect: sa.select(
        table.c[f"{table.name}_id"].label("object_id"), table.c.descriptor,
        table.c.descriptor_version).where(
            any_of(table.c[f"{table.name}_id"], "ids", dialect),
            table.c.account_id == sa.bindparam("account_id")))


DESCRIPTORS = StatementsByShape(_descriptors)


def top_k(matrix: Vectors, probe: Vectors, k: int) -> list[tuple[int, float]]:
    """(row, cosine) of the ``k`` rows most similar to ``probe``, best first."""
    if k <= 0 or not len(matrix):
        return []
    scores = matrix @ probe
    best = np.argpartition(scores, -k)[-k:] if k < len(scores) else np.arange(len(scores))
    best = best[np.lexsort((best, -scores[best]))]  # ties: the earlier row first
    return [(int(row), float(scores[row])) for row in best]


def _score(rows: Sequence[Row], descriptor: bytes, limit: int
           ) -> list[tuple[Row, float]]:
    probe = np.frombuffer(descriptor, dtype="<f4")
    size = len(descriptor)
    usable = [row for row in rows if row["descriptor"] is not None
              and len(row["descriptor"]) == size]
    matrix = np.frombuffer(b"".join(row["descriptor"] for row in usable),
                           dtype="<f4").reshape(len(usable), probe.size)
    return [(usable[row], cosine) for row, cosine in top_k(matrix, probe, limit)]


def _params(account_id: str, version: int, **filters: Any) -> dict[str, Any]:
    params = {"account_id": account_id, "descriptor_version": version}
    for name, value in filters.items():
        if value is not None:
            params[name] = list(value) if name.endswith("_ids") else (
                utc_naive(value) if name.startswith("create_time") else value)
    return params


class MatchStore(Store):
    """Top-k matching and descriptor lookups, always within one account."""

    async def matchFaces(self, accountId: str, descriptor: bytes,
                         filters: FaceMatchFilters, limit: int,
                         descriptorVersion: int) -> list[FaceMatch]:
        """The ``limit`` faces of the account most similar to ``descriptor`` (float32,
        L2-normalised, of ``descriptorVersion``) among those the filters select, best first."""
        params = _params(accountId, descriptorVersion, list_id=filters.list_id,
                         face_ids=filters.face_ids,
                         create_time__gte=filters.create_time__gte,
                         create_time__lt=filters.create_time__lt)
        rows = await self._read(CANDIDATES(FACE, tuple(params)), params)
        scored = await asyncio.to_thread(_score, rows, descriptor, limit)
        return [FaceMatch(row["face_id"], row["external_id"], cosine) for row, cosine in scored]

    async def matchEvents(self, accountId: str, descriptor: bytes,
                          filters: EventMatchFilters, limit: int,
                          descriptorVersion: int) -> list[EventMatch]:
        """The ``limit`` events of the account most similar to ``descriptor`` among those
        the filters select (events stored without a descriptor are no candidates)."""
        params = _params(accountId, descriptorVersion, handler_ids=filters.handler_ids,
                         create_time__gte=filters.create_time__gte,
                         create_time__lt=filters.create_time__lt)
        rows = await self._read(CANDIDATES(EVENT, tuple(params)), params)
        scored = await asyncio.to_thread(_score, rows, descriptor, limit)
        return [EventMatch(row["event_id"], row["face_id"], cosine) for row, cosine in scored]

    async def getFaceDescriptors(self, accountId: str, faceIds: Sequence[str]
                                 ) -> DescriptorLookup:
        """The stored descriptors of these faces of the account (see DescriptorLookup)."""
        return await self._lookup(FACE, accountId, faceIds)

    async def getEventDescriptors(self, accountId: str, eventIds: Sequence[str]
                                  ) -> DescriptorLookup:
        """The stored descriptors of these events of the account."""
        return await self._lookup(EVENT, accountId, eventIds)

    async def _lookup(self, table: sa.Table, account_id: str, ids: Sequence[str]
                      ) -> DescriptorLookup:
        wanted = list(dict.fromkeys(ids))
        rows = [] if not wanted else await self._read(
            DESCRIPTORS(table, ()), {"ids": wanted, "account_id": account_id})
        found = {row["object_id"]: StoredDescriptor(bytes(row["descriptor"]),
                                                    row["descriptor_version"])
                 for row in rows if row["descriptor"] is not None}
        return DescriptorLookup(found, tuple(i for i in wanted if i not in found))

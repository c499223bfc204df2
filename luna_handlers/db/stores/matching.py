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
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from luna_handlers.db.match_index import MatchIndex

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


#: Twice the largest gap between BLAS's float32 cosine and the exact one (128 products of
#: unit vectors: under 1e-5): candidates within it of the k-th best are scored exactly.
SLACK = 1e-4


def top_k(matrix: Vectors, probe: Vectors, k: int, keys: Sequence[str] | None = None
          ) -> list[tuple[int, float]]:
    """(row, cosine) of the ``k`` rows most similar to ``probe``, best first; equal cosines
    in the order of ``keys`` (the rows' ids), or of the rows without them.

    BLAS's matrix product sums in an order that depends on where a row sits (two copies of
    one descriptor may differ in the last bit), so it only picks the candidates: every row
    within :data:`SLACK` of the k-th best. Their cosines are summed again in float64 the
    same way wherever the row is, so the same rows give the same answer in any layout (the
    SQL path's row order or the matching index's).
    """
    size = len(matrix)
    if k <= 0 or not size:
        return []
    scores = matrix @ probe
    if k < size:
        kth = np.partition(scores, size - k)[size - k]
        rows = np.flatnonzero(scores >= kth - SLACK)
    else:
        rows = np.arange(size)
    exact = (matrix[rows].astype(np.float64) * probe.astype(np.float64)).sum(axis=1)
    tie: Sequence[Any] = range(size) if keys is None else keys
    order = sorted(range(len(rows)), key=lambda i: (-exact[i], tie[int(rows[i])]))[:k]
    return [(int(rows[i]), float(exact[i])) for i in order]


def _score(rows: Sequence[Row], descriptor: bytes, limit: int, id_name: str
           ) -> list[tuple[Row, float]]:
    probe = np.frombuffer(descriptor, dtype="<f4")
    size = len(descriptor)
    usable = [row for row in rows if row["descriptor"] is not None
              and len(row["descriptor"]) == size]
    matrix = np.frombuffer(b"".join(row["descriptor"] for row in usable),
                           dtype="<f4").reshape(len(usable), probe.size)
    keys = [row[id_name] for row in usable]
    return [(usable[row], cosine) for row, cosine in top_k(matrix, probe, limit, keys)]


def _params(account_id: str, version: int, **filters: Any) -> dict[str, Any]:
    params = {"account_id": account_id, "descriptor_version": version}
    for name, value in filters.items():
        if value is not None:
            params[name] = list(value) if name.endswith("_ids") else (
                utc_naive(value) if name.startswith("create_time") else value)
    return params


class MatchStore(Store):
    """Top-k matching and descriptor lookups, always within one account. By list alone,
    the in-process index answers on PostgreSQL (:mod:`luna_handlers.db.match_index`)."""

    matchIndex: MatchIndex | None

    async def matchFaces(self, accountId: str, descriptor: bytes,
                         filters: FaceMatchFilters, limit: int,
                         descriptorVersion: int) -> list[FaceMatch]:
        """The ``limit`` faces of the account most similar to ``descriptor`` (float32,
        L2-normalised, of ``descriptorVersion``) among those the filters select, best first."""
        index = self.matchIndex
        if index is not None:
            await index.maybe_prune()
            if filters.list_id is not None and filters.face_ids is None:
                created = (utc_naive(filters.create_time__gte), utc_naive(filters.create_time__lt))
                found = await index.match(accountId, filters.list_id, descriptor,
                                          descriptorVersion, limit, created=created)
                if found is not None:
                    return found
        params = _params(accountId, descriptorVersion, list_id=filters.list_id,
                         face_ids=filters.face_ids,
                         create_time__gte=filters.create_time__gte,
                         create_time__lt=filters.create_time__lt)
        rows = await self._read(CANDIDATES(FACE, tuple(params)), params)
        scored = await asyncio.to_thread(_score, rows, descriptor, limit, "face_id")
        return [FaceMatch(row["face_id"], row["external_id"], cosine) for row, cosine in scored]

    async def matchEvents(self, accountId: str, descriptor: bytes,
                          filters: EventMatchFilters, limit: int,
                          descriptorVersion: int) -> list[EventMatch]:
        """The ``limit`` events of the account most similar to ``descriptor`` among those
        the filters select (events stored without a descriptor are no candidates)."""
        if self.matchIndex is not None:
            await self.matchIndex.maybe_prune()
        params = _params(accountId, descriptorVersion, handler_ids=filters.handler_ids,
                         create_time__gte=filters.create_time__gte,
                         create_time__lt=filters.create_time__lt)
        rows = await self._read(CANDIDATES(EVENT, tuple(params)), params)
        scored = await asyncio.to_thread(_score, rows, descriptor, limit, "event_id")
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

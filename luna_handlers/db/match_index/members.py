"""The descriptors of one list held in memory, and their scoring (no SQL, no event loop).

A contiguous float32 matrix with room to grow, the face id and external id of each row, and
the row of each face. Rows stay dense: a removal moves the last row into the gap, so the
scoring never needs a mask, and ties do not depend on the order of rows (see
:func:`~luna_handlers.db.stores.matching.top_k`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from luna_handlers.db.prepared import Row
from luna_handlers.db.store_records import FaceMatch
from luna_handlers.db.stores.matching import Vectors, top_k

GROWTH = 1.25  # capacity over size when the matrix is (re)allocated
SPARE = 64  # rows of room beyond that, so that small lists do not reallocate per add


def _capacity(size: int) -> int:
    return int(size * GROWTH) + SPARE


class Members:
    """The faces of one list with a descriptor of one version and size."""

    __slots__ = ("external_ids", "face_ids", "matrix", "rows")

    def __init__(self, dim: int, face_ids: list[str], external_ids: list[str | None],
                 vectors: Vectors) -> None:
        self.matrix: Vectors = np.empty((_capacity(len(face_ids)), dim), dtype="<f4")
        self.matrix[:len(face_ids)] = vectors
        self.face_ids = face_ids
        self.external_ids = external_ids
        self.rows = {face_id: row for row, face_id in enumerate(face_ids)}

    @classmethod
    def of_rows(cls, rows: Sequence[Row], nbytes: int) -> Members:
        """From rows of ``face_id``, ``external_id``, ``descriptor``; rows without a face
        (an empty list's one row) or with a descriptor of another size are left out."""
        usable = [row for row in rows if row["face_id"] is not None
                  and row["descriptor"] is not None and len(row["descriptor"]) == nbytes]
        vectors = np.frombuffer(b"".join(row["descriptor"] for row in usable), dtype="<f4")
        dim = nbytes // 4
        return cls(dim, [row["face_id"] for row in usable],
                   [row["external_id"] for row in usable], vectors.reshape(len(usable), dim))

    @property
    def size(self) -> int:
        """How many faces are held."""
        return len(self.face_ids)

    def put(self, face_id: str, external_id: str | None, descriptor: bytes) -> None:
        """The face is a member with this descriptor (added, or its row replaced)."""
        vector = np.frombuffer(descriptor, dtype="<f4")
        row = self.rows.get(face_id)
        if row is None:
            row = self.size
            if row == len(self.matrix):
                grown = np.empty((_capacity(row + 1), self.matrix.shape[1]), dtype="<f4")
                grown[:row] = self.matrix[:row]
                self.matrix = grown
            self.face_ids.append(face_id)
            self.external_ids.append(external_id)
            self.rows[face_id] = row
        else:
            self.external_ids[row] = external_id
        self.matrix[row] = vector

    def remove(self, face_id: str) -> None:
        """The face is no member (any more)."""
        row = self.rows.pop(face_id, None)
        if row is None:
            return
        last = self.size - 1
        if row != last:
            moved = self.face_ids[last]
            self.matrix[row] = self.matrix[last]
            self.face_ids[row] = moved
            self.external_ids[row] = self.external_ids[last]
            self.rows[moved] = row
        self.face_ids.pop()
        self.external_ids.pop()

    def match(self, descriptor: bytes, limit: int) -> list[FaceMatch]:
        """The ``limit`` members most similar to ``descriptor``, best first (CPU: run it in
        a thread, with no change applied meanwhile)."""
        probe = np.frombuffer(descriptor, dtype="<f4")
        face_ids = self.face_ids
        found = top_k(self.matrix[:len(face_ids)], probe, limit, face_ids)
        return [FaceMatch(face_ids[row], self.external_ids[row], cosine)
                for row, cosine in found]

"""The sample store: face sample images (JPEG), stored in the database so that failover
covers them too.

Several samples go in one statement on PostgreSQL: their columns as arrays, expanded by
``unnest`` (:data:`SAMPLE_ROWS`), one shape whatever their number, so one round trip and one
prepared statement. Other dialects insert them one row at a time, in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from luna_handlers.db.database import Session
from luna_handlers.db.prepared import Prepared
from luna_handlers.db.schema.store_models import ID, Sample
from luna_handlers.db.store_records import SampleWrite
from luna_handlers.db.stores.common import SCOPES, Store, by_id, insert_statement, match

SAMPLE: sa.Table = Sample.__table__  # type: ignore[assignment]  # declarative gives a Table

COLUMNS = ("sample_id", "account_id", "kind", "image")
INSERT_SAMPLE = insert_statement(SAMPLE, COLUMNS)


def unbounded(column: sa.Column[Any]) -> Any:
    """The type to cast an array of ``column``'s values to: its own, but a string without
    its length (a cast to ``varchar(n)`` would cut a longer value silently, where the
    insert itself refuses it)."""
    return sa.String() if isinstance(column.type, sa.String) else column.type


def samples_insert() -> sa.Insert:
    """PostgreSQL: an INSERT of every sample bound by :func:`sample_arrays` (the arrays
    ``s_sample_id``, ``s_kind``, ``s_image``; the account ``s_account_id``)."""
    rows = sa.func.unnest(
        *(sa.bindparam(f"s_{column}", type_=ARRAY(unbounded(SAMPLE.c[column])))
          for column in ("sample_id", "kind", "image")),
    ).table_valued("sample_id", "kind", "image").render_derived()
    return sa.insert(SAMPLE).from_select(list(COLUMNS), sa.select(
        rows.c.sample_id, sa.bindparam("s_account_id", type_=ID), rows.c.kind, rows.c.image))


SAMPLE_ROWS = Prepared(lambda _dialect: samples_insert())


def sample_arrays(account_id: str, samples: Sequence[SampleWrite]) -> dict[str, Any]:
    """The bind values of :func:`samples_insert` for ``samples``."""
    return {"s_account_id": account_id, "s_sample_id": [s.sample_id for s in samples],
            "s_kind": [s.kind for s in samples], "s_image": [s.image for s in samples]}


def _get_sample(scoped: bool) -> Prepared:
    return Prepared(lambda _dialect: sa.select(SAMPLE.c.image).where(*match(SAMPLE, scoped)))


GET_SAMPLE = {scoped: _get_sample(scoped) for scoped in SCOPES}


async def insert_samples(session: Session, account_id: str,
                         samples: Sequence[SampleWrite]) -> None:
    """Insert ``samples`` one row at a time on a (transaction's) session (any dialect)."""
    for sample in samples:
        await session.rows(INSERT_SAMPLE, {
            "v_sample_id": sample.sample_id, "v_account_id": account_id,
            "v_kind": sample.kind, "v_image": sample.image})


class SampleStore(Store):
    """Reads and writes of samples."""

    async def storeSamples(self, accountId: str, samples: Sequence[SampleWrite]) -> None:
        """Store ``samples`` (a face_sample_policy without an event): all of them or none.

        ``DatabaseUnavailable`` (nothing stored) or ``DatabaseOutcomeUnknown`` (all or
        nothing, which is not known) on a connection lost meanwhile."""
        if not samples:
            return
        if self.database.dialect_name == "postgresql":
            async with self.database.write() as session:  # one statement: atomic by itself
                await session.rows(SAMPLE_ROWS, sample_arrays(accountId, samples))
            return
        async with self.database.transaction() as session:
            await insert_samples(session, accountId, samples)

    async def getSample(self, sampleId: str, accountId: str | None = None) -> bytes | None:
        """The sample's JPEG bytes, or None when it does not exist (in this account)."""
        rows = await self._read(GET_SAMPLE[accountId is not None], by_id(sampleId, accountId))
        return None if not rows else bytes(rows[0]["image"])

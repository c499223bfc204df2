"""The sample store: face sample images (JPEG), stored in the database so that failover
covers them too."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from luna_handlers.db.database import Session
from luna_handlers.db.prepared import Prepared
from luna_handlers.db.schema.store_models import Sample
from luna_handlers.db.store_records import SampleWrite
from luna_handlers.db.stores.common import SCOPES, Store, by_id, insert_statement, match

SAMPLE: sa.Table = Sample.__table__  # type: ignore[assignment]  # declarative gives a Table

INSERT_SAMPLE = insert_statement(SAMPLE, ("sample_id", "account_id", "kind", "image"))


def _get_sample(scoped: bool) -> Prepared:
    return Prepared(lambda _dialect: sa.select(SAMPLE.c.image).where(*match(SAMPLE, scoped)))


GET_SAMPLE = {scoped: _get_sample(scoped) for scoped in SCOPES}


async def insert_samples(session: Session, account_id: str,
                         samples: Sequence[SampleWrite]) -> None:
    """Insert ``samples`` on a (transaction's) session."""
    for sample in samples:
        await session.rows(INSERT_SAMPLE, {
            "v_sample_id": sample.sample_id, "v_account_id": account_id,
            "v_kind": sample.kind, "v_image": sample.image})


class SampleStore(Store):
    """Reads and writes of samples."""

    async def storeSample(self, accountId: str, sample: SampleWrite) -> str:
        """Store one sample (a face_sample_policy without an event); its id."""
        async with self.database.write() as session:
            await insert_samples(session, accountId, (sample,))
        return sample.sample_id

    async def getSample(self, sampleId: str, accountId: str | None = None) -> bytes | None:
        """The sample's JPEG bytes, or None when it does not exist (in this account)."""
        rows = await self._read(GET_SAMPLE[accountId is not None], by_id(sampleId, accountId))
        return None if not rows else bytes(rows[0]["image"])

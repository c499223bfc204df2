"""storeSamples against a real database (PostgreSQL; Oracle when one is given): a batch of
samples is stored whole or not at all, in its account."""

from __future__ import annotations

import uuid

import pytest

from luna_handlers.db import DBContext, SampleWrite
from luna_handlers.errors import DatabaseFailure


async def test_a_batch_is_stored_in_its_account(db_context: DBContext) -> None:
    account, other = str(uuid.uuid4()), str(uuid.uuid4())
    samples = [SampleWrite("face_warp", bytes([n]) * (n + 1)) for n in range(5)]
    await db_context.storeSamples(account, samples)
    for n, sample in enumerate(samples):
        assert await db_context.getSample(sample.sample_id, account) == bytes([n]) * (n + 1)
        assert await db_context.getSample(sample.sample_id, other) is None
    await db_context.storeSamples(account, [])  # nothing to store: no write at all


async def test_a_batch_is_all_or_nothing(db_context: DBContext) -> None:
    account = str(uuid.uuid4())
    taken = SampleWrite("face_warp", b"first")
    await db_context.storeSamples(account, [taken])
    # The last sample's id is already taken: the rows before it must not stay either.
    batch = [SampleWrite("face_warp", b"a"), SampleWrite("face_crop", b"b"),
             SampleWrite("face_warp", b"again", sample_id=taken.sample_id)]
    with pytest.raises(DatabaseFailure):
        await db_context.storeSamples(account, batch)
    assert [await db_context.getSample(s.sample_id, account) for s in batch[:2]] == [None, None]
    assert await db_context.getSample(taken.sample_id, account) == b"first"

"""The handler counter under concurrent creates and deletes, on real PostgreSQL."""

from __future__ import annotations

import asyncio
import random

from luna_handlers.db.context import DBContext, ListFilters
from luna_handlers.db.pool.hostpool import HostPool
from tests.conftest import run_sql

HOT = "0a1b2c3d-0000-4000-8000-0000000000aa"
COLD = "0a1b2c3d-0000-4000-8000-0000000000bb"
WORKERS = 16
ROUNDS = 60


async def true_counts(pool: HostPool) -> dict[str, int]:
    async with pool.read() as session:
        rows = await run_sql(session, "SELECT account_id, count(*) AS n FROM handler"
                             " GROUP BY account_id")
    return {row["account_id"]: row["n"] for row in rows}


async def test_counts_stay_exact_under_concurrent_creates_and_deletes(
        migrated_pool: HostPool) -> None:
    context = DBContext(migrated_pool)
    async with migrated_pool.write() as session:
        await run_sql(session, "TRUNCATE handler, handler_count")
    created: list[str] = [await context.createHandler({}, HOT) for _ in range(20)]
    deleted = found_gone = 0

    async def worker(seed: int) -> None:
        nonlocal deleted, found_gone
        rng = random.Random(seed)
        for _ in range(ROUNDS):
            if rng.random() < 0.55 or not created:
                account = HOT if rng.random() < 0.8 else COLD
                created.append(await context.createHandler({}, account))
            else:
                # Often an id another worker deletes at the same moment: only one finds it.
                victim = rng.choice(created[-8:])
                if await context.deleteHandler(victim):
                    deleted += 1
                else:
                    found_gone += 1

    await asyncio.gather(*(worker(seed) for seed in range(WORKERS)))
    truth = await true_counts(migrated_pool)
    assert deleted > 0 and found_gone > 0  # both races happened
    assert await context.getHandlersCount(ListFilters(account_id=HOT)) == truth[HOT]
    assert await context.getHandlersCount(ListFilters(account_id=COLD)) == truth.get(COLD, 0)
    assert await context.getHandlersCount(ListFilters()) == sum(truth.values())
    assert sum(truth.values()) == len(created) - deleted
    async with migrated_pool.read() as session:
        stripes = await run_sql(session, "SELECT count(*) AS n FROM handler_count"
                                " WHERE account_id = :a", a=HOT)
    assert stripes[0]["n"] > 1  # the hot account's writes spread over stripes


async def test_counts_by_other_filters_and_unknown_accounts(migrated_pool: HostPool) -> None:
    context = DBContext(migrated_pool)
    account = "0a1b2c3d-0000-4000-8000-0000000000cc"
    await context.createHandler({}, account, description="north gate")
    dynamic = await context.createHandler(None, account, isDynamic=True)
    assert await context.getHandlersCount(ListFilters(account_id=account)) == 2
    assert await context.getHandlersCount(
        ListFilters(account_id=account, description="gate")) == 1
    assert await context.getHandlersCount(ListFilters(account_id=account, is_dynamic=True)) == 1
    assert await context.getHandlersCount(ListFilters(account_id="nobody")) == 0
    # A failed delete (another account's handler) changes no counter.
    assert not await context.deleteHandler(dynamic, accountId="nobody")
    assert await context.deleteHandler(dynamic, accountId=account)
    assert await context.getHandlersCount(ListFilters(account_id=account)) == 1

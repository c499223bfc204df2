"""Pages near the start (read from the list index) and deep ones (the deferred join) answer
what a plain OFFSET over full rows answers, for every page, with ties on ``create_time``
(real PostgreSQL). The walks with small page sizes cross ``NEAR_OFFSET``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest

from luna_handlers.db.context import DBContext, ListFilters
from luna_handlers.db.listing import NEAR_OFFSET
from luna_handlers.db.pool.hostpool import HostPool
from luna_handlers.db.schema.models import HANDLER_COUNT_BACKFILL
from luna_handlers.db.stores.common import new_id
from tests.conftest import run_sql

HOT = "0a1b2c3d-0000-4000-8000-000000000001"
OTHER = "0a1b2c3d-0000-4000-8000-000000000002"
T0 = datetime(2026, 1, 1)
ROWS = 157  # groups of 1 to 5 handlers share an instant; not a multiple of any page size
assert ROWS > NEAR_OFFSET  # both statements answer pages here


@pytest.fixture(scope="module")
async def filled(migrated_pool: HostPool) -> AsyncIterator[HostPool]:
    """Handlers of two accounts whose creation instants repeat (ties), inserted in an
    order unrelated to their ids."""
    values = []
    for n in range(ROWS):
        instant = T0 + timedelta(seconds=n // (1 + n % 5))
        values.append((new_id(), HOT if n % 3 else OTHER, instant, f"gate {n % 7}", n % 4 == 0))
    async with migrated_pool.write() as session:
        await run_sql(session, "TRUNCATE handler, handler_count")
        for handler_id, account, instant, description, dynamic in values:
            await run_sql(session, "INSERT INTO handler (handler_id, account_id, create_time,"
                          " description, is_dynamic) VALUES (:i, :a, :t, :d, :y)",
                          i=handler_id, a=account, t=instant, d=description, y=dynamic)
        # Written around the DB context: the counter is filled as the migration fills it.
        await run_sql(session, "TRUNCATE handler_count")
        await run_sql(session, HANDLER_COUNT_BACKFILL)
    yield migrated_pool


async def offset_page(pool: HostPool, where: str, params: dict[str, object], size: int,
                      page: int) -> list[str]:
    """The page as a plain OFFSET over full rows would answer it (the former statement)."""
    async with pool.read() as session:
        rows = await run_sql(
            session, f"SELECT handler_id FROM handler {where} ORDER BY create_time DESC,"
            " handler_id LIMIT :size OFFSET :skip", **params, size=size, skip=(page - 1) * size)
    return [row["handler_id"] for row in rows]


@pytest.mark.parametrize(("filters", "where", "params"), [
    (ListFilters(), "", {}),
    (ListFilters(account_id=HOT), "WHERE account_id = :a", {"a": HOT}),
    (ListFilters(account_id=HOT, description="gate 3"),
     "WHERE account_id = :a AND description LIKE '%gate 3%'", {"a": HOT}),
    (ListFilters(is_dynamic=False, create_time__gte=T0 + timedelta(seconds=5)),
     "WHERE NOT is_dynamic AND create_time >= :t", {"t": T0 + timedelta(seconds=5)}),
])
@pytest.mark.parametrize("size", [1, 2, 7, 10, 100])
async def test_every_page_is_the_offset_page(filled: HostPool, filters: ListFilters,
                                             where: str, params: dict[str, object],
                                             size: int) -> None:
    context = DBContext(filled)
    seen: list[str] = []
    page = 1
    while True:
        got = [h.handler_id for h in await context.getHandlers(filters, page, size)]
        assert got == await offset_page(filled, where, params, size, page), page
        if not got:
            break
        seen += got
        page += 1
    # The walk covers every match once: nothing skipped or repeated across the ties.
    assert len(seen) == len(set(seen)) == await context.getHandlersCount(filters)

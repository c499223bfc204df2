"""Description searches on a table big enough for the plans to matter (real PostgreSQL):
the plan of each statement a search sends, generic and custom, and the answers.

50,000 handlers built with generate_series: half in one hot account, the rest over 100
accounts; descriptions are one of 60 words (each ~1.7 % of the rows) and a number, and
every 2,500th row carries a word of its own (20 rows: a rare term).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from luna_handlers.db.context import HANDLER, DBContext, ListFilters
from luna_handlers.db.listing import StatementsByShape, filter_params, grams_param
from luna_handlers.db.pool.hostpool import HostPool
from luna_handlers.db.prepared import Prepared
from luna_handlers.db.schema.migrate import upgrade
from luna_handlers.db.search import MATCHED_PAGE, WALK_MAX, WALK_PAGE, walk_limit
from luna_handlers.pgserver.cluster import PgCluster
from tests.conftest import TEST_PASSWORD, TEST_USER, host_pool, new_database, run_sql

ROWS = 50_000
HOT = "0a1b2c3d-0000-4000-8000-00000000aaaa"
WORDS = [f"{stem}{n}" for stem in ("gate", "door", "lobby", "yard", "dock", "hall")
         for n in range(10)]
RARE = "turnstile"
#: Every 5,000th row (10, all in the hot account): case, letters beyond ASCII, LIKE's own
#: characters.
ODD = "Grüße 50%_off/"
GRAMS_INDEX = "ix_handler_grams"
ACCOUNT_GRAMS_INDEX = "ix_handler_account_grams"
GRAMS_INDEXES = {GRAMS_INDEX, ACCOUNT_GRAMS_INDEX}


@pytest.mark.parametrize(("page", "size", "rows"), [
    (1, 10, 2_000), (2, 10, 4_000), (1, 100, 20_000), (3, 100, WALK_MAX), (1000, 1, WALK_MAX)])
def test_walk_limit(page: int, size: int, rows: int) -> None:
    assert walk_limit(page, size) == rows


@pytest.mark.parametrize(("filters", "bound"), [
    (ListFilters(account_id=HOT, description="gate"), {"grams_of": "gate"}),
    (ListFilters(description="50%_"), {"grams_of": "50%_"}),  # the term, not its pattern
    (ListFilters(description="ga"), {}),  # no three-character substring
    (ListFilters(), {}),
])
def test_the_grams_bind_the_term(filters: ListFilters, bound: dict[str, str]) -> None:
    assert grams_param(filters) == bound


@pytest.fixture(scope="module")
async def big(pg_cluster: PgCluster) -> AsyncIterator[tuple[HostPool, asyncpg.Connection]]:
    """The filled, analysed table; the pool and a plain connection to the same database."""
    dbname = new_database(pg_cluster)
    pool = host_pool(pg_cluster, dbname)
    async with pool.engine.connect() as conn:
        await upgrade(conn)
    async with pool.write() as session:
        await run_sql(
            session,
            "INSERT INTO handler (handler_id, account_id, create_time, last_update_time,"
            " description, policies, is_dynamic)"
            " SELECT md5(n::text)::uuid::text,"
            "  CASE WHEN n % 2 = 0 THEN :hot ELSE md5((n % 100)::text)::uuid::text END,"
            "  timestamp '2026-01-01' + (n / 3) * interval '1 second',"
            "  timestamp '2026-01-01' + (n / 3) * interval '1 second',"
            "  CASE WHEN n % 2500 = 0 THEN :rare || ' ' || n"
            "   WHEN n % 5000 = 2 THEN :odd || n"
            "   ELSE (CAST(:words AS text[]))[1 + n % 60] || ' ' || (n % 1000) END,"
            "  NULL, true"
            " FROM generate_series(1, :rows) AS n",
            hot=HOT, rare=RARE, odd=ODD, words=WORDS, rows=ROWS)
        await run_sql(session, "ANALYZE handler")
    conn = await asyncpg.connect(host=pg_cluster.host, port=pg_cluster.port, user=TEST_USER,
                                 password=TEST_PASSWORD, database=dbname)
    yield pool, conn
    await conn.close()
    await pool.close()


def _params(filters: ListFilters, page: int = 1, size: int = 10) -> dict[str, Any]:
    return filter_params(HANDLER, filters) | grams_param(filters) | {
        "page_limit": size, "page_offset": (page - 1) * size,
        "walk_limit": walk_limit(page, size)}


def _indexes(node: dict[str, Any]) -> set[str]:
    found = {node["Index Name"]} if "Index Name" in node else set()
    for child in node.get("Plans", ()):
        found |= _indexes(child)
    return found


async def plan_indexes(pool: HostPool, conn: asyncpg.Connection, prepared: Prepared,
                       params: dict[str, Any], mode: str) -> set[str]:
    """The indexes in the plan of ``prepared`` exactly as the service sends it, as a
    prepared statement planned under ``plan_cache_mode = mode`` (the generic plan is what
    a named statement settles on after five runs)."""
    sql, values = prepared.bind(pool.engine.dialect, params)
    await conn.execute(f"PREPARE probe AS {sql}")
    try:
        await conn.execute(f"SET plan_cache_mode = {mode}")
        # EXECUTE takes no bound parameters: the values as literals, quoted by the server.
        args = [await conn.fetchval("SELECT quote_literal($1::text)", str(value))
                for value in values]
        plan = await conn.fetchval(f"EXPLAIN (FORMAT JSON) EXECUTE probe({', '.join(args)})")
    finally:
        await conn.execute("DEALLOCATE probe")
    return _indexes(json.loads(plan)[0]["Plan"])


MODES = ["force_generic_plan", "force_custom_plan"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("account", "statement", "index"), [
    (None, MATCHED_PAGE, GRAMS_INDEX), (HOT, MATCHED_PAGE, ACCOUNT_GRAMS_INDEX)])
async def test_a_rare_term_is_found_by_an_index_of_matches(
        big: tuple[HostPool, asyncpg.Connection], mode: str, account: str | None,
        statement: StatementsByShape, index: str) -> None:
    pool, conn = big
    filters = ListFilters(account_id=account, description=RARE)
    shape = tuple(filter_params(HANDLER, filters))
    params = _params(filters)
    indexes = await plan_indexes(pool, conn, statement(HANDLER, shape), params, mode)
    # The account's index must not lead (nor join in a BitmapAnd): 25,000 entries read.
    assert index in indexes and "ix_handler_account_time" not in indexes, indexes


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("account", [None, HOT])
async def test_a_short_term_never_reads_a_grams_index(
        big: tuple[HostPool, asyncpg.Connection], mode: str, account: str | None) -> None:
    pool, conn = big
    filters = ListFilters(account_id=account, description="e1")  # no 3-character substring
    shape = tuple(filter_params(HANDLER, filters))
    assert shape[-1] == "description_short"
    for statement in (MATCHED_PAGE(HANDLER, shape), WALK_PAGE(HANDLER, shape)):
        indexes = await plan_indexes(pool, conn, statement, _params(filters), mode)
        assert not indexes & GRAMS_INDEXES, indexes


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("account", [None, HOT])
async def test_the_walk_follows_the_list_order(
        big: tuple[HostPool, asyncpg.Connection], mode: str, account: str | None) -> None:
    pool, conn = big
    filters = ListFilters(account_id=account, description=WORDS[7])
    shape = tuple(filter_params(HANDLER, filters))
    indexes = await plan_indexes(pool, conn, WALK_PAGE(HANDLER, shape), _params(filters), mode)
    # Either ordered index (half the rows are the hot account's: both are cheap walks).
    assert indexes & {"ix_handler_time", "ix_handler_account_time"}, indexes
    assert not indexes & GRAMS_INDEXES, indexes


async def offset_page(pool: HostPool, account: str | None, term: str, page: int,
                      size: int) -> list[str]:
    """The page as one plain statement answers it (strpos: the term literally)."""
    async with pool.read() as session:
        rows = await run_sql(
            session, "SELECT handler_id FROM handler WHERE (CAST(:a AS text) IS NULL"
            " OR account_id = :a) AND strpos(description, :term) > 0"
            " ORDER BY create_time DESC, handler_id LIMIT :size OFFSET :skip",
            a=account, term=term, size=size, skip=(page - 1) * size)
    return [row["handler_id"] for row in rows]


@pytest.mark.parametrize("term", [WORDS[7], RARE, "e1", "1 ", "absent", "gate1 9", "stile 25",
                                  "Turnstile", "üße 50%", "%_o", "/1"])
@pytest.mark.parametrize("account", [None, HOT, "00000000-0000-4000-8000-000000000000",
                                     "c4ca4238-a0b9-3382-8dcc-509a6f75849b"])  # md5('1')
async def test_answers_are_the_plain_pages(big: tuple[HostPool, asyncpg.Connection],
                                           term: str, account: str | None) -> None:
    """Whichever statement answers (a full walk, a walk of the whole list, every match),
    the page is the one a plain statement gives: common, rare, short and absent terms,
    first, middle and deep pages, sizes that split the ties on create_time; and so is the
    count."""
    pool, _conn = big
    context = DBContext(pool)
    for page, size in [(1, 10), (2, 7), (40, 10), (1, 100), (3, 1000)]:
        got = [h.handler_id for h in await context.getHandlers(
            ListFilters(account_id=account, description=term), page, size)]
        assert got == await offset_page(pool, account, term, page, size), (page, size)
    async with pool.read() as session:
        plain = await run_sql(
            session, "SELECT count(*) AS n FROM handler WHERE (CAST(:a AS text) IS NULL"
            " OR account_id = :a) AND strpos(description, :term) > 0", a=account, term=term)
    counted = await context.getHandlersCount(ListFilters(account_id=account, description=term))
    assert counted == plain[0]["n"]

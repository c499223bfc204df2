"""The database layer on a live Oracle, through the failover pool: start, migrations, DB context.

Runs only where an Oracle server is given (none can be installed on the project's machines)::

    LUNA_HANDLERS_TEST_ORACLE_DSN='luna_test/secret@ora-host:1521/FREEPDB1' pytest -m oracle

The value is a ``dsn`` as the ``LUNA_HANDLERS_DB.dsn`` key takes it for Oracle, with the
credentials in front: ``user/password@host:port/service_name`` (Easy Connect), or
``user/password@(DESCRIPTION=...)``; without ``/service_name`` the SID ``luna_handlers`` is
used. The user needs CREATE SESSION, CREATE TABLE and a tablespace quota. WARNING: the tests
DROP the tables handler, verifier and alembic_version of that user's schema first: give them
a dedicated, empty schema. Oracle 19c or newer.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from luna_handlers.db.context import DBContext, ListFilters
from luna_handlers.db.dialects.oracle.dsn import oracle_dsn_from_settings
from luna_handlers.db.pool.failover import FailoverDatabase
from luna_handlers.db.pool.hostpool import HostPool
from luna_handlers.db.schema.migrate import (
    check_at_head,
    current_revision,
    downgrade,
    head_revision,
    upgrade,
)
from tests.conftest import run_sql
from tests.oracle_support import (
    SETTINGS,
    drop_ours,
    fresh_oracle_database,
    skip_without_oracle,
    tables,
)

pytestmark = [pytest.mark.oracle, skip_without_oracle]
POLICIES = {"detect_policy": {"detect_face": 1}}


def account() -> str:
    return str(uuid.uuid4())


def big_policies(size: int) -> dict[str, object]:
    """Policies whose JSON is about ``size`` bytes: past 4000 (VARCHAR2), 32767 (a string
    bind) and 131072 (SQLAlchemy's LOB fetch buffer) the CLOB takes other driver paths."""
    return {"detect_policy": {"detect_face": 1}, "padding": "x" * size}


@pytest.fixture(scope="module")
async def database() -> AsyncIterator[FailoverDatabase]:
    database = await fresh_oracle_database()
    yield database
    await database.close()


@pytest.fixture(scope="module")
async def pool(database: FailoverDatabase) -> HostPool:
    assert database.active is not None
    return database.active


@pytest.fixture(scope="module")
async def ctx(database: FailoverDatabase) -> DBContext:
    return DBContext(database)


async def test_failover_database_starts_on_the_primary(database: FailoverDatabase) -> None:
    status = database.status()
    hosts = [str(hp) for hp in oracle_dsn_from_settings(SETTINGS).addresses]
    assert (status["dialect"], status["state"], status["role"]) == ("oracle", "active",
                                                                     "primary")
    assert status["host"] in hosts and status["hosts"] == list(dict.fromkeys(hosts))
    assert status["target_session_attrs"] == "read-write" and status["generation"] == 1
    async with database.read() as session:  # the pool really is on that one address
        rows = await run_sql(session, "SELECT sys_context('USERENV', 'DATABASE_ROLE') FROM dual")
    role = rows[0][0]
    assert role == "PRIMARY"


async def test_migrations_up_down_and_column_types(pool: HostPool) -> None:
    async with pool.engine.connect() as conn:
        await drop_ours(conn)
        assert await current_revision(conn) is None
        await upgrade(conn, "0001")
        assert await tables(conn) >= {"alembic_version", "handler"}
        await upgrade(conn)
        assert await current_revision(conn) == head_revision()
        await check_at_head(conn)
        types: dict[str, str] = dict((await conn.execute(sa.text(
            "SELECT column_name, data_type FROM user_tab_columns WHERE table_name = 'HANDLER'"
        ))).tuples().all())
        assert types["IS_DYNAMIC"] == "NUMBER"  # SMALLINT 0/1, also on 23 (pinned)
        assert (types["POLICIES"], types["CREATE_TIME"]) == ("CLOB", "TIMESTAMP(6)")
        await downgrade(conn, "base")
        assert not {"handler", "verifier"} & await tables(conn)
        await upgrade(conn)


async def test_driver_settings(pool: HostPool) -> None:
    async with pool.engine.connect() as conn:  # the request pool's engine on Oracle
        raw = await conn.get_raw_connection()
        assert raw.driver_connection is not None
        assert raw.driver_connection.call_timeout == 30_000  # query_timeout, in ms
        assert raw.driver_connection.thin
    dialect = pool.engine.dialect
    assert dialect.server_version_info is not None and dialect.server_version_info >= (19,)
    assert dialect.supports_native_boolean is False
    assert dialect._supports_offset_fetch  # type: ignore[attr-defined]  # OFFSET/FETCH paging


async def test_handler_round_trip(ctx: DBContext) -> None:
    acc, other = account(), account()
    handler_id = await ctx.createHandler(POLICIES, acc, "first")
    got = await ctx.getHandler(handler_id)
    assert got is not None
    assert (got.account_id, got.description, got.is_dynamic, got.policies) == (
        acc, "first", False, POLICIES)
    assert got.create_time == got.last_update_time
    # Stamped by the server in UTC (SYS_EXTRACT_UTC), whatever its time zone.
    now = datetime.now(UTC).replace(tzinfo=None)
    assert abs(got.create_time - now) < timedelta(minutes=5)
    assert await ctx.doesHandlerExist(handler_id, acc)
    # Another account sees nothing and changes nothing.
    assert await ctx.getHandler(handler_id, other) is None
    assert not await ctx.doesHandlerExist(handler_id, other)
    assert not await ctx.putHandler(handler_id, None, "x", other)
    assert not await ctx.deleteHandler(handler_id, other)

    await asyncio.sleep(0.01)
    assert await ctx.putHandler(handler_id, None, "", acc, isDynamic=True)
    replaced = await ctx.getHandler(handler_id, acc)
    assert replaced is not None
    # Oracle stores '' as NULL: the context gives the empty description back.
    assert (replaced.description, replaced.is_dynamic, replaced.policies) == ("", True, None)
    assert replaced.last_update_time > got.last_update_time
    assert await ctx.deleteHandler(handler_id, acc)
    assert await ctx.getHandler(handler_id) is None
    assert not await ctx.deleteHandler(handler_id)


async def test_lists_counts_and_filters(ctx: DBContext) -> None:
    acc = account()
    descriptions = ["50%_off", "500 off", "a/b", *(f"plain {i}" for i in range(9))]
    created = [await ctx.createHandler(POLICIES, acc, d, isDynamic=i % 3 == 0)
               for i, d in enumerate(descriptions)]
    assert await ctx.getHandlersCount(ListFilters(account_id=acc)) == 12
    pages = [await ctx.getHandlers(ListFilters(account_id=acc), page, 5) for page in (1, 2, 3, 4)]
    assert [len(page) for page in pages] == [5, 5, 2, 0]
    listed = [h.handler_id for page in pages for h in page]
    assert sorted(listed) == sorted(created)  # no overlap, no gap
    times = [h.create_time for page in pages for h in page]
    assert times == sorted(times, reverse=True)
    for text, expected in (("50%_", 1), ("0%", 1), ("_", 1), ("a/b", 1), ("off", 2)):
        assert await ctx.getHandlersCount(ListFilters(account_id=acc, description=text)) == (
            expected), text
    assert await ctx.getHandlersCount(ListFilters(account_id=acc, is_dynamic=True)) == 4
    assert await ctx.getHandlersCount(ListFilters(ids=[*created[:3], str(uuid.uuid4())])) == 3
    middle = await ctx.getHandler(created[6])
    assert middle is not None
    after = ListFilters(account_id=acc, create_time__gte=middle.create_time)
    before = ListFilters(account_id=acc, create_time__lt=middle.create_time)
    assert (await ctx.getHandlersCount(after)) + (await ctx.getHandlersCount(before)) == 12


async def test_empty_description_filter_matches_everything(ctx: DBContext) -> None:
    acc = account()
    await ctx.createHandler(POLICIES, acc, "")
    assert await ctx.getHandlersCount(ListFilters(account_id=acc, description="")) == 1


async def test_verifier_round_trip_and_concurrent_replaces(ctx: DBContext) -> None:
    acc = account()
    verifier_id = await ctx.createVerifier(POLICIES, acc, "v")
    got = await ctx.getVerifier(verifier_id, acc)
    assert got is not None and (got.version, got.policies, got.description) == (1, POLICIES, "v")
    assert await ctx.checkVerifier(verifier_id, acc)
    assert not await ctx.checkVerifier(verifier_id, account())
    assert await ctx.putVerifier(verifier_id, POLICIES, "v", account()) is None
    assert await ctx.getVerifierCount(ListFilters(account_id=acc)) == 1
    versions = await asyncio.gather(*(ctx.putVerifier(verifier_id, {"n": i}, f"r{i}", acc)
                                      for i in range(20)))
    assert sorted(v for v in versions if v is not None) == list(range(2, 22))
    final = await ctx.getVerifier(verifier_id)
    assert final is not None and final.version == 21
    assert [v.verifier_id for v in await ctx.getVerifiers(ListFilters(account_id=acc))] == [
        verifier_id]
    assert await ctx.deleteVerifier(verifier_id, acc)
    assert await ctx.putVerifier(verifier_id, POLICIES, "v", acc) is None


@pytest.mark.parametrize("size", [5_000, 40_000, 100_000, 400_000])
async def test_large_policies_in_the_clob(ctx: DBContext, size: int) -> None:
    acc, policies = account(), big_policies(size)
    handler_id = await ctx.createHandler(policies, acc)
    handler = await ctx.getHandler(handler_id)
    assert handler is not None and handler.policies == policies
    assert await ctx.putHandler(handler_id, big_policies(size + 1), "big", acc)
    handler = await ctx.getHandler(handler_id)
    assert handler is not None and handler.policies == big_policies(size + 1)
    verifier_id = await ctx.createVerifier(policies, acc)
    # UPDATE ... RETURNING ... INTO with a long bind: the putVerifier path.
    assert await ctx.putVerifier(verifier_id, big_policies(size + 1), "big", acc) == 2
    verifier = await ctx.getVerifier(verifier_id)
    assert verifier is not None and verifier.policies == big_policies(size + 1)
    listed = await ctx.getVerifiers(ListFilters(account_id=acc))
    assert [v.policies for v in listed] == [big_policies(size + 1)]

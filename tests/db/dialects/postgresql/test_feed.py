"""Change notifications against a real PostgreSQL: sent on commit only, feed reconnects."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

from luna_handlers.db.changes import CHANNEL, Target, notify_after
from luna_handlers.db.context import HANDLER, DBContext
from luna_handlers.db.dialects import named
from luna_handlers.db.dialects.postgresql.backend import open_pg_database
from luna_handlers.db.dialects.postgresql.dsn import PgDsn, parse_pg_dsn
from luna_handlers.db.dialects.postgresql.feed import ListenFeed
from luna_handlers.db.hosts import HostPort
from luna_handlers.db.pool.hostpool import HostPool
from luna_handlers.pgserver.cluster import PgCluster, free_port
from tests.conftest import FAILOVER, TEST_PASSWORD, TEST_USER

POLICIES = {"detect_policy": {"detect_face": 1}}
QUIET = 0.3  # seconds to wait for a notification that must NOT come


@dataclass
class Recorder:
    """What a feed reported, in order."""

    changes: list[str] = field(default_factory=list)
    resets: int = 0

    def on_change(self, handler_id: str) -> None:
        self.changes.append(handler_id)

    def on_reset(self) -> None:
        self.resets += 1


def pool_dsn(pool: HostPool) -> PgDsn:
    url = pool.engine.url
    return parse_pg_dsn(f"{TEST_USER}:{TEST_PASSWORD}@{url.host}:{url.port}/{url.database}")


def make_feed(pool: HostPool, rec: Recorder, app_name: str,
              target: Target | None = None) -> ListenFeed:
    return ListenFeed.from_dsn(target or pool.active_host, pool_dsn(pool),
                               FAILOVER, on_change=rec.on_change, on_reset=rec.on_reset,
                               application_name=app_name)


async def until(check: Callable[[], bool], within: float = 3.0) -> float:
    """Poll ``check`` until true; the seconds it took. Fails after ``within`` seconds."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > within:
            pytest.fail(f"condition not met within {within} s")
        await asyncio.sleep(0.01)
    return time.monotonic() - start


def terminate(cluster: PgCluster, app_name: str) -> int:
    """Kill the backends of ``app_name`` like an admin (or a crash) would; how many."""
    out = cluster.psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                       f"WHERE application_name = '{app_name}'")
    return int(out)



@pytest.fixture(scope="module")
def pg_context(migrated_pool: HostPool) -> DBContext:
    """The DB context on the module's PostgreSQL database (notifications are PostgreSQL's)."""
    return DBContext(migrated_pool)

@pytest.fixture
async def listening(migrated_pool: HostPool) -> AsyncIterator[tuple[ListenFeed, Recorder, str]]:
    rec = Recorder()
    name = f"feed-{uuid.uuid4().hex[:8]}"
    feed = make_feed(migrated_pool, rec, name)
    feed.start()
    assert await feed.wait_healthy(5)
    yield feed, rec, name
    await feed.close()


def test_only_postgresql_notifies() -> None:
    assert named("postgresql").supports_changes
    assert not named("oracle").supports_changes


async def test_put_and_delete_notify_once_and_only_when_something_changed(
        pg_context: DBContext, listening: tuple[ListenFeed, Recorder, str]) -> None:
    _feed, rec, _name = listening
    acc = str(uuid.uuid4())
    handler_id = await pg_context.createHandler(POLICIES, acc, "n")
    await asyncio.sleep(QUIET)
    assert handler_id not in rec.changes  # a new id cannot be cached anywhere yet

    assert await pg_context.putHandler(handler_id, POLICIES, "n2", acc)
    await until(lambda: rec.changes.count(handler_id) == 1)
    # Another account's PUT and DELETE match nothing: no notification.
    assert not await pg_context.putHandler(handler_id, POLICIES, "x", str(uuid.uuid4()))
    assert not await pg_context.deleteHandler(handler_id, str(uuid.uuid4()))
    await asyncio.sleep(QUIET)
    assert rec.changes.count(handler_id) == 1

    assert await pg_context.deleteHandler(handler_id, acc)
    await until(lambda: rec.changes.count(handler_id) == 2)
    assert not await pg_context.deleteHandler(handler_id)
    await asyncio.sleep(QUIET)
    assert rec.changes.count(handler_id) == 2


async def test_notification_leaves_on_commit_only(
        migrated_pool: HostPool, pg_context: DBContext,
        listening: tuple[ListenFeed, Recorder, str]) -> None:
    _feed, rec, _name = listening
    handler_id = await pg_context.createHandler(POLICIES, str(uuid.uuid4()))
    update = sa.update(HANDLER).where(HANDLER.c.handler_id == handler_id).values(description="r")

    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        async with migrated_pool.connection() as conn:
            # Pools run in autocommit (each statement commits alone): open a transaction to
            # see that the notification waits for its commit.
            await conn.execution_options(isolation_level="READ COMMITTED")
            assert (await conn.execute(notify_after(update, HANDLER.c.handler_id))).first()
            await asyncio.sleep(QUIET)
            assert handler_id not in rec.changes  # not before commit...
            raise Abort
    await asyncio.sleep(QUIET)
    assert handler_id not in rec.changes  # ...and never after a rollback
    got = await pg_context.getHandler(handler_id)
    assert got is not None and got.description == ""


async def test_reconnects_and_resets_after_its_backend_is_killed(
        pg_cluster: PgCluster, pg_context: DBContext,
        listening: tuple[ListenFeed, Recorder, str]) -> None:
    feed, rec, name = listening
    assert rec.resets == 1 and feed.resets == 1  # the first connect flushes too
    assert terminate(pg_cluster, name) == 1
    await until(lambda: rec.resets == 2 and feed.healthy)
    assert feed.status()["healthy"] is True

    acc = str(uuid.uuid4())
    handler_id = await pg_context.createHandler(POLICIES, acc)
    assert await pg_context.putHandler(handler_id, POLICIES, "after reconnect", acc)
    await until(lambda: handler_id in rec.changes)


async def test_follows_the_pool_to_a_new_generation(
        migrated_pool: HostPool, pg_context: DBContext) -> None:
    rec = Recorder()
    state: dict[str, int | None] = {"generation": 1}

    def target() -> tuple[HostPort, int] | None:
        generation = state["generation"]
        if generation is None:
            return None
        return migrated_pool.host, generation

    feed = make_feed(migrated_pool, rec, f"feed-{uuid.uuid4().hex[:8]}", target)
    feed.start()
    try:
        assert await feed.wait_healthy(5)
        state["generation"] = 2  # the failover manager switched pools
        await until(lambda: rec.resets == 2 and feed.healthy)

        state["generation"] = None  # between two pools: no host, nothing to listen to
        await until(lambda: not feed.healthy)
        await asyncio.sleep(QUIET)
        assert not feed.healthy and rec.resets == 2

        state["generation"] = 3
        await until(lambda: rec.resets == 3 and feed.healthy)
        acc = str(uuid.uuid4())
        handler_id = await pg_context.createHandler(POLICIES, acc)
        assert await pg_context.deleteHandler(handler_id, acc)
        await until(lambda: handler_id in rec.changes)
    finally:
        await feed.close()
    assert not feed.healthy


async def test_close_is_prompt_while_the_host_is_down(migrated_pool: HostPool) -> None:
    rec = Recorder()
    dead = (HostPort("127.0.0.1", free_port()), 1)  # nobody listens: connects are refused
    feed = make_feed(migrated_pool, rec, "feed-dead", lambda: dead)
    feed.backoff_max = 30.0  # a long backoff must not delay close()
    feed.start()
    await asyncio.sleep(1.0)
    assert not feed.healthy and rec.resets == 0
    start = time.monotonic()
    await feed.close()
    assert time.monotonic() - start < 1.0
    await feed.close()  # idempotent


async def test_channel_is_a_plain_identifier() -> None:
    # LISTEN takes an identifier: a name needing quotes would break psql users and tools.
    assert CHANNEL.isidentifier() and CHANNEL.islower() and len(CHANNEL) < 64


@pytest.mark.slow
async def test_a_hung_host_makes_the_feed_unhealthy(shared_tmp: Path) -> None:
    # Its own server: freezing the session's one would stall every other test.
    cluster = PgCluster(datadir=shared_tmp / f"hang-{uuid.uuid4().hex[:6]}", port=free_port(),
                        superuser_password="pw", settings={"fsync": "off"})
    cluster.initdb()
    cluster.start()
    rec = Recorder()
    dsn = parse_pg_dsn(f"postgres:pw@{cluster.host}:{cluster.port}/postgres")
    feed = ListenFeed.from_dsn(lambda: (HostPort(cluster.host, cluster.port), 1), dsn, FAILOVER,
                               on_change=rec.on_change, on_reset=rec.on_reset)
    feed.ping_timeout = 0.5
    feed.start()
    try:
        assert await feed.wait_healthy(5)
        cluster.pause()  # TCP still accepted, nothing answers: no termination event
        took = await until(lambda: not feed.healthy, within=3.0)
        assert took < feed.poll_interval + feed.ping_timeout + 0.5
        cluster.resume()
        await until(lambda: feed.healthy and rec.resets == 2, within=10.0)
        cluster.pause()
        await until(lambda: not feed.healthy, within=3.0)
        await asyncio.sleep(0.3)  # now inside a connect that will not be answered
        start = time.monotonic()
        await feed.close()
        assert time.monotonic() - start < feed.ping_timeout + 0.5
    finally:
        cluster.resume()
        await feed.close()
        cluster.stop("immediate")


async def test_target_follows_the_failover_database(migrated_pool: HostPool) -> None:
    url = migrated_pool.engine.url
    assert url.host is not None and url.port is not None
    here = HostPort(url.host, url.port)
    assert migrated_pool.active_host() == (here, 1)
    database = await open_pg_database(pool_dsn(migrated_pool), 2, FAILOVER)
    target = database.active_host
    try:
        assert target() == (here, 1)
        feed = database.changes(lambda _id: None, lambda: None)
        assert isinstance(feed, ListenFeed)  # the feed a Database hands out is this one
    finally:
        await database.close()
    assert target() is None  # closed: nothing to listen to


async def test_refused_credentials_keep_it_unhealthy_not_dead(migrated_pool: HostPool) -> None:
    rec = Recorder()
    url = migrated_pool.engine.url
    feed = ListenFeed(migrated_pool.active_host, user=TEST_USER,
                      password="wrong", dbname=str(url.database), on_change=rec.on_change,
                      on_reset=rec.on_reset)
    feed.start()
    try:
        assert not await feed.wait_healthy(1.0)
        status = feed.status()
        assert rec.resets == 0 and status == {"healthy": False, "resets": 0, "host": None,
                                              "failures": status["failures"]}
        assert status["failures"] >= 1  # each refusal counted, and tried again
    finally:
        await feed.close()

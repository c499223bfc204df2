"""The handler cache: LRU, the read/invalidate race, and two instances kept correct by NOTIFY."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime

import orjson
import pytest
from prometheus_client import REGISTRY

from luna_handlers.app import cache as cache_module
from luna_handlers.app.cache import HandlerCache, cache_following
from luna_handlers.db.context import DBContext, HandlerRecord
from luna_handlers.db.dialects.oracle.backend import oracle_backend
from luna_handlers.db.dialects.oracle.dsn import parse_oracle_dsn
from luna_handlers.db.dialects.postgresql.backend import pg_backend
from luna_handlers.db.dialects.postgresql.dsn import parse_pg_dsn
from luna_handlers.db.dialects.postgresql.feed import ListenFeed
from luna_handlers.db.pool.hostpool import HostPool
from luna_handlers.pgserver.cluster import PgCluster
from tests.conftest import FAILOVER, host_pool

POLICIES = {"detect_policy": {"detect_face": 1}}
# The goal is 1 s; the bound is twice that so that a loaded CI machine does not flake.
PROPAGATION_BOUND = 2.0


class Health:
    """A health source we flip by hand, for the pure data-structure tests."""

    healthy = True


def record(handler_id: str, description: str = "") -> HandlerRecord:
    now = datetime(2026, 1, 1)
    return HandlerRecord(handler_id=handler_id, account_id="a", description=description,
                         is_dynamic=False, policies_json=orjson.dumps(POLICIES).decode(),
                         create_time=now,
                         last_update_time=now)


def filled(cache: HandlerCache, *ids: str) -> HandlerCache:
    for handler_id in ids:
        assert cache.put(record(handler_id), cache.begin_read(handler_id))
    return cache


# -- the data structure ------------------------------------------------------------------


def test_lru_evicts_the_least_recently_used() -> None:
    cache = filled(HandlerCache(3, Health()), "a", "b", "c")
    assert cache.get("a") is not None  # "a" is now the most recent; "b" the least
    filled(cache, "d")
    assert len(cache) == 3
    assert cache.get("b") is None
    assert [cache.get(x) is not None for x in ("a", "c", "d")] == [True, True, True]


def test_put_refreshes_an_entry() -> None:
    cache = filled(HandlerCache(2, Health()), "a")
    assert cache.put(record("a", "new"), cache.begin_read("a"), b'{"rendered": 1}')
    got = cache.get("a")
    assert got is not None and len(cache) == 1
    assert (got.record.description, got.body) == ("new", b'{"rendered": 1}')


async def test_a_served_entry_keeps_the_body_not_the_policies_twice() -> None:
    cache = HandlerCache(2, Health())
    loaded = record("a")._replace(rendered_policies='{"detect_policy":{}}',
                                  rendered_with="made-with")

    async def load(_handler_id: str) -> HandlerRecord:
        return loaded

    def render(found: HandlerRecord) -> bytes:
        return orjson.dumps({"policies": orjson.Fragment(found.rendered_policies or "null")})

    missed = await cache.serve("a", load, render)
    hit = await cache.serve("a", load, render)
    assert missed is not None and hit is not None
    assert missed.record == loaded and hit.body == missed.body
    assert (hit.record.policies_json, hit.record.rendered_policies,
            hit.record.rendered_with) == (None, None, None)


def test_size_zero_never_serves_nor_stores() -> None:
    cache = HandlerCache(0, Health())
    assert not cache.enabled
    assert not cache.put(record("a"), cache.begin_read("a"))
    assert cache.get("a") is None and len(cache) == 0
    assert cache.status() == {"enabled": False, "size": 0, "max_size": 0, "hits": 0,
                              "misses": 1}
    with pytest.raises(ValueError, match="max_size"):
        HandlerCache(-1)


def test_no_feed_or_unhealthy_feed_disables_the_cache() -> None:
    assert not HandlerCache(10).enabled  # no change feed: no cache (correctness first)
    health = Health()
    cache = filled(HandlerCache(10, health), "a")
    health.healthy = False
    assert not cache.enabled
    assert cache.get("a") is None  # bypassed, not served
    assert not cache.put(record("b"), cache.begin_read("b"))


def test_a_read_older_than_an_invalidation_is_not_stored() -> None:
    cache = HandlerCache(10, Health())
    token = cache.begin_read("a")
    cache.invalidate("a")  # the change committed while the read was in flight
    assert not cache.put(record("a", "stale"), token)
    assert cache.get("a") is None
    assert cache.put(record("a", "fresh"), cache.begin_read("a"))  # a read after it is fine


def test_invalidating_another_handler_does_not_refuse_a_read() -> None:
    cache = HandlerCache(10, Health())
    token = cache.begin_read("a")
    cache.invalidate("b")
    assert cache.put(record("a"), token)


def test_clear_refuses_every_read_in_flight() -> None:
    cache = filled(HandlerCache(10, Health()), "a")
    token = cache.begin_read("b")
    cache.clear()
    assert len(cache) == 0
    assert not cache.put(record("b"), token)


def test_token_of_another_handler_is_refused() -> None:
    cache = HandlerCache(10, Health())
    assert not cache.put(record("a"), cache.begin_read("b"))


def test_forgotten_invalidations_refuse_older_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_module, "INVALIDATION_MEMORY", 2)
    cache = HandlerCache(10, Health())
    token = cache.begin_read("a")
    for other in ("x", "a", "y", "z"):  # "a" falls out of the remembered invalidations
        cache.invalidate(other)
    assert not cache.put(record("a"), token)  # still refused: conservative, never stale
    assert cache.put(record("a"), cache.begin_read("a"))


def test_hits_and_misses_are_exported() -> None:
    def sample(name: str) -> float:
        return REGISTRY.get_sample_value(name) or 0.0

    hits, misses = sample("luna_handlers_cache_hits_total"), sample(
        "luna_handlers_cache_misses_total")
    cache = filled(HandlerCache(10, Health()), "a")
    cache.get("a")
    cache.get("a")
    cache.get("nope")
    assert (cache.hits, cache.misses) == (2, 1)
    assert sample("luna_handlers_cache_hits_total") == hits + 2
    assert sample("luna_handlers_cache_misses_total") == misses + 1


def test_no_cache_on_oracle() -> None:
    # Nothing connects before a session is asked for: neither pool touches a server here.
    oracle_dsn = parse_oracle_dsn("u/p@127.0.0.1:1/svc")
    oracle_pool = HostPool(oracle_backend(oracle_dsn, 1, FAILOVER), oracle_dsn.addresses[0])
    cache, feed = cache_following(100, oracle_pool)
    assert feed is None and not cache.enabled and cache.max_size == 0
    dsn = parse_pg_dsn("u:p@127.0.0.1:1/db")
    pg_pool = HostPool(pg_backend(dsn, 1, FAILOVER), dsn.hosts[0])
    cache, feed = cache_following(0, pg_pool)
    assert feed is None and not cache.enabled


# -- two service instances on one database -----------------------------------------------


async def until(check: Callable[[], bool], within: float = 3.0) -> None:
    """Poll ``check`` until true; fails after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {within} s")
        await asyncio.sleep(0.01)


def terminate(cluster: PgCluster, app_name: str) -> int:
    """Kill the backends of ``app_name`` like an admin (or a crash) would; how many."""
    return int(cluster.psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                            f"WHERE application_name = '{app_name}'"))


@dataclass
class Instance:
    """What one service process holds: a pool, a DB context, a cache and its feed."""

    pool: HostPool
    ctx: DBContext
    cache: HandlerCache
    feed: ListenFeed
    name: str

    async def get(self, handler_id: str) -> tuple[HandlerRecord | None, bool]:
        """The GET route's use of the cache: (record, served from the cache)."""
        cached = self.cache.get(handler_id)
        if cached is not None:
            return cached.record, True
        token = self.cache.begin_read(handler_id)
        found = await self.ctx.getHandler(handler_id)
        if found is not None:
            self.cache.put(found, token)
        return found, False


async def start_instance(pool: HostPool) -> Instance:
    name = f"inst-{uuid.uuid4().hex[:8]}"
    # A unique application name, so a test can kill exactly this instance's listener.
    cache, feed = cache_following(100, pool, name=name)
    assert isinstance(feed, ListenFeed) and cache.feed is feed
    feed.start()
    assert await feed.wait_healthy(5)
    return Instance(pool, DBContext(pool), cache, feed, name)


@pytest.fixture
async def two(pg_cluster: PgCluster, migrated_pool: HostPool
              ) -> AsyncIterator[tuple[Instance, Instance]]:
    dbname = migrated_pool.engine.url.database
    assert dbname is not None
    a = await start_instance(migrated_pool)
    b = await start_instance(host_pool(pg_cluster, dbname))
    yield a, b
    for inst in (a, b):
        await inst.feed.close()
    await b.pool.close()


async def cached_in(inst: Instance, handler_id: str) -> HandlerRecord:
    await inst.get(handler_id)
    found, from_cache = await inst.get(handler_id)
    assert from_cache and found is not None
    return found


async def test_update_through_a_is_seen_by_b(two: tuple[Instance, Instance]) -> None:
    a, b = two
    acc = str(uuid.uuid4())
    handler_id = await a.ctx.createHandler(POLICIES, acc, "v1")
    old = await cached_in(b, handler_id)
    await cached_in(a, handler_id)

    assert await a.ctx.putHandler(handler_id, POLICIES, "v2", acc)
    await until(lambda: b.cache.get(handler_id) is None, PROPAGATION_BOUND)
    await until(lambda: a.cache.get(handler_id) is None, PROPAGATION_BOUND)  # its own too
    new, from_cache = await b.get(handler_id)
    assert not from_cache and new is not None and new.description == "v2"
    assert new.last_update_time > old.last_update_time
    assert (await cached_in(b, handler_id)).description == "v2"


async def test_delete_through_a_is_seen_by_b(two: tuple[Instance, Instance]) -> None:
    a, b = two
    acc = str(uuid.uuid4())
    handler_id = await a.ctx.createHandler(POLICIES, acc)
    await cached_in(b, handler_id)
    assert await a.ctx.deleteHandler(handler_id, acc)
    await until(lambda: b.cache.get(handler_id) is None, PROPAGATION_BOUND)
    assert await b.get(handler_id) == (None, False)


async def test_a_reconnecting_feed_flushes_and_resumes(
        pg_cluster: PgCluster, two: tuple[Instance, Instance]) -> None:
    a, b = two
    acc = str(uuid.uuid4())
    ids = [await a.ctx.createHandler(POLICIES, acc) for _ in range(3)]
    for handler_id in ids:
        await cached_in(b, handler_id)
    resets = b.feed.resets
    assert terminate(pg_cluster, b.name) == 1
    # Whatever was committed while it was away is unknown: everything goes.
    await until(lambda: b.feed.resets == resets + 1 and b.feed.healthy)
    assert len(b.cache) == 0
    for handler_id in ids:
        await cached_in(b, handler_id)
    assert await a.ctx.putHandler(ids[0], POLICIES, "after", acc)
    await until(lambda: b.cache.get(ids[0]) is None, PROPAGATION_BOUND)
    assert b.cache.get(ids[1]) is not None


async def test_a_read_racing_an_update_does_not_store_the_old_row(
        two: tuple[Instance, Instance]) -> None:
    a, b = two
    acc = str(uuid.uuid4())
    handler_id = await a.ctx.createHandler(POLICIES, acc, "old")
    token = b.cache.begin_read(handler_id)
    old = await b.ctx.getHandler(handler_id)  # the slow read, still in flight...
    assert old is not None and old.description == "old"
    assert await a.ctx.putHandler(handler_id, POLICIES, "new", acc)  # ...when A commits
    await until(lambda: b.cache.begin_read(handler_id).epoch > token.epoch, PROPAGATION_BOUND)
    assert not b.cache.put(old, token)
    assert b.cache.get(handler_id) is None
    assert (await cached_in(b, handler_id)).description == "new"


async def test_cache_is_bypassed_while_the_feed_is_down(
        two: tuple[Instance, Instance]) -> None:
    _a, b = two
    handler_id = await b.ctx.createHandler(POLICIES, str(uuid.uuid4()))
    cached = await cached_in(b, handler_id)
    await b.feed.close()
    assert not b.cache.enabled
    found, from_cache = await b.get(handler_id)
    assert not from_cache and found == cached
    assert not b.cache.put(cached._replace(description="x"), b.cache.begin_read(handler_id))


async def test_the_feed_survives_its_backend_killed_again_and_again_under_load(
        pg_cluster: PgCluster, two: tuple[Instance, Instance]) -> None:
    """25 pg_terminate_backend of B's listener while A updates and B reads: each ends in a
    reconnect with a flush, and B's cache then serves exactly what the database holds."""
    a, b = two
    acc = str(uuid.uuid4())
    ids = [await a.ctx.createHandler(POLICIES, acc, "v0") for _ in range(5)]
    failures = REGISTRY.get_sample_value("luna_handlers_cache_feed_reconnects_total") or 0.0
    stop = asyncio.Event()
    versions = dict.fromkeys(ids, 0)

    async def update() -> None:
        while not stop.is_set():
            for handler_id in ids:
                versions[handler_id] += 1
                assert await a.ctx.putHandler(handler_id, POLICIES,
                                              f"v{versions[handler_id]}", acc)

    async def read() -> None:
        while not stop.is_set():
            for handler_id in ids:
                found, _ = await b.get(handler_id)
                assert found is not None
            await asyncio.sleep(0)

    load = [asyncio.create_task(update()), asyncio.create_task(read()),
            asyncio.create_task(read())]
    try:
        for _ in range(25):
            resets = b.feed.resets
            await until(lambda: b.feed.healthy)
            assert await asyncio.to_thread(terminate, pg_cluster, b.name) == 1
            await until(lambda: b.feed.resets > resets and b.feed.healthy, 5.0)  # noqa: B023
    finally:
        stop.set()
        await asyncio.gather(*load)
    assert b.feed.healthy and b.cache.enabled
    status = b.feed.status()
    assert status["resets"] >= 26 and status["failures"] >= 25
    assert (REGISTRY.get_sample_value("luna_handlers_cache_feed_reconnects_total") or 0.0) \
        >= failures + 25
    assert REGISTRY.get_sample_value("luna_handlers_cache_feed_up") == 1.0
    # Coherent: after the propagation bound, what B serves (from its cache where it has the
    # handler) is the last committed version of each.
    await asyncio.sleep(PROPAGATION_BOUND)
    for handler_id in ids:
        await b.get(handler_id)
        found, from_cache = await b.get(handler_id)
        assert from_cache and found is not None
        assert found.description == f"v{versions[handler_id]}"

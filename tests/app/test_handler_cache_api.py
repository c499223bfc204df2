"""GET /1/handlers/{id} from the read cache: hits, invalidation, two instances stay coherent."""

from __future__ import annotations

import asyncio
import time

import httpx

from luna_handlers.db.pool.hostpool import HostPool
from tests.app.conftest import (
    POLICIES,
    acc,
    create_handler,
    make_app,
    make_settings,
    new_account,
    serve,
    shared,
)


async def get_until_hit(client: httpx.AsyncClient, handler_id: str) -> httpx.Response:
    """GET until the cache answers (its listener needs a moment after start)."""
    deadline = time.monotonic() + 5
    while True:
        response = await client.get(f"/1/handlers/{handler_id}")
        assert response.status_code == 200
        if response.headers["Luna-Cache"] == "hit" or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.05)


async def test_repeated_get_is_a_cache_hit_with_the_same_body(
        pg_client: httpx.AsyncClient) -> None:
    account = new_account()
    handler_id = await create_handler(pg_client, account, description="cached")
    first = await pg_client.get(f"/1/handlers/{handler_id}")
    hit = await get_until_hit(pg_client, handler_id)
    assert hit.headers["Luna-Cache"] == "hit"
    assert hit.json() == first.json()
    assert hit.headers["Cache-Handler-Version"] == first.json()["last_update_time"]
    # The cache holds every account's handlers; the account check still applies on a hit.
    other = await pg_client.get(f"/1/handlers/{handler_id}", headers=acc(new_account()))
    assert other.status_code == 404 and other.json()["error_code"] == 34000
    owner = await pg_client.get(f"/1/handlers/{handler_id}", headers=acc(account))
    assert owner.status_code == 200 and owner.headers["Luna-Cache"] == "hit"


async def test_put_and_delete_are_seen_at_once(pg_client: httpx.AsyncClient) -> None:
    account = new_account()
    handler_id = await create_handler(pg_client, account, description="before")
    await get_until_hit(pg_client, handler_id)
    put = await pg_client.put(f"/1/handlers/{handler_id}", headers=acc(account),
                           json={"description": "after", "policies": POLICIES})
    assert put.status_code == 204
    after = await pg_client.get(f"/1/handlers/{handler_id}")
    assert after.json()["description"] == "after"
    assert (await pg_client.delete(f"/1/handlers/{handler_id}", headers=acc(account))
            ).status_code == 204
    assert (await pg_client.get(f"/1/handlers/{handler_id}")).status_code == 404


async def test_two_instances_see_each_others_changes_within_a_second(
        migrated_pool: HostPool) -> None:
    settings = make_settings(migrated_pool)
    async with serve(make_app(settings, shared(migrated_pool))) as one, \
            serve(make_app(settings, shared(migrated_pool))) as two:
        account = new_account()
        handler_id = await create_handler(one, account, description="v1")
        assert (await get_until_hit(two, handler_id)).json()["description"] == "v1"

        put = await one.put(f"/1/handlers/{handler_id}", headers=acc(account),
                            json={"description": "v2", "policies": POLICIES})
        assert put.status_code == 204
        changed_at = time.monotonic()
        while (await two.get(f"/1/handlers/{handler_id}")).json()["description"] != "v2":
            assert time.monotonic() - changed_at < 1.0, "instance two still serves v1"
            await asyncio.sleep(0.01)

        await get_until_hit(two, handler_id)
        assert (await one.delete(f"/1/handlers/{handler_id}", headers=acc(account))
                ).status_code == 204
        deleted_at = time.monotonic()
        while (await two.get(f"/1/handlers/{handler_id}")).status_code != 404:
            assert time.monotonic() - deleted_at < 1.0, "instance two still serves it"
            await asyncio.sleep(0.01)

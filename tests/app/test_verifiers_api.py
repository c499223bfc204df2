"""/1/verifiers over HTTP against a real PostgreSQL: CRUD, versions, accounts, filters."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from luna_handlers.db.context import DBContext
from tests.app.conftest import (
    TIME_FORMAT,
    VERIFIER_POLICIES,
    acc,
    assert_error,
    create_verifier,
    new_account,
)


async def test_create_get_replace_delete(client: httpx.AsyncClient) -> None:
    account = new_account()
    response = await client.post("/1/verifiers", headers=acc(account),
                                 json={"description": "door", "policies": VERIFIER_POLICIES})
    assert response.status_code == 201
    verifier_id = response.json()["verifier_id"]
    assert response.json()["url"] == f"/1/verifiers/{verifier_id}"
    assert response.headers["location"] == f"/1/verifiers/{verifier_id}"

    verifier = (await client.get(f"/1/verifiers/{verifier_id}")).json()
    assert set(verifier) == {"verifier_id", "account_id", "description", "policies", "version",
                             "create_time", "last_update_time"}
    assert (verifier["account_id"], verifier["description"], verifier["version"]) == (
        account, "door", 1)
    assert verifier["policies"]["verification_threshold"] == 0.75
    assert verifier["policies"]["storage_policy"]["face_sample_policy"]["store_sample"] == 0
    assert TIME_FORMAT.fullmatch(verifier["create_time"])

    head = await client.head(f"/1/verifiers/{verifier_id}")
    assert (head.status_code, head.content) == (200, b"")

    put = await client.put(f"/1/verifiers/{verifier_id}", headers=acc(account),
                           json={"description": "door 2"})
    assert (put.status_code, put.json()) == (200, {"version": 2})
    replaced = (await client.get(f"/1/verifiers/{verifier_id}")).json()
    assert (replaced["description"], replaced["version"]) == ("door 2", 2)
    # a body without policies resets them to the defaults
    assert replaced["policies"]["verification_threshold"] == 0.9

    deleted = await client.delete(f"/1/verifiers/{verifier_id}", headers=acc(account))
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert_error(await client.get(f"/1/verifiers/{verifier_id}"), 404, 34004)
    assert (await client.head(f"/1/verifiers/{verifier_id}")).status_code == 404
    assert_error(await client.put(f"/1/verifiers/{verifier_id}", headers=acc(account), json={}),
                 404, 34004)
    assert_error(await client.delete(f"/1/verifiers/{verifier_id}", headers=acc(account)),
                 404, 34004)


async def test_concurrent_replaces_lose_no_version(client: httpx.AsyncClient) -> None:
    account = new_account()
    verifier_id = await create_verifier(client, account)

    async def put(index: int) -> int:
        response = await client.put(f"/1/verifiers/{verifier_id}", headers=acc(account),
                                    json={"description": f"v{index}"})
        assert response.status_code == 200, response.text
        return int(response.json()["version"])

    versions = await asyncio.gather(*(put(index) for index in range(20)))
    assert sorted(versions) == list(range(2, 22))
    final = (await client.get(f"/1/verifiers/{verifier_id}")).json()
    assert final["version"] == 21


async def test_another_account_sees_nothing(client: httpx.AsyncClient) -> None:
    owner, stranger = new_account(), new_account()
    verifier_id = await create_verifier(client, owner)
    url = f"/1/verifiers/{verifier_id}"
    assert_error(await client.get(url, headers=acc(stranger)), 404, 34004)
    assert (await client.head(url, headers=acc(stranger))).status_code == 404
    assert_error(await client.put(url, headers=acc(stranger), json={}), 404, 34004)
    assert_error(await client.delete(url, headers=acc(stranger)), 404, 34004)
    assert (await client.get("/1/verifiers", headers=acc(stranger))).json() == {"verifiers": []}
    assert (await client.get("/1/verifiers/count", headers=acc(stranger),
                             params={"account_id": owner})).json() == {"verifiers_count": 0}
    assert (await client.get(url)).status_code == 200
    # the verifier was not changed by the stranger's attempts
    assert (await client.get(url)).json()["version"] == 1


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/1/verifiers"), ("PUT", "/1/verifiers/{id}"), ("DELETE", "/1/verifiers/{id}"),
])
async def test_state_changes_need_the_account_header(client: httpx.AsyncClient, method: str,
                                                     path: str) -> None:
    url = path.format(id=uuid.uuid4())
    assert_error(await client.request(method, url, json={}), 400, 12014)
    assert_error(await client.request(method, url, json={}, headers=acc("zz")), 400, 11037)


@pytest.mark.parametrize("bad_id", ["nope", "1", "count2"])
async def test_malformed_path_ids_are_not_found(client: httpx.AsyncClient, bad_id: str) -> None:
    account = new_account()
    url = f"/1/verifiers/{bad_id}"
    assert_error(await client.get(url), 404, 34004)
    assert (await client.head(url)).status_code == 404
    assert_error(await client.put(url, json={}, headers=acc(account)), 404, 34004)
    assert_error(await client.delete(url, headers=acc(account)), 404, 34004)


async def test_bad_bodies(client: httpx.AsyncClient) -> None:
    headers = acc(new_account())
    response = await client.post("/1/verifiers", headers=headers,
                                 json={"policies": {"verification_threshold": 2}})
    assert "policies.verification_threshold" in assert_error(response, 400, 12022)["detail"]
    response = await client.post("/1/verifiers", headers=headers, json={"extra": 1})
    assert "Path: 'extra'" in assert_error(response, 400, 12022)["detail"]
    response = await client.post("/1/verifiers", headers=headers | {"Content-Type": "text/json"},
                                 content=b"{}")
    assert_error(response, 400, 12017)
    response = await client.post("/1/verifiers", headers=headers,
                                 json={"description": "\x00"})
    assert_error(response, 400, 12022)


async def test_paging_and_filters(client: httpx.AsyncClient) -> None:
    account = new_account()
    ids = []
    for index in range(3):
        ids.append(await create_verifier(client, account, description=f"room {index}"))
        await asyncio.sleep(0.002)

    async def listed(**query: Any) -> list[str]:
        response = await client.get("/1/verifiers", params=query, headers=acc(account))
        assert response.status_code == 200, response.text
        return [item["verifier_id"] for item in response.json()["verifiers"]]

    async def count(**query: Any) -> int:
        response = await client.get("/1/verifiers/count", params=query, headers=acc(account))
        assert response.status_code == 200, response.text
        return int(response.json()["verifiers_count"])

    assert await listed() == ids[::-1]
    assert await listed(page=2, page_size=2) == [ids[0]]
    assert await listed(page=3, page_size=2) == []
    assert await count() == 3
    assert await count(description="room 1") == 1
    assert await listed(verifier_ids=f"{ids[0]},{ids[2]}") == [ids[2], ids[0]]
    created = (await client.get(f"/1/verifiers/{ids[1]}")).json()["create_time"]
    assert await listed(create_time__gte=created) == [ids[2], ids[1]]
    assert await count(create_time__lt=created) == 1
    assert await count(account_id=account) == 3
    for bad in ({"page": 0}, {"page_size": 1001}, {"is_dynamic": 1}, {"handler_ids": ids[0]}):
        assert_error(await client.get("/1/verifiers", params=bad), 400, 12012)
    assert_error(await client.get("/1/verifiers/count", params={"page_size": 5}), 400, 12012)


async def test_corrupted_policies_are_a_500(client: httpx.AsyncClient,
                                            db_context: DBContext) -> None:
    account = new_account()
    verifier_id = await db_context.createVerifier({"verification_threshold": "high"}, account)
    assert_error(await client.get(f"/1/verifiers/{verifier_id}"), 500, 34013)
    assert (await client.head(f"/1/verifiers/{verifier_id}")).status_code == 200

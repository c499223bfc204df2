"""GET /1/handlers and /1/handlers/count: paging, every filter, and bad query parameters."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from tests.app.conftest import acc, assert_error, create_handler, new_account


async def test_paging(client: httpx.AsyncClient) -> None:
    account = new_account()
    ids = []
    for _ in range(5):
        ids.append(await create_handler(client, account))
        await asyncio.sleep(0.002)  # distinct create times, so newest-first is well defined
    newest_first = list(reversed(ids))

    async def page(**query: Any) -> list[str]:
        response = await client.get("/1/handlers", params=query, headers=acc(account))
        assert response.status_code == 200, response.text
        return [item["handler_id"] for item in response.json()["handlers"]]

    assert await page() == newest_first
    assert await page(page=1, page_size=2) == newest_first[:2]
    assert await page(page=2, page_size=2) == newest_first[2:4]
    assert await page(page=3, page_size=2) == newest_first[4:]
    assert await page(page=4, page_size=2) == []
    assert await page(page=2_147_483_647, page_size=1000) == []
    assert await page(page_size=1000) == newest_first
    for bad in ({"page": 0}, {"page": -1}, {"page": "x"}, {"page_size": 0},
                {"page_size": 1001}, {"page_size": ""}, {"page": 2_147_483_648}):
        response = await client.get("/1/handlers", params=bad)
        name = next(iter(bad))
        assert f"'{name}'" in assert_error(response, 400, 12012)["detail"]


async def test_filters(client: httpx.AsyncClient) -> None:
    account = new_account()
    first = await create_handler(client, account, description="north gate")
    await asyncio.sleep(0.01)
    second = await create_handler(client, account, description="south gate")
    dynamic = await create_handler(client, account, description="lobby", is_dynamic=True,
                                   policies=None)

    async def ids(endpoint: str = "/1/handlers", **query: Any) -> Any:
        response = await client.get(endpoint, params=query, headers=acc(account))
        assert response.status_code == 200, response.text
        body = response.json()
        if "handlers_count" in body:
            return body["handlers_count"]
        return {item["handler_id"] for item in body["handlers"]}

    assert await ids(description="gate") == {first, second}
    assert await ids("/1/handlers/count", description="gate") == 2
    assert await ids(description="nor") == {first}
    assert await ids(description="%") == set()  # matched literally, not as a LIKE wildcard
    assert await ids(is_dynamic=1) == {dynamic}
    assert await ids(is_dynamic=0) == {first, second}
    assert await ids("/1/handlers/count", is_dynamic=0) == 2
    assert await ids(handler_ids=f"{first},{dynamic}") == {first, dynamic}
    assert await ids(handler_ids=f"{first.upper()}") == {first}
    assert await ids("/1/handlers/count", handler_ids=str(uuid.uuid4())) == 0
    assert await ids(account_id=account) == {first, second, dynamic}

    created = (await client.get(f"/1/handlers/{second}")).json()["create_time"]
    second_time = datetime.fromisoformat(created)
    assert await ids(create_time__gte=created) == {second, dynamic}
    assert await ids(create_time__lt=created) == {first}
    # the same instant written in another zone selects the same handlers
    in_moscow = second_time.astimezone(timezone(timedelta(hours=3))).isoformat()
    assert await ids(create_time__gte=in_moscow) == {second, dynamic}
    assert await ids("/1/handlers/count", create_time__gte=in_moscow,
                     create_time__lt=in_moscow) == 0


@pytest.mark.parametrize(("query", "name"), [
    ({"unknown": "1"}, "unknown"),
    ({"Page": "1"}, "Page"),
    ({"is_dynamic": "2"}, "is_dynamic"),
    ({"is_dynamic": "true"}, "is_dynamic"),
    ({"handler_ids": "abc"}, "handler_ids"),
    ({"handler_ids": ""}, "handler_ids"),
    ({"handler_ids": ",".join(str(uuid.uuid4()) for _ in range(1001))}, "handler_ids"),
    ({"account_id": "x"}, "account_id"),
    ({"create_time__gte": "2024-01-01"}, "create_time__gte"),
    ({"create_time__gte": "2024-01-01T00:00:00"}, "create_time__gte"),  # no zone
    ({"create_time__lt": "yesterday"}, "create_time__lt"),
    ({"description": "x" * 129}, "description"),
    ({"verifier_ids": str(uuid.uuid4())}, "verifier_ids"),
])
async def test_bad_query_params_are_named(client: httpx.AsyncClient, query: dict[str, str],
                                          name: str) -> None:
    for endpoint in ("/1/handlers", "/1/handlers/count"):
        response = await client.get(endpoint, params=query)
        assert f"'{name}'" in assert_error(response, 400, 12012)["detail"]


async def test_count_takes_no_paging(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/1/handlers/count", params={"page": 1}), 400, 12012)


async def test_a_repeated_param_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.get("/1/handlers?page=1&page=2")
    assert "more than once" in assert_error(response, 400, 12012)["detail"]


async def test_a_thousand_ids_are_accepted(client: httpx.AsyncClient) -> None:
    account = new_account()
    handler_id = await create_handler(client, account)
    many = [str(uuid.uuid4()) for _ in range(999)] + [handler_id]
    response = await client.get("/1/handlers/count", params={"handler_ids": ",".join(many)})
    assert response.json() == {"handlers_count": 1}

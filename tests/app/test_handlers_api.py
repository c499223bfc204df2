"""/1/handlers over HTTP against a real PostgreSQL: CRUD, accounts, paging, filters, errors."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from luna_handlers.db.context import DBContext
from tests.app.conftest import POLICIES, TIME_FORMAT, acc, assert_error, create_handler, new_account


async def test_create_get_replace_delete(client: httpx.AsyncClient) -> None:
    account = new_account()
    response = await client.post("/1/handlers", headers=acc(account),
                                 json={"description": "entrance", "policies": POLICIES})
    assert response.status_code == 201
    handler_id = response.json()["handler_id"]
    assert uuid.UUID(handler_id).version == 4
    assert response.json()["url"] == f"/1/handlers/{handler_id}"
    assert response.headers["location"] == f"/1/handlers/{handler_id}"

    got = await client.get(f"/1/handlers/{handler_id}")
    assert got.status_code == 200
    handler = got.json()
    assert set(handler) == {"handler_id", "account_id", "description", "is_dynamic", "policies",
                            "create_time", "last_update_time"}
    assert (handler["handler_id"], handler["account_id"], handler["description"],
            handler["is_dynamic"]) == (handler_id, account, "entrance", False)
    assert TIME_FORMAT.fullmatch(handler["create_time"])
    assert TIME_FORMAT.fullmatch(handler["last_update_time"])
    # defaults are filled in: what was sent is kept, the rest is there too
    assert handler["policies"]["detect_policy"]["multiface_policy"] == 2
    assert handler["policies"]["detect_policy"]["estimate_mask"] == 0
    assert handler["policies"]["match_policy"] == []
    assert "storage_policy" in handler["policies"]

    head = await client.head(f"/1/handlers/{handler_id}")
    assert (head.status_code, head.content) == (200, b"")

    put = await client.put(f"/1/handlers/{handler_id}", headers=acc(account),
                           json={"description": "now dynamic", "is_dynamic": True})
    assert (put.status_code, put.content) == (204, b"")
    replaced = (await client.get(f"/1/handlers/{handler_id}")).json()
    assert (replaced["description"], replaced["is_dynamic"], replaced["policies"]) == (
        "now dynamic", True, None)
    assert replaced["create_time"] == handler["create_time"]
    assert replaced["last_update_time"] > handler["last_update_time"]

    deleted = await client.delete(f"/1/handlers/{handler_id}", headers=acc(account))
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert_error(await client.get(f"/1/handlers/{handler_id}"), 404, 34000)
    head = await client.head(f"/1/handlers/{handler_id}")
    assert (head.status_code, head.content) == (404, b"")
    assert_error(await client.delete(f"/1/handlers/{handler_id}", headers=acc(account)),
                 404, 34000)
    assert_error(await client.put(f"/1/handlers/{handler_id}", headers=acc(account),
                                  json={"policies": {}}), 404, 34000)


async def test_dynamic_handler(client: httpx.AsyncClient) -> None:
    account = new_account()
    handler_id = await create_handler(client, account, is_dynamic=True, policies=None)
    handler = (await client.get(f"/1/handlers/{handler_id}")).json()
    assert (handler["is_dynamic"], handler["policies"]) == (True, None)
    body = assert_error(await client.post("/1/handlers", headers=acc(account), json={
        "is_dynamic": True, "policies": {}}), 400, 12022)
    assert "policies" in body["detail"]
    assert_error(await client.post("/1/handlers", headers=acc(account), json={}), 400, 12022)


async def test_another_account_sees_nothing(client: httpx.AsyncClient) -> None:
    owner, stranger = new_account(), new_account()
    handler_id = await create_handler(client, owner)
    url = f"/1/handlers/{handler_id}"
    assert_error(await client.get(url, headers=acc(stranger)), 404, 34000)
    assert (await client.head(url, headers=acc(stranger))).status_code == 404
    assert_error(await client.put(url, headers=acc(stranger), json={"policies": {}}), 404, 34000)
    assert_error(await client.delete(url, headers=acc(stranger)), 404, 34000)
    listed = (await client.get("/1/handlers", headers=acc(stranger))).json()
    assert listed == {"handlers": []}
    count = await client.get("/1/handlers/count", headers=acc(stranger))
    assert count.json() == {"handlers_count": 0}
    # the owner and unscoped reads still see it
    assert (await client.get(url, headers=acc(owner))).status_code == 200
    assert (await client.get(url)).status_code == 200
    # a query account_id naming another account than the header selects nothing
    query = {"account_id": owner}
    assert (await client.get("/1/handlers", params=query, headers=acc(stranger))).json() == {
        "handlers": []}
    assert (await client.get("/1/handlers/count", params=query,
                             headers=acc(stranger))).json() == {"handlers_count": 0}
    assert (await client.get("/1/handlers/count", params=query)).json() == {"handlers_count": 1}
    assert (await client.get("/1/handlers/count", params=query,
                             headers=acc(owner))).json() == {"handlers_count": 1}


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/1/handlers"), ("PUT", "/1/handlers/{id}"), ("DELETE", "/1/handlers/{id}"),
    ("POST", "/1/handlers/validator"),
])
async def test_state_changes_need_the_account_header(client: httpx.AsyncClient, method: str,
                                                     path: str) -> None:
    url = path.format(id=uuid.uuid4())
    body: dict[str, Any] = {"policies": {}}
    missing = await client.request(method, url, json=body)
    assert assert_error(missing, 400, 12014)["detail"] == (
        "Required parameters 'Luna-Account-Id' not found")
    bad = await client.request(method, url, json=body, headers=acc("not-a-uuid"))
    assert_error(bad, 400, 11037)


async def test_a_bad_account_header_is_refused_on_reads_too(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/1/handlers", headers=acc("42")), 400, 11037)
    assert_error(await client.get(f"/1/handlers/{uuid.uuid4()}", headers=acc("42")), 400, 11037)


async def test_upper_case_ids_are_the_same_object(client: httpx.AsyncClient) -> None:
    account = new_account()
    handler_id = await create_handler(client, account)
    got = await client.get(f"/1/handlers/{handler_id.upper()}", headers=acc(account.upper()))
    assert got.status_code == 200
    assert got.json()["account_id"] == account


@pytest.mark.parametrize("bad_id", ["nope", "123", "x" * 300, "%20", "00000000-0000-0000-0000"])
async def test_malformed_path_ids_are_not_found(client: httpx.AsyncClient, bad_id: str) -> None:
    account = new_account()
    url = f"/1/handlers/{bad_id}"
    assert_error(await client.get(url), 404, 34000)
    assert (await client.head(url)).status_code == 404
    assert_error(await client.put(url, json={"policies": {}}, headers=acc(account)), 404, 34000)
    assert_error(await client.delete(url, headers=acc(account)), 404, 34000)


async def test_validator(client: httpx.AsyncClient) -> None:
    account = new_account()
    ok = await client.post("/1/handlers/validator", headers=acc(account),
                           json={"policies": POLICIES})
    assert (ok.status_code, ok.content) == (204, b"")
    bad = await client.post("/1/handlers/validator", headers=acc(account),
                            json={"policies": {"detect_policy": {"detect_face": 7}}})
    assert "policies.detect_policy.detect_face" in assert_error(bad, 400, 12022)["detail"]
    assert_error(await client.post("/1/handlers/validator", headers=acc(account), json={}),
                 400, 12022)
    # nothing was stored
    assert (await client.get("/1/handlers/count", headers=acc(account))).json() == {
        "handlers_count": 0}


@pytest.mark.parametrize(("body", "path"), [
    ({"policies": {}, "colour": "red"}, "colour"),
    ({"policies": {"detect_policy": {"bogus": 1}}}, "policies.detect_policy.bogus"),
    ({"policies": {"match_policy": [{"candidates": {"origin": "faces"}, "x": 1}]}},
     "policies.match_policy[0].x"),
])
async def test_unknown_json_keys_name_their_path(client: httpx.AsyncClient, body: dict[str, Any],
                                                 path: str) -> None:
    response = await client.post("/1/handlers", headers=acc(new_account()), json=body)
    assert f"Path: '{path}'" in assert_error(response, 400, 12022)["detail"]


async def test_nul_in_description_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/1/handlers", headers=acc(new_account()),
                                 json={"description": "a\x00b", "policies": {}})
    assert "description" in assert_error(response, 400, 12022)["detail"]
    assert_error(await client.get("/1/handlers", params={"description": "a\x00"}), 400, 12012)


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/xml",
                                          "application/jsonx", "multipart/form-data"])
async def test_bad_content_type(client: httpx.AsyncClient, content_type: str | None) -> None:
    headers = acc(new_account())
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = await client.post("/1/handlers", headers=headers, content=b'{"policies": {}}')
    assert_error(response, 400, 12017)


async def test_json_with_charset_is_accepted(client: httpx.AsyncClient) -> None:
    headers = acc(new_account()) | {"Content-Type": "Application/JSON; charset=UTF-8"}
    response = await client.post("/1/handlers", headers=headers, content=b'{"policies": {}}')
    assert response.status_code == 201


@pytest.mark.parametrize("body", [b"", b"{", b"{'a': 1}", b"\xff\xfe", b"[1, 2", b"NaN"])
async def test_malformed_json(client: httpx.AsyncClient, body: bytes) -> None:
    headers = acc(new_account()) | {"Content-Type": "application/json"}
    response = await client.post("/1/handlers", headers=headers, content=body)
    assert_error(response, 400, 12017)


@pytest.mark.parametrize("body", [b"[]", b'"text"', b"1", b"null"])
async def test_json_that_is_not_an_object(client: httpx.AsyncClient, body: bytes) -> None:
    headers = acc(new_account()) | {"Content-Type": "application/json"}
    response = await client.post("/1/handlers", headers=headers, content=body)
    assert_error(response, 400, 12022)


async def test_corrupted_policies_are_a_500(client: httpx.AsyncClient,
                                            db_context: DBContext) -> None:
    account = new_account()
    # Written past the HTTP layer's validation, as an old or foreign writer could have.
    handler_id = await db_context.createHandler({"detect_policy": {"bogus": 1}}, account)
    assert_error(await client.get(f"/1/handlers/{handler_id}"), 500, 34002)
    assert_error(await client.get("/1/handlers", headers=acc(account)), 500, 34002)
    # it can still be checked, replaced and deleted
    assert (await client.head(f"/1/handlers/{handler_id}")).status_code == 200
    replace = await client.put(f"/1/handlers/{handler_id}", headers=acc(account),
                               json={"policies": {}})
    assert replace.status_code == 204
    assert (await client.get(f"/1/handlers/{handler_id}")).status_code == 200

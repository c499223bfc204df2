"""The memo of rendered list items: pages stay exactly what rendering them whole gives."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette

from luna_handlers.app.application import create_app
from luna_handlers.app.list_items import RenderMemo
from luna_handlers.app.serialize import handler_json, verifier_json
from luna_handlers.db.context import DBContext, HandlerRecord, ListFilters, VerifierRecord
from luna_handlers.errors import HandlerCorrupted
from tests.app.conftest import (
    POLICIES,
    VERIFIER_POLICIES,
    acc,
    assert_error,
    create_handler,
    create_verifier,
    make_settings,
    new_account,
    shared,
)

MOMENT = datetime(2024, 5, 1, 12, 0, 0, 123456)


def _record(policies: dict[str, Any] | None, **fields: Any) -> HandlerRecord:
    values: dict[str, Any] = {
        "handler_id": "9b2c6a52-4a8e-4d4f-9c3b-2b1f2f0d7c11", "account_id": "a",
        "description": "d", "is_dynamic": policies is None,
        "policies_json": None if policies is None else orjson.dumps(policies).decode(),
        "create_time": MOMENT, "last_update_time": MOMENT}
    values.update(fields)
    return HandlerRecord(**values)


def test_each_application_keeps_its_own_memos() -> None:
    one = create_app(make_settings(), shared(None))  # type: ignore[arg-type]  # no DB used
    other = create_app(make_settings(), shared(None))  # type: ignore[arg-type]
    assert isinstance(one.state.handler_items, RenderMemo)
    assert one.state.handler_items is not other.state.handler_items
    assert one.state.verifier_items is not other.state.verifier_items


def _memo(max_bytes: int = 1 << 20) -> RenderMemo[HandlerRecord]:
    return RenderMemo(HandlerRecord, "handler_id", handler_json, max_bytes)


async def test_a_repeated_handler_page_is_the_page_rendered_whole(
        app: Starlette, client: httpx.AsyncClient, db_context: DBContext) -> None:
    account = new_account()
    for number in range(3):
        await create_handler(client, account, description=f"h{number}")
    await create_handler(client, account, is_dynamic=True, policies=None)
    records = await db_context.getHandlers(ListFilters(account_id=account), 1, 10)
    whole = orjson.dumps({"handlers": [handler_json(record) for record in records]})
    memo: RenderMemo[HandlerRecord] = app.state.handler_items  # the app's own memo
    hits = memo.hits
    first = await client.get("/1/handlers", headers=acc(account))
    second = await client.get("/1/handlers", headers=acc(account))
    assert first.content == second.content == whole
    assert memo.hits - hits >= 4
    # the headers ORJSONResponse gave, in its order
    assert [name for name, _ in first.headers.raw] == [
        b"content-length", b"content-type", b"luna-request-id"]
    assert first.headers.raw[:2] == [(b"content-length", str(len(whole)).encode()),
                                     (b"content-type", b"application/json")]


async def test_a_repeated_verifier_page_is_the_page_rendered_whole(
        app: Starlette, client: httpx.AsyncClient, db_context: DBContext) -> None:
    account = new_account()
    for number in range(3):
        await create_verifier(client, account, description=f"v{number}")
    records = await db_context.getVerifiers(ListFilters(account_id=account), 1, 10)
    whole = orjson.dumps({"verifiers": [verifier_json(record) for record in records]})
    memo: RenderMemo[VerifierRecord] = app.state.verifier_items
    hits = memo.hits
    first = await client.get("/1/verifiers", headers=acc(account))
    second = await client.get("/1/verifiers", headers=acc(account))
    assert first.content == second.content == whole
    assert memo.hits - hits >= 3


async def test_a_handler_put_shows_on_the_next_page(client: httpx.AsyncClient) -> None:
    account = new_account()
    handler_id = await create_handler(client, account, description="before")

    async def listed() -> dict[str, Any]:
        response = await client.get("/1/handlers", headers=acc(account))
        assert response.status_code == 200
        [handler] = response.json()["handlers"]
        assert handler["handler_id"] == handler_id
        return handler  # type: ignore[no-any-return]

    before = await listed()
    assert before == await listed()
    changes: list[dict[str, Any]] = [
        {"description": "after", "policies": POLICIES},
        {"description": "after", "policies": {"detect_policy": {"detect_face": 0}}},
        {"description": "after", "is_dynamic": True, "policies": None},
        {"description": "after", "is_dynamic": False, "policies": POLICIES},
    ]
    for change in changes:
        put = await client.put(f"/1/handlers/{handler_id}", headers=acc(account), json=change)
        assert put.status_code == 204
        handler = await listed()
        assert handler == (await client.get(f"/1/handlers/{handler_id}")).json()
        assert handler["description"] == change["description"]
        assert handler["is_dynamic"] is change.get("is_dynamic", False)
        if change["policies"] is None:
            assert handler["policies"] is None
        else:
            detect = handler["policies"]["detect_policy"]
            assert detect["detect_face"] == change["policies"]["detect_policy"]["detect_face"]


async def test_a_verifier_put_shows_on_the_next_page(client: httpx.AsyncClient) -> None:
    account = new_account()
    verifier_id = await create_verifier(client, account, description="before")
    first = (await client.get("/1/verifiers", headers=acc(account))).json()["verifiers"][0]
    put = await client.put(f"/1/verifiers/{verifier_id}", headers=acc(account),
                           json={"description": "after",
                                 "policies": {"verification_threshold": 0.5}})
    assert put.status_code == 200
    [after] = (await client.get("/1/verifiers", headers=acc(account))).json()["verifiers"]
    assert (first["description"], first["policies"]["verification_threshold"]) == (
        "before", VERIFIER_POLICIES["verification_threshold"])
    assert (after["description"], after["policies"]["verification_threshold"]) == ("after", 0.5)
    assert after["version"] == first["version"] + 1
    assert after == (await client.get(f"/1/verifiers/{verifier_id}")).json()


async def test_corrupted_policies_fail_every_page(client: httpx.AsyncClient,
                                                  db_context: DBContext) -> None:
    account = new_account()
    handler_id = await create_handler(client, account)
    assert (await client.get("/1/handlers", headers=acc(account))).status_code == 200
    # Written past the HTTP layer's validation, after the page was rendered and memoised.
    await db_context.putHandler(handler_id, {"detect_policy": {"bogus": 1}}, "", account)
    for _ in range(2):
        assert_error(await client.get("/1/handlers", headers=acc(account)), 500, 34002)
    put = await client.put(f"/1/handlers/{handler_id}", headers=acc(account),
                           json={"policies": POLICIES})
    assert put.status_code == 204
    assert (await client.get("/1/handlers", headers=acc(account))).status_code == 200


def test_a_hit_needs_an_equal_record() -> None:
    memo = _memo()
    record = _record(POLICIES)
    body = memo.item(record)
    assert body == orjson.dumps(handler_json(record))
    assert memo.item(_record(orjson.loads(orjson.dumps(POLICIES)))) is body
    assert (memo.hits, memo.misses) == (1, 1)
    assert memo.item(_record(POLICIES, description="other")) != body
    assert (memo.hits, memo.misses, len(memo)) == (1, 2, 1)
    other = memo.item(_record({"detect_policy": {"detect_face": 0}}, description="other"))
    assert b'"detect_face":0' in other
    assert (memo.hits, memo.misses, len(memo)) == (1, 3, 1)


def test_policies_equal_by_value_but_not_by_json_are_rendered_again() -> None:
    # Same id, same timestamps: only the JSON of the policies tells these apart.
    memo = _memo()
    match = {"candidates": {"origin": "faces"}, "threshold": 0.0}
    memo.item(_record({"match_policy": [match]}))
    negative = memo.item(_record({"match_policy": [match | {"threshold": -0.0}]}))
    assert b'"threshold":-0.0' in negative
    memo.item(_record({"detect_policy": {"detect_face": 1}}))
    with pytest.raises(HandlerCorrupted):
        memo.item(_record({"detect_policy": {"detect_face": True}}))
    assert memo.hits == 0


def test_a_corrupted_record_is_never_kept() -> None:
    memo = _memo()
    corrupted = _record({"detect_policy": {"bogus": 1}})
    for _ in range(2):
        with pytest.raises(HandlerCorrupted):
            memo.item(corrupted)
    assert (len(memo), memo.hits) == (0, 0)


def test_the_memo_keeps_at_most_its_budget() -> None:
    size = len(orjson.dumps(handler_json(_record(POLICIES)))) + len(orjson.dumps(POLICIES))
    memo = _memo(max_bytes=3 * size)
    ids = [f"00000000-0000-4000-8000-00000000000{number}" for number in range(5)]
    for handler_id in ids:
        memo.item(_record(POLICIES, handler_id=handler_id))
    assert len(memo) == 3
    memo.item(_record(POLICIES, handler_id=ids[2]))  # the oldest kept one, now the newest
    memo.item(_record(POLICIES, handler_id=ids[0]))
    assert (memo.hits, len(memo)) == (1, 3)
    memo.item(_record(POLICIES, handler_id=ids[2]))
    assert memo.hits == 2
    too_big = _memo(max_bytes=size - 1)
    too_big.item(_record(POLICIES))
    assert len(too_big) == 0

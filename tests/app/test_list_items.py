"""List items and GET bodies from the policies rendering stored on write.

Every answer must be exactly what rendering the stored policies gives, whether the row has a
current rendering (written by this version), a stale one (another version's), or none.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import orjson
import pytest

from luna_handlers.app.policies import (
    HANDLER_RENDERING,
    VERIFIER_RENDERING,
    normalise_handler_policies,
    normalise_verifier_policies,
    parse_handler_body,
    parse_verifier_body,
)
from luna_handlers.app.serialize import handler_json, verifier_json
from luna_handlers.db import RenderedPolicies
from luna_handlers.db.context import DBContext, HandlerRecord, ListFilters, VerifierRecord
from luna_handlers.errors import HandlerCorrupted
from tests.app.conftest import (
    POLICIES,
    VERIFIER_POLICIES,
    acc,
    assert_error,
    create_handler,
    create_verifier,
    new_account,
)

MOMENT = datetime(2024, 5, 1, 12, 0, 0, 123456)
FULL: dict[str, Any] = {
    "detect_policy": {"detect_face": 1, "multiface_policy": 2},
    "extract_policy": {"extract_face_descriptor": 1, "fd_score_threshold": 0.5},
    "match_policy": [{"candidates": {"origin": "faces"}, "limit": 3, "threshold": -0.0}],
    "conditional_tags_policy": [{"tag": "vip", "filters": {"match": [
        {"label": "x", "similarity__gte": 0.9}]}}],
}


def _rendered_from_policies(record: HandlerRecord) -> HandlerRecord:
    return record._replace(rendered_policies=None, rendered_with=None)


def assert_rendering_is_current(record: HandlerRecord | VerifierRecord) -> None:
    """The stored rendering is, byte for byte, the rendering of the stored policies."""
    if isinstance(record, HandlerRecord):
        assert record.policies is not None
        made_with, expected = HANDLER_RENDERING, normalise_handler_policies(record.policies)
    else:
        made_with, expected = VERIFIER_RENDERING, normalise_verifier_policies(record.policies)
    assert record.rendered_with == made_with
    assert record.rendered_policies == orjson.dumps(expected).decode()


@pytest.mark.parametrize("policies", [POLICIES, FULL, {}])
def test_the_rendering_made_on_write_is_the_one_made_on_read(policies: dict[str, Any]) -> None:
    parsed = parse_handler_body({"policies": policies})
    assert parsed.rendered is not None
    assert parsed.rendered.json == orjson.dumps(normalise_handler_policies(policies)).decode()
    assert parse_handler_body({"is_dynamic": True}).rendered is None
    verifier = parse_verifier_body({"policies": VERIFIER_POLICIES})
    assert verifier.rendered is not None
    assert verifier.rendered.json == orjson.dumps(
        normalise_verifier_policies(VERIFIER_POLICIES)).decode()


def test_a_stored_rendering_is_spliced_only_when_current() -> None:
    stored = orjson.dumps(POLICIES).decode()
    current = HandlerRecord("h", "a", "d", False, stored, MOMENT, MOMENT,
                            '{"spliced":1}', HANDLER_RENDERING)
    assert orjson.loads(orjson.dumps(handler_json(current)))["policies"] == {"spliced": 1}
    for stale in (current._replace(rendered_with="another version"),
                  current._replace(rendered_policies=None)):
        assert orjson.dumps(handler_json(stale)) == orjson.dumps(
            handler_json(_rendered_from_policies(current)))
    corrupted = current._replace(policies_json='{"detect_policy": {"bogus": 1}}',
                                 rendered_with=None)
    with pytest.raises(HandlerCorrupted):
        handler_json(corrupted)


async def test_create_and_replace_store_the_rendering(
        client: httpx.AsyncClient, db_context: DBContext) -> None:
    account = new_account()
    handler_id = await create_handler(client, account, policies=FULL)
    verifier_id = await create_verifier(client, account)
    record = await db_context.getHandler(handler_id)
    verifier = await db_context.getVerifier(verifier_id)
    assert record is not None and verifier is not None
    assert_rendering_is_current(record)
    assert_rendering_is_current(verifier)
    put = await client.put(f"/1/handlers/{handler_id}", headers=acc(account),
                           json={"policies": {"detect_policy": {"detect_face": 0}}})
    assert put.status_code == 204
    put = await client.put(f"/1/verifiers/{verifier_id}", headers=acc(account),
                           json={"policies": {"verification_threshold": 0.5}})
    assert put.status_code == 200
    record = await db_context.getHandler(handler_id)
    verifier = await db_context.getVerifier(verifier_id)
    assert record is not None and verifier is not None
    assert_rendering_is_current(record)
    assert_rendering_is_current(verifier)
    assert record.policies == {"detect_policy": {"detect_face": 0}}  # still stored as sent
    put = await client.put(f"/1/handlers/{handler_id}", headers=acc(account),
                           json={"is_dynamic": True})
    assert put.status_code == 204
    record = await db_context.getHandler(handler_id)
    assert record is not None
    assert (record.policies_json, record.rendered_policies, record.rendered_with) == (
        None, None, None)


async def test_a_handler_page_is_the_items_rendered_from_their_policies(
        client: httpx.AsyncClient, db_context: DBContext) -> None:
    account = new_account()
    for number in range(3):
        await create_handler(client, account, description=f"h{number}", policies=FULL)
    await create_handler(client, account, is_dynamic=True, policies=None)
    # Rows without a current rendering: none (as the offline migration leaves them), stale.
    await db_context.createHandler(POLICIES, account, "no rendering")
    await db_context.createHandler(POLICIES, account, "stale", rendered=RenderedPolicies(
        '{"rendered":"by another version"}', "another version"))
    records = await db_context.getHandlers(ListFilters(account_id=account), 1, 10)
    assert len(records) == 6
    whole = orjson.dumps({"handlers": [handler_json(_rendered_from_policies(record))
                                       for record in records]})
    page = await client.get("/1/handlers", headers=acc(account))
    assert page.content == whole
    # the headers ORJSONResponse gave, in its order
    assert [name for name, _ in page.headers.raw] == [
        b"content-length", b"content-type", b"luna-request-id"]
    assert page.headers.raw[:2] == [(b"content-length", str(len(whole)).encode()),
                                    (b"content-type", b"application/json")]
    for item in page.json()["handlers"]:
        one = await client.get(f"/1/handlers/{item['handler_id']}", headers=acc(account))
        assert one.json() == item


async def test_a_verifier_page_is_the_items_rendered_from_their_policies(
        client: httpx.AsyncClient, db_context: DBContext) -> None:
    account = new_account()
    for number in range(3):
        await create_verifier(client, account, description=f"v{number}")
    await db_context.createVerifier(VERIFIER_POLICIES, account, "no rendering")
    records = await db_context.getVerifiers(ListFilters(account_id=account), 1, 10)
    whole = orjson.dumps({"verifiers": [
        verifier_json(record._replace(rendered_policies=None)) for record in records]})
    assert (await client.get("/1/verifiers", headers=acc(account))).content == whole


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
    # Written past the HTTP layer's validation, without a rendering.
    await db_context.putHandler(handler_id, {"detect_policy": {"bogus": 1}}, "", account)
    for _ in range(2):
        assert_error(await client.get("/1/handlers", headers=acc(account)), 500, 34002)
    put = await client.put(f"/1/handlers/{handler_id}", headers=acc(account),
                           json={"policies": POLICIES})
    assert put.status_code == 204
    assert (await client.get("/1/handlers", headers=acc(account))).status_code == 200

"""DB context against a real PostgreSQL: every operation, isolation, paging, concurrency."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from luna_handlers.db.context import DBContext, ListFilters
from luna_handlers.db.handlers_db_tools.models.handlers_models import Handler, Verifier

POLICIES = {"detect_policy": {"detect_face": 1}}


def account() -> str:
    return str(uuid.uuid4())


def test_models_column_names_in_table_order() -> None:
    assert Handler.getColumnNames() == [
        "handler_id", "account_id", "create_time", "last_update_time", "description",
        "policies", "is_dynamic", "rendered_policies", "rendered_with"]
    assert Verifier.getColumnNames() == [
        "verifier_id", "account_id", "create_time", "last_update_time", "description",
        "policies", "version", "rendered_policies", "rendered_with"]


async def test_handler_lifecycle(db_context: DBContext) -> None:
    acc = account()
    handler_id = await db_context.createHandler(POLICIES, acc, "first")
    assert uuid.UUID(handler_id).version == 4
    got = await db_context.getHandler(handler_id)
    assert got is not None
    assert (got.account_id, got.description, got.is_dynamic, got.policies) == (
        acc, "first", False, POLICIES)
    assert got.create_time == got.last_update_time
    assert await db_context.doesHandlerExist(handler_id, acc)

    await asyncio.sleep(0.01)
    assert await db_context.putHandler(handler_id, None, "now dynamic", acc, isDynamic=True)
    replaced = await db_context.getHandler(handler_id, acc)
    assert replaced is not None
    assert (replaced.description, replaced.is_dynamic, replaced.policies) == (
        "now dynamic", True, None)
    assert replaced.create_time == got.create_time
    assert replaced.last_update_time > got.last_update_time

    assert await db_context.deleteHandler(handler_id, acc)
    assert await db_context.getHandler(handler_id) is None
    assert not await db_context.doesHandlerExist(handler_id)
    assert not await db_context.deleteHandler(handler_id)
    assert not await db_context.putHandler(handler_id, POLICIES, "", acc)


async def test_dynamic_handler_stores_no_policies(db_context: DBContext) -> None:
    handler_id = await db_context.createHandler(POLICIES, account(), isDynamic=True)
    got = await db_context.getHandler(handler_id)
    assert got is not None and got.is_dynamic and got.policies is None


async def test_other_account_sees_nothing(db_context: DBContext) -> None:
    owner, stranger = account(), account()
    handler_id = await db_context.createHandler(POLICIES, owner)
    verifier_id = await db_context.createVerifier(POLICIES, owner)
    assert await db_context.getHandler(handler_id, stranger) is None
    assert not await db_context.doesHandlerExist(handler_id, stranger)
    assert not await db_context.putHandler(handler_id, {}, "x", stranger)
    assert not await db_context.deleteHandler(handler_id, stranger)
    assert await db_context.getVerifier(verifier_id, stranger) is None
    assert not await db_context.checkVerifier(verifier_id, stranger)
    assert await db_context.putVerifier(verifier_id, {}, "x", stranger) is None
    assert not await db_context.deleteVerifier(verifier_id, stranger)
    assert await db_context.getHandlersCount(ListFilters(account_id=stranger)) == 0
    # ...and the owner's objects are untouched.
    handler = await db_context.getHandler(handler_id, owner)
    verifier = await db_context.getVerifier(verifier_id, owner)
    assert handler is not None and handler.policies == POLICIES
    assert verifier is not None and verifier.version == 1


@pytest.mark.parametrize(
    ("page", "page_size", "expected"),
    [(1, 10, range(0, 7)), (1, 3, range(0, 3)), (2, 3, range(3, 6)), (3, 3, range(6, 7)),
     (4, 3, range(0)), (1, 1, range(0, 1)), (7, 1, range(6, 7)), (8, 1, range(0)),
     (1, 1000, range(0, 7))],
    ids=["all", "first", "middle", "last-partial", "past-end", "size-1", "last-of-size-1",
         "past-end-size-1", "max-size"],
)
async def test_handler_pages(db_context: DBContext, page: int, page_size: int,
                             expected: range) -> None:
    acc = account()
    ids = [await db_context.createHandler(POLICIES, acc, f"p{i}") for i in range(7)]
    newest_first = ids[::-1]
    listed = await db_context.getHandlers(ListFilters(account_id=acc), page, page_size)
    assert [h.handler_id for h in listed] == [newest_first[i] for i in expected]
    assert await db_context.getHandlersCount(ListFilters(account_id=acc)) == 7


async def test_handler_filters(db_context: DBContext) -> None:
    acc = account()
    plain = await db_context.createHandler(POLICIES, acc, "camera 100% front_door")
    dynamic = await db_context.createHandler(None, acc, "camera back", isDynamic=True)
    other = await db_context.createHandler(POLICIES, acc, "lobby")

    async def ids(**kwargs: object) -> set[str]:
        filters = ListFilters(account_id=acc, **kwargs)  # type: ignore[arg-type]
        found = {h.handler_id for h in await db_context.getHandlers(filters, 1, 100)}
        assert await db_context.getHandlersCount(filters) == len(found)
        return found

    assert await ids(description="camera") == {plain, dynamic}
    # % and _ are literal characters, not wildcards.
    assert await ids(description="100%") == {plain}
    assert await ids(description="o_r") == set()  # "door" would match o_r as a pattern
    assert await ids(description="front_door") == {plain}
    assert await ids(is_dynamic=True) == {dynamic}
    assert await ids(is_dynamic=False) == {plain, other}
    assert await ids(ids=[plain, other, str(uuid.uuid4())]) == {plain, other}
    assert await ids(ids=[]) == set()
    created = await db_context.getHandler(dynamic)
    assert created is not None
    assert await ids(create_time__gte=created.create_time) >= {dynamic}
    assert dynamic not in await ids(create_time__lt=created.create_time)
    assert await ids(create_time__gte=created.create_time + timedelta(days=1)) == set()


@pytest.mark.parametrize("description", [
    "x" * 128, "описание обработчика 📷", "漢字" * 64, "", "it's \"quoted\" \\ and ;--"],
    ids=["128-chars", "cyrillic-emoji", "128-cjk", "empty", "sql-chars"])
async def test_descriptions_round_trip(db_context: DBContext, description: str) -> None:
    handler_id = await db_context.createHandler(POLICIES, account(), description)
    verifier_id = await db_context.createVerifier(POLICIES, account(), description)
    handler = await db_context.getHandler(handler_id)
    verifier = await db_context.getVerifier(verifier_id)
    assert handler is not None and handler.description == description
    assert verifier is not None and verifier.description == description


async def test_policies_round_trip_unicode(db_context: DBContext) -> None:
    policies = {"match_policy": [{"label": "метка ✓", "threshold": 0.75}], "nested": [[1]]}
    handler_id = await db_context.createHandler(policies, account())
    got = await db_context.getHandler(handler_id)
    assert got is not None and got.policies == policies


async def test_verifier_lifecycle(db_context: DBContext) -> None:
    acc = account()
    verifier_id = await db_context.createVerifier({"verification_threshold": 0.8}, acc, "v")
    got = await db_context.getVerifier(verifier_id, acc)
    assert got is not None
    assert (got.version, got.policies, got.description) == (
        1, {"verification_threshold": 0.8}, "v")
    assert await db_context.putVerifier(verifier_id, {}, "v2", acc) == 2
    assert await db_context.putVerifier(verifier_id, {}, "v3", None) == 3
    replaced = await db_context.getVerifier(verifier_id)
    assert replaced is not None and (replaced.version, replaced.description) == (3, "v3")
    assert replaced.last_update_time >= got.last_update_time
    listed = await db_context.getVerifiers(ListFilters(account_id=acc, description="v"))
    assert [v.verifier_id for v in listed] == [verifier_id]
    assert await db_context.getVerifierCount(ListFilters(account_id=acc)) == 1
    assert await db_context.deleteVerifier(verifier_id, acc)
    assert not await db_context.checkVerifier(verifier_id)
    assert await db_context.putVerifier(verifier_id, {}, "", acc) is None


async def test_concurrent_verifier_replaces_lose_no_version(db_context: DBContext) -> None:
    acc = account()
    verifier_id = await db_context.createVerifier({}, acc)
    versions = await asyncio.gather(*[
        db_context.putVerifier(verifier_id, {"verification_threshold": i / 20}, f"r{i}", acc)
        for i in range(20)])
    assert sorted(v for v in versions if v is not None) == list(range(2, 22))
    final = await db_context.getVerifier(verifier_id)
    assert final is not None and final.version == 21

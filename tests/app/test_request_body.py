"""Reading JSON bodies and request headers (raw ASGI messages), and the 201 answer."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager

import httpx
import orjson
import pytest
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Message

from luna_handlers.app import deps
from luna_handlers.app.application import create_app
from luna_handlers.app.serialize import ORJSONResponse
from luna_handlers.db.database import Database
from luna_handlers.db.pool.hostpool import HostPool
from luna_handlers.errors import BadAccountId, BadContentType, PayloadTooLarge
from tests.app.conftest import acc, make_app, make_settings, new_account, shared

LIMIT = 100


def _no_database() -> AbstractAsyncContextManager[Database]:
    raise AssertionError("the lifespan is not run: the requests only read the settings")


APP = create_app(make_settings(max_body_size=LIMIT), _no_database)
JSON = (b"content-type", b"application/json")


def _request(headers: list[tuple[bytes, bytes]], messages: list[Message]) -> Request:
    async def receive() -> Message:
        return messages.pop(0)

    scope = {"type": "http", "method": "POST", "path": "/1/handlers", "headers": headers,
             "app": APP}
    return Request(scope, receive)


def _chunk(body: bytes, more: bool = True) -> Message:
    return {"type": "http.request", "body": body, "more_body": more}


async def test_a_body_in_several_chunks_is_read_whole() -> None:
    messages = [_chunk(b'{"a": '), _chunk(b""), _chunk(b"[1, 2]"), _chunk(b"}", more=False)]
    assert await deps.read_json(_request([JSON], messages)) == {"a": [1, 2]}


async def test_a_message_without_more_body_ends_the_body() -> None:
    messages: list[Message] = [{"type": "http.request", "body": b"{}"}]
    assert await deps.read_json(_request([JSON], messages)) == {}


async def test_a_disconnect_while_reading_is_a_client_disconnect() -> None:
    messages = [_chunk(b'{"a": '), {"type": "http.disconnect"}]
    with pytest.raises(ClientDisconnect):
        await deps.read_json(_request([JSON], messages))


async def test_the_limit_holds_on_what_arrives() -> None:
    messages = [_chunk(b" " * LIMIT), _chunk(b"{}", more=False)]
    with pytest.raises(PayloadTooLarge):
        await deps.read_json(_request([JSON], messages))
    # exactly the limit is fine
    messages = [_chunk(b" " * (LIMIT - 2)), _chunk(b"{}", more=False)]
    assert await deps.read_json(_request([JSON], messages)) == {}


async def test_an_announced_body_over_the_limit_is_refused_before_reading() -> None:
    headers = [JSON, (b"content-length", str(LIMIT + 1).encode())]
    with pytest.raises(PayloadTooLarge):
        await deps.read_json(_request(headers, []))  # receiving would fail: nothing to pop


@pytest.mark.parametrize("declared", [b"\xb2", b"1e9", b" 999", b"-1", str(LIMIT).encode()])
async def test_a_content_length_that_is_no_count_over_the_limit_is_read(declared: bytes) -> None:
    headers = [JSON, (b"content-length", declared)]
    assert await deps.read_json(_request(headers, [_chunk(b"{}", more=False)])) == {}


@pytest.mark.parametrize("headers", [
    [],
    [(b"content-type", b"text/plain"), JSON],  # the first header counts, as in Starlette
    [(b"content-type", b"application/json\xe9")],
])
async def test_content_types_that_are_not_json(headers: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(BadContentType):
        await deps.read_json(_request(headers, [_chunk(b"{}", more=False)]))


@pytest.mark.parametrize(("value", "expected"), [
    (b"5F0E9C2A-7B1D-4C3E-8A9F-0123456789AB", "5f0e9c2a-7b1d-4c3e-8a9f-0123456789ab"),
    (None, None),
])
def test_the_account_header(value: bytes | None, expected: str | None) -> None:
    headers = [] if value is None else [(b"luna-account-id", value)]
    assert deps.account(_request(headers, [])) == expected


@pytest.mark.parametrize("value", [b"42", b"5f0e9c2a-7b1d-4c3e-8a9f-0123456789a\xe9", b""])
def test_a_bad_account_header(value: bytes) -> None:
    with pytest.raises(BadAccountId):
        deps.account(_request([(b"luna-account-id", value)], []))


async def test_a_client_gone_while_sending_gets_no_answer(
        migrated_pool: HostPool, caplog: pytest.LogCaptureFixture) -> None:
    app = make_app(make_settings(migrated_pool), shared(migrated_pool))
    account = new_account()
    sent: list[Message] = []
    messages = [_chunk(b'{"description": "gone", '), {"type": "http.disconnect"}]

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/1/handlers",
             "raw_path": b"/1/handlers", "root_path": "", "query_string": b"",
             "headers": [(b"host", b"test"), JSON, (b"luna-account-id", account.encode())],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2)}
    async with app.router.lifespan_context(app):
        with caplog.at_level(logging.INFO, logger="luna_handlers"):
            await app(scope, receive, send)
        assert sent == []
        # One line, the access line, counts it as 499 (nginx's "client closed request").
        assert [(r.name, r.levelname) for r in caplog.records] == [
            ("luna_handlers.access", "INFO")]
        assert "POST /1/handlers 499" in caplog.text
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            listed = await http.get("/1/handlers", headers=acc(account))
            assert listed.json() == {"handlers": []}

            async def chunks() -> AsyncIterator[bytes]:
                yield b'{"description": "sent in '
                yield b'chunks", "policies": {}}'

            created = await http.post("/1/handlers", headers=acc(account) | {
                "Content-Type": "application/json"}, content=chunks())
            assert created.status_code == 201, created.text
            handler_id = created.json()["handler_id"]
            got = await http.get(f"/1/handlers/{handler_id}")
            assert orjson.loads(got.content)["description"] == "sent in chunks"


def test_created_sends_what_a_json_response_with_location_sends() -> None:
    handler_id = "5f0e9c2a-7b1d-4c3e-8a9f-0123456789ab"
    url = f"/1/handlers/{handler_id}"
    response = deps.created("/1/handlers", "handler_id", handler_id)
    expected = ORJSONResponse({"handler_id": handler_id, "url": url}, status_code=201,
                              headers={"Location": url})
    assert (response.status_code, response.body, response.raw_headers) == (
        expected.status_code, expected.body, expected.raw_headers)


@pytest.mark.parametrize("query", [
    b"", b"page=2&page_size=10", b"description=a+b%20c", b"handler_ids=&page=",
    b"page=1&page=2", b"description=%E2%9C%93", b"description=\xe9", b"flag", b"a=1&&b=2",
    b"description=%zz",
])
def test_query_items_read_as_starlette_reads_them(query: bytes) -> None:
    request = Request({"type": "http", "query_string": query, "headers": []})
    assert deps.query_items(request) == request.query_params.multi_items()


def test_no_content_is_what_starlette_sends_for_204() -> None:
    ours, theirs = deps.no_content(), Response(status_code=204)
    assert (ours.status_code, ours.body, ours.raw_headers) == (
        theirs.status_code, theirs.body, theirs.raw_headers)

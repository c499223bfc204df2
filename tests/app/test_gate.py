"""The large-page gate: which requests it holds, how many at once, and bodies sent whole."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from luna_handlers.app.gate import CHUNK, SLOTS, LargePageGate, is_large_page
from tests.app.conftest import acc, create_handler, new_account


def _scope(path: str, query: bytes, method: str = "GET") -> dict[str, Any]:
    return {"type": "http", "path": path, "method": method, "query_string": query}


@pytest.mark.parametrize(("path", "query", "method", "large"), [
    ("/1/handlers", b"page_size=1000", "GET", True),
    ("/1/verifiers", b"page=2&page_size=101", "GET", True),
    ("/1/handlers", b"page_size=100", "GET", False),
    ("/1/handlers", b"", "GET", False),
    ("/1/handlers", b"page_size=abc", "GET", False),
    ("/1/handlers", b"page_size=1000", "POST", False),
    ("/1/handlers/count", b"page_size=1000", "GET", False),
])
def test_is_large_page(path: str, query: bytes, method: str, large: bool) -> None:
    assert is_large_page(_scope(path, query, method)) is large


async def test_at_most_slots_large_pages_at_once_each_sent_in_chunks() -> None:
    running = 0
    most = 0
    body = b"x" * (CHUNK * 2 + 7)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.01)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
        running -= 1

    gate = LargePageGate(app)
    sent: list[list[Message]] = [[] for _ in range(6)]

    async def one(index: int) -> None:
        async def send(message: Message) -> None:
            sent[index].append(message)

        async def receive() -> Message:
            return {"type": "http.disconnect"}

        await gate(_scope("/1/handlers", b"page_size=1000"), receive, send)

    await asyncio.gather(*(one(i) for i in range(6)))
    assert most == SLOTS
    for messages in sent:
        pieces = messages[1:]
        assert [len(m["body"]) for m in pieces] == [CHUNK, CHUNK, 7]
        assert [m["more_body"] for m in pieces] == [True, True, False]
        assert b"".join(m["body"] for m in pieces) == body


async def test_a_gated_page_equals_the_small_pages(client: httpx.AsyncClient) -> None:
    account = new_account()
    for _ in range(150):  # over a CHUNK of rendered handlers
        await create_handler(client, account)
    big = await client.get("/1/handlers?page_size=1000", headers=acc(account))
    assert big.status_code == 200 and len(big.content) > CHUNK
    small = []
    for page in (1, 2):
        answer = await client.get(f"/1/handlers?page_size=75&page={page}", headers=acc(account))
        small += answer.json()["handlers"]
    assert big.json()["handlers"] == small

"""Bodies of the processing routes: raw images, multipart parts, limits (no engine, no DB)."""

from __future__ import annotations

import httpx
import pytest
from starlette.requests import Request
from starlette.types import Message

from luna_handlers.app.application import create_app
from luna_handlers.app.image_body import read_images
from luna_handlers.errors import BadContentType, PayloadTooLarge
from tests.app.conftest import make_settings


def _no_database() -> None:
    raise AssertionError("the lifespan is not run")


APP = create_app(make_settings(), _no_database)  # type: ignore[arg-type]


def _request(content_type: str | None, body: bytes) -> Request:
    messages: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> Message:
        return messages.pop(0)

    headers = [] if content_type is None else [(b"content-type", content_type.encode())]
    return Request({"type": "http", "method": "POST", "path": "/", "headers": headers,
                    "app": APP}, receive)


def _multipart(files: list[tuple[str, tuple[str | None, bytes, str]]]) -> tuple[str, bytes]:
    request = httpx.Request("POST", "http://x/", files=files)
    return request.headers["content-type"], request.read()


async def test_a_raw_image_is_one_image() -> None:
    body = await read_images(_request("image/jpeg", b"\xff\xd8 jpeg"))
    assert (body.images, body.filenames, body.policies) == ([b"\xff\xd8 jpeg"], [None], None)


async def test_multipart_images_in_order_with_policies() -> None:
    content_type, data = _multipart([
        ("image", ("a.jpg", b"first", "image/jpeg")),
        ("policies", (None, b'{"detect_policy": {}}', "application/json")),
        ("image", ("b.png", b"second\r\n--not-a-boundary", "image/png"))])
    body = await read_images(_request(content_type, data))
    assert body.images == [b"first", b"second\r\n--not-a-boundary"]
    assert body.filenames == ["a.jpg", "b.png"]
    assert body.policies == {"detect_policy": {}}


def _files(*names: str) -> list[tuple[str, tuple[str | None, bytes, str]]]:
    return [(name, ("f", b"{}" if name == "policies" else b"x", "image/jpeg"))
            for name in names]


BAD = [
    (None, b"x", "expected 'image/*' or 'multipart/form-data'"),
    ("application/json", b"{}", "expected 'image/*'"),
    (*_multipart(_files("policies")), "no 'image' part"),
    (*_multipart(_files("image", "other")), "Unexpected multipart part 'other'"),
    (*_multipart([("image", ("f", b"x", "image/jpeg")),
                  ("policies", ("p", b"{not json", "application/json"))]), "not valid JSON"),
    ("multipart/form-data; boundary=zzz", b"no parts here", "no parts"),
    ("multipart/form-data", b"--x\r\n\r\n", "no parts"),
]


@pytest.mark.parametrize(("content_type", "data", "message"), BAD)
async def test_bad_bodies(content_type: str | None, data: bytes, message: str) -> None:
    with pytest.raises(BadContentType) as caught:
        await read_images(_request(content_type, data))
    assert message in caught.value.detail


async def test_the_body_limit_counts_what_arrives() -> None:
    limit = APP.state.settings.engine.max_request_bytes
    with pytest.raises(PayloadTooLarge):
        await read_images(_request("image/jpeg", b"x" * (limit + 1)))

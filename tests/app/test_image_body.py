"""Bodies of the processing routes: raw images, multipart parts, limits (no engine, no DB)."""

from __future__ import annotations

import base64

import httpx
import orjson
import pytest
from starlette.requests import Request
from starlette.types import Message

from luna_handlers.app.application import create_app
from luna_handlers.app.image_body import read_images
from luna_handlers.errors import BadContentType, BadInputJson, PayloadTooLarge
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
    (None, b"x", "expected 'image/*', 'multipart/form-data' or 'application/json'"),
    ("text/plain", b"{}", "expected 'image/*'"),
    ("application/json", b"{not json", "not valid JSON"),
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


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def test_json_images_in_order_with_policies() -> None:
    document = {"images": [{"image": _b64(b"first"), "mimetype": "image/jpeg",
                            "filename": "a.jpg"}, {"image": _b64(b"second")}],
                "policies": {"detect_policy": {}}}
    body = await read_images(_request("application/json; charset=utf-8",
                                      orjson.dumps(document)))
    assert body.images == [b"first", b"second"]
    assert body.filenames == ["a.jpg", None]
    assert body.policies == {"detect_policy": {}}


BAD_JSON = [
    ([], ""),
    ({}, "images"),
    ({"images": []}, "images"),
    ({"images": [{"image": _b64(b"x")}], "other": 1}, "other"),
    ({"images": ["not an object"]}, "images[0]"),
    ({"images": [{"mimetype": "image/jpeg"}]}, "images[0].image"),
    ({"images": [{"image": "not base64!"}]}, "images[0].image"),
    ({"images": [{"image": ""}]}, "images[0].image"),
    ({"images": [{"image": _b64(b"x")}, {"image": _b64(b"y"), "mimetype": "text/plain"}]},
     "images[1].mimetype"),
    ({"images": [{"image": _b64(b"x"), "filename": 3}]}, "images[0].filename"),
    ({"images": [{"image": _b64(b"x"), "size": 3}]}, "images[0].size"),
    ({"images": [{"image": _b64(b"x"), "face_bounding_boxes": [{"x": 1}]}]},
     "images[0].face_bounding_boxes"),
]


@pytest.mark.parametrize(("document", "path"), BAD_JSON)
async def test_bad_json_bodies_name_the_field(document: object, path: str) -> None:
    with pytest.raises(BadInputJson) as caught:
        await read_images(_request("application/json", orjson.dumps(document)))
    assert (caught.value.status, caught.value.path) == (400, path)


async def test_a_json_body_counts_against_the_image_request_limit() -> None:
    limit = APP.state.settings.engine.max_request_bytes
    padding = _b64(b"x" * (limit // 4 * 3 + 3))
    with pytest.raises(PayloadTooLarge):
        await read_images(_request("application/json",
                                   orjson.dumps({"images": [{"image": padding}]})))

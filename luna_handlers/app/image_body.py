"""Bodies of the processing routes: one raw image, or multipart with images and policies.

* ``Content-Type: image/*``: the body is one image (what it is is decided by its content,
  in the engine, not by this header).
* ``multipart/form-data``: one or more parts named ``image`` (any content type) and at most
  one part named ``policies`` (JSON); any other part name is a 400.
* ``application/json``: ``{"images": [{"image": base64, "mimetype"?: "image/...",
  "filename"?: str}, ...], "policies"?: {...}}`` (LUNA's layout is not published in detail:
  this one is ours, README "Processing"). ``face_bounding_boxes`` (skip detection, use the
  given box) is refused by name: the built-in engine always detects.

The whole body is bounded by ``FACE_ENGINE.max_request_bytes`` (32 MiB by default), checked on
``Content-Length`` before reading and on the bytes that arrive; each image is then bounded by
the engine's ``max_image_bytes``. Multipart is parsed by the standard library's MIME parser
after the bounded read.
"""

from __future__ import annotations

import base64
import binascii
import email.parser
import email.policy
from dataclasses import dataclass

import orjson
from starlette.requests import Request

from luna_handlers.app import deps
from luna_handlers.app.middleware import header
from luna_handlers.errors import BadContentType, BadInputJson

IMAGE_PART = "image"
POLICIES_PART = "policies"
MULTIPART = "multipart/form-data"
JSON = "application/json"
#: Keys of one item of a JSON body's ``images``.
IMAGE_KEYS = ("image", "mimetype", "filename")


@dataclass(frozen=True)
class ImagesBody:
    """The images of a request (in order, with their file names) and its decoded policies."""

    images: list[bytes]
    filenames: list[str | None]
    policies: object | None


def _multipart(content_type: str, body: bytes) -> ImagesBody:
    parser = email.parser.BytesParser(policy=email.policy.HTTP)
    message = parser.parsebytes(b"Content-Type: " + content_type.encode("latin-1")
                                + b"\r\n\r\n" + body)
    if not message.is_multipart():
        raise BadContentType("Bad multipart body: no parts (is the boundary right?)")
    images: list[bytes] = []
    filenames: list[str | None] = []
    policies: object | None = None
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if name == IMAGE_PART:
            images.append(data)
            filenames.append(part.get_filename())
        elif name == POLICIES_PART and policies is None:
            try:
                policies = orjson.loads(data)
            except orjson.JSONDecodeError:
                raise BadContentType("The 'policies' part is not valid JSON") from None
        else:
            raise BadContentType(f"Unexpected multipart part {name!r}: expected 'image' "
                                 "parts and at most one 'policies' part")
    if not images:
        raise BadContentType("The multipart body has no 'image' part")
    return ImagesBody(images, filenames, policies)


def _json_image(path: str, item: object) -> tuple[bytes, str | None]:
    if not isinstance(item, dict):
        raise BadInputJson(path, "must be an object with a base64 'image'")
    if "face_bounding_boxes" in item:
        raise BadInputJson(f"{path}.face_bounding_boxes",
                           "not supported: the built-in engine always detects the faces")
    unknown = [key for key in item if key not in IMAGE_KEYS]
    if unknown:
        raise BadInputJson(f"{path}.{unknown[0]}", "unknown key")
    mimetype, filename = item.get("mimetype"), item.get("filename")
    if mimetype is not None and not (isinstance(mimetype, str) and mimetype.startswith("image/")):
        raise BadInputJson(f"{path}.mimetype", "must be an image type such as 'image/jpeg'")
    if filename is not None and not isinstance(filename, str):
        raise BadInputJson(f"{path}.filename", "must be a string")
    data = item.get("image")
    try:
        image = base64.b64decode(data, validate=True) if isinstance(data, str) else b""
    except (binascii.Error, ValueError):
        image = b""
    if not image:
        raise BadInputJson(f"{path}.image", "must be a non-empty base64 string")
    return image, filename


def _json_body(document: object) -> ImagesBody:
    if not isinstance(document, dict):
        raise BadInputJson("", "must be an object with 'images'")
    unknown = [key for key in document if key not in ("images", POLICIES_PART)]
    if unknown:
        raise BadInputJson(unknown[0], "unknown key")
    items = document.get("images")
    if not isinstance(items, list) or not items:
        raise BadInputJson("images", "must be a non-empty list")
    images, filenames = zip(*(_json_image(f"images[{index}]", item)
                              for index, item in enumerate(items)), strict=True)
    return ImagesBody(list(images), list(filenames), document.get(POLICIES_PART))


async def read_images(request: Request) -> ImagesBody:
    """The images (and policies) of a processing request."""
    limit = deps.settings(request).engine.max_request_bytes
    raw_type = header(request.scope, b"content-type")
    content_type = raw_type.decode("latin-1") if raw_type is not None else ""
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type.startswith("image/"):
        return ImagesBody([await deps.read_bounded(request, limit)], [None], None)
    if media_type == MULTIPART:
        return _multipart(content_type, await deps.read_bounded(request, limit))
    if media_type == JSON:
        return _json_body(deps.decode_json(request, await deps.read_bounded(request, limit)))
    raise BadContentType(
        "Bad content type: expected 'image/*', 'multipart/form-data' or 'application/json'")

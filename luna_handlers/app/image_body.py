"""Bodies of the processing routes: one raw image, or multipart with images and policies.

* ``Content-Type: image/*``: the body is one image (what it is is decided by its content,
  in the engine, not by this header).
* ``multipart/form-data``: one or more parts named ``image`` (any content type) and at most
  one part named ``policies`` (JSON); any other part name is a 400.

The whole body is bounded by ``FACE_ENGINE.max_request_bytes`` (32 MiB by default), checked on
``Content-Length`` before reading and on the bytes that arrive; each image is then bounded by
the engine's ``max_image_bytes``. Multipart is parsed by the standard library's MIME parser
after the bounded read.
"""

from __future__ import annotations

import email.parser
import email.policy
from dataclasses import dataclass

import orjson
from starlette.requests import Request

from luna_handlers.app import deps
from luna_handlers.app.middleware import header
from luna_handlers.errors import BadContentType

IMAGE_PART = "image"
POLICIES_PART = "policies"
MULTIPART = "multipart/form-data"


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
    raise BadContentType("Bad content type: expected 'image/*' or 'multipart/form-data'")

"""Errors of the face engine and of running policies (codes 35xxx and 36xxx: our choice;
34007 is LUNA's)."""

from __future__ import annotations

from typing import ClassVar

from luna_handlers.errors.base import LunaError

# --- face engine (codes 35001-35005: our choice, the engine's block; not published by LUNA) ---


class EngineBusy(LunaError, code=35001, status=503, desc="Face engine busy"):
    """Every engine worker is busy and the bounded queue is full: retry after ``retry_after``
    seconds (sent as ``Retry-After``). Nothing was processed."""

    retry_after: ClassVar[int] = 1

    def __init__(self, queue_size: int) -> None:
        super().__init__(f"All face engine workers are busy and {queue_size} images are waiting")


class BadImage(LunaError, code=35002, status=400, desc="Bad/incomplete input data"):
    """The bytes are not a decodable JPEG, PNG, BMP, TIFF or WebP image (or are truncated)."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"Failed to decode image: {problem}")


class ImageTooLarge(LunaError, code=35003, status=413, desc="Image too large"):
    """The image is over the configured byte or pixel limit (checked before decoding)."""

    def __init__(self, what: str, limit: int, value: int | None = None) -> None:
        has = "" if value is None else f" (it has {value})"
        super().__init__(f"Image is over the limit of {limit} {what}{has}")


class EstimationNotAvailable(LunaError, code=35004, status=400, desc="Bad/incomplete input data"):
    """A policy asks for an estimation the built-in face engine cannot make."""

    def __init__(self, flag: str, what: str) -> None:
        self.flag = flag
        super().__init__(f"Policy '{flag}' asks for {what}, which the face engine cannot estimate")


class EngineModelError(LunaError, code=35005, status=500, desc="Internal server error"):
    """A model file of the face engine is missing or is not the expected file."""



# --- processing (34007 is LUNA's; 36001-36004: our choice, not published by LUNA) ------------


class StaticHandlerPolicies(LunaError, code=34007, status=403, desc="Forbidden"):
    """Policies were sent with a request to a static handler (only dynamic ones take them)."""

    def __init__(self) -> None:
        super().__init__("Allowed use only dynamic handler")


class MultipleFaces(LunaError, code=36001, status=400, desc="Bad/incomplete input data"):
    """``multiface_policy`` 0 and the image has more than one face."""

    def __init__(self, image: int, faces: int) -> None:
        super().__init__(f"Image {image} has {faces} faces, multiface_policy 0 allows one")


class DynamicHandlerWithoutPolicies(LunaError, code=36002, status=400,
                                    desc="Bad/incomplete input data"):
    """A dynamic handler was run without a ``policies`` part."""

    def __init__(self) -> None:
        super().__init__("A dynamic handler needs policies in the request (a 'policies' part)")


class UnsupportedImageType(LunaError, code=36003, status=400, desc="Bad/incomplete input data"):
    """``image_type`` other than 0 (raw image) or 1 (aligned face warp)."""

    def __init__(self, image_type: str) -> None:
        super().__init__(f"image_type {image_type!r} is not supported: 0 (raw image) "
                         "or 1 (face warp) only")


class NoFaceFound(LunaError, code=36004, status=400, desc="Bad/incomplete input data"):
    """A request that needs exactly one face (POST /1/faces) found none, or several."""

    def __init__(self, faces: int) -> None:
        super().__init__(f"The image must have exactly one face, it has {faces}")

"""Decoding client images, by their content, with limits checked before any pixel is decoded.

Pillow recognises the format from the bytes (the Content-Type of the request plays no part)
and only JPEG, PNG, BMP, TIFF and WebP are tried. The pixel limit is checked on the header,
before decoding, so a small file that claims a huge canvas (a decompression bomb) costs
nothing; Pillow's own bomb check stays on as a second line. Truncated files are errors:
``ImageFile.LOAD_TRUNCATED_IMAGES`` is left False.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageOps

from luna_handlers.errors import BadImage, ImageTooLarge

FORMATS = ("JPEG", "PNG", "BMP", "TIFF", "WEBP")

#: A decoded image: (H, W, 3) uint8 in OpenCV's BGR order.
BGRImage = cv2.typing.MatLike


@dataclass(frozen=True)
class ImageLimits:
    """How big an image may be: bytes of the file, pixels of the (first) frame."""

    max_bytes: int
    max_pixels: int


def decode_image(data: bytes, limits: ImageLimits, *, use_exif_info: bool = False) -> BGRImage:
    """Decode ``data`` to a BGR ``uint8`` array (H, W, 3); the first frame of a multi-frame file.

    With ``use_exif_info`` the EXIF orientation tag is applied (a phone photo taken sideways
    comes out upright); without it the pixels are taken as stored.
    """
    if len(data) > limits.max_bytes:
        raise ImageTooLarge("bytes", limits.max_bytes, len(data))
    if not data:
        raise BadImage("empty body")
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
    except Image.DecompressionBombError:
        raise ImageTooLarge("pixels", limits.max_pixels) from None
    except Exception:
        raise BadImage("not a JPEG, PNG, BMP, TIFF or WebP image") from None
    with image:
        width, height = image.size
        if width * height > limits.max_pixels:
            raise ImageTooLarge("pixels", limits.max_pixels, width * height)
        if width == 0 or height == 0:
            raise BadImage("the image has no pixels")
        try:
            image.load()
            upright = ImageOps.exif_transpose(image) if use_exif_info else image
            rgb = upright.convert("RGB")
        except Exception as exc:
            # Every failure of a decoder on client bytes (truncated data, bad chunks, broken
            # tables) is a bad image, never a server error.
            raise BadImage(_decoder_problem(exc)) from None
    return cv2.cvtColor(np.asarray(rgb), cv2.COLOR_RGB2BGR)


def _decoder_problem(exc: Exception) -> str:
    text = str(exc).split("\n", 1)[0][:120]
    return f"the image data is damaged or truncated ({text})" if text else "damaged image data"


def shrink(image: BGRImage, long_side: int) -> tuple[BGRImage, float]:
    """``image`` scaled down so its longer side is at most ``long_side``, and the factor used.

    The detector's cost grows with the pixel count while faces that matter stay detectable
    at this size; the caller divides coordinates by the factor to get back to the original.
    """
    height, width = image.shape[:2]
    longest = max(height, width)
    if longest <= long_side:
        return image, 1.0
    factor = long_side / longest
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), factor

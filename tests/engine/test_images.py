"""Decoding by content, the byte and pixel limits, broken files and EXIF orientation."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from luna_handlers.engine.images import BGRImage, ImageLimits, decode_image, shrink
from luna_handlers.errors import BadImage, ImageTooLarge
from tests.engine.conftest import jpeg

LIMITS = ImageLimits(max_bytes=10 * 1024 * 1024, max_pixels=40_000_000)


def pillow_bytes(image: BGRImage, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)).save(buffer, format=fmt, **params)
    return buffer.getvalue()


@pytest.mark.parametrize(("fmt", "params", "tolerance"), [
    ("JPEG", {"quality": 95}, 12.0),
    ("PNG", {}, 0.0),
    ("BMP", {}, 0.0),
    ("TIFF", {}, 0.0),
    ("WEBP", {"lossless": True}, 0.0),
    ("WEBP", {"quality": 90}, 12.0),
], ids=["jpeg", "png", "bmp", "tiff", "webp-lossless", "webp-lossy"])
def test_every_format_decodes_by_content(photos: dict[str, BGRImage], fmt: str,
                                         params: dict[str, object], tolerance: float) -> None:
    original = photos["astronaut"]
    decoded = decode_image(pillow_bytes(original, fmt, **params), LIMITS)
    assert decoded.shape == original.shape and decoded.dtype == np.uint8
    assert float(np.abs(decoded.astype(float) - original).mean()) <= tolerance


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "I;16"])
def test_other_pixel_modes_become_bgr(photos: dict[str, BGRImage], mode: str) -> None:
    rgb = Image.fromarray(cv2.cvtColor(photos["astronaut"], cv2.COLOR_BGR2RGB))
    converted = rgb.convert("L").convert(mode) if mode == "I;16" else rgb.convert(mode)
    buffer = io.BytesIO()
    converted.save(buffer, format="TIFF")
    assert decode_image(buffer.getvalue(), LIMITS).shape == (512, 512, 3)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (struct.pack(">I", len(payload)) + kind + payload
            + struct.pack(">I", zlib.crc32(kind + payload)))


def png_claiming(width: int, height: int) -> bytes:
    """A valid PNG header for a huge canvas with almost no data: a decompression bomb."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + _png_chunk(b"IEND", b""))


def _gif(photos: dict[str, BGRImage]) -> bytes:
    return pillow_bytes(photos["astronaut"], "GIF")


@pytest.mark.parametrize(("make", "error", "detail"), [
    (lambda p: b"", BadImage, "empty body"),
    (lambda p: b"GIF89a not really", BadImage, "not a JPEG, PNG, BMP, TIFF or WebP image"),
    (lambda p: bytes(range(256)) * 40, BadImage, "not a JPEG, PNG"),
    (lambda p: b'{"image": "json, not pixels"}', BadImage, "not a JPEG, PNG"),
    (_gif, BadImage, "not a JPEG, PNG"),
    (lambda p: jpeg(p["astronaut"])[:5000], BadImage, "damaged or truncated"),
    (lambda p: pillow_bytes(p["astronaut"], "PNG")[:20000], BadImage, "damaged or truncated"),
    (lambda p: pillow_bytes(p["astronaut"], "WEBP")[:3000], BadImage, "Failed to decode image"),
    (lambda p: png_claiming(30000, 30000), ImageTooLarge, "limit of 40000000 pixels"),
    (lambda p: png_claiming(100_000, 100_000), ImageTooLarge, "limit of 40000000 pixels"),
    (lambda p: b"\xff" * (LIMITS.max_bytes + 1), ImageTooLarge, "limit of 10485760 bytes"),
], ids=["empty", "gif-magic-garbage", "random-bytes", "json", "gif", "truncated-jpeg",
        "truncated-png", "truncated-webp", "bomb-png", "bomb-beyond-pillow", "too-many-bytes"])
def test_bad_images_are_client_errors(photos: dict[str, BGRImage], make: object,
                                      error: type[Exception], detail: str) -> None:
    payload = make(photos)  # type: ignore[operator]
    with pytest.raises(error) as caught:
        decode_image(payload, LIMITS)
    assert detail in str(caught.value)
    assert caught.value.status in (400, 413)  # type: ignore[attr-defined]


def test_pixel_limit_counts_the_header_size(photos: dict[str, BGRImage]) -> None:
    payload = jpeg(photos["astronaut"])
    decode_image(payload, ImageLimits(LIMITS.max_bytes, 512 * 512))
    with pytest.raises(ImageTooLarge, match=r"limit of 262143 pixels \(it has 262144\)"):
        decode_image(payload, ImageLimits(LIMITS.max_bytes, 512 * 512 - 1))


def test_exif_orientation_only_when_asked(photos: dict[str, BGRImage]) -> None:
    upright = photos["grace_hopper"]  # 600 high, 512 wide
    stored = cv2.rotate(upright, cv2.ROTATE_90_CLOCKWISE)  # what a sideways camera stores
    exif = Image.Exif()
    exif[0x0112] = 8  # Orientation 8: turn 90 degrees counter-clockwise to display
    payload = pillow_bytes(stored, "JPEG", quality=95, exif=exif.tobytes())
    as_stored = decode_image(payload, LIMITS)
    assert as_stored.shape[:2] == (512, 600)
    turned = decode_image(payload, LIMITS, use_exif_info=True)
    assert turned.shape[:2] == (600, 512)
    assert float(np.abs(turned.astype(float) - upright).mean()) < 12.0


def test_shrink_keeps_the_aspect_and_reports_the_factor(photos: dict[str, BGRImage]) -> None:
    big = cv2.resize(photos["grace_hopper"], (2048, 2400))
    small, factor = shrink(big, 1280)
    assert small.shape[:2] == (1280, round(2048 * 1280 / 2400)) and factor == 1280 / 2400
    same, one = shrink(photos["grace_hopper"], 1280)
    assert same is photos["grace_hopper"] and one == 1.0

"""The async engine on real images: faces out, bad images as 4xx errors, the pool unharmed."""

from __future__ import annotations

import asyncio

import cv2
import numpy as np
import pytest
from PIL import Image

from luna_handlers.engine import DESCRIPTOR_VERSION, DetectOptions, FaceEngine
from luna_handlers.engine.images import BGRImage
from luna_handlers.errors import BadImage, EngineModelError, ImageTooLarge, LunaError
from tests.engine.conftest import engine_settings, jpeg
from tests.engine.test_images import pillow_bytes, png_claiming


async def test_faces_of_a_jpeg(engine: FaceEngine, photos: dict[str, BGRImage]) -> None:
    [face] = await engine.detect_and_extract(jpeg(photos["astronaut"]))
    assert face.score > 0.85 and face.descriptor is not None and face.descriptor.shape == (128,)
    assert DESCRIPTOR_VERSION == 1
    assert await engine.detect_and_extract(jpeg(photos["coffee"])) == []


async def test_max_faces_and_no_descriptor(engine: FaceEngine,
                                           photos: dict[str, BGRImage]) -> None:
    two = np.hstack([photos["astronaut"], cv2.resize(photos["grace_hopper"], (512, 512))])
    assert len(await engine.detect_and_extract(jpeg(two))) == 2
    [best] = await engine.detect_and_extract(
        jpeg(two), DetectOptions(max_faces=1, extract_descriptor=False))
    assert best.descriptor is None


async def test_bad_images_do_not_harm_the_pool(engine: FaceEngine,
                                               photos: dict[str, BGRImage]) -> None:
    good = jpeg(photos["grace_hopper"])
    bad = [b"garbage" * 100, good[: len(good) // 3], png_claiming(50_000, 50_000), b""]
    results = await asyncio.gather(*(engine.detect_and_extract(b) for b in bad * 3),
                                   return_exceptions=True)
    assert all(isinstance(r, BadImage | ImageTooLarge) for r in results)
    assert all(isinstance(r, LunaError) and r.status in (400, 413) for r in results)
    [face] = await engine.detect_and_extract(good)
    assert face.descriptor is not None


async def test_warp_input_gives_the_same_descriptor(engine: FaceEngine,
                                                    photos: dict[str, BGRImage]) -> None:
    [face] = await engine.detect_and_extract(jpeg(photos["camera"]))
    from_warp = await engine.extract_from_warp(face.warp_jpeg)
    assert face.descriptor is not None and from_warp.descriptor is not None
    assert float(face.descriptor @ from_warp.descriptor) > 0.97


async def test_exif_option_reaches_the_decoder(engine: FaceEngine,
                                               photos: dict[str, BGRImage]) -> None:
    exif = Image.Exif()
    exif[0x0112] = 8
    sideways = pillow_bytes(cv2.rotate(photos["grace_hopper"], cv2.ROTATE_90_CLOCKWISE),
                            "JPEG", quality=95, exif=exif.tobytes())
    [upright] = await engine.detect_and_extract(sideways, DetectOptions(use_exif_info=True))
    (rx, ry), (lx, ly) = upright.landmarks5[:2]
    assert abs(ly - ry) < abs(lx - rx)  # eyes side by side: the face is upright


def test_engine_start_names_a_bad_models_dir(tmp_path: object) -> None:
    engine = FaceEngine(engine_settings(models_dir=str(tmp_path)))
    with pytest.raises(EngineModelError, match="is missing"):
        engine.start()


async def test_not_started() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        await FaceEngine(engine_settings()).detect_and_extract(b"x")

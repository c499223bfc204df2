"""Real photos that packages ship, edited copies of them, and one engine for the session."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import matplotlib.cbook
import numpy as np
import pytest
from skimage import data

from luna_handlers.config import EngineSettings, load_settings
from luna_handlers.engine import FaceEngine
from luna_handlers.engine.faces import FaceModels
from luna_handlers.engine.images import BGRImage
from luna_handlers.engine.models import load_models

Edit = Callable[[BGRImage], BGRImage]


def _bgr(rgb_or_gray: np.ndarray) -> BGRImage:
    code = cv2.COLOR_GRAY2BGR if rgb_or_gray.ndim == 2 else cv2.COLOR_RGB2BGR
    return cv2.cvtColor(np.ascontiguousarray(rgb_or_gray), code)


def decode(encoded: bytes) -> BGRImage:
    image = cv2.imdecode(np.frombuffer(encoded, dtype=np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def _grace_hopper() -> BGRImage:
    path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return decode(Path(str(path)).read_bytes())


#: One face each (public domain / CC0 photos shipped by scikit-image and matplotlib).
FACES: dict[str, Callable[[], BGRImage]] = {
    "astronaut": lambda: _bgr(data.astronaut()),
    "camera": lambda: _bgr(data.camera()),
    "grace_hopper": _grace_hopper,
}
#: No face at all.
NO_FACES: dict[str, Callable[[], BGRImage]] = {
    "coffee": lambda: _bgr(data.coffee()),
    "cat": lambda: _bgr(data.chelsea()),
}


def rotate(image: BGRImage, degrees: float) -> BGRImage:
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    return cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_CONSTANT)


def recompress(image: BGRImage, quality: int) -> BGRImage:
    return decode(jpeg(image, quality))


def scale(image: BGRImage, factor: float) -> BGRImage:
    return cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)


def grayscale(image: BGRImage) -> BGRImage:
    return cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)


EDITS: dict[str, Edit] = {
    "rotated+10": lambda image: rotate(image, 10),
    "rotated-10": lambda image: rotate(image, -10),
    "scaled-half": lambda image: scale(image, 0.5),
    "scaled-1.5": lambda image: scale(image, 1.5),
    "jpeg-q20": lambda image: recompress(image, 20),
    "cropped": lambda image: image[image.shape[0] // 10:, image.shape[1] // 10:],
    "flipped": lambda image: cv2.flip(image, 1),
    "grayscale": grayscale,
}


def jpeg(image: BGRImage, quality: int = 95) -> bytes:
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return encoded.tobytes()


@pytest.fixture(scope="session")
def photos() -> dict[str, BGRImage]:
    return {name: load() for name, load in {**FACES, **NO_FACES}.items()}


def engine_settings(**changes: object) -> EngineSettings:
    return dataclasses.replace(load_settings(environ={}).engine, **changes)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def models() -> FaceModels:
    settings = engine_settings()
    return FaceModels(load_models(), score_threshold=settings.detection_threshold,
                      detect_long_side=settings.detect_long_side)


@pytest.fixture(scope="session")
def engine() -> Iterator[FaceEngine]:
    face_engine = FaceEngine(engine_settings(workers=2, queue_size=16))
    face_engine.start()
    yield face_engine
    face_engine.close()

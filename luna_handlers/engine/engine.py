"""The face engine as the service sees it: async calls, inference on the worker pool.

Everything CPU-bound (decoding, detection, alignment, descriptors, JPEG encoding of the
samples) happens inside one job in a worker process, so the event loop only hands over the
bytes and gets the faces back. Jobs are module-level functions (they are pickled).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import cv2

from luna_handlers.config import EngineSettings
from luna_handlers.engine.faces import WARP_SIZE, Face, FaceModels, Rect, encode_jpeg
from luna_handlers.engine.images import ImageLimits, decode_image
from luna_handlers.engine.models import ModelBytes, load_models
from luna_handlers.engine.workers import WorkerPool


@dataclass(frozen=True)
class DetectOptions:
    """Per-request choices. ``max_faces`` keeps only the best N faces (LUNA's
    ``multiface_policy`` 2 is ``max_faces=1``); a descriptor is extracted per kept face
    unless ``extract_descriptor`` is False."""

    use_exif_info: bool = False
    extract_descriptor: bool = True
    max_faces: int | None = None


DEFAULT_OPTIONS = DetectOptions()


def _worker_models(models: ModelBytes, settings: EngineSettings) -> FaceModels:
    cv2.setNumThreads(settings.opencv_threads)
    return FaceModels(models, score_threshold=settings.detection_threshold,
                      detect_long_side=settings.detect_long_side)


def _detect_and_extract(image: bytes, limits: ImageLimits, options: DetectOptions,
                        models: FaceModels) -> list[Face]:
    pixels = decode_image(image, limits, use_exif_info=options.use_exif_info)
    rows = models.detect(pixels)[:options.max_faces]
    return [models.describe(pixels, row, extract_descriptor=options.extract_descriptor)
            for row in rows]


def _extract_from_warp(image: bytes, limits: ImageLimits, models: FaceModels) -> Face:
    pixels = decode_image(image, limits)
    height, width = pixels.shape[:2]
    warp = cv2.resize(pixels, (WARP_SIZE, WARP_SIZE), interpolation=cv2.INTER_AREA)
    jpeg = encode_jpeg(warp)
    return Face(rect=Rect(0.0, 0.0, float(width), float(height)), landmarks5=(), score=1.0,
                descriptor=models.descriptor_of_warp(warp), warp_jpeg=jpeg, crop_jpeg=jpeg)


class FaceEngine:
    """YuNet + SFace behind a bounded pool of worker processes (``FACE_ENGINE`` settings)."""

    def __init__(self, settings: EngineSettings) -> None:
        self._settings = settings
        self._limits = ImageLimits(settings.max_image_bytes, settings.max_image_pixels)
        self._pool: WorkerPool[FaceModels] | None = None

    def start(self) -> None:
        """Verify the model files and start the workers (each builds its models): ~1-2 s,
        blocking; call it before serving (or in a thread).

        Raises :class:`~luna_handlers.errors.EngineModelError` naming a missing or wrong file.
        """
        settings = self._settings
        models = load_models(Path(settings.models_dir) if settings.models_dir else None)
        pool = WorkerPool(partial(_worker_models, models, settings),
                          workers=settings.workers, queue_size=settings.queue_size)
        pool.start()
        self._pool = pool

    def close(self) -> None:
        """Stop the workers (waiting requests get 503 busy); blocks until they exit."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def _running(self) -> WorkerPool[FaceModels]:
        if self._pool is None:
            raise RuntimeError("the face engine is not started")
        return self._pool

    async def detect_and_extract(self, image: bytes,
                                 options: DetectOptions = DEFAULT_OPTIONS) -> list[Face]:
        """Every face of ``image`` (file bytes), best detection score first.

        Raises ``BadImage``, ``ImageTooLarge`` (nothing decoded) or ``EngineBusy``. An image
        without a face is an empty list.
        """
        return await self._running().run(
            partial(_detect_and_extract, image, self._limits, options))

    async def extract_from_warp(self, image: bytes) -> Face:
        """The face of an already aligned 112x112 warp (LUNA ``image_type=1``), no detection.

        Other sizes are resized to 112x112; the rect is the whole image, no landmarks.
        """
        return await self._running().run(partial(_extract_from_warp, image, self._limits))

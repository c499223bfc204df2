"""One worker's detector and recognizer: YuNet boxes and landmarks, SFace descriptors.

Neither OpenCV object is thread-safe, so every worker process builds its own
:class:`FaceModels` and only that worker touches it. SFace runs through ``cv2.dnn`` with the input
named ``data``: with OpenCV 5 ``FaceRecognizerSF.feature()`` fails on the int8 model, while
its ``alignCrop`` (the standard 5-point similarity warp to 112x112) works and is used.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from luna_handlers.engine.images import BGRImage, shrink
from luna_handlers.engine.models import ModelBytes

#: Version of the descriptors this engine makes (SFace 2021dec int8bq, 128 float32, L2-norm
#: 1, BGR 0..255 input); descriptors of another version must never be compared with these.
DESCRIPTOR_VERSION = 1
DESCRIPTOR_SIZE = 128
WARP_SIZE = 112
JPEG_QUALITY = 90
#: YuNet's overlap threshold for merging boxes and its upper bound of boxes per image.
_NMS_THRESHOLD = 0.3
_TOP_K = 5000

Descriptor = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Rect:
    """A face box in the original image's pixel coordinates."""

    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Face:
    """One detected face: where it is, how sure the detector is, and what it looks like.

    ``landmarks5`` are (x, y) of the right eye, left eye, nose tip, right and left mouth
    corner (the subject's right and left). ``descriptor`` is None when extraction was not
    asked for. ``warp_jpeg`` is the aligned 112x112 face, ``crop_jpeg`` the detection box
    cut out of the image (clipped to it).
    """

    rect: Rect
    landmarks5: tuple[tuple[float, float], ...]
    score: float
    descriptor: Descriptor | None
    warp_jpeg: bytes
    crop_jpeg: bytes


class FaceModels:
    """A detector and a recognizer made from verified model bytes; one per worker."""

    def __init__(self, models: ModelBytes, *, score_threshold: float,
                 detect_long_side: int) -> None:
        detector_buffer = np.frombuffer(models.detector, dtype=np.uint8)
        recognizer_buffer = np.frombuffer(models.recognizer, dtype=np.uint8)
        empty = np.zeros(0, dtype=np.uint8)
        self._detector = cv2.FaceDetectorYN.create(
            "onnx", detector_buffer, empty, (320, 320), score_threshold, _NMS_THRESHOLD, _TOP_K)
        self._aligner = cv2.FaceRecognizerSF.create("onnx", recognizer_buffer, empty)
        self._net = cv2.dnn.readNetFromONNX(recognizer_buffer)
        self._long_side = detect_long_side

    def detect(self, image: BGRImage) -> npt.NDArray[np.float32]:
        """YuNet rows (x, y, w, h, 5 x (x, y), score) in ``image`` coordinates, best first.

        Large images are detected on a shrunk copy; the rows are scaled back.
        """
        small, factor = shrink(image, self._long_side)
        height, width = small.shape[:2]
        self._detector.setInputSize((width, height))
        _, rows = self._detector.detect(small)
        if rows is None:
            return np.zeros((0, 15), dtype=np.float32)
        found = np.asarray(rows, dtype=np.float32)
        found[:, :14] /= np.float32(factor)
        return found[np.argsort(-found[:, 14], kind="stable")]

    def describe(self, image: BGRImage, row: npt.NDArray[np.float32], *,
                 extract_descriptor: bool) -> Face:
        """The :class:`Face` of one detector row: samples and (if asked) the descriptor."""
        warp = self._aligner.alignCrop(image, row)
        descriptor = self.descriptor_of_warp(warp) if extract_descriptor else None
        x, y, w, h = (float(v) for v in row[:4])
        return Face(
            rect=Rect(x, y, w, h),
            landmarks5=tuple((float(row[4 + 2 * i]), float(row[5 + 2 * i])) for i in range(5)),
            score=float(row[14]),
            descriptor=descriptor,
            warp_jpeg=encode_jpeg(warp),
            crop_jpeg=encode_jpeg(_crop(image, x, y, w, h)),
        )

    def descriptor_of_warp(self, warp: BGRImage) -> Descriptor:
        """The L2-normalised SFace descriptor of an aligned 112x112 BGR face."""
        blob = cv2.dnn.blobFromImage(warp, 1.0, (WARP_SIZE, WARP_SIZE), (0.0, 0.0, 0.0),
                                     swapRB=False, crop=False)
        self._net.setInput(blob, "data")
        vector: Descriptor = np.asarray(self._net.forward(), dtype=np.float32).reshape(-1)
        norm = float(np.linalg.norm(vector))
        # A zero output cannot be normalised; it is returned as is and matches nothing.
        return (vector / np.float32(norm)).astype(np.float32) if norm > 0 else vector


def _crop(image: BGRImage, x: float, y: float, w: float, h: float) -> BGRImage:
    height, width = image.shape[:2]
    left, top = max(0, int(np.floor(x))), max(0, int(np.floor(y)))
    right, bottom = min(width, int(np.ceil(x + w))), min(height, int(np.ceil(y + h)))
    if right <= left or bottom <= top:
        return image[0:1, 0:1]
    return image[top:bottom, left:right]


def encode_jpeg(image: BGRImage) -> bytes:
    """``image`` as JPEG bytes (quality 90)."""
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return encoded.tobytes()

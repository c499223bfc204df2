"""Photos for the processing routes: JPEG bytes of the reference faces, edited copies,
negatives and a two-face composite."""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np

from tests.engine.conftest import EDITS, FACES, NO_FACES, jpeg


@cache
def photo(name: str, edit: str | None = None) -> bytes:
    """JPEG of a reference photo (``astronaut``, ``camera``, ``grace_hopper``, ``coffee``,
    ``cat``), optionally edited (a key of ``EDITS``)."""
    image = {**FACES, **NO_FACES}[name]()
    return jpeg(EDITS[edit](image) if edit else image)


@cache
def two_faces() -> bytes:
    """The astronaut and Grace Hopper side by side."""
    left = FACES["astronaut"]()
    right = cv2.resize(FACES["grace_hopper"](), (left.shape[1], left.shape[0]))
    return jpeg(np.hstack([left, right]))

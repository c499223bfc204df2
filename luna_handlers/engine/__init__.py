"""The built-in face engine: YuNet detection and SFace descriptors on the CPU, via OpenCV.

No HTTP and no database here: the service calls :class:`FaceEngine` and turns its errors
(all in ``luna_handlers.errors``) into responses. See README.md, "Face engine".
"""

from luna_handlers.engine.engine import DEFAULT_OPTIONS, DetectOptions, FaceEngine
from luna_handlers.engine.estimations import (
    UNAVAILABLE_ESTIMATIONS,
    check_estimations,
    unavailable_requested,
)
from luna_handlers.engine.faces import DESCRIPTOR_SIZE, DESCRIPTOR_VERSION, Descriptor, Face, Rect
from luna_handlers.engine.similarity import cosine_of, similarities_of, similarity_of

__all__ = [
    "DEFAULT_OPTIONS",
    "DESCRIPTOR_SIZE",
    "DESCRIPTOR_VERSION",
    "UNAVAILABLE_ESTIMATIONS",
    "Descriptor",
    "DetectOptions",
    "Face",
    "FaceEngine",
    "Rect",
    "check_estimations",
    "cosine_of",
    "similarities_of",
    "similarity_of",
    "unavailable_requested",
]

"""LUNA's 0..1 similarity from the engine's cosine, and back.

SFace descriptors are compared by cosine (a dot product: they are L2-normalised), in -1..1.
LUNA thresholds are similarities in 0..1 (a verifier's ``verification_threshold`` is 0.9 by
default; match thresholds of 0.5..0.9 are usual). The mapping is piecewise linear through
these knots (cosine -> similarity)::

    -1.0  -> 0.0
     0.30 -> 0.30   different people on the reference photos stay below (max cosine ~0.27)
     0.363 -> 0.50  SFace's published same-person cosine threshold
     0.45 -> 0.90   the default verification threshold: a stricter cosine than SFace's
     1.0  -> 1.0    the same image

Every segment has a positive slope, so the mapping is strictly increasing: the order of
candidates by similarity is their order by cosine, and a similarity threshold is one cosine
threshold (:func:`cosine_of`), which lets a database filter on the raw dot product.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

COSINE_KNOTS = (-1.0, 0.30, 0.363, 0.45, 1.0)
SIMILARITY_KNOTS = (0.0, 0.30, 0.50, 0.90, 1.0)

FloatArray = npt.NDArray[np.floating]


def similarity_of(cosine: float) -> float:
    """LUNA similarity (0..1) of one cosine (clipped to -1..1 first)."""
    return float(np.interp(cosine, COSINE_KNOTS, SIMILARITY_KNOTS))


def similarities_of(cosines: FloatArray) -> npt.NDArray[np.float64]:
    """:func:`similarity_of` over an array."""
    return np.interp(cosines, COSINE_KNOTS, SIMILARITY_KNOTS)


def cosine_of(similarity: float) -> float:
    """The cosine whose similarity is ``similarity``: the inverse of :func:`similarity_of`."""
    return float(np.interp(similarity, SIMILARITY_KNOTS, COSINE_KNOTS))

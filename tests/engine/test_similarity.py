"""The cosine -> similarity mapping: monotone, invertible, and calibrated on real photos."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from luna_handlers.engine.faces import Descriptor, FaceModels
from luna_handlers.engine.images import BGRImage
from luna_handlers.engine.similarity import (
    COSINE_KNOTS,
    SIMILARITY_KNOTS,
    cosine_of,
    similarities_of,
    similarity_of,
)
from tests.engine.conftest import EDITS, FACES

#: The verifier's default ``verification_threshold`` (0.9) and usual LUNA match thresholds.
DEFAULT_THRESHOLDS = (0.5, 0.8, 0.9)
#: How far (in similarity) every default threshold must stay from both groups.
MARGIN = 0.05


def test_strictly_increasing_from_0_to_1() -> None:
    cosines = np.linspace(-1.0, 1.0, 20001)
    values = similarities_of(cosines)
    assert values[0] == 0.0 and values[-1] == 1.0
    assert bool(np.all(np.diff(values) > 0))
    assert similarity_of(-5.0) == 0.0 and similarity_of(5.0) == 1.0


@pytest.mark.parametrize(("cosine", "similarity"), list(zip(COSINE_KNOTS, SIMILARITY_KNOTS,
                                                            strict=True)))
def test_knots_and_inverse(cosine: float, similarity: float) -> None:
    assert similarity_of(cosine) == pytest.approx(similarity)
    assert cosine_of(similarity) == pytest.approx(cosine)


def test_inverse_everywhere() -> None:
    for similarity in np.linspace(0.0, 1.0, 101):
        assert similarity_of(cosine_of(float(similarity))) == pytest.approx(similarity)


def _descriptor(models: FaceModels, image: BGRImage) -> Descriptor:
    [row] = models.detect(image)
    face = models.describe(image, row, extract_descriptor=True)
    assert face.descriptor is not None
    return face.descriptor


def test_default_thresholds_separate_same_from_different(
        models: FaceModels, photos: dict[str, BGRImage]) -> None:
    """Same person = an edited copy against its original; different = two photos. Every
    default threshold lies between the groups with ``MARGIN`` to spare."""
    originals = {name: _descriptor(models, photos[name]) for name in FACES}
    same = [similarity_of(float(_descriptor(models, edit(photos[name])) @ originals[name]))
            for name in FACES for edit in EDITS.values()]
    different = [similarity_of(float(originals[a] @ originals[b]))
                 for a, b in itertools.combinations(FACES, 2)]
    lowest_same, highest_different = min(same), max(different)
    print(f"same person: similarity >= {lowest_same:.3f}; different: <= {highest_different:.3f}")
    assert lowest_same - max(DEFAULT_THRESHOLDS) >= MARGIN
    assert min(DEFAULT_THRESHOLDS) - highest_different >= MARGIN

"""Exact top-k cosine in numpy over N random normalised float32[128] descriptors.

Input for deciding where matching runs (in SQL or in the process): one probe, one matrix
product, ``argpartition`` for the k best, then a sort of those k.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import numpy.typing as npt

from luna_handlers.engine.faces import DESCRIPTOR_SIZE


def random_descriptors(count: int, rng: np.random.Generator) -> npt.NDArray[np.float32]:
    matrix = rng.standard_normal((count, DESCRIPTOR_SIZE), dtype=np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix


def top_k(matrix: npt.NDArray[np.float32], probe: npt.NDArray[np.float32],
          k: int) -> npt.NDArray[np.intp]:
    """Indexes of the ``k`` rows most similar to ``probe``, best first."""
    scores = matrix @ probe
    best = np.argpartition(scores, -k)[-k:]
    return best[np.argsort(-scores[best])]


def bench_top_k(count: int, k: int = 10, repeats: int = 30) -> tuple[float, float]:
    """(p50 ms, max ms) of one probe against ``count`` candidates."""
    rng = np.random.default_rng(10)
    matrix = random_descriptors(count, rng)
    probes = random_descriptors(repeats, rng)
    top_k(matrix, probes[0], k)  # warm-up
    times = []
    for probe in probes:
        began = time.perf_counter()
        top_k(matrix, probe, k)
        times.append((time.perf_counter() - began) * 1e3)
    return statistics.median(times), max(times)

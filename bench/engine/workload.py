"""The bench's images and its measurement record (shared by every side of the comparison)."""

from __future__ import annotations

import heapq
import random
import statistics
from dataclasses import dataclass
from pathlib import Path

import cv2
import matplotlib.cbook
import numpy as np
from skimage import data

WIDTH, HEIGHT = 640, 480


def _bgr(rgb_or_gray: np.ndarray) -> np.ndarray:
    code = cv2.COLOR_GRAY2BGR if rgb_or_gray.ndim == 2 else cv2.COLOR_RGB2BGR
    return cv2.cvtColor(np.ascontiguousarray(rgb_or_gray), code)


def one_face_jpegs() -> list[bytes]:
    """One-face 640x480 JPEGs (q90): the three reference photos, each at three places on a
    grey canvas, so that a run does not decode one identical file over and over."""
    path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    hopper = cv2.imdecode(np.frombuffer(Path(str(path)).read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    assert hopper is not None
    photos = [_bgr(data.astronaut()), _bgr(data.camera()), hopper]
    images = []
    for photo in photos:
        small = cv2.resize(photo, (360, 420) if photo.shape[0] > photo.shape[1] else (420, 420))
        for left in (0, 110, 220):
            canvas = np.full((HEIGHT, WIDTH, 3), 128, dtype=np.uint8)
            canvas[30:30 + small.shape[0], left:left + small.shape[1]] = small
            ok, encoded = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, 90])
            assert ok
            images.append(encoded.tobytes())
    return images


@dataclass(frozen=True)
class Result:
    """One measured case: images done, wall seconds, per-image latencies (seconds)."""

    name: str
    images: int
    seconds: float
    latencies: tuple[float, ...]

    @property
    def per_second(self) -> float:
        return self.images / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def line(self, baseline: Result | None = None) -> str:
        ratio = f"  {self.per_second / baseline.per_second:5.2f}x" if baseline else ""
        p50 = self.percentile(0.5) * 1e3
        p99 = self.percentile(0.99) * 1e3
        mean = statistics.fmean(self.latencies) * 1e3
        return (f"{self.name:<34} {self.per_second:7.1f} img/s  p50 {p50:6.1f} ms  "
                f"p99 {p99:6.1f} ms  mean {mean:6.1f} ms  (n={self.images}){ratio}")


def poisson_arrivals(rate: float, seconds: float, seed: int = 7) -> list[float]:
    """Arrival offsets (s) of a Poisson process at ``rate``/s over ``seconds``: the open-loop
    load, the same sequence for the service and for :func:`ideal_pool`."""
    rng = random.Random(seed)
    arrivals: list[float] = []
    at = 0.0
    while at < seconds:
        arrivals.append(at)
        at += rng.expovariate(rate)
    return arrivals


def constant_arrivals(rate: float, seconds: float) -> list[float]:
    """Arrival offsets (s) at fixed intervals of ``1 / rate`` over ``seconds`` (wrk2's
    constant-throughput schedule): the same work as Poisson at that rate without its bursts."""
    return [n / rate for n in range(max(1, round(rate * seconds)))]


#: The open-loop schedules at 80 % of saturation, by name: arrival offsets for a rate and
#: seconds. Each gets its own run, the service's p99/p50 and the perfect pool's beside it.
SCHEDULES = {"poisson": poisson_arrivals, "constant": constant_arrivals}


def ideal_pool(arrivals: list[float], service_times: tuple[float, ...],
               servers: int) -> tuple[float, ...]:
    """Latencies of a perfect FIFO pool of ``servers`` (no overhead at all) fed ``arrivals``,
    the n-th job taking ``service_times[n % len]``: the tail that queueing alone makes at
    that load, the yardstick for the service's p99/p50."""
    free = [0.0] * servers
    latencies = []
    for index, arrival in enumerate(arrivals):
        start = max(arrival, heapq.heappop(free))
        end = start + service_times[index % len(service_times)]
        heapq.heappush(free, end)
        latencies.append(end - arrival)
    return tuple(latencies)

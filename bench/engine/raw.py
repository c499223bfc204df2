"""The raw engine loop: decode + detect + extract in plain Python, the physical limit here.

Processes: the loop in N spawned processes, each with its own models: the engine's layout.
Threads: the same loop in N threads of one process, kept to show why the engine does not
use threads (with OpenCV 5.0 two threads were slower than one).
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from dataclasses import dataclass

import cv2

from bench.engine.workload import Result
from luna_handlers.engine.faces import FaceModels
from luna_handlers.engine.images import ImageLimits, decode_image
from luna_handlers.engine.models import ModelBytes, load_models

LIMITS = ImageLimits(max_bytes=10 * 1024 * 1024, max_pixels=40_000_000)


def _one(models: FaceModels, image: bytes) -> int:
    pixels = decode_image(image, LIMITS)
    faces = [models.describe(pixels, row, extract_descriptor=True)
             for row in models.detect(pixels)]
    if len(faces) != 1:
        raise AssertionError(f"a bench image gave {len(faces)} faces")
    return len(faces)


def _loop(models: FaceModels, images: list[bytes], until: float, start: int) -> list[float]:
    latencies = []
    index = start
    while time.perf_counter() < until:
        began = time.perf_counter()
        _one(models, images[index % len(images)])
        latencies.append(time.perf_counter() - began)
        index += 1
    return latencies


def _models(model_bytes: ModelBytes) -> FaceModels:
    return FaceModels(model_bytes, score_threshold=0.5, detect_long_side=1280)


def run_threads(images: list[bytes], workers: int, opencv_threads: int, seconds: float,
                model_bytes: ModelBytes) -> Result:
    """``workers`` threads, one model set each, ``cv2.setNumThreads(opencv_threads)``."""
    cv2.setNumThreads(opencv_threads)
    all_models = [_models(model_bytes) for _ in range(workers)]
    for models in all_models:  # warm-up: first inference allocates
        _one(models, images[0])
    results: list[list[float]] = [[] for _ in range(workers)]
    began = time.perf_counter()
    until = began + seconds

    def work(n: int) -> None:
        results[n] = _loop(all_models[n], images, until, n)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies = tuple(x for part in results for x in part)
    return Result(f"raw threads={workers} cv2 threads={opencv_threads}", len(latencies),
                  time.perf_counter() - began, latencies)


@dataclass(frozen=True)
class _Plan:
    images: list[bytes]
    start_at: float  # time.time() at which every process starts its loop
    seconds: float
    opencv_threads: int


def _process_main(plan: _Plan, n: int, out: multiprocessing.Queue[list[float]]) -> None:
    cv2.setNumThreads(plan.opencv_threads)
    models = _models(load_models())
    _one(models, plan.images[0])
    while time.time() < plan.start_at:
        time.sleep(0.001)
    out.put(_loop(models, plan.images, time.perf_counter() + plan.seconds, n))


def run_processes(images: list[bytes], workers: int, seconds: float,
                  opencv_threads: int = 1) -> Result:
    """The loop in ``workers`` spawned processes (the engine's layout), started together
    after their warm-up."""
    context = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[list[float]] = context.Queue()
    # 3 s for the processes to import and load the models.
    plan = _Plan(images, time.time() + 3.0, seconds, opencv_threads)
    procs = [context.Process(target=_process_main, args=(plan, n, out)) for n in range(workers)]
    for proc in procs:
        proc.start()
    parts = [out.get() for _ in procs]
    for proc in procs:
        proc.join()
    latencies = tuple(x for part in parts for x in part)
    return Result(f"raw processes={workers} cv2 threads={opencv_threads}", len(latencies),
                  seconds, latencies)

"""``python -m bench.engine``: the raw engine loop and the matching micro-bench; README.md."""

from __future__ import annotations

import argparse
import os
import statistics
from collections.abc import Callable, Sequence

import cv2

from bench.api.data import start_database
from bench.engine import matching_db
from bench.engine.matching import bench_top_k
from bench.engine.raw import run_processes, run_threads
from bench.engine.service import ServiceRun, run_service
from bench.engine.workload import Result, ideal_pool, one_face_jpegs
from luna_handlers.engine.models import load_models

#: A side of the comparison at a worker count: images and seconds in, a Result out.
Side = Callable[[list[bytes], int, float], Result]


def _args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.engine", description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per case")
    parser.add_argument("--workers", default="1,2", help="worker counts to run")
    parser.add_argument("--cases", default="processes,service,threads,opencv,matching",
                        help="any of processes, service, threads, opencv, matching, "
                             "matching-db (against a real database: bench/engine/matching_db.py)")
    parser.add_argument("--sizes", default="100000,1000000", help="matching candidate counts")
    parser.add_argument("--repeats", type=int, default=1,
                        help="run the processes/threads/service comparison this many times")
    return parser.parse_args(argv)


def _service_lines(run: ServiceRun, baseline: Result | None, workers: int) -> float | None:
    """Print one service run; its ratio to ``baseline`` (None without a baseline)."""
    print(run.saturated.line(baseline), flush=True)
    verdicts = []
    for loaded in run.loaded:
        refused = f"  refused (503) {loaded.refused}" if loaded.refused else ""
        print(f"{loaded.result.line()}  p99/p50 {_spread(loaded.result):4.2f}{refused}",
              flush=True)
        verdict = "met" if _spread(loaded.result) <= 3.0 else "NOT met"
        if not loaded.kept_up:  # the load rose since saturation: a backlog, not 80 %
            verdict = "no verdict: the service fell behind the schedule"
        verdicts.append(f"{loaded.schedule} {_spread(loaded.result):4.2f} ({verdict})")
        if baseline is not None:
            # The same arrivals into a perfect pool with the raw loop's service times.
            ideal = Result("ideal", len(loaded.arrivals), loaded.arrivals[-1],
                           ideal_pool(loaded.arrivals, baseline.latencies, workers))
            print(f"  a perfect FIFO pool, same arrivals, raw service times: p50 "
                  f"{ideal.percentile(0.5) * 1e3:6.1f} ms  p99 "
                  f"{ideal.percentile(0.99) * 1e3:6.1f} ms  p99/p50 {_spread(ideal):4.2f}",
                  flush=True)
    share = run.cpu_ms["engine workers"] / sum(run.cpu_ms.values())
    # What a machine whose cores are all busy allows: the engine's part of the CPU an image
    # costs (its workers spend what the raw loop spends on an image, plus ~0.5 ms of pickling).
    print("  CPU ms per image: " + ", ".join(f"{name} {value:.1f}"
                                             for name, value in run.cpu_ms.items())
          + f"; the engine's share {share:.2f}", flush=True)
    ratio = None if baseline is None else run.saturated.per_second / baseline.per_second
    throughput = "" if ratio is None else \
        f"images/s {ratio:.2f}x raw ({'met' if ratio >= 0.85 else 'NOT met'}); "
    print(f"  goal at {workers} workers: {throughput}p99/p50 at 80 % (<= 3) on the "
          + ", ".join(verdicts), flush=True)
    return ratio


def _spread(result: Result) -> float:
    return result.percentile(0.99) / result.percentile(0.5)


def _compare(sides: dict[str, Side], images: list[bytes], workers: list[int], seconds: float,
             *, service: bool, repeats: int) -> None:
    """Each side at each worker count, ``repeats`` times over (interleaved, so that a change
    of the machine's load hits every side); the service's ratio is against the first side
    (the raw processes loop when it runs), and its 80 % line shows p99/p50."""
    database = start_database(handlers=1) if service else None
    ratios: dict[int, list[float]] = {count: [] for count in workers}
    try:
        for _ in range(repeats):
            for count in workers:
                print(f"-- load average {os.getloadavg()[0]:.1f}", flush=True)
                baseline: Result | None = None
                for side in sides.values():
                    result = side(images, count, seconds)
                    print(result.line(baseline), flush=True)
                    baseline = baseline or result
                if database is not None:
                    ratio = _service_lines(run_service(images, count, seconds, database),
                                           baseline, count)
                    ratios[count] += [] if ratio is None else [ratio]
    finally:
        if database is not None:
            database.stop()
    for count, values in ratios.items():
        if len(values) > 1:
            print(f"service / raw at {count} workers over {len(values)} runs: "
                  + " ".join(f"{value:.2f}x" for value in values)
                  + f" (median {statistics.median(values):.2f}x)")


def main(argv: Sequence[str] | None = None) -> None:
    """Run the cases; each line's ratio is against the first side at that worker count."""
    args = _args(argv)
    cases = set(args.cases.split(","))
    workers = [int(n) for n in args.workers.split(",")]
    images = one_face_jpegs()
    model_bytes = load_models()
    print(f"OpenCV {cv2.__version__}, {len(images)} one-face 640x480 JPEGs, "
          f"{args.seconds:g} s per case")
    sides: dict[str, Side] = {}
    if "processes" in cases:
        sides["raw processes"] = run_processes
    if "threads" in cases:
        sides["raw threads"] = lambda imgs, n, s: run_threads(imgs, n, 1, s, model_bytes)
    _compare(sides, images, workers, args.seconds, service="service" in cases,
             repeats=args.repeats)
    if "opencv" in cases:
        print("cv2.setNumThreads (raw processes loop):")
        for count in workers:
            for opencv_threads in (2, 4):
                print(run_processes(images, count, args.seconds, opencv_threads).line(),
                      flush=True)
    if "matching" in cases:
        print("exact top-10 cosine, numpy, one probe:")
        for size in (int(n) for n in args.sizes.split(",")):
            p50, worst = bench_top_k(size)
            print(f"  {size:>9,} descriptors: p50 {p50:7.2f} ms  max {worst:7.2f} ms", flush=True)
    if "matching-db" in cases:
        print("DBContext.matchFaces on a real PostgreSQL:")
        matching_db.main(["--sizes", args.sizes])

"""``python -m bench.scale``: the same service over SMALL and BIG, case by case; see README.md.

One PostgreSQL holds both data sets in two databases; two services run side by side, one
per database, and every case is loaded on SMALL then on BIG before the next case, so both
see the same machine. Then the bulkhead case: slow unscoped searches on BIG while GET by id
and POST are measured.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.api.data import PASSWORD, USER, BenchDatabase, bench_cluster
from bench.api.load import Load, Result, ensure_wrk, prime_pairs, result_of, wrk_summary
from bench.api.servers import Server, start_ours
from bench.scale.build import BIG, SMALL, Shape, build_sync
from bench.scale.kit import sample, write_kit
from luna_handlers.db.schema.models import HANDLER_COUNT_BACKFILL
from luna_handlers.pgserver.cluster import PgCluster

HERE = Path(__file__).resolve().parent
LUA = HERE / "scale.lua"
#: case -> (what it is, the most BIG p99 / SMALL p99 may be; None: reported only)
CASES: dict[str, tuple[str, float | None]] = {
    "get": ("GET by id, cache hit", 3.0),
    "list": ("list page 1, normal account", 3.0),
    "list_hot": ("list page 1 (100), hot account", 3.0),
    "list_deep": ("list page 1000 (100), hot account", 3.0),
    "count_hot": ("count, hot account", 5.0),
    "count_all": ("count, unscoped", 5.0),
    "search_hot": ("description substring, hot account", 3.0),
    "search_all": ("description substring, unscoped", 3.0),
    "window": ("7-day create_time window, unscoped", 3.0),
    "post": ("POST", None),
    "put": ("PUT", None),
}
#: The deep page's goal: BIG p99 of page 1000 within this of BIG page 1 (same account).
DEEP_GOAL = 3.0
BUILT = "built.json"
SETTINGS = {"max_wal_size": "4GB", "checkpoint_timeout": "30min"}


@dataclass
class Measured:
    """What one wrk run gave: the result and the non-2xx answers by status/LUNA code."""

    result: Result
    codes: dict[str, int] = field(default_factory=dict)


def _args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument("--cases", default=",".join(CASES),
                        help=f"comma-separated subset of {','.join(CASES)}")
    parser.add_argument("--no-bulkhead", action="store_true", help="skip the bulkhead case")
    parser.add_argument("--duration", type=int, default=5, help="seconds per case and set")
    parser.add_argument("--warmup", type=int, default=1, help="seconds before each (0: none)")
    parser.add_argument("--connections", type=int, default=16, help="wrk -c")
    parser.add_argument("--threads", type=int, default=2, help="wrk -t")
    parser.add_argument("--datadir", type=Path,
                        help="build into this directory and keep it; when it holds a built "
                             "cluster already, reuse it (no build)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    args.cases = [c for c in args.cases.split(",") if c]
    if unknown := set(args.cases) - set(CASES):
        parser.error(f"unknown cases: {', '.join(sorted(unknown))}")
    return args


def _open_cluster(workdir: Path) -> tuple[PgCluster, dict[str, Any]]:
    """Start the cluster in ``workdir``, building both sets first unless it holds them."""
    workdir.mkdir(parents=True, exist_ok=True)
    cluster = bench_cluster(workdir, SETTINGS)
    marker = workdir / BUILT
    if marker.exists():
        cluster.start()
        found: dict[str, Any] = json.loads(marker.read_text())
        print(f"reusing the sets built in {workdir}", flush=True)
        return cluster, found
    cluster.initdb()
    cluster.start()
    built: dict[str, Any] = {"seconds": {}}
    for shape in (SMALL, BIG):
        cluster.ensure_database(USER, PASSWORD, shape.dbname)
        print(f"building {shape.name}: {shape.handlers:,} handlers ...", flush=True)
        seconds = build_sync(cluster.url(USER, PASSWORD, shape.dbname), shape)
        built["seconds"][shape.name] = round(seconds, 1)
        print(f"  built in {seconds:.1f} s", flush=True)
    built["at"] = time.time()  # after every creation time: the run's POSTs come later
    marker.write_text(json.dumps(built))
    return cluster, built


def _settle(cluster: PgCluster, timeout: float = 60.0) -> None:
    """Wait until no statement of the bench databases runs: requests wrk gave up on keep the
    service busy after it stopped, and would slow the next case down."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and cluster.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
            " AND datname LIKE 'luna_scale_%' AND pid <> pg_backend_pid()") != "0":
        time.sleep(0.2)


def _measure(server: Server, kit: Path, case: str, load: Load, wrk: str) -> Measured:
    summary = wrk_summary(wrk, LUA, {"BENCH_CASE": case, "BENCH_KIT": str(kit)}, server.base,
                          load)
    codes = summary.get("codes", {}) if isinstance(summary, dict) else {}
    return Measured(result_of(server.name, case, summary), dict(codes))


def _line(m: Measured) -> str:
    r = m.result
    codes = " ".join(f"{k}x{v}" for k, v in sorted(m.codes.items()))
    return (f"  {r.target:<6} {r.case:<11} {r.rps:>8.0f} req/s  p99 {r.p99_ms:8.1f} ms  "
            f"errors {r.errors}{' ' + codes if codes else ''}{' ' + r.note if r.note else ''}")


def _bulkhead(big: Server, kit: Path, load: Load, wrk: str) -> list[Measured]:
    """Unscoped searches on ``load.connections`` connections for the whole case, while GET
    by id and then POST run on 4 connections each."""
    fore = Load(threads=1, connections=4, duration=load.duration, warmup=0)
    back = Load(threads=load.threads, connections=load.connections,
                duration=2 * load.duration + 3, warmup=0)
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(_measure, big, kit, "search_all", back, wrk)
        time.sleep(1.5)  # the searches hold the pool before anything is measured
        found = [_measure(big, kit, case, fore, wrk) for case in ("get", "post")]
        found.append(slow.result())
    for m in found:
        print(_line(m), flush=True)
    return found


def _verdict(ratio: float | None, goal: float | None) -> str:
    if ratio is None:
        return "n/a"
    if goal is None:
        return f"{ratio:6.1f}x  (reported)"
    return f"{ratio:6.1f}x  {'ok  ' if ratio <= goal else 'MISS'} (<= {goal:g}x)"


def report(found: dict[tuple[str, str], Measured], cases: list[str],
           bulk: list[Measured]) -> str:
    """The table SMALL vs BIG with the verdicts, the deep page line and the bulkhead case."""
    lines = [f"{'case':<37} {'SMALL p99':>10} {'BIG p99':>10} {'ratio / goal':<24} BIG errors",
             "-" * 96]
    for case in cases:
        small, big = found[("small", case)].result, found[("big", case)].result
        ratio = big.p99_ms / small.p99_ms if small.p99_ms > 0 and big.p99_ms > 0 else None
        codes = " ".join(f"{k}x{v}" for k, v in sorted(found[("big", case)].codes.items()))
        lines.append(f"{CASES[case][0]:<37} {small.p99_ms:>8.1f}ms {big.p99_ms:>8.1f}ms "
                     f"{_verdict(ratio, CASES[case][1]):<24} {big.errors} {codes}".rstrip())
    if {"list_hot", "list_deep"} <= set(cases):
        first = found[("big", "list_hot")].result.p99_ms
        deep = found[("big", "list_deep")].result.p99_ms
        lines.append(f"\ndeep page at BIG: page 1000 p99 {deep:.1f} ms / page 1 p99 "
                     f"{first:.1f} ms = {_verdict(deep / first if first else None, DEEP_GOAL)}")
    if bulk:
        lines.append("\nbulkhead at BIG (unscoped searches on every wrk connection meanwhile):")
        for m in bulk:
            r = m.result
            codes = ", ".join(f"{k} x{v}" for k, v in sorted(m.codes.items())) or "none"
            lines.append(f"  {r.case:<11} p99 {r.p99_ms:8.1f} ms  {r.rps:7.0f} req/s  "
                         f"non-2xx/socket errors {r.errors}: {codes}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Build (or reuse) the sets, start both services, run the cases, print the report."""
    args = _args(argv)
    load = Load(args.threads, args.connections, args.duration, args.warmup)
    wrk = ensure_wrk()
    began = time.monotonic()
    workdir = args.datadir or Path(tempfile.mkdtemp(prefix="luna-handlers-scale-"))
    cluster, built = _open_cluster(workdir)
    servers: dict[str, Server] = {}
    kits: dict[str, Path] = {}
    found: dict[tuple[str, str], Measured] = {}
    bulk: list[Measured] = []
    try:
        shapes: tuple[Shape, ...] = (SMALL, BIG)
        for shape in shapes:
            kits[shape.name] = workdir / f"kit-{shape.name}"
            write_kit(kits[shape.name], shape, built["at"])
            db = BenchDatabase(cluster, workdir, kits[shape.name], shape.handlers, shape.dbname)
            servers[shape.name] = start_ours(db, 1, name=shape.name)
            prime_pairs(servers[shape.name], sample(shape))  # GET is measured on cache hits
        for case in args.cases:
            for shape in shapes:
                found[(shape.name, case)] = m = _measure(servers[shape.name], kits[shape.name],
                                                         case, load, wrk)
                print(_line(m), flush=True)
                _settle(cluster)
        if not args.no_bulkhead:
            bulk = _bulkhead(servers["big"], kits["big"], load, wrk)
    finally:
        for server in servers.values():
            server.stop()
        if args.datadir is not None:  # kept for the next run: drop what POST added
            for shape in (SMALL, BIG):
                cluster.psql("DELETE FROM handler WHERE create_time > (to_timestamp("
                             f"{built['at']}) AT TIME ZONE 'utc'); TRUNCATE handler_count; "
                             f"{HANDLER_COUNT_BACKFILL}", dbname=shape.dbname)
        cluster.stop("fast")
        if args.datadir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nwrk -t{load.threads} -c{load.connections} -d{load.duration}s (warm-up "
          f"{load.warmup}s); SMALL {SMALL.handlers:,} handlers, BIG {BIG.handlers:,} "
          f"(hot account {BIG.hot_handlers:,}); build "
          f"{', '.join(f'{k} {v} s' for k, v in built['seconds'].items())}; total "
          f"{time.monotonic() - began:.0f} s\n")
    print(report(found, args.cases, bulk))
    if args.json is not None:
        args.json.write_text(json.dumps(
            [{**m.result.__dict__, "codes": m.codes} for m in (*found.values(), *bulk)],
            indent=2))

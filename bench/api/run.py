"""``python -m bench.api``: one run of the API bench, then the report; see README.md."""

from __future__ import annotations

import argparse
import json
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.api.data import BenchDatabase, start_database
from bench.api.load import (
    CASES,
    Load,
    Result,
    cache_header,
    ensure_wrk,
    run_pgbench,
    run_wrk,
    smoke,
    write_graphql_lua,
)
from bench.api.servers import (
    OURS_VIA_PGBOUNCER,
    Server,
    ServerFailed,
    start_floor,
    start_ours,
    start_pgbouncer,
    start_postgraphile,
)
from luna_handlers.pgserver.pgbouncer import PgBouncer

STARTERS: dict[str, Callable[[BenchDatabase, int], Server]] = {
    "ours": start_ours, "floor": start_floor, "postgraphile": start_postgraphile}
TARGETS = (*STARTERS, "pgbench")
ROUTES = ("direct", "pgbouncer")
#: The reads before the writes: each server then reads the rows the bench loaded (written as
#: the service writes them), not the rows the other servers' POSTs added (without the
#: policies rendering only the service stores, which ours would render on every read).
RUN_ORDER = ("get", "list", "post", "put")
#: case -> (minimum ours/floor, minimum ours/postgraphile); None = no target.
GOALS: dict[str, tuple[float | None, float]] = {
    "get": (2.0, 2.0), "post": (1.0, 2.0), "put": (1.0, 2.0), "list": (None, 2.0)}


def _args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__)
    parser.add_argument("--workers", type=int, default=1, help="workers of EVERY HTTP server")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (-t)")
    parser.add_argument("--connections", type=int, default=32,
                        help="wrk connections (-c) and pgbench clients")
    parser.add_argument("--duration", type=int, default=5, help="seconds per case")
    parser.add_argument("--warmup", type=int, default=1, help="seconds before each case (0: none)")
    parser.add_argument("--handlers", type=int, default=10_000, help="rows filled")
    parser.add_argument("--targets", default=",".join(TARGETS),
                        help=f"comma-separated subset of {','.join(TARGETS)}")
    parser.add_argument("--cases", default=",".join(CASES), help="subset of get,post,put,list")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, data)")
    parser.add_argument("--via", default="direct",
                        help="how ours reaches PostgreSQL, comma-separated: direct, pgbouncer "
                             "(1.18, transaction mode); both = one run each, side by side")
    args = parser.parse_args(argv)
    args.targets = [t for t in args.targets.split(",") if t]
    args.cases = [c for c in args.cases.split(",") if c]
    args.via = [v for v in args.via.split(",") if v]
    if unknown := (set(args.targets) - set(TARGETS) or set(args.cases) - set(CASES)
                   or set(args.via) - set(ROUTES)):
        parser.error(f"unknown: {', '.join(sorted(unknown))}")
    return args


def _start(name: str, db: BenchDatabase, args: argparse.Namespace,
           via: PgBouncer | None) -> Server | str:
    """The started server, or why it did not start."""
    try:
        return (STARTERS[name](db, args.workers) if via is None
                else start_ours(db, args.workers, via=via))
    except ServerFailed as exc:
        return str(exc)


def _run_case(server: Server, case: str, db: BenchDatabase, load: Load, wrk: str) -> Result:
    problem = smoke(server, case, db)
    if problem:
        return Result(server.name, case, 0.0, 0.0, note=f"smoke failed: {problem}")
    result = run_wrk(server, case, db, load, wrk)
    print(f"  {server.name:<13} {case:<5} {result.rps:>9.0f} req/s  p99 {result.p99_ms:7.1f} ms"
          f"  errors {result.errors}{'  ' + result.note if result.note else ''}", flush=True)
    return result


def _bench_servers(db: BenchDatabase, args: argparse.Namespace, load: Load, wrk: str,
                   bouncer: PgBouncer | None) -> tuple[list[Result], list[str]]:
    """Every server up at once, then case by case, server after server: on a machine shared
    with other work, the servers compared in a case are measured seconds apart, not minutes
    (one server's four cases used to run before the next server started)."""
    results: list[Result] = []
    notes: list[str] = []
    servers: list[Server] = []
    try:
        for name in (t for t in STARTERS if t in args.targets):
            routes = [None if v == "direct" else bouncer for v in args.via] \
                if name == "ours" else [None]
            for via in routes:
                started = _start(name, db, args, via)
                if isinstance(started, str):
                    shown = name if via is None else OURS_VIA_PGBOUNCER
                    results += [Result(shown, case, 0.0, 0.0, note="did not start")
                                for case in args.cases]
                    notes.append(f"{shown}: {started}")
                    continue
                servers.append(started)
        for case in sorted(args.cases, key=RUN_ORDER.index):
            for server in servers:
                db.vacuum()  # every run starts on a table without the previous one's garbage
                results.append(_run_case(server, case, db, load, wrk))
        # After the cases: right after its start, the cache may still wait for its feed.
        notes += [f"{server.name}: Luna-Cache on a repeated GET: {cache_header(server)}"
                  for server in servers if server.name.startswith("ours")]
    finally:
        for server in servers:
            server.stop()
    return results, notes


def _ratio(ours: Result | None, other: Result | None) -> float | None:
    if ours is None or other is None or other.rps <= 0 or ours.rps <= 0:
        return None
    return ours.rps / other.rps


def _cpu_ratio(ours: Result | None, other: Result | None) -> float | None:
    """How many times the CPU per request of ``other`` (server + database) ours takes less:
    the load-robust reading of a ratio of requests per second."""
    if ours is None or other is None or ours.cpu_us <= 0 or other.cpu_us <= 0:
        return None
    return other.cpu_us / ours.cpu_us


def _fmt(value: float | None, goal: float | None) -> str:
    if value is None:
        return "n/a"
    if goal is None:
        return f"{value:.2f}x"
    return f"{value:.2f}x {'ok' if value >= goal else 'MISS'} (>= {goal:g})"


def report(results: list[Result], cases: list[str]) -> str:
    """The table of every result and the verdict against the goals."""
    by = {(r.target, r.case): r for r in results}
    lines = [f"{'target':<13} {'case':<5} {'req/s':>9} {'p99 ms':>8} {'non2xx':>7} "
             f"{'sock err':>8} {'srv us/req':>10} {'db us/req':>9}  note", "-" * 92]
    for r in results:
        lines.append(f"{r.target:<13} {r.case:<5} {r.rps:>9.0f} {r.p99_ms:>8.1f} "
                     f"{r.non2xx:>7} {r.socket_errors:>8} {r.server_cpu_us:>10.0f} "
                     f"{r.db_cpu_us:>9.0f}  {r.note}")
    lines += ["", f"{'case':<5} {'ours/floor':<28} {'ours/postgraphile':<28} ours errors  "
              "CPU/req floor/ours", "-" * 92]
    for case in cases:
        ours = by.get(("ours", case))
        floor_goal, pg_goal = GOALS[case]
        errors = "n/a" if ours is None or ours.rps == 0 else (
            "0 ok" if ours.errors == 0 else f"{ours.errors} MISS")
        lines.append(f"{case:<5} {_fmt(_ratio(ours, by.get(('floor', case))), floor_goal):<28} "
                     f"{_fmt(_ratio(ours, by.get(('postgraphile', case))), pg_goal):<28} "
                     f"{errors:<12} {_fmt(_cpu_ratio(ours, by.get(('floor', case))), None)}")
    if any(r.target == OURS_VIA_PGBOUNCER for r in results):
        lines += ["", f"{'case':<5} ours@pgbouncer/ours (the cost of transaction pooling)",
                  "-" * 72]
        for case in cases:
            cost = _ratio(by.get((OURS_VIA_PGBOUNCER, case)), by.get(("ours", case)))
            lines.append(f"{case:<5} {_fmt(cost, None)}")
    ceiling = by.get(("pgbench", "get"))
    if ceiling is not None and ceiling.rps > 0:
        ours_get = by.get(("ours", "get"))
        share = "" if ours_get is None or ours_get.rps == 0 else (
            f" (ours GET = {ours_get.rps / ceiling.rps:.0%} of it)")
        lines.append(f"\ndatabase ceiling (pgbench, prepared, GET by id): "
                     f"{ceiling.rps:.0f} tx/s, p99 {ceiling.p99_ms:.1f} ms{share}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the bench and print the report."""
    args = _args(argv)
    load = Load(args.threads, args.connections, args.duration, args.warmup)
    wrk = ensure_wrk()
    began = time.monotonic()
    print(f"starting PostgreSQL and filling {args.handlers} handlers ...", flush=True)
    db = start_database(args.handlers)
    write_graphql_lua(db)
    print(f"  ready in {time.monotonic() - began:.1f} s ({db.workdir})", flush=True)
    bouncer = start_pgbouncer(db, args.workers) if "pgbouncer" in args.via else None
    try:
        results, notes = _bench_servers(db, args, load, wrk, bouncer)
        if "pgbench" in args.targets:
            results.append(run_pgbench(db, load))
    finally:
        if bouncer is not None:
            bouncer.stop()
        db.stop()
        if not args.keep:
            shutil.rmtree(db.workdir, ignore_errors=True)
    print(f"\nworkers={args.workers} wrk -t{load.threads} -c{load.connections} "
          f"-d{load.duration}s (warm-up {load.warmup}s), {args.handlers} handlers, "
          f"total {time.monotonic() - began:.0f} s\n")
    print(report(results, args.cases))
    for note in notes:
        print(f"\n{note}")
    if args.json is not None:
        args.json.write_text(json.dumps([r.__dict__ for r in results], indent=2))

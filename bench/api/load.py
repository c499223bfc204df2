"""Load generators: wrk with ``bench.lua`` against a server, pgbench against the database.

Before wrk loads a case, :func:`smoke` sends one request of that case and checks the answer
(2xx, and no GraphQL ``errors``: PostGraphile reports failures with status 200), so a fast
stream of failures can never pass for throughput.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.api.cpu import CpuMeter, postmaster_pid
from bench.api.data import PASSWORD, USER, BenchDatabase, account_id, handler_id
from bench.api.servers import HERE, Server
from luna_handlers.pgserver.cluster import bin_dir

CASES = ("get", "post", "put", "list")
LUA = HERE / "bench.lua"
_FIELDS = "handlerId accountId description policies isDynamic createTime lastUpdateTime"
#: PostGraphile's operations per case; written to the kit as ``graphql.lua`` for wrk.
GRAPHQL = {
    "get": "query($id:String!){handlerByHandlerId(handlerId:$id){" + _FIELDS + "}}",
    "list": "query($acc:String!){allHandlers(condition:{accountId:$acc},"
            "orderBy:[CREATE_TIME_DESC,HANDLER_ID_ASC],first:10){nodes{" + _FIELDS + "}}}",
    "put": "mutation($id:String!,$d:String!,$p:String!,$t:Datetime!){updateHandlerByHandlerId("
           "input:{handlerId:$id,handlerPatch:{description:$d,policies:$p,lastUpdateTime:$t}})"
           "{handler{handlerId lastUpdateTime}}}",
    "post": "mutation($h:HandlerInput!){createHandler(input:{handler:$h}){handler{handlerId}}}",
}


@dataclass(frozen=True)
class Load:
    """How hard to push: wrk threads, connections, seconds per case and of warm-up."""

    threads: int = 2
    connections: int = 32
    duration: int = 5  # wrk takes whole seconds only
    warmup: int = 1


@dataclass(frozen=True)
class Result:
    """One measured case."""

    target: str
    case: str
    rps: float
    p99_ms: float
    non2xx: int = 0
    socket_errors: int = 0
    note: str = ""
    #: CPU microseconds per request of the server's processes and of PostgreSQL's (0: none)
    server_cpu_us: float = 0.0
    db_cpu_us: float = 0.0

    @property
    def cpu_us(self) -> float:
        """Server + database CPU microseconds per request."""
        return self.server_cpu_us + self.db_cpu_us

    @property
    def errors(self) -> int:
        """Non-2xx answers plus socket errors."""
        return self.non2xx + self.socket_errors


def ensure_wrk() -> str:
    """The wrk binary; installed with apt-get when missing and we are root."""
    found = shutil.which("wrk")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk is missing: apt-get install -y wrk", flush=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False,
                       stdout=subprocess.DEVNULL)
        found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk is required: apt-get install -y wrk (see bench/api/README.md)")
    return found


def _smoke_request(server: Server, case: str, db: BenchDatabase) -> urllib.request.Request:
    n = random.randint(1, db.handlers)
    hid, acc = handler_id(n), account_id(n)
    body = (db.kit / "body.json").read_bytes()
    if server.flavor == "graphql":
        variables = {"get": {"id": hid}, "list": {"acc": acc},
                     "put": {"id": hid, "d": "smoke", "p": "{}", "t": "2026-01-01T00:00:00Z"},
                     "post": {"h": {"handlerId": handler_id(-1000 - n), "accountId": acc,
                                    "description": "smoke", "policies": "{}"}}}[case]
        return urllib.request.Request(
            server.base + "/graphql", method="POST",
            data=json.dumps({"query": GRAPHQL[case], "variables": variables}).encode(),
            headers={"Content-Type": "application/json"})
    headers = {"Luna-Account-Id": acc, "Content-Type": "application/json"}
    url, method, data = {
        "get": (f"/1/handlers/{hid}", "GET", None),
        "list": ("/1/handlers?page=1&page_size=10", "GET", None),
        "put": (f"/1/handlers/{hid}", "PUT", body),
        "post": ("/1/handlers", "POST", body),
    }[case]
    return urllib.request.Request(server.base + url, method=method, data=data, headers=headers)


def smoke(server: Server, case: str, db: BenchDatabase) -> str:
    """One request of ``case``; returns "" when fine, else what went wrong."""
    try:
        with urllib.request.urlopen(_smoke_request(server, case, db), timeout=10) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}: {exc.read()[:200]!r}"
    except (urllib.error.URLError, OSError) as exc:
        return f"no answer: {exc}"
    if not 200 <= status < 300:
        return f"HTTP {status}"
    if server.flavor == "graphql" and b'"errors"' in payload:
        return f"GraphQL errors: {payload[:300]!r}"
    return ""


def cache_header(server: Server) -> str:
    """``Luna-Cache`` of the second GET of one handler ("hit" once the cache is wired)."""
    request = urllib.request.Request(f"{server.base}/1/handlers/{handler_id(1)}",
                                     headers={"Luna-Account-Id": account_id(1)})
    header = None
    for _ in range(2):
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                header = response.headers.get("Luna-Cache")
        except (urllib.error.URLError, OSError):
            return "no answer"
    return header or "absent"


def write_graphql_lua(db: BenchDatabase) -> None:
    """The GraphQL operations as a Lua table (JSON string literals are valid Lua here)."""
    items = ",\n".join(f"  {case} = {json.dumps(query)}" for case, query in GRAPHQL.items())
    (db.kit / "graphql.lua").write_text(f"return {{\n{items},\n}}\n")


def _get_each(server: Server, pairs: Sequence[tuple[str, str]]) -> None:
    # One keep-alive connection per slice: opening one per request would cost more than it.
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        for hid, owner in pairs:
            if server.flavor == "graphql":
                body = json.dumps({"query": GRAPHQL["get"], "variables": {"id": hid}})
                conn.request("POST", "/graphql", body, {"Content-Type": "application/json"})
            else:
                conn.request("GET", f"/1/handlers/{hid}", headers={"Luna-Account-Id": owner})
            conn.getresponse().read()
    finally:
        conn.close()


def prime_pairs(server: Server, pairs: Sequence[tuple[str, str]], slices: int = 8) -> None:
    """GET each handler of ``pairs`` (id, owner) once, over ``slices`` connections."""
    with ThreadPoolExecutor(slices) as pool:
        list(pool.map(lambda k: _get_each(server, pairs[k::slices]), range(slices)))


def prime(server: Server, db: BenchDatabase) -> None:
    """GET every handler once, before the get case: a server with a cache is then measured
    warm, as in production where each handler is read for every event. Every server gets
    the same pass, cache or not (it also warms PostgreSQL's buffers alike)."""
    prime_pairs(server, [(handler_id(n), account_id(n)) for n in range(1, db.handlers + 1)])


def wrk_summary(wrk: str, script: Path, env: dict[str, str], url: str, load: Load,
                *, meter: CpuMeter | None = None) -> dict[str, Any] | str:
    """Warm up, then run ``script`` against ``url`` for ``load.duration`` seconds: the JSON of
    its ``BENCH_RESULT`` line, or why there is none. ``env`` adds to the environment; with a
    ``meter``, the summary also holds the CPU seconds of the measured run (``cpu_s``)."""
    base = [wrk, "-t", str(load.threads), "-c", str(load.connections), "-s", str(script),
            "--latency", "--timeout", "5s"]
    full_env = {**os.environ, **env}
    if load.warmup > 0:
        subprocess.run([*base, "-d", f"{load.warmup}s", url], env=full_env, check=False,
                       capture_output=True)
    if meter is not None:
        meter.start()
    out = subprocess.run([*base, "-d", f"{load.duration}s", url], env=full_env,
                         check=False, capture_output=True, text=True)
    cpu = None if meter is None else meter.stop()
    line = next((x for x in out.stdout.splitlines() if x.startswith("BENCH_RESULT ")), None)
    if line is None:
        detail = (out.stderr or out.stdout).strip().splitlines()[:2]
        return f"wrk failed: {' '.join(detail)}"
    summary: dict[str, Any] = json.loads(line.removeprefix("BENCH_RESULT "))
    if cpu is not None:
        summary["cpu_s"] = cpu
    return summary


def result_of(target: str, case: str, summary: dict[str, Any] | str) -> Result:
    """A :class:`Result` from what :func:`wrk_summary` returned."""
    if isinstance(summary, str):
        return Result(target, case, 0.0, 0.0, note=summary)
    seconds = summary["duration_us"] / 1e6
    server_s, db_s = summary.get("cpu_s", (0.0, 0.0))
    per_request = 1e6 / max(summary["requests"], 1)
    return Result(target, case, summary["requests"] / seconds, summary["p99_us"] / 1000,
                  non2xx=summary["status_errors"],
                  socket_errors=sum(summary[k] for k in ("connect", "read", "write", "timeout")),
                  server_cpu_us=server_s * per_request, db_cpu_us=db_s * per_request)


def run_wrk(server: Server, case: str, db: BenchDatabase, load: Load, wrk: str) -> Result:
    """Warm up, then load ``case`` for ``load.duration`` seconds."""
    if case == "get":
        prime(server, db)
    env = {"BENCH_FLAVOR": server.flavor, "BENCH_CASE": case, "BENCH_KIT": str(db.kit)}
    meter = CpuMeter(server.process.pid, postmaster_pid(db.cluster.datadir))
    return result_of(server.name, case, wrk_summary(wrk, LUA, env, server.base, load,
                                                       meter=meter))


def run_pgbench(db: BenchDatabase, load: Load) -> Result:
    """pgbench, prepared protocol, the same clients as wrk connections: the DB ceiling."""
    env = {**os.environ, "PGPASSWORD": PASSWORD}
    with tempfile.TemporaryDirectory(prefix="pgbench-") as logs:
        out = subprocess.run(
            [str(bin_dir() / "pgbench"), "-h", db.cluster.host, "-p", str(db.cluster.port),
             "-U", USER, "-n", "-M", "prepared", "-c", str(load.connections),
             "-j", str(load.threads), "-T", str(load.duration), "-l",
             "-f", str(db.kit / "pgbench_get.sql"), db.dbname],
            env=env, cwd=logs, check=False, capture_output=True, text=True)
        latencies = sorted(int(line.split()[2]) for path in Path(logs).iterdir()
                           for line in path.read_text().splitlines() if line)
    tps = re.search(r"tps = ([0-9.]+)", out.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", out.stdout)
    if tps is None or not latencies:
        return Result("pgbench", "get", 0.0, 0.0, note=f"pgbench failed: {out.stderr.strip()}")
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] / 1000
    return Result("pgbench", "get", float(tps.group(1)), p99,
                  non2xx=int(failed.group(1)) if failed else 0)

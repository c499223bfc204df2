"""``python -m bench.hostile``: other requests' latency while hostile clients load the service.

Starts its own PostgreSQL and ``luna-handlers serve`` (one worker), fills 1,000 handlers of
one account, then times a probe (one ``GET /1/handlers/{id}`` at a time, cache hit) alone and
while attackers, in a process of their own, send:

- ``unknown-keys``: 4 connections POSTing a 0.8 MB body with 50,000 unknown policy keys;
- ``unknown-4.9k``: the same with 9,900 keys, just under the member cap of ``read_json``;
- ``big-lists``: 300 connections pipelining ``GET /1/handlers?page_size=1000`` (~2 MB each).

Not a unit test: the numbers depend on the machine (say how loaded it was).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import orjson

from bench.api.data import REQUEST_POLICIES
from bench.hostile.load import attack_process, probe
from luna_handlers.pgserver.cluster import PgCluster, free_port

ACCOUNT = "6d7e1a3e-0a4f-4b7e-9d3f-1c2b3a4d5e6f"
HANDLERS = 1000


def _request(method: str, path: str, body: bytes = b"") -> bytes:
    head = [f"{method} {path} HTTP/1.1", "Host: bench", f"Luna-Account-Id: {ACCOUNT}"]
    if body:
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _start(base: Path) -> tuple[PgCluster, subprocess.Popen[bytes], int]:
    base.chmod(0o755)
    cluster = PgCluster(datadir=base / "pg", port=free_port(), superuser_password="bench-pw",
                        settings={"fsync": "off"})
    cluster.initdb()
    cluster.start()
    cluster.ensure_database("luna", "luna-pw", "luna_handlers")
    config = base / "config.json"
    config.write_text(json.dumps({
        "LUNA_HANDLERS_DB": {"db_host": cluster.host, "db_port": cluster.port,
                             "db_user": "luna", "db_password": "luna-pw"},
        "LOGGING": {"level": "WARNING"}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUNA_HANDLERS")}
    subprocess.run([sys.executable, "-m", "luna_handlers", "db", "upgrade", "--config",
                    str(config)], check=True, env=env, capture_output=True)
    port = free_port()
    log = (base / "serve.log").open("wb")
    server = subprocess.Popen([sys.executable, "-m", "luna_handlers", "serve", "--config",
                               str(config), "--port", str(port)], env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/1/healthcheck", timeout=1):
                return cluster, server, port
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the service did not start: " + (base / "serve.log").read_text())


def _fill(port: int) -> str:
    body = orjson.dumps({"description": "bench", "policies": REQUEST_POLICIES})
    handler_id = ""
    for _ in range(HANDLERS):
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/1/handlers", data=body, method="POST",
            headers={"Content-Type": "application/json", "Luna-Account-Id": ACCOUNT})
        with urllib.request.urlopen(request) as response:
            handler_id = json.loads(response.read())["handler_id"]
    return handler_id


def _scenario(name: str, port: int, probe_request: bytes, seconds: float,
              attack: tuple[bytes, int, int] | None) -> None:
    attacker = None
    if attack is not None:
        request, connections, pipeline = attack
        attacker = multiprocessing.Process(
            target=attack_process, args=(port, request, connections, pipeline, seconds + 1))
        attacker.start()
        time.sleep(1)  # let the attack reach full speed
    timings = asyncio.run(probe(port, probe_request, seconds))
    if attacker is not None:
        attacker.join()
    print(f"{name:14} probe n={timings.count:5d} median={timings.median_ms:7.2f} ms "
          f"p99={timings.p99_ms:7.2f} ms max={timings.max_ms:7.2f} ms", flush=True)


def main() -> None:
    """Run the scenarios and print the probe's latencies in each."""
    parser = argparse.ArgumentParser(prog="python -m bench.hostile", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="per scenario")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as tmp:
        cluster, server, port = _start(Path(tmp))
        try:
            handler_id = _fill(port)
            probe_request = _request("GET", f"/1/handlers/{handler_id}")
            unknown = orjson.dumps({"policies": {f"unknown{i:05d}": 1
                                                 for i in range(50_000)}})
            # just under read_json's member cap: decoded, then the first unknown key named
            under_cap = orjson.dumps({"policies": {f"unknown{i:05d}": 1 for i in range(4_900)}})
            listing = _request("GET", "/1/handlers?page_size=1000")
            with urllib.request.urlopen(urllib.request.Request(
                    f"http://127.0.0.1:{port}/1/handlers?page_size=1000",
                    headers={"Luna-Account-Id": ACCOUNT})) as response:
                page = len(response.read())
            print(f"unknown-keys body {len(unknown):,} bytes; list page {page:,} bytes")
            _scenario("alone", port, probe_request, args.seconds, None)
            _scenario("unknown-keys", port, probe_request, args.seconds,
                      (_request("POST", "/1/handlers", unknown), 4, 1))
            _scenario("unknown-4.9k", port, probe_request, args.seconds,
                      (_request("POST", "/1/handlers", under_cap), 4, 1))
            _scenario("big-lists", port, probe_request, args.seconds, (listing, 300, 4))
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
            cluster.stop("immediate")

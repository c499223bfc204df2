"""The "through the service" side: one-face JPEGs POSTed to /1/handlers/{id}/events.

``luna-handlers serve`` (one HTTP worker, ``FACE_ENGINE.workers`` = the core count under
test) on its own PostgreSQL; a static handler that extracts descriptors (as the raw loop
does) and stores the sample and the event (the service's defaults). The client is a few
asyncio connections speaking plain HTTP/1.1 keep-alive, so it costs little CPU next to
inference:

* saturation: a closed loop with ``workers + 2`` connections (the engine queue never runs
  dry) for the given seconds: images/s, p50, p99;
* 80 %: an open loop, Poisson arrivals at 0.8 x the saturated rate, for the same seconds:
  p50, p99 (the issue's goal: p99 <= 3 x p50).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import urllib.request
from dataclasses import dataclass

from bench.api.data import BenchDatabase, start_database
from bench.api.servers import Server, start_ours
from bench.engine.workload import Result

ACCOUNT = "4f1c7f0e-8d7a-4b1e-9a0e-1c2d3e4f5a6b"
POLICIES = {"extract_policy": {"extract_face_descriptor": 1}}
#: Connections idle longer are not reused (uvicorn's keep-alive timeout is 5 s).
IDLE_SECONDS = 3.0


@dataclass
class _Target:
    port: int
    path: str


def _create_handler(server: Server) -> str:
    request = urllib.request.Request(
        server.base + "/1/handlers", method="POST",
        data=json.dumps({"policies": POLICIES}).encode(),
        headers={"Content-Type": "application/json", "Luna-Account-Id": ACCOUNT})
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.load(response)["handler_id"])


async def _post(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: _Target,
                image: bytes) -> None:
    writer.write((f"POST {target.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  f"Luna-Account-Id: {ACCOUNT}\r\nContent-Type: image/jpeg\r\n"
                  f"Content-Length: {len(image)}\r\n\r\n").encode() + image)
    head = await reader.readuntil(b"\r\n\r\n")
    status = head.split(b" ", 2)[1]
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    body = await reader.readexactly(length)
    if status != b"201":
        raise RuntimeError(f"POST events answered {status.decode()}: {body[:200]!r}")


async def _closed(target: _Target, images: list[bytes], connections: int,
                  seconds: float) -> tuple[int, list[float], float]:
    latencies: list[float] = []
    until = time.perf_counter() + seconds

    async def client(start: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", target.port)
        index = start
        while time.perf_counter() < until:
            began = time.perf_counter()
            await _post(reader, writer, target, images[index % len(images)])
            latencies.append(time.perf_counter() - began)
            index += 1
        writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(connections)))
    return len(latencies), latencies, time.perf_counter() - began


async def _open(target: _Target, images: list[bytes], rate: float,
                seconds: float) -> tuple[int, list[float], float]:
    """Poisson arrivals at ``rate``/s; each request on an idle (or a new) connection."""
    latencies: list[float] = []
    # (connection, idle since); uvicorn closes a keep-alive connection idle for 5 s.
    idle: list[tuple[tuple[asyncio.StreamReader, asyncio.StreamWriter], float]] = []
    tasks = []
    rng = random.Random(7)

    async def connection() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while idle:
            conn, since = idle.pop()
            if time.perf_counter() - since < IDLE_SECONDS:
                return conn
            conn[1].close()
        return await asyncio.open_connection("127.0.0.1", target.port)

    async def one(image: bytes) -> None:
        conn = await connection()
        began = time.perf_counter()
        await _post(*conn, target, image)
        latencies.append(time.perf_counter() - began)
        idle.append((conn, time.perf_counter()))

    began = time.perf_counter()
    next_at = began
    index = 0
    while next_at < began + seconds:
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        tasks.append(asyncio.create_task(one(images[index % len(images)])))
        index += 1
        next_at += rng.expovariate(rate)
    await asyncio.gather(*tasks)
    for (_, writer), _since in idle:
        writer.close()
    return len(latencies), latencies, time.perf_counter() - began


def run_service(images: list[bytes], workers: int, seconds: float,
                db: BenchDatabase | None = None) -> tuple[Result, Result]:
    """(saturated, at 80 %) through a service with ``workers`` engine processes."""
    own = db is None
    database = db or start_database(handlers=1)
    server = start_ours(database, 1,
                        sections={"FACE_ENGINE": {"workers": workers, "queue_size": 64}})
    try:
        target = _Target(server.port, f"/1/handlers/{_create_handler(server)}/events")
        asyncio.run(_closed(target, images, workers + 2, min(2.0, seconds)))  # warm-up
        done, latencies, wall = asyncio.run(_closed(target, images, workers + 2, seconds))
        saturated = Result(f"service engine workers={workers}", done, wall, tuple(latencies))
        done, latencies, wall = asyncio.run(_open(target, images, 0.8 * saturated.per_second,
                                                  seconds))
        loaded = Result(f"service at 80% ({0.8 * saturated.per_second:.1f}/s)", done, wall,
                        tuple(latencies))
        return saturated, loaded
    finally:
        server.stop()
        if own:
            database.stop()

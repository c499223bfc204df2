"""The "through the service" side: one-face JPEGs POSTed to /1/handlers/{id}/events.

``luna-handlers serve`` (one HTTP worker, ``FACE_ENGINE.workers`` = the core count under
test) on its own PostgreSQL; a static handler that extracts descriptors (as the raw loop
does) and stores the sample and the event (the service's defaults). The client is a few
asyncio connections speaking plain HTTP/1.1 keep-alive, so it costs little CPU next to
inference:

* saturation: a closed loop with ``workers + 2`` connections (the engine queue never runs
  dry) for the given seconds: images/s, p50, p99;
* 80 %: open loops at 0.8 x the saturated rate, for the same seconds each, on two schedules
  (:data:`~bench.engine.workload.SCHEDULES`): Poisson arrivals, and requests at fixed
  intervals (wrk2's constant throughput); p50, p99 (the issue's goal: p99 <= 3 x p50).
  Latency runs from the time a request was *scheduled* to be sent (wrk2's convention), so a
  client that falls behind cannot hide queueing (coordinated omission);
* the CPU each image costs in the HTTP process, the engine workers and PostgreSQL during
  the saturated run (:class:`CpuMeter`): what the service adds to the engine's own work.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from dataclasses import dataclass

import psutil

from bench.api.data import BenchDatabase, start_database
from bench.api.servers import Server, start_ours
from bench.engine.workload import SCHEDULES, Result

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
                image: bytes) -> bool:
    """POST one image: True for 201, False for 503 (the engine's queue was full)."""
    writer.write((f"POST {target.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  f"Luna-Account-Id: {ACCOUNT}\r\nContent-Type: image/jpeg\r\n"
                  f"Content-Length: {len(image)}\r\n\r\n").encode() + image)
    head = await reader.readuntil(b"\r\n\r\n")
    status = head.split(b" ", 2)[1]
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    body = await reader.readexactly(length)
    if status not in (b"201", b"503"):
        raise RuntimeError(f"POST events answered {status.decode()}: {body[:200]!r}")
    return status == b"201"


async def _closed(target: _Target, images: list[bytes], connections: int,
                  seconds: float) -> tuple[int, list[float], float]:
    latencies: list[float] = []
    until = time.perf_counter() + seconds

    async def client(start: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", target.port)
        index = start
        while time.perf_counter() < until:
            began = time.perf_counter()
            if not await _post(reader, writer, target, images[index % len(images)]):
                raise RuntimeError("the engine refused an image of the closed loop (503)")
            latencies.append(time.perf_counter() - began)
            index += 1
        writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(connections)))
    return len(latencies), latencies, time.perf_counter() - began


async def _open(target: _Target, images: list[bytes],
                arrivals: list[float]) -> tuple[int, list[float], float]:
    """One request at each of ``arrivals`` (s from now), each on an idle (or a new)
    connection; each latency counts from its scheduled time. A request the engine refused
    (503: its queue was full, the machine's load rose since saturation was measured) has no
    latency: the count of those is ``len(arrivals)`` minus the images done."""
    latencies: list[float] = []
    # (connection, idle since); uvicorn closes a keep-alive connection idle for 5 s.
    idle: list[tuple[tuple[asyncio.StreamReader, asyncio.StreamWriter], float]] = []
    tasks = []

    async def connection() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while idle:
            conn, since = idle.pop()
            if time.perf_counter() - since < IDLE_SECONDS:
                return conn
            conn[1].close()
        return await asyncio.open_connection("127.0.0.1", target.port)

    async def one(image: bytes, scheduled: float) -> None:
        conn = await connection()
        if await _post(*conn, target, image):
            latencies.append(time.perf_counter() - scheduled)
        idle.append((conn, time.perf_counter()))

    began = time.perf_counter()
    for index, offset in enumerate(arrivals):
        await asyncio.sleep(max(0.0, began + offset - time.perf_counter()))
        tasks.append(asyncio.create_task(one(images[index % len(images)], began + offset)))
    await asyncio.gather(*tasks)
    for (_, writer), _since in idle:
        writer.close()
    return len(latencies), latencies, time.perf_counter() - began


class CpuMeter:
    """CPU seconds (user + system) of the service's processes between two readings: the
    HTTP process, its engine workers (its child processes) and the PostgreSQL server's;
    independent of how loaded the machine is, unlike the images/s."""

    def __init__(self, server: Server, database: BenchDatabase) -> None:
        main = psutil.Process(server.process.pid)
        postmaster = database.cluster.postmaster()
        assert postmaster is not None
        self._groups = {"http process": [main], "engine workers": main.children(recursive=True),
                        "postgres": [postmaster]}
        self._start = self._read()

    def _read(self) -> dict[str, float]:
        self._groups["postgres"] = self._groups["postgres"][:1] + \
            self._groups["postgres"][0].children(recursive=True)
        return {name: sum(_cpu(proc) for proc in procs) for name, procs in self._groups.items()}

    def per_image(self, images: int) -> dict[str, float]:
        """Milliseconds of CPU per image of each group since the meter was made. Postgres
        backends that ended meanwhile are missed (the service keeps its connections)."""
        end = self._read()
        return {name: 1e3 * (end[name] - self._start[name]) / images for name in end}


def _cpu(proc: psutil.Process) -> float:
    try:
        times = proc.cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return float(times.user + times.system)


@dataclass(frozen=True)
class Loaded:
    """One open loop at 80 %: its schedule's name, arrival offsets and what they measured."""

    schedule: str
    arrivals: list[float]
    result: Result

    @property
    def kept_up(self) -> bool:
        """Whether the service answered at the schedule's rate (within 5 %); when the
        machine's load rose after saturation was measured it did not, and its latencies
        are those of a growing backlog instead of 80 %."""
        scheduled = len(self.arrivals) / max(self.arrivals[-1], 1e-9)
        return self.result.per_second >= 0.95 * scheduled and not self.refused

    @property
    def refused(self) -> int:
        """Requests answered 503 (engine queue full)."""
        return len(self.arrivals) - self.result.images


@dataclass(frozen=True)
class ServiceRun:
    """What one service run measured."""

    saturated: Result
    loaded: list[Loaded]  # one per schedule
    cpu_ms: dict[str, float]  # per image at saturation, by process group


def run_service(images: list[bytes], workers: int, seconds: float,
                db: BenchDatabase | None = None) -> ServiceRun:
    """Saturated and at 80 % through a service with ``workers`` engine processes."""
    own = db is None
    database = db or start_database(handlers=1)
    server = start_ours(database, 1,
                        sections={"FACE_ENGINE": {"workers": workers, "queue_size": 64}})
    try:
        target = _Target(server.port, f"/1/handlers/{_create_handler(server)}/events")
        asyncio.run(_closed(target, images, workers + 2, min(2.0, seconds)))  # warm-up
        meter = CpuMeter(server, database)
        done, latencies, wall = asyncio.run(_closed(target, images, workers + 2, seconds))
        saturated = Result(f"service engine workers={workers}", done, wall, tuple(latencies))
        cpu_ms = meter.per_image(done)
        rate = 0.8 * saturated.per_second
        loaded = []
        for schedule, arrivals_of in SCHEDULES.items():
            arrivals = arrivals_of(rate, seconds)
            done, latencies, wall = asyncio.run(_open(target, images, arrivals))
            loaded.append(Loaded(schedule, arrivals, Result(
                f"service at 80% ({rate:.1f}/s), {schedule}", done, wall, tuple(latencies))))
        return ServiceRun(saturated, loaded, cpu_ms)
    finally:
        server.stop()
        if own:
            database.stop()

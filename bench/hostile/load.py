"""The clients of the hostile bench: a probe that times one cheap request at a time, and
attackers (many connections in one process) that send costly requests as fast as answered."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Timings:
    """Latencies of the probe, in milliseconds, and how many attack answers came meanwhile."""

    count: int
    median_ms: float
    p99_ms: float
    max_ms: float


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return status


async def probe(port: int, request: bytes, seconds: float) -> Timings:
    """Send ``request`` over one keep-alive connection, one at a time, for ``seconds``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    latencies = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        writer.write(request)
        status = await _read_response(reader)
        latencies.append((time.perf_counter() - started) * 1000)
        assert status == 200, status
        await asyncio.sleep(0.01)
    writer.close()
    ordered = sorted(latencies)
    return Timings(len(ordered), statistics.median(ordered),
                   ordered[int(len(ordered) * 0.99) - 1], ordered[-1])


async def _attacker(port: int, request: bytes, pipeline: int, stop: float,
                    answered: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
    try:
        while time.monotonic() < stop:
            writer.write(request * pipeline)
            for _ in range(pipeline):
                await _read_response(reader)
                answered[0] += 1
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def attack(port: int, request: bytes, connections: int, pipeline: int,
                 seconds: float) -> int:
    """``connections`` clients sending ``request`` ``pipeline`` at a time; answers counted."""
    answered = [0]
    stop = time.monotonic() + seconds
    await asyncio.gather(*(_attacker(port, request, pipeline, stop, answered)
                           for _ in range(connections)))
    return answered[0]


def attack_process(port: int, request: bytes, connections: int, pipeline: int,
                   seconds: float) -> None:
    """Run :func:`attack` (a process of its own, so the probe's timings stay its own)."""
    answered = asyncio.run(attack(port, request, connections, pipeline, seconds))
    print(f"    attackers: {answered} answers in {seconds:.0f} s", flush=True)

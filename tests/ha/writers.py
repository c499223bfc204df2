"""Clients that write continuously through a fault and record every attempt.

* :class:`ServiceWriter`: ``POST /1/handlers`` to a ``serve`` process, the way LUNA clients
  write (with ``Luna-Account-Id``); an attempt is acknowledged when the answer is 201.
* :class:`PsycopgWriter`: the reference, psycopg over a libpq multi-host conninfo with
  ``target_session_attrs=read-write``, one autocommit INSERT per attempt into a table of its
  own; on an error it drops the connection and reconnects for the next attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import psycopg

ACCOUNT = "00000000-0000-4000-8000-0000000000a1"
PAUSE_S = 0.02  # between one writer's attempts: a steady load the 2-core machine can carry
HTTP_TIMEOUT_S = 90.0  # beyond every service timeout: we measure how long requests take
# libpq has no statement timeout of its own: bound each attempt like the service's default
# DB_FAILOVER.query_timeout, so a hung host costs the reference what it costs the service.
PSYCOPG_ATTEMPT_S = 30.0
PSYCOPG_CONNECT_TIMEOUT_S = 5  # the service's default DB_FAILOVER.connect_timeout
REFERENCE_TABLE = "ha_reference"


@dataclass(frozen=True)
class Attempt:
    """One write attempt: when it was sent and answered, and how it ended."""

    sent: float
    done: float
    label: str  # "201", "503/34010", or the exception class when there was no answer
    status: int | None
    write_id: str | None  # set when acknowledged

    @property
    def ok(self) -> bool:
        """Acknowledged."""
        return self.write_id is not None

    @property
    def seconds(self) -> float:
        """How long the attempt took."""
        return self.done - self.sent


def _label(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    code = body.get("error_code") if isinstance(body, dict) else None
    return f"{response.status_code}/{code}" if code is not None else str(response.status_code)


class ServiceWriter:
    """``POST /1/handlers`` to one service."""

    def __init__(self, name: str, base_url: str) -> None:
        self.name = name
        self._client = httpx.AsyncClient(base_url=base_url, timeout=HTTP_TIMEOUT_S,
                                         limits=httpx.Limits(max_connections=16))

    async def attempt(self) -> Attempt:
        """One handler creation."""
        sent = time.monotonic()
        try:
            response = await self._client.post(
                "/1/handlers", json={"description": "ha", "policies": {}},
                headers={"Luna-Account-Id": ACCOUNT})
        except httpx.HTTPError as exc:
            return Attempt(sent, time.monotonic(), type(exc).__name__, None, None)
        done = time.monotonic()
        write_id = response.json().get("handler_id") if response.status_code == 201 else None
        return Attempt(sent, done, _label(response), response.status_code, write_id)

    async def close(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()


class PsycopgWriter:
    """The reference client; one connection per concurrent loop (see :meth:`loop_state`)."""

    def __init__(self, name: str, conninfo: str) -> None:
        self.name = name
        self._conninfo = conninfo
        self._idle: list[psycopg.AsyncConnection[tuple[object, ...]]] = []

    async def attempt(self) -> Attempt:
        """Connect if needed, insert one row; a failed connection is dropped."""
        sent = time.monotonic()
        conn = self._idle.pop() if self._idle else None
        write_id = str(uuid.uuid4())
        try:
            async with asyncio.timeout(PSYCOPG_ATTEMPT_S):
                if conn is None:
                    conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
                await conn.execute(f"INSERT INTO {REFERENCE_TABLE} (id) VALUES (%s)",
                                   (write_id,))
        except (psycopg.Error, OSError, TimeoutError) as exc:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.close(), 2)
            return Attempt(sent, time.monotonic(), type(exc).__name__, None, None)
        self._idle.append(conn)
        return Attempt(sent, time.monotonic(), "ok", None, write_id)

    async def close(self) -> None:
        """Close every connection."""
        for conn in self._idle:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2)
        self._idle.clear()


Writer = ServiceWriter | PsycopgWriter


async def write_until(writer: Writer, loops: int, stop: asyncio.Event,
                      record: Callable[[Attempt], None]) -> None:
    """Run ``loops`` concurrent writing loops until ``stop`` is set (in-flight attempts end)."""
    async def loop() -> None:
        while not stop.is_set():
            record(await writer.attempt())
            await asyncio.sleep(PAUSE_S)

    tasks: list[Awaitable[None]] = [loop() for _ in range(loops)]
    await asyncio.gather(*tasks)

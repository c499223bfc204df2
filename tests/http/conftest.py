"""``luna-handlers serve`` as a subprocess on real sockets, with small edge limits."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from luna_handlers.pgserver.cluster import PgCluster, free_port
from tests.conftest import TEST_PASSWORD, TEST_USER, new_database, wait_healthy

TOKEN = "edge-test-token"
ACCOUNT = "6d7e1a3e-0a4f-4b7e-9d3f-1c2b3a4d5e6f"
#: The small limits the edge tests run with.
EDGE = {"header_timeout": 1, "body_timeout": 1}


class Served:
    """A ``luna-handlers serve`` process; its log goes to a file the tests can read."""

    def __init__(self, base: Path, config: dict[str, Any]) -> None:
        self.port = free_port()
        self.config_path = base / f"config-{self.port}.json"
        self.config_path.write_text(json.dumps(config))
        self.log_path = base / f"serve-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.preexec: Callable[[], None] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("LUNA_HANDLERS", "PROMETHEUS"))}
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "luna_handlers", "serve", "--config",
                 str(self.config_path), "--port", str(self.port)],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                # setrlimit only, in the child: no lock a thread could hold is taken
                preexec_fn=self.preexec)  # noqa: PLW1509
        wait_healthy(self.proc, self.url("/1/healthcheck"), self.log)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=15)
        return sock

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def service_config(cluster: PgCluster, **sections: dict[str, Any]) -> dict[str, Any]:
    """A config on a fresh, migrated database of ``cluster`` with ``sections`` merged in."""
    config: dict[str, Any] = {"LUNA_HANDLERS_DB": {
        "db_host": cluster.host, "db_port": cluster.port, "db_user": TEST_USER,
        "db_password": TEST_PASSWORD, "db_name": new_database(cluster)}}
    for name, keys in sections.items():
        config.setdefault(name, {}).update(keys)
    return config


def migrate(base: Path, config: dict[str, Any]) -> None:
    path = base / f"migrate-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(config))
    subprocess.run([sys.executable, "-m", "luna_handlers", "db", "upgrade", "--config",
                    str(path)], check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def edge(shared_tmp: Path, pg_cluster: PgCluster) -> Iterator[Served]:
    """The service with :data:`EDGE` limits and an API token, on the session's PostgreSQL."""
    config = service_config(pg_cluster, LUNA_HANDLERS_SERVER=EDGE, API={"token": TOKEN})
    migrate(shared_tmp, config)
    served = Served(shared_tmp, config)
    served.start()
    yield served
    served.kill()


def raw_request(method: str, path: str, headers: list[tuple[str, str]] | None = None,
                body: bytes = b"", *, auth: bool = True) -> bytes:
    """The bytes of one HTTP/1.1 request (with the token unless ``auth`` is False)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: edge"]
    if auth:
        lines.append(f"Authorization: Bearer {TOKEN}")
    lines += [f"{name}: {value}" for name, value in headers or []]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


#: Bytes read past a response, per socket: the start of the next (pipelined) one.
_leftover: weakref.WeakKeyDictionary[socket.socket, bytes] = weakref.WeakKeyDictionary()


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response from ``sock``: status, headers (lower-case names), body."""
    data = _leftover.pop(sock, b"")
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError(f"connection closed after {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed inside the body")
        body += chunk
    _leftover[sock] = body[length:]
    return int(status_line.split()[1]), headers, body[:length]


def luna_error(status: int, body: bytes, expected_status: int, code: int) -> dict[str, Any]:
    """Check a LUNA error body of ``code``; the body."""
    assert status == expected_status, body
    decoded: dict[str, Any] = orjson.loads(body)
    assert set(decoded) == {"error_code", "desc", "detail", "link"}
    assert decoded["error_code"] == code, decoded
    return decoded

"""``luna-handlers serve`` as a user runs it: embedded database, health, graceful stop, restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from luna_handlers.pgserver.cluster import free_port
from tests.conftest import wait_healthy

pytestmark = pytest.mark.slow


class Service:
    """A ``luna-handlers serve`` subprocess on its own embedded database."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.pg_port = free_port()
        self.proc: subprocess.Popen[str] | None = None

    def start(self, workers: int = 1) -> None:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("LUNA_HANDLERS", "PROMETHEUS"))}
        env["EMBEDDED_POSTGRES__DATA_DIR"] = str(self.base / "embedded")
        env["EMBEDDED_POSTGRES__PORT"] = str(self.pg_port)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "luna_handlers", "serve", "--port", str(self.port),
             "--workers", str(workers)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True)  # its own group: a failed test kills the workers too
        wait_healthy(self.proc, self.url("/1/healthcheck"), self.output)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)

    def output(self) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        if self.proc.poll() is None:
            return "(running)"
        return self.proc.stdout.read()


@pytest.fixture
def service(shared_tmp: Path) -> Iterator[Service]:
    base = shared_tmp / f"serve-{uuid.uuid4().hex[:8]}"
    base.mkdir()
    svc = Service(base)
    yield svc
    if svc.proc is not None and svc.proc.poll() is None:
        os.killpg(svc.proc.pid, signal.SIGKILL)
        svc.proc.wait()


def test_serve_embedded_health_graceful_stop_and_restart(service: Service) -> None:
    service.start()
    health = httpx.get(service.url("/1/healthcheck")).json()
    assert health["status"] == "ok"
    account = str(uuid.uuid4())
    created = httpx.post(service.url("/1/handlers"), headers={"Luna-Account-Id": account},
                         json={"description": "survives restarts", "policies": {}})
    assert created.status_code == 201, created.text
    handler_id = created.json()["handler_id"]

    assert service.stop() == 0
    log = service.output()
    assert "embedded PostgreSQL is running" in log
    assert str(service.base / "embedded") in log
    # The embedded server is stopped with the service.
    assert not (service.base / "embedded" / "data" / "postmaster.pid").exists()

    service.start()
    again = httpx.get(service.url(f"/1/handlers/{handler_id}"))
    assert again.status_code == 200
    assert again.json()["description"] == "survives restarts"
    assert service.stop() == 0


def series(text: str, name: str) -> dict[str, float]:
    """The samples of one metric in a Prometheus text exposition, by their label text."""
    found = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            labels, _, value = line[len(name):].rpartition(" ")
            found[labels] = float(value)
    return found


def test_metrics_of_every_worker_in_each_scrape(service: Service) -> None:
    service.start(workers=2)
    for _ in range(30):
        assert httpx.get(service.url("/1/version")).status_code == 200
    pids = set()
    for _ in range(8):  # each a new connection: the workers take turns at random
        text = httpx.get(service.url("/metrics")).text
        counted = series(text, "luna_handlers_http_requests_total")
        version = [value for labels, value in counted.items() if '"/1/version"' in labels]
        assert version == [30.0]  # summed over the workers, whichever answered
        pids |= set(series(text, "luna_handlers_db_pool_generation"))
    assert len(pids) == 2  # one pool per worker, each labelled with its pid
    assert service.stop() == 0


def _worker_pids(text: str) -> set[str]:
    return {labels.split('pid="')[1].split('"')[0]
            for labels in series(text, "luna_handlers_db_pool_generation")}


def test_metrics_forget_a_killed_worker(service: Service) -> None:
    service.start(workers=2)
    seen: set[str] = set()
    while len(seen) < 2:  # each scrape a new connection: a worker at random
        seen |= _worker_pids(httpx.get(service.url("/metrics")).text)
    killed = sorted(seen)[0]
    os.kill(int(killed), signal.SIGKILL)  # no worker_stopped() runs: uvicorn starts another
    for _ in range(600):
        try:
            pids = _worker_pids(httpx.get(service.url("/metrics")).text)
        except httpx.TransportError:
            continue
        time.sleep(0.05)
        if len(pids - seen) == 1:  # the successor's pool is up
            break
    else:
        pytest.fail("no successor worker appeared")
    assert killed not in pids
    assert len(pids) == 2
    assert service.stop() == 0


def test_serve_refuses_an_unmigrated_database(shared_tmp: Path, pg_cluster: object) -> None:
    from luna_handlers.pgserver.cluster import PgCluster
    from tests.conftest import TEST_PASSWORD, TEST_USER, new_database

    assert isinstance(pg_cluster, PgCluster)
    config = shared_tmp / f"unmigrated-{uuid.uuid4().hex[:8]}.json"
    config.write_text(json.dumps({"LUNA_HANDLERS_DB": {
        "db_host": pg_cluster.host, "db_port": pg_cluster.port, "db_user": TEST_USER,
        "db_password": TEST_PASSWORD, "db_name": new_database(pg_cluster)}}))
    result = subprocess.run(
        [sys.executable, "-m", "luna_handlers", "serve", "--config", str(config),
         "--port", str(free_port())], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert "run 'luna-handlers db upgrade'" in result.stderr
    assert TEST_PASSWORD not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr

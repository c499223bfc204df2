"""The service in front of a PostgreSQL that hangs (SIGSTOP): a client that leaves, SIGTERM."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from luna_handlers.pgserver.cluster import PgCluster
from tests.conftest import started_cluster
from tests.http.conftest import (
    ACCOUNT,
    TOKEN,
    Served,
    luna_error,
    migrate,
    raw_request,
    read_response,
    service_config,
)

pytestmark = pytest.mark.slow
POST = raw_request("POST", "/1/handlers", [("Content-Type", "application/json"),
                                           ("Luna-Account-Id", ACCOUNT)],
                   orjson.dumps({"policies": {}}))


@pytest.fixture(scope="module")
def own_cluster(shared_tmp: Path) -> Iterator[PgCluster]:
    """A PostgreSQL of this module alone: the tests hang it."""
    cluster = started_cluster(shared_tmp / "hung")
    yield cluster
    cluster.resume()
    cluster.stop("immediate")


@pytest.fixture
def served(shared_tmp: Path, own_cluster: PgCluster) -> Iterator[Served]:
    # A health check that waits longer than these tests: otherwise it gives up on the hung
    # host within 1.5 s and answers the requests in flight itself (34011, issue 11), and
    # what the HTTP layer does with a request still waiting would go untested.
    config = service_config(own_cluster, LUNA_HANDLERS_SERVER={"shutdown_timeout": 2},
                            API={"token": TOKEN}, DB_FAILOVER={"health_check_timeout": 60})
    migrate(shared_tmp, config)
    service = Served(shared_tmp, config)
    service.start()
    yield service
    own_cluster.resume()
    service.kill()


def wait_for(served: Served, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while text not in served.log():
        assert time.monotonic() < deadline, served.log()
        time.sleep(0.1)


def test_a_client_gone_before_its_answer_is_one_499_line(
        served: Served, own_cluster: PgCluster) -> None:
    own_cluster.pause()
    try:
        with served.connect() as sock:
            sock.sendall(POST)
            time.sleep(0.5)  # the request is waiting for the hung database
    finally:
        own_cluster.resume()
    wait_for(served, "POST /1/handlers 499")
    log = served.log()
    assert "Traceback" not in log
    assert [line for line in log.splitlines() if "POST /1/handlers" in line] == [
        next(line for line in log.splitlines() if "POST /1/handlers 499" in line)]
    metrics = httpx.get(served.url("/metrics")).text
    assert ('luna_handlers_http_requests_total{method="POST",route="/1/handlers",'
            'status="499"} 1.0') in metrics


def test_sigterm_while_the_database_hangs_answers_503_34011(
        served: Served, own_cluster: PgCluster) -> None:
    assert served.proc is not None
    own_cluster.pause()
    sockets = [served.connect() for _ in range(4)]
    try:
        for sock in sockets:
            sock.sendall(POST)
        time.sleep(0.5)  # all four wait for the database
        served.proc.send_signal(signal.SIGTERM)
        for sock in sockets:
            status, headers, body = read_response(sock)  # within the 2 s grace period + a bit
            detail = luna_error(status, body, 503, 34011)["detail"]
            assert "the service stopped before the request finished" in detail.lower()
            assert headers["retry-after"] == "1"
    finally:
        for sock in sockets:
            sock.close()
        own_cluster.resume()
    assert served.proc.wait(timeout=60) == 0
    log = served.log()
    assert "Cancel 4 running task(s), timeout graceful shutdown exceeded" in log
    assert "Internal Server Error" not in log
    assert "Exception in ASGI application" not in log

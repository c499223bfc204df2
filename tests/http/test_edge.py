"""Hostile and broken clients against the real service on real sockets (``tests/http/
conftest.py`` starts it with a 1 s header and body timeout); the connection limit with
another that may open only 256 files."""

from __future__ import annotations

import resource
import select
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import psutil
import pytest

from luna_handlers.pgserver.cluster import PgCluster
from tests.http.conftest import (
    ACCOUNT,
    Served,
    luna_error,
    migrate,
    raw_request,
    read_response,
    service_config,
)

pytestmark = pytest.mark.slow
JSON = ("Content-Type", "application/json")
#: What 256 open files leave for clients: 256 - 64 reserved - 64 refusals - 2 x 10 pooled.
FEW_FILES_CONNECTIONS = 108
ACC = ("Luna-Account-Id", ACCOUNT)


def ask(edge: Served, request: bytes) -> tuple[int, dict[str, str], bytes]:
    with edge.connect() as sock:
        sock.sendall(request)
        return read_response(sock)


def test_a_connection_that_sends_nothing_is_closed(edge: Served) -> None:
    with edge.connect() as sock:
        assert sock.recv(100) == b""  # closed by the server (header_timeout), no answer


def test_headers_at_one_byte_a_second_get_408(edge: Served) -> None:
    request = raw_request("GET", "/1/version")
    with edge.connect() as sock:
        answer = b""
        for byte in request:  # 0.25 s a byte: the whole request would take ~25 s
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            readable, _, _ = select.select([sock], [], [], 0.25)
            if readable:
                answer = sock.recv(65536)
                break
    status, _, body = answer.partition(b"\r\n")[0].split()[1], None, answer.partition(
        b"\r\n\r\n")[2]
    luna_error(int(status), body, 408, 12044)


def test_a_body_shorter_than_its_content_length_gets_408(edge: Served) -> None:
    head = raw_request("POST", "/1/handlers", [JSON, ACC, ("Content-Length", "100")])
    with edge.connect() as sock:
        sock.sendall(head + b'{"description": ')
        status, headers, body = read_response(sock)
        assert headers["connection"] == "close"
        assert sock.recv(100) == b""
    detail = luna_error(status, body, 408, 12044)["detail"]
    assert detail == "Request body not received within 1 seconds"


@pytest.fixture(scope="module")
def few_files(shared_tmp: Path, pg_cluster: PgCluster) -> Iterator[Served]:
    """The service with only 256 open files and the default max_connections (10,000)."""
    config = service_config(pg_cluster)
    migrate(shared_tmp, config)
    served = Served(shared_tmp, config)
    served.preexec = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    served.start()
    yield served
    served.kill()


def test_idle_sockets_beyond_the_open_file_limit_leave_the_database_alone(
        few_files: Served) -> None:
    sockets = []
    try:
        for _ in range(600):  # well over the 256 descriptors the service may open
            sockets.append(few_files.connect())
        time.sleep(2)  # several health checks of the database meanwhile
        answered = 0
        for sock in sockets:
            readable, _, _ = select.select([sock], [], [], 0)
            answered += bool(readable)
        assert answered >= 600 - FEW_FILES_CONNECTIONS  # made room for (closed) or refused
        for sock in sockets:
            sock.close()
        sockets = []
        status, _, body = ask(few_files, raw_request("GET", "/1/healthcheck", auth=False))
        assert status == 200, body
        log = few_files.log()
        assert f"max_connections lowered from 10000 to {FEW_FILES_CONNECTIONS}" in log
        assert "Too many open files" not in log and "EMFILE" not in log
        assert "pool switched" not in log
    finally:
        for sock in sockets:
            sock.close()


def test_at_the_limit_the_oldest_idle_connection_makes_room(few_files: Served) -> None:
    idle = [few_files.connect() for _ in range(FEW_FILES_CONNECTIONS)]
    served = []
    try:
        for _ in range(50):  # each served (and kept), though the idle ones may wait 60 s
            sock = few_files.connect()
            served.append(sock)
            sock.sendall(raw_request("GET", "/1/version", auth=False))
            status, _, body = read_response(sock)
            assert status == 200, body
        closed = sum(sock.recv(1) == b"" for sock in idle
                     if select.select([sock], [], [], 0)[0])
        assert closed == 50  # the oldest ones
    finally:
        for sock in idle + served:
            sock.close()


def test_at_the_limit_of_busy_connections_new_clients_get_503_at_once(
        few_files: Served) -> None:
    busy = []
    extra = []
    try:
        for _ in range(FEW_FILES_CONNECTIONS):
            sock = few_files.connect()
            sock.sendall(b"GET /1/version HTTP/1.1\r\nHo")  # a request begun: not idle
            busy.append(sock)
        time.sleep(0.5)
        extra = [few_files.connect() for _ in range(50)]
        for sock in extra:  # answered long before any header timeout (60 s)
            status, headers, body = read_response(sock)
            luna_error(status, body, 503, 12049)
            assert headers["retry-after"] == "1"
    finally:
        for sock in busy + extra:
            sock.close()


@pytest.mark.parametrize(("request_bytes", "status", "code"), [
    (raw_request("GET", "/1/version", [("X-Big", "a" * 40_000)]), 431, 12045),
    (raw_request("GET", "/1/version", [(f"X-{i}", "a" * 1000) for i in range(40)]), 431, 12045),
    (raw_request("GET", "/" + "a" * 60_000), 414, 12046),
    (raw_request("GET", "/1/handlers?handler_ids=" + ",".join([ACCOUNT] * 1800)), 400, 12012),
    (b"NOT HTTP AT ALL\r\n\r\n", 400, 12050),
], ids=["one-big-field", "many-fields", "long-path", "long-handler-ids", "garbage"])
def test_oversized_or_broken_heads_get_luna_errors(
        edge: Served, request_bytes: bytes, status: int, code: int) -> None:
    got, headers, body = ask(edge, request_bytes)
    detail = luna_error(got, body, status, code)["detail"]
    assert headers["connection"] == "close"
    if code == 12012:
        assert detail.startswith("Bad query parameters 'handler_ids'")


def test_a_200_mb_header_block_is_refused_while_it_arrives(edge: Served) -> None:
    assert edge.proc is not None
    server = psutil.Process(edge.proc.pid)
    rss_before = server.memory_info().rss
    with edge.connect() as sock:
        sock.sendall(b"GET /1/version HTTP/1.1\r\nHost: edge\r\nX-Huge: ")
        sent = 0
        chunk = b"a" * 65536
        # Send until the answer comes; what follows it is read and dropped by the server.
        while sent < 200 * 1024 * 1024 and not select.select([sock], [], [], 0)[0]:
            sock.sendall(chunk)
            sent += len(chunk)
        status, _, body = read_response(sock)
    luna_error(status, body, 431, 12045)
    assert sent < 4 * 1024 * 1024
    assert server.memory_info().rss - rss_before < 20 * 1024 * 1024


@pytest.mark.parametrize("close", [False, True], ids=["keep-alive", "connection-close"])
def test_413_reaches_a_client_still_sending(edge: Served, close: bool) -> None:
    body = b" " * (2 * 1024 * 1024)
    headers = [JSON, ACC] + ([("Connection", "close")] if close else [])
    for _ in range(30):
        with edge.connect() as sock:
            sock.sendall(raw_request("POST", "/1/handlers", headers, body))
            status, _, answer = read_response(sock)
        luna_error(status, answer, 413, 12040)


@pytest.mark.parametrize(("keys", "detail"), [
    (50_000, "Failed to validate input json. Path: '',  message: 'Request body has more than "
             "5000 members'"),
    (4_900, "Failed to validate input json. Path: 'policies.key00000',  message: 'Extra inputs "
            "are not permitted'"),
], ids=["over-the-member-cap", "under-it-first-key-named"])
def test_many_unknown_keys_are_one_error(edge: Served, keys: int, detail: str) -> None:
    body = orjson.dumps({"policies": {f"key{i:05d}": 1 for i in range(keys)}})
    status, _, answer = ask(edge, raw_request("POST", "/1/handlers", [JSON, ACC], body))
    assert luna_error(status, answer, 400, 12022)["detail"] == detail


@pytest.mark.parametrize(("headers", "name"), [
    ([ACC, ACC], "Luna-Account-Id"),
    ([ACC, ("Luna-Account-Id", "5b0c4a77-7e0e-4e8f-9a59-0f4f7d3f2a11")], "Luna-Account-Id"),
    ([("Authorization", "Bearer other")], "Authorization"),
], ids=["same-account-twice", "two-accounts", "two-authorizations"])
def test_a_single_header_given_twice_is_400(edge: Served, headers: list[tuple[str, str]],
                                            name: str) -> None:
    status, _, body = ask(edge, raw_request("GET", "/1/handlers", headers))
    detail = luna_error(status, body, 400, 12048)["detail"]
    assert detail == f"Header '{name}' must be given once"


@pytest.mark.parametrize("encoding", ["gzip", "br", "identity, deflate"])
def test_an_encoded_body_is_415(edge: Served, encoding: str) -> None:
    request = raw_request("POST", "/1/handlers", [JSON, ACC, ("Content-Encoding", encoding)],
                          b'{"policies": {}}')
    status, _, body = ask(edge, request)
    luna_error(status, body, 415, 12047)


def test_identity_encoding_is_accepted(edge: Served) -> None:
    request = raw_request("POST", "/1/handlers", [JSON, ACC, ("Content-Encoding", "identity")],
                          b'{"policies": {}}')
    status, _, body = ask(edge, request)
    assert status == 201, body


def test_a_keep_alive_connection_serves_requests_after_a_refused_body(edge: Served) -> None:
    with edge.connect() as sock:
        sock.sendall(raw_request("POST", "/1/handlers", [JSON, ACC, ("Content-Encoding", "gzip")],
                                 b"x" * 1000) + raw_request("GET", "/1/version"))
        assert read_response(sock)[0] == 415
        assert read_response(sock)[0] == 200


"""Service routes and cross-cutting behaviour: health, version, metrics, docs, OpenAPI,
request ids, the API token, body limits, routing errors and the error middleware."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate
from starlette.types import Receive, Scope, Send

import luna_handlers
from luna_handlers.app.application import route_table
from luna_handlers.app.errors import ErrorMiddleware
from luna_handlers.app.logging import RequestIdFilter, configure_logging
from luna_handlers.app.middleware import RequestMiddleware
from luna_handlers.config import FailoverSettings
from luna_handlers.db.dialects.postgresql.backend import pg_backend
from luna_handlers.db.dialects.postgresql.dsn import parse_pg_dsn
from luna_handlers.db.hosts import HostPort
from luna_handlers.db.pool.hostpool import HostPool
from luna_handlers.pgserver.cluster import free_port
from tests.app.conftest import (
    POLICIES,
    acc,
    assert_error,
    make_app,
    make_settings,
    new_account,
    serve,
    shared,
)

TOKEN = "s3cret-token-value"
REQUEST_ID = re.compile(
    r"[0-9]{10},[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


@pytest.fixture(scope="module")
async def token_client(migrated_pool: HostPool) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app that requires the API token."""
    async with serve(make_app(make_settings(token=TOKEN), shared(migrated_pool))) as http:
        yield http


@pytest.fixture(scope="module")
async def small_body_client(migrated_pool: HostPool) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app that accepts bodies of at most 1 KiB."""
    app = make_app(make_settings(max_body_size=1024), shared(migrated_pool))
    async with serve(app) as http:
        yield http


@pytest.fixture(scope="module")
async def dead_db_client() -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app whose database port has nobody listening."""
    failover = FailoverSettings(connect_timeout=1.0, query_timeout=2.0, failure_threshold=3,
                                health_check_interval=1.0, switch_wait=1.0)
    port = free_port()
    dsn = parse_pg_dsn(f"luna:pw@127.0.0.1:{port}/nothing")
    pool = HostPool(pg_backend(dsn, 1, failover), HostPort("127.0.0.1", port), label="dead")
    async with serve(make_app(make_settings(), shared(pool))) as http:
        yield http
    await pool.close()


async def test_healthcheck(client: httpx.AsyncClient) -> None:
    response = await client.get("/1/healthcheck")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["generation"] == 1


async def test_healthcheck_with_the_database_down(dead_db_client: httpx.AsyncClient) -> None:
    response = await dead_db_client.get("/1/healthcheck")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    body = response.json()
    assert body["error_code"] == 34010
    assert body["database"] == {"host": "dead", "generation": 1}
    assert set(body) == {"error_code", "desc", "detail", "link", "database", "cache"}
    # The feed cannot connect either: the cache says it does not serve, and why.
    assert body["cache"]["serving"] is False and body["cache"]["feed"]["healthy"] is False


async def test_requests_with_the_database_down_are_503(dead_db_client: httpx.AsyncClient) -> None:
    response = await dead_db_client.get("/1/handlers")
    assert_error(response, 503, 34010)
    assert response.headers["retry-after"] == "1"
    response = await dead_db_client.post("/1/handlers", headers=acc(new_account()),
                                         json={"policies": {}})
    assert_error(response, 503, 34010)


async def test_version(client: httpx.AsyncClient) -> None:
    response = await client.get("/1/version")
    assert response.json() == {"version": luna_handlers.__version__, "api_version": 1}


async def test_metrics(client: httpx.AsyncClient) -> None:
    await client.get("/1/handlers/00000000-0000-4000-8000-000000000000")
    await client.get("/no/such/page")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert ('luna_handlers_http_requests_total{method="GET",route="/1/handlers/{handler_id}",'
            'status="404"}') in text
    assert 'route="unmatched",status="404"' in text
    assert "luna_handlers_http_request_duration_seconds_bucket{" in text


async def test_openapi_document_is_valid_and_complete(client: httpx.AsyncClient) -> None:
    response = await client.get("/1/docs/spec")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    validate(document)
    assert document["openapi"].startswith("3.1")
    documented = {(path, method.upper()) for path, item in document["paths"].items()
                  for method in item if method != "parameters"}
    served = {(path, method) for path, methods in route_table().items() for method in methods}
    assert documented == served
    # query parameters are those the routes parse, with their constraints
    listing = document["paths"]["/1/handlers"]["get"]
    names = {param.get("name") for param in listing["parameters"]}
    assert {"page", "page_size", "description", "handler_ids", "is_dynamic", "create_time__gte",
            "create_time__lt", "account_id"} <= names
    page_size = next(p for p in listing["parameters"] if p.get("name") == "page_size")
    assert (page_size["schema"]["minimum"], page_size["schema"]["maximum"]) == (1, 1000)
    # error bodies name the codes an operation can answer with
    not_found = document["paths"]["/1/verifiers/{verifier_id}"]["get"]["responses"]["404"]
    schema = not_found["content"]["application/json"]["schema"]
    assert schema["properties"]["error_code"]["enum"] == [34004]
    assert "security" not in document


async def test_docs_page_lists_every_route(client: httpx.AsyncClient) -> None:
    response = await client.get("/1/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    for path in route_table():
        assert f"<code>{path}</code>" in response.text
    assert "<script" not in response.text


async def test_request_id_is_echoed_or_generated(client: httpx.AsyncClient) -> None:
    given = "1732650760,4d0c1e5b-4a0f-4b5e-9d6c-2b7f0c9e8a11"
    response = await client.get("/1/version", headers={"Luna-Request-Id": given})
    assert response.headers["luna-request-id"] == given
    generated = (await client.get("/1/version")).headers["luna-request-id"]
    assert REQUEST_ID.fullmatch(generated)
    for unusable in (b"has space", b"x" * 129, "é".encode()):
        headers = {b"Luna-Request-Id": unusable}
        echoed = (await client.get("/1/version", headers=headers)).headers["luna-request-id"]
        assert REQUEST_ID.fullmatch(echoed)
    # error responses carry it too
    response = await client.get("/nowhere", headers={"Luna-Request-Id": given})
    assert response.headers["luna-request-id"] == given


async def test_every_log_line_of_a_request_carries_its_id(
        client: httpx.AsyncClient, db_context: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.handler.addFilter(RequestIdFilter())
    caplog.set_level(logging.INFO)
    handler_id = await db_context.createHandler({"detect_policy": 5}, new_account())
    given = "1700000000,0b8e5a3c-1d2f-4e6a-8b9c-0d1e2f3a4b5c"
    response = await client.get(f"/1/handlers/{handler_id}", headers={"Luna-Request-Id": given})
    assert response.status_code == 500
    mine = [record for record in caplog.records
            if getattr(record, "request_id", None) == given]
    assert {record.name for record in mine} >= {"luna_handlers.app", "luna_handlers.access"}
    access = next(record for record in mine if record.name == "luna_handlers.access")
    assert access.getMessage().startswith(f"GET /1/handlers/{handler_id} 500 ")
    caplog.clear()
    await client.get("/1/version")
    assert all(getattr(record, "request_id", "-") != given for record in caplog.records)
    # a decoded newline in the path cannot forge a log line
    caplog.clear()
    await client.get("/1/a%0Ab")
    access = next(record for record in caplog.records if record.name == "luna_handlers.access")
    assert access.getMessage().startswith("GET /1/a\\nb 404 ")


def test_configure_logging_is_idempotent() -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    level = root.level
    try:
        configure_logging("debug")
        configure_logging("INFO")
        added = [handler for handler in root.handlers if handler not in before]
        assert len(added) == 1
        assert any(isinstance(f, RequestIdFilter) for f in added[0].filters)
        assert root.level == logging.INFO
    finally:
        for handler in root.handlers:
            if handler not in before:
                root.removeHandler(handler)
        root.setLevel(level)


async def test_token(token_client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                    {"Authorization": f"Basic {TOKEN}"}, {"Authorization": f"Bearer {TOKEN}x"}):
        response = await token_client.get("/1/handlers", headers=headers)
        assert_error(response, 401, 12041)
        assert response.headers["www-authenticate"] == "Bearer"
    # unknown routes too: the token comes first, so paths are not revealed
    assert_error(await token_client.get("/1/nothing"), 401, 12041)
    assert_error(await token_client.get("/1/docs/spec"), 401, 12041)
    head = await token_client.head(f"/1/handlers/{new_account()}")
    assert (head.status_code, head.content) == (401, b"")
    right = {"Authorization": f"Bearer {TOKEN}"}
    assert (await token_client.get("/1/version", headers=right)).status_code == 200
    assert (await token_client.get("/1/handlers/count", headers=right)).status_code == 200
    assert (await token_client.get("/1/version", headers={
        "Authorization": f"bearer {TOKEN}"})).status_code == 200
    created = await token_client.post("/1/handlers", headers=right | acc(new_account()),
                                      json={"policies": POLICIES})
    assert created.status_code == 201
    # probes and scrapers need no token
    assert (await token_client.get("/1/healthcheck")).status_code == 200
    assert (await token_client.get("/metrics")).status_code == 200
    document = (await token_client.get("/1/docs/spec", headers=right)).json()
    validate(document)
    assert document["security"] == [{"bearerAuth": []}]
    assert document["paths"]["/1/healthcheck"]["get"]["security"] == []
    assert "401" in document["paths"]["/1/handlers"]["get"]["responses"]
    assert TOKEN not in caplog.text


async def test_body_too_large(small_body_client: httpx.AsyncClient) -> None:
    headers = acc(new_account())
    big = {"description": "x", "policies": {"match_policy": [
        {"candidates": {"origin": "faces"}, "label": "l" * 100} for _ in range(20)]}}
    response = await small_body_client.post("/1/handlers", headers=headers, json=big)
    assert_error(response, 413, 12040)

    async def chunks() -> AsyncIterator[bytes]:
        # no Content-Length: the limit must hold on the bytes that actually arrive
        yield b'{"policies": {}, "description": "'
        for _ in range(10):
            yield b"y" * 200
        yield b'"}'

    response = await small_body_client.post(
        "/1/handlers", headers=headers | {"Content-Type": "application/json"}, content=chunks())
    assert "content-length" not in response.request.headers
    assert_error(response, 413, 12040)
    small = await small_body_client.post("/1/handlers", headers=headers, json={"policies": {}})
    assert small.status_code == 201


async def test_unknown_route_and_method(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/1/nothing"), 404, 12042)
    assert_error(await client.get("/1/handlers/"), 404, 12042)  # no slash redirects
    assert_error(await client.get("/"), 404, 12042)
    response = await client.patch("/1/handlers", json={})
    assert_error(response, 405, 12043)
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}
    response = await client.post(f"/1/handlers/{new_account()}", json={})
    assert_error(response, 405, 12043)
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD", "PUT", "DELETE"}
    assert_error(await client.post("/1/handlers/count"), 405, 12043)
    # the fixed sub-resources are never read as ids
    response = await client.get("/1/handlers/validator")
    assert_error(response, 405, 12043)
    assert response.headers["allow"] == "POST"
    response = await client.put("/1/verifiers/count", headers=acc(new_account()), json={})
    assert_error(response, 405, 12043)
    assert_error(await client.get("/1/verifiers/validator"), 404, 34004)


async def test_head_of_a_collection_has_no_body(client: httpx.AsyncClient) -> None:
    response = await client.head("/1/handlers", headers=acc(new_account()))
    assert (response.status_code, response.content) == (200, b"")


async def test_unhandled_errors_become_a_luna_500(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("secret internals")

    app = RequestMiddleware(ErrorMiddleware(broken))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.get("/boom")
    body = assert_error(response, 500, 1)
    assert "secret" not in response.text
    assert body["detail"] == "Internal server error"
    assert "luna-request-id" in response.headers
    assert "secret internals" in caplog.text  # the traceback is logged

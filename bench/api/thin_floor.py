"""The thin-layer floor: about the least an HTTP service over the ``handler`` table can do.

Same URLs, header and table as luna-handlers, but no validation, no error model, no
middleware: Starlette routes over an asyncpg pool (prepared statements), orjson bodies. Run
under uvicorn with uvloop and httptools; ``BENCH_FLOOR_DSN`` names the database and
``BENCH_FLOOR_POOL`` the pool size (10, like the service's default).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

COLUMNS = ("handler_id, account_id, description, policies, is_dynamic, create_time, "
           "last_update_time")
UTC_NOW = "(statement_timestamp() AT TIME ZONE 'UTC')"
ACCOUNT = "luna-account-id"


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data, option=orjson.OPT_NAIVE_UTC), status,
                    media_type="application/json")


def _handler(row: Any) -> dict[str, Any]:
    policies = row["policies"]
    return {"handler_id": row["handler_id"], "account_id": row["account_id"],
            "description": row["description"], "is_dynamic": row["is_dynamic"],
            "policies": None if policies is None else orjson.loads(policies),
            "create_time": row["create_time"], "last_update_time": row["last_update_time"]}


def _pool(request: Request) -> Any:
    return request.app.state.pool


async def get_handler(request: Request) -> Response:
    """GET /1/handlers/{id}, scoped to the account header when given."""
    handler_id = request.path_params["handler_id"]
    account = request.headers.get(ACCOUNT)
    if account is None:
        row = await _pool(request).fetchrow(
            f"SELECT {COLUMNS} FROM handler WHERE handler_id = $1", handler_id)
    else:
        row = await _pool(request).fetchrow(
            f"SELECT {COLUMNS} FROM handler WHERE handler_id = $1 AND account_id = $2",
            handler_id, account)
    return _json({"error": "not found"}, 404) if row is None else _json(_handler(row))


async def list_handlers(request: Request) -> Response:
    """GET /1/handlers?page&page_size: newest first, in the header's account."""
    page = int(request.query_params.get("page", "1"))
    size = int(request.query_params.get("page_size", "10"))
    rows = await _pool(request).fetch(
        f"SELECT {COLUMNS} FROM handler WHERE account_id = $1 "
        "ORDER BY create_time DESC, handler_id LIMIT $2 OFFSET $3",
        request.headers.get(ACCOUNT, ""), size, (page - 1) * size)
    return _json({"handlers": [_handler(row) for row in rows]})


async def create_handler(request: Request) -> Response:
    """POST /1/handlers: stores the body's description and policies as given."""
    body = orjson.loads(await request.body())
    handler_id = str(uuid.uuid4())
    await _pool(request).execute(
        "INSERT INTO handler (handler_id, account_id, description, policies, is_dynamic) "
        "VALUES ($1, $2, $3, $4, false)",
        handler_id, request.headers[ACCOUNT], body.get("description", ""),
        orjson.dumps(body.get("policies", {})).decode())
    url = f"/1/handlers/{handler_id}"
    return _json({"handler_id": handler_id, "url": url}, 201)


async def put_handler(request: Request) -> Response:
    """PUT /1/handlers/{id}: 204, or 404 when it is not in the header's account."""
    body = orjson.loads(await request.body())
    status = await _pool(request).execute(
        f"UPDATE handler SET description = $3, policies = $4, is_dynamic = false, "
        f"last_update_time = {UTC_NOW} WHERE handler_id = $1 AND account_id = $2",
        request.path_params["handler_id"], request.headers[ACCOUNT],
        body.get("description", ""), orjson.dumps(body.get("policies", {})).decode())
    return Response(status_code=204 if status == "UPDATE 1" else 404)


async def health(_request: Request) -> Response:
    """GET /health: the process is up."""
    return Response(status_code=200)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    """Open the pool before serving, close it after."""
    size = int(os.environ.get("BENCH_FLOOR_POOL", "10"))
    app.state.pool = await asyncpg.create_pool(os.environ["BENCH_FLOOR_DSN"], min_size=size,
                                               max_size=size)
    try:
        yield
    finally:
        await app.state.pool.close()


app = Starlette(lifespan=lifespan, routes=[
    Route("/health", health),
    Route("/1/handlers", list_handlers, methods=["GET"]),
    Route("/1/handlers", create_handler, methods=["POST"]),
    Route("/1/handlers/{handler_id}", get_handler, methods=["GET"]),
    Route("/1/handlers/{handler_id}", put_handler, methods=["PUT"]),
])

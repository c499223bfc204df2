"""The HTTP application over the module's real database, driven in-process through httpx."""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from luna_handlers.app.application import EngineFactory, create_app
from luna_handlers.config import Settings, load_settings
from luna_handlers.db.database import Database
from luna_handlers.db.pool.hostpool import HostPool
from luna_handlers.engine import FaceEngine

POLICIES: dict[str, Any] = {"detect_policy": {"detect_face": 1, "multiface_policy": 2}}
VERIFIER_POLICIES: dict[str, Any] = {"verification_threshold": 0.75}
TIME_FORMAT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")


def new_account() -> str:
    """A fresh account id: tests isolate their data by account."""
    return str(uuid.uuid4())


def acc(account: str) -> dict[str, str]:
    """The account header."""
    return {"Luna-Account-Id": account}


def make_settings(pool: HostPool | None = None, **api: Any) -> Settings:
    """Default settings with ``API`` keys overridden (``token=...``, ``max_body_size=...``);
    with ``pool``, the database keys name its database, so the cache's listener can log in."""
    overrides = {f"API.{key}": value for key, value in api.items()}
    if pool is not None:
        url = pool.engine.url
        overrides.update({"LUNA_HANDLERS_DB.db_host": url.host,
                          "LUNA_HANDLERS_DB.db_port": url.port,
                          "LUNA_HANDLERS_DB.db_user": url.username,
                          "LUNA_HANDLERS_DB.db_password": url.password,
                          "LUNA_HANDLERS_DB.db_name": url.database})
    return load_settings(environ={}, overrides=overrides)


def shared(database: Database) -> Callable[[], AbstractAsyncContextManager[Database]]:
    """A factory that lends an already open database and leaves closing it to its owner."""

    @asynccontextmanager
    async def factory() -> AsyncIterator[Database]:
        yield database

    return factory


#: The one engine of the test session, started by the first app that needs it: every app
#: starting its own (two spawned processes) would cost seconds per test module.
_ENGINES: list[FaceEngine] = []


def shared_engine() -> EngineFactory:
    """An engine factory lending the session's engine (2 workers), started on first use."""

    @asynccontextmanager
    async def factory() -> AsyncIterator[FaceEngine]:
        if not _ENGINES:
            settings = load_settings(environ={}).engine
            engine = FaceEngine(dataclasses.replace(settings, workers=2, queue_size=16))
            engine.start()
            _ENGINES.append(engine)
        yield _ENGINES[0]

    return factory


@pytest.fixture(scope="session", autouse=True)
def _close_shared_engine() -> Iterator[None]:
    yield
    for engine in _ENGINES:
        engine.close()
    _ENGINES.clear()


def make_app(settings: Settings,
             database_factory: Callable[[], AbstractAsyncContextManager[Database]]) -> Starlette:
    """``create_app`` with the session's shared engine."""
    return create_app(settings, database_factory, shared_engine())


@asynccontextmanager
async def serve(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and yield a client talking to it in-process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@pytest.fixture(scope="module")
def app(backend_database: Database) -> Starlette:
    """The app with default settings (no token) on the module's database, on each backend
    (see ``backend_database``)."""
    pool = backend_database if isinstance(backend_database, HostPool) else None
    return make_app(make_settings(pool), shared(backend_database))


@pytest.fixture(scope="module")
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``app``."""
    async with serve(app) as http:
        yield http


@pytest.fixture(scope="module")
async def pg_client(migrated_pool: HostPool) -> AsyncIterator[httpx.AsyncClient]:
    """Like ``client``, on PostgreSQL only (features that need it: the read cache)."""
    async with serve(make_app(make_settings(migrated_pool), shared(migrated_pool))) as http:
        yield http


async def create_handler(client: httpx.AsyncClient, account: str, **body: Any) -> str:
    """Create a handler (static with :data:`POLICIES` unless told otherwise); its id."""
    body.setdefault("policies", POLICIES)
    response = await client.post("/1/handlers", json=body, headers=acc(account))
    assert response.status_code == 201, response.text
    return str(response.json()["handler_id"])


async def create_verifier(client: httpx.AsyncClient, account: str, **body: Any) -> str:
    """Create a verifier (with :data:`VERIFIER_POLICIES` unless told otherwise); its id."""
    body.setdefault("policies", VERIFIER_POLICIES)
    response = await client.post("/1/verifiers", json=body, headers=acc(account))
    assert response.status_code == 201, response.text
    return str(response.json()["verifier_id"])


def assert_error(response: httpx.Response, status: int, code: int) -> dict[str, Any]:
    """Check a LUNA error answer (status, exact body keys, code and link); its body."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error_code", "desc", "detail", "link"}
    assert body["error_code"] == code
    assert body["link"].endswith(f"code-{code}")
    return body

"""The four clients the bench compares; each ``write()`` inserts one handler row.

* ``ours``: :class:`FailoverDatabase` through ``DBContext.createHandler``, i.e. the service's
  own DB layer, exactly what an HTTP request uses.
* ``ours-http``: the whole service (``create_app`` + ``database_factory``, served by uvicorn
  on loopback in the bench's event loop), written to with ``POST /1/handlers`` over HTTP.
* ``sqlalchemy``: SQLAlchemy + asyncpg with SQLAlchemy's documented multi-host URL
  (``?host=h1:p1&host=h2:p2&target_session_attrs=read-write``) and ``pool_pre_ping=True``.
* ``psycopg``: psycopg_pool's AsyncConnectionPool over a libpq multi-host conninfo
  (``host=h1,h2 port=p1,p2 target_session_attrs=read-write``), with the documented
  ``check_connection`` check at every checkout.

All of them get the same pool size and the same timeouts where the library has them.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import httpx
import orjson
import sqlalchemy as sa
import uvicorn
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from luna_handlers.app.application import create_app
from luna_handlers.config import FailoverSettings, default_failover, load_settings
from luna_handlers.db.context import HANDLER, DBContext
from luna_handlers.db.dialects.postgresql.backend import open_pg_database
from luna_handlers.db.dialects.postgresql.dsn import parse_pg_dsn
from luna_handlers.db.pool.failover import FailoverDatabase
from luna_handlers.pgserver.cluster import free_port
from luna_handlers.service import database_factory

POOL_SIZE = 4
POLICIES = {"detect_policy": {"detect_face": 1}}
ACCOUNT = "00000000-0000-4000-8000-000000000001"
# libpq (and so psycopg) does not accept a connect_timeout under 2 seconds.
LIBPQ_MIN_CONNECT_TIMEOUT = 2
# The bench bounds every write at 5 s (run.WRITE_TIMEOUT); httpx's own timeout is set past
# it, so that the bench's bound is what fires, for this client as for the others.
HTTP_TIMEOUT = 6.0
SERVICE_START_TIMEOUT = 20.0
SERVICE_ERROR_LOGGER = "luna_handlers.app"  # where the service logs what became a 500
SERVICE_STOP_TIMEOUT = 3  # seconds; uvicorn wants an int
#: Every DB_FAILOVER key at its default: what a new user runs (issue 11).
DEFAULT_FAILOVER = default_failover()


@dataclass(frozen=True)
class Target:
    """Where the clients connect: the hosts in order (primary first) and the credentials."""

    hosts: tuple[tuple[str, int], ...]
    user: str
    password: str
    dbname: str
    settings: FailoverSettings


class Client(Protocol):
    """One client under test."""

    name: str

    async def open(self) -> None:
        """Connect (the pool is ready when this returns)."""

    async def write(self) -> str:
        """Insert one handler; its id once the commit is acknowledged."""

    async def close(self) -> None:
        """Close every connection."""


class HttpStatusError(Exception):
    """A write the service answered with anything but 201."""

    def __init__(self, label: str, body: str) -> None:
        super().__init__(f"{label}: {body}")
        self.label = label


def error_class(exc: BaseException) -> str:
    """A short class name for the error report (SQLAlchemy's wrapper shows the driver's)."""
    if isinstance(exc, HttpStatusError):
        return exc.label
    if isinstance(exc, httpx.HTTPError):  # transport errors: no HTTP answer at all
        return f"httpx.{type(exc).__name__}"
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        return f"{type(exc).__name__}({type(exc.orig).__name__})"
    return type(exc).__name__


class Ours:
    """luna_handlers: FailoverDatabase + DBContext.createHandler."""

    name = "ours"

    def __init__(self, target: Target) -> None:
        hosts = ",".join(f"{host}:{port}" for host, port in target.hosts)
        self._dsn = parse_pg_dsn(f"{target.user}:{target.password}@{hosts}/{target.dbname}")
        self._settings = target.settings
        self._db: FailoverDatabase | None = None
        self._ctx: DBContext | None = None

    async def open(self) -> None:
        """Start the failover pool."""
        self._db = await open_pg_database(self._dsn, POOL_SIZE, self._settings)
        self._ctx = DBContext(self._db)

    async def write(self) -> str:
        """One handler through the service's DB context."""
        assert self._ctx is not None
        return await self._ctx.createHandler(POLICIES, ACCOUNT, "bench")

    async def close(self) -> None:
        """Close the failover pool."""
        if self._db is not None:
            await self._db.close()


def _row() -> dict[str, Any]:
    return {"handler_id": str(uuid.uuid4()), "account_id": ACCOUNT, "description": "bench",
            "is_dynamic": False, "policies": orjson.dumps(POLICIES).decode()}


class SqlAlchemyMultiHost:
    """SQLAlchemy + asyncpg, multi-host URL, pre-ping on checkout."""

    name = "sqlalchemy"

    def __init__(self, target: Target) -> None:
        query = "&".join(f"host={host}:{port}" for host, port in target.hosts)
        url = (f"postgresql+asyncpg://{target.user}:{target.password}@/{target.dbname}"
               f"?{query}&target_session_attrs=read-write")
        settings = target.settings
        self._engine: AsyncEngine = create_async_engine(
            url, pool_size=POOL_SIZE, max_overflow=0, pool_pre_ping=True,
            pool_timeout=settings.switch_wait,
            connect_args={"timeout": settings.connect_timeout,
                          "command_timeout": settings.query_timeout})

    async def open(self) -> None:
        """Check that a connection can be made."""
        async with self._engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def write(self) -> str:
        """One handler row in its own transaction."""
        row = _row()
        async with self._engine.begin() as conn:
            await conn.execute(sa.insert(HANDLER).values(**row))
        return str(row["handler_id"])

    async def close(self) -> None:
        """Dispose of the engine."""
        await self._engine.dispose()


class PsycopgPool:
    """psycopg_pool with a libpq multi-host conninfo."""

    name = "psycopg"

    def __init__(self, target: Target) -> None:
        settings = target.settings
        conninfo = make_conninfo(
            host=",".join(host for host, _ in target.hosts),
            port=",".join(str(port) for _, port in target.hosts),
            user=target.user, password=target.password, dbname=target.dbname,
            target_session_attrs="read-write",
            connect_timeout=max(LIBPQ_MIN_CONNECT_TIMEOUT, math.ceil(settings.connect_timeout)))
        self._pool = AsyncConnectionPool(
            conninfo, min_size=POOL_SIZE, max_size=POOL_SIZE, open=False,
            timeout=settings.switch_wait, check=AsyncConnectionPool.check_connection)

    async def open(self) -> None:
        """Open the pool and wait for its connections."""
        await self._pool.open(wait=True, timeout=10)

    async def write(self) -> str:
        """One handler row; the connection block commits."""
        row = _row()
        async with self._pool.connection() as conn:
            await conn.execute(
                "INSERT INTO handler (handler_id, account_id, description, is_dynamic, policies)"
                " VALUES (%(handler_id)s, %(account_id)s, %(description)s, %(is_dynamic)s,"
                " %(policies)s)", row)
        return str(row["handler_id"])

    async def close(self) -> None:
        """Close the pool (bounded: it waits for connections in use)."""
        await self._pool.close(timeout=2)


class _EmbeddedServer(uvicorn.Server):
    """uvicorn in the bench's own event loop: the bench keeps its signal handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Leave SIGINT and SIGTERM to the bench."""
        yield


def _status_label(response: httpx.Response) -> str:
    """``201``, ``503/34010``: the status, and the LUNA error code when the body has one."""
    try:
        body = response.json()
    except ValueError:
        body = None
    code = body.get("error_code") if isinstance(body, dict) else None
    return f"{response.status_code}/{code}" if code is not None else str(response.status_code)


class _FirstError(logging.Handler):
    """Keeps the first exception the service logged as unhandled (what became a 500)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.cause = ""

    def emit(self, record: logging.LogRecord) -> None:
        """Remember the first record with an exception: its type, message, innermost frames."""
        if self.cause or not record.exc_info or record.exc_info[1] is None:
            return
        exc = record.exc_info[1]
        stack = traceback.extract_tb(exc.__traceback__)
        ours = [f for f in stack if "/luna_handlers/" in f.filename][-1:]
        # the innermost frames, and the innermost one of the service when not among them
        frames = [f for f in ours if all(f is not g for g in stack[-2:])] + stack[-2:]
        where = " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}"
                            for f in reversed(frames))
        self.cause = f"{type(exc).__module__}.{type(exc).__name__}: {exc} (at {where})"


class OursHttp:
    """The service itself over HTTP: ``POST /1/handlers`` to uvicorn on loopback.

    The application is built the way the service builds it (``create_app`` with
    ``database_factory``: the failover pool, and the schema check at start-up) from settings
    that point ``LUNA_HANDLERS_DB`` at both hosts, with the bench's ``DB_FAILOVER`` values and
    pool size. The read cache is off (not used by writes, and its change feed would be one
    more connection to fail over). ``outcomes`` counts every answer of the whole round, the
    warm-up included: HTTP status (with the LUNA error code) or why there was none.
    """

    name = "ours-http"

    def __init__(self, target: Target) -> None:
        hosts = ",".join(f"{host}:{port}" for host, port in target.hosts)
        failover = target.settings
        settings = load_settings(environ={
            "LUNA_HANDLERS_DB__DSN": f"{target.user}:{target.password}@{hosts}/{target.dbname}",
            "LUNA_HANDLERS_DB__CONNECTION_POOL_SIZE": str(POOL_SIZE),
            "DB_FAILOVER__CONNECT_TIMEOUT": str(failover.connect_timeout),
            "DB_FAILOVER__QUERY_TIMEOUT": str(failover.query_timeout),
            "DB_FAILOVER__FAILURE_THRESHOLD": str(failover.failure_threshold),
            "DB_FAILOVER__HEALTH_CHECK_INTERVAL": str(failover.health_check_interval),
            "DB_FAILOVER__SWITCH_WAIT": str(failover.switch_wait),
            "DB_FAILOVER__HEALTH_CHECK_TIMEOUT": str(failover.health_check_timeout),
            "API__CACHE_SIZE": "0",
        })
        assert settings.failover == failover, "the service must get the bench's DB_FAILOVER"
        self._port = free_port()
        self._server = _EmbeddedServer(uvicorn.Config(
            create_app(settings, database_factory(settings)), host="127.0.0.1",
            port=self._port, loop="asyncio", lifespan="on", log_config=None,
            access_log=False, timeout_graceful_shutdown=SERVICE_STOP_TIMEOUT))
        self._task: asyncio.Task[None] | None = None
        self._http: httpx.AsyncClient | None = None
        self.outcomes: Counter[str] = Counter()
        self.first_500 = ""  # the body of the first 500, for the report
        self._errors = _FirstError()  # and its cause, from the service's own error log

    async def _serve(self) -> None:
        try:
            await self._server.serve()
        except SystemExit as exc:  # uvicorn's answer to a failed lifespan start-up
            raise RuntimeError(f"the service did not start (exit {exc.code})") from None

    async def open(self) -> None:
        """Start the service (its lifespan opens the pool) and an HTTP client to it."""
        logging.getLogger(SERVICE_ERROR_LOGGER).addHandler(self._errors)
        self._task = asyncio.create_task(self._serve())
        async with asyncio.timeout(SERVICE_START_TIMEOUT):
            while not self._server.started:
                if self._task.done():
                    self._task.result()  # raises why it stopped
                    raise RuntimeError("the service stopped during start-up")
                await asyncio.sleep(0.01)
        self._http = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{self._port}", timeout=HTTP_TIMEOUT,
            headers={"Luna-Account-Id": ACCOUNT},
            limits=httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE))

    async def write(self) -> str:
        """``POST /1/handlers``; the id from the 201 body, anything else raises."""
        assert self._http is not None
        body = {"description": f"bench-http-{uuid.uuid4().hex}", "policies": POLICIES}
        try:
            response = await self._http.post("/1/handlers", json=body)
        except httpx.HTTPError as exc:
            self.outcomes[error_class(exc)] += 1
            raise
        except asyncio.CancelledError:  # the bench's 5 s bound (nothing else cancels a write)
            self.outcomes["no answer (bench timeout)"] += 1
            raise
        label = _status_label(response)
        self.outcomes[label] += 1
        if response.status_code == 201:
            handler_id: str = response.json()["handler_id"]
            return handler_id
        if response.status_code == 500 and not self.first_500:
            self.first_500 = response.text[:300]
            await asyncio.sleep(0)  # the service logs the exception as it answers
            if self._errors.cause:
                self.first_500 += f"; the service logged {self._errors.cause}"
        raise HttpStatusError(f"HTTP {label}", response.text[:300])

    async def close(self) -> None:
        """Close the HTTP client, stop the service (its lifespan closes the pool)."""
        if self._http is not None:
            await self._http.aclose()
        if self._task is not None:
            self._server.should_exit = True
            try:
                async with asyncio.timeout(SERVICE_STOP_TIMEOUT + 2):
                    await asyncio.shield(self._task)
            except TimeoutError:
                self._server.force_exit = True
                self._task.cancel()
            finally:
                logging.getLogger(SERVICE_ERROR_LOGGER).removeHandler(self._errors)
                # create_app freezes what start-up built (gc.freeze); undo it so the next
                # rounds (other clients') run with the garbage collector as it was.
                gc.unfreeze()


class OursDefaults(Ours):
    """:class:`Ours` with every ``DB_FAILOVER`` key at its default, whatever the bench's."""

    name = "ours-dflt"

    def __init__(self, target: Target) -> None:
        super().__init__(replace(target, settings=DEFAULT_FAILOVER))


class OursHttpDefaults(OursHttp):
    """:class:`OursHttp` with every ``DB_FAILOVER`` key at its default."""

    name = "http-dflt"

    def __init__(self, target: Target) -> None:
        super().__init__(replace(target, settings=DEFAULT_FAILOVER))


ClientFactory = Callable[[Target], Client]
# The defaults first: they are what the service promises without tuning.
CLIENTS: dict[str, ClientFactory] = {
    client.name: client for client in (OursDefaults, OursHttpDefaults, Ours, OursHttp,
                                       SqlAlchemyMultiHost, PsycopgPool)}
# The clients the references are compared with; the first two run at the defaults.
OURS = frozenset({OursDefaults.name, OursHttpDefaults.name, Ours.name, OursHttp.name})
DEFAULTS = frozenset({OursDefaults.name, OursHttpDefaults.name})
#: Seconds after the promotion by which the first write must be acknowledged (median).
TARGETS = {("kill", Ours.name): 0.5, ("kill", OursHttp.name): 0.5,
           ("kill", OursDefaults.name): 1.0, ("kill", OursHttpDefaults.name): 1.0,
           ("hang", OursDefaults.name): 3.0, ("hang", OursHttpDefaults.name): 3.0}

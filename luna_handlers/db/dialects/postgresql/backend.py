"""The PostgreSQL backend of the pool: asyncpg probes, request connections, change feeds."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from functools import partial
from typing import Any

import asyncpg

from luna_handlers.config import FailoverSettings
from luna_handlers.db.changes import ChangeFeed, Target
from luna_handlers.db.dialects.postgresql.classify import (
    DRIVER_ERRORS,
    classify,
    probe_classify,
    sqlstate,
)
from luna_handlers.db.dialects.postgresql.connect import (
    APPLICATION_NAME,
    pg_connect_args,
    pg_connections,
)
from luna_handlers.db.dialects.postgresql.dsn import PgDsn
from luna_handlers.db.dialects.postgresql.feed import FEED_APPLICATION_NAME, ListenFeed
from luna_handlers.db.dialects.postgresql.health import end_sessions, open_link
from luna_handlers.db.dialects.postgresql.pooler import UNNAMED, StatementPolicy, pooler_hint
from luna_handlers.db.hosts import HostPort
from luna_handlers.db.pool.backend import Backend
from luna_handlers.db.pool.failover import FailoverDatabase, start_failover_database
from luna_handlers.db.pool.roles import HostRole

# For servers that do not report in_hot_standby (before 14) as a ParameterStatus.
ROLE_QUERY = ("SELECT pg_catalog.pg_is_in_recovery(), "
              "pg_catalog.current_setting('default_transaction_read_only') = 'on'")


async def pg_role(conn: Any, limit: float) -> HostRole:
    """The role of the server behind an asyncpg connection.

    PG14+ reports ``in_hot_standby`` and ``default_transaction_read_only`` in the startup
    ParameterStatus messages, so a fresh connection needs no extra round trip (libpq does
    the same for target_session_attrs).
    """
    settings = conn.get_settings()
    hot = getattr(settings, "in_hot_standby", None)
    read_only = getattr(settings, "default_transaction_read_only", None)
    if hot is None or read_only is None:
        row = await conn.fetchrow(ROLE_QUERY, timeout=limit)
        return HostRole(in_recovery=bool(row[0]), read_only=bool(row[0] or row[1]))
    return HostRole(in_recovery=hot == "on", read_only=hot == "on" or read_only == "on")


def _sqlstate_label(exc: BaseException) -> str | None:
    code = sqlstate(exc)
    return None if code is None else f"SQLSTATE {code}"


def pg_backend(dsn: PgDsn, pool_size: int, settings: FailoverSettings, *,
               prepared_statements: bool = True) -> Backend:
    """The PostgreSQL backend: asyncpg probes, :func:`pg_connections` pools, LISTEN feeds.

    ``prepared_statements`` is the setting of that name: False, or a probe finding a pooler
    in transaction mode, means unnamed statements and no change feed
    (:mod:`~luna_handlers.db.dialects.postgresql.pooler`).
    """
    connect_args = pg_connect_args(dsn, settings)
    timeout = float(connect_args.pop("timeout"))
    connect_args.pop("command_timeout", None)
    policy = StatementPolicy.from_setting(prepared_statements)

    async def probe(host: HostPort, limit: float) -> HostRole:
        # target_session_attrs="any": we judge the role ourselves, and PGTARGETSESSIONATTRS
        # from the environment must not change what a probe sees. Unnamed statements: a
        # probe's few queries must work through any pooler.
        def connect() -> Any:
            return asyncpg.connect(
                host=host.host, port=host.port, user=dsn.user, password=dsn.password or None,
                database=dsn.dbname, timeout=limit, target_session_attrs="any",
                **connect_args, **UNNAMED)

        conn = await connect()
        try:
            role = await pg_role(conn, limit)
            await policy.check(host, conn, connect, limit)
        except BaseException:
            conn.terminate()
            raise
        # A graceful close (so the server logs no "unexpected EOF"); bounded, then abort.
        with contextlib.suppress(Exception):
            await conn.close(timeout=limit)
        return role

    def changes(target: Target, on_change: Callable[[str], None],
                on_reset: Callable[[], None], name: str | None) -> ChangeFeed | None:
        if not policy.feed:
            return None  # a LISTEN through a transaction pooler would hear nothing
        return ListenFeed.from_dsn(target, dsn, settings, on_change=on_change,
                                   on_reset=on_reset,
                                   application_name=name or FEED_APPLICATION_NAME)

    # The health link and the session ender log in like a probe (unnamed statements: they
    # may pass through a transaction pooler), under their own name.
    own = {"user": dsn.user, "password": dsn.password or None, "database": dsn.dbname,
           "target_session_attrs": "any", **connect_args, **UNNAMED,
           "server_settings": {"application_name": f"{APPLICATION_NAME}-health"}}

    return Backend(
        dialect="postgresql", hosts=dsn.hosts, target=dsn.target_session_attrs,
        connect_timeout=timeout, probe=probe,
        connections=lambda host: pg_connections(host, dsn, pool_size, settings, policy),
        classify=classify, driver_errors=DRIVER_ERRORS, probe_classify=probe_classify,
        changes=changes, secret=dsn.password, code=_sqlstate_label, hint=pooler_hint,
        monitor=partial(open_link, own), end_sessions=partial(end_sessions, own),
    )


async def open_pg_database(dsn: PgDsn, pool_size: int, settings: FailoverSettings, *,
                           prepared_statements: bool = True) -> FailoverDatabase:
    """A started :class:`FailoverDatabase` on the hosts of a PostgreSQL DSN."""
    backend = pg_backend(dsn, pool_size, settings, prepared_statements=prepared_statements)
    return await start_failover_database(backend, pool_size, settings)

"""Server-side poolers in transaction or statement mode (pgbouncer): what they break, how the
dialect notices them, and what it does instead.

Such a pooler hands each transaction of a client connection to whichever server session is
free. Two things of ours need a server session of their own and break:

* named prepared statements: asyncpg prepares ``__asyncpg_stmt_1__`` on one server session
  and binds it on another ("does not exist"), or a second client prepares the same name on
  a session that has it already ("already exists");
* ``LISTEN``: it registers on one server session, which serves other clients meanwhile.

:class:`StatementPolicy` decides, per database: named statements (asyncpg's cache, one round
trip per statement, planned once per connection) unless ``LUNA_HANDLERS_DB.prepared_statements``
is false or a probe found a pooler (:func:`shares_server_sessions`); otherwise unnamed
statements, parsed again in the same round trip as each execution, and no change feed (so
no handler cache: a stale handler is worse than a slower one). pgbouncer >= 1.21 with
``max_prepared_statements`` keeps protocol-level named statements itself; 1.18 does not.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from luna_handlers.db.hosts import HostPort
from luna_handlers.db.pool.faults import error_chain

logger = logging.getLogger("luna_handlers.db")

SETTING = "LUNA_HANDLERS_DB.prepared_statements"
HINT = ("prepared statements are not supported by the server side pooler; "
        f"set {SETTING}=false")
#: invalid_sql_statement_name ("does not exist"), duplicate_prepared_statement
POOLER_SQLSTATES = frozenset({"26000", "42P05"})
#: asyncpg's names (``__asyncpg_stmt_1__``), under SQLAlchemy as well: a 26000 about a
#: statement of someone else's is not ours to explain.
_OUR_STATEMENTS = "__asyncpg_"

#: asyncpg arguments for named statements: keep every statement of ours (a few hundred
#: shapes at most) and never expire them, since asyncpg closes the statements it evicts
#: without a timeout.
NAMED = {"statement_cache_size": 1024, "max_cached_statement_lifetime": 0}
#: asyncpg without a statement cache: every statement unnamed, re-parsed in the round trip
#: of its execution (asyncpg assumes a pooler then). SQLAlchemy's own cache of asyncpg
#: statements is turned off with it, so its statements are unnamed too.
UNNAMED: dict[str, Any] = {"statement_cache_size": 0}
UNNAMED_ENGINE: dict[str, Any] = {**UNNAMED, "prepared_statement_cache_size": 0}

PID_QUERY = "SELECT pg_catalog.pg_backend_pid()"


def pooler_error(exc: BaseException) -> bool:
    """True when ``exc`` is one of our named statements lost or doubled by a pooler."""
    return any(getattr(item, "sqlstate", None) in POOLER_SQLSTATES
               and _OUR_STATEMENTS in str(item) for item in error_chain(exc))


def pooler_hint(exc: BaseException) -> str | None:
    """What to do about ``exc``, when it is a pooler's doing (for logs and exit messages)."""
    return HINT if pooler_error(exc) else None


async def shares_server_sessions(first: Any, connect: Callable[[], Awaitable[Any]],
                                 limit: float) -> bool:
    """True when a second client connection is served by the server process that has
    just served ``first``: only a transaction or statement pooler does that.

    ``first`` asks for its backend's pid outside any transaction (a pooler then frees that
    server session), then a new connection asks the same. Directly, or through a session
    pooler, two open connections never share a backend; a transaction pooler hands the
    idle session to the next client (pgbouncer reuses the most recent one first). A busy
    pooler may hand out another session: then the check says False and the setting (or
    the error's hint) is the way.
    """
    pid = await first.fetchval(PID_QUERY, timeout=limit)
    second = await connect()
    try:
        return bool(pid == await second.fetchval(PID_QUERY, timeout=limit))
    finally:
        try:  # a graceful close, so that the server logs no "unexpected EOF"
            await second.close(timeout=limit)
        except Exception:
            second.terminate()  # the answer stands; the socket goes
        except BaseException:
            second.terminate()
            raise


@dataclass
class StatementPolicy:
    """Named or unnamed statements for one configured database (see the module docstring).

    ``named`` starts as the setting; a probe that finds a pooler turns it off for good, for
    every host (the pools, engines and feeds made after that follow it).
    """

    named: bool
    _checked: set[HostPort] = field(default_factory=set)

    @classmethod
    def from_setting(cls, prepared_statements: bool) -> StatementPolicy:
        """The policy of ``LUNA_HANDLERS_DB.prepared_statements``."""
        return cls(named=prepared_statements)

    def driver_args(self) -> dict[str, Any]:
        """asyncpg's statement-cache arguments for the request connections."""
        return dict(NAMED if self.named else UNNAMED)

    def engine_args(self) -> dict[str, Any]:
        """The same for SQLAlchemy's engine (asyncpg's defaults when named)."""
        return {} if self.named else dict(UNNAMED_ENGINE)

    @property
    def feed(self) -> bool:
        """True when a LISTEN can work (no pooler known to be in between)."""
        return self.named

    async def check(self, host: HostPort, conn: Any, connect: Callable[[], Awaitable[Any]],
                    limit: float) -> None:
        """Look for a pooler in front of ``host`` once (``conn`` is a probe's connection)."""
        if not self.named or host in self._checked:
            return
        self._checked.add(host)
        try:
            # Half the probe's time at most: a full session pooler makes the second
            # connection wait, and that must not fail the probe.
            async with asyncio.timeout(limit / 2):
                pooled = await shares_server_sessions(conn, connect, limit / 2)
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            logger.info("could not check %s for a pooler in transaction mode (%s): named "
                        "prepared statements stay on", host, type(exc).__name__)
            return
        if pooled:
            self.named = False
            logger.warning(
                "database host %s is a pooler in transaction or statement mode (two client "
                "connections were served by one server process): named prepared statements "
                "and the change feed are off, so is the handler cache; set %s=false to skip "
                "this check", host, SETTING)

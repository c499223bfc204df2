"""The PostgreSQL health link: one kept asyncpg connection, one cheap query per check.

The query reads the role, the server's identity (its postmaster start time: a restarted or
different server shows another one) and what the health check reports about replication:
``synchronous`` when at least one standby is synchronous now, ``asynchronous`` when standbys
stream but none is synchronous, ``none`` without standbys, ``unknown`` when the login may not
see them (``pg_stat_replication`` shows other sessions' columns only to members of
``pg_read_all_stats``, e.g. ``pg_monitor``). It also ends cut sessions by id.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import asyncpg

from luna_handlers.db.dialects.postgresql.connections import set_keepalive
from luna_handlers.db.hosts import HostPort
from luna_handlers.db.pool.backend import HealthFacts
from luna_handlers.db.pool.roles import HostRole

HEALTH_QUERY = """
SELECT pg_catalog.pg_is_in_recovery() AS in_recovery,
       pg_catalog.current_setting('default_transaction_read_only') = 'on' AS read_only,
       pg_catalog.pg_postmaster_start_time()::text AS identity,
       pg_catalog.current_setting('synchronous_standby_names') AS standby_names,
       r.standbys, r.visible, r.synchronous
FROM (SELECT count(*) AS standbys, count(sync_state) AS visible,
             count(*) FILTER (WHERE sync_state IN ('sync', 'quorum')) AS synchronous
      FROM pg_catalog.pg_stat_replication) AS r
"""

# Ends the given backends only on the server whose identity is given: ids of another server
# (the HAProxy address now leading to a new primary, say) are left alone.
END_QUERY = """
SELECT count(*) FILTER (WHERE CASE WHEN pg_catalog.pg_postmaster_start_time()::text = $2
                                   THEN pg_catalog.pg_terminate_backend(pid) ELSE false END)
FROM unnest($1::int[]) AS pid
"""


def replication_facts(row: Any) -> dict[str, Any]:
    """The ``replication`` part of the status from one row of :data:`HEALTH_QUERY`."""
    standbys, visible, synchronous = int(row["standbys"]), int(row["visible"]), \
        int(row["synchronous"])
    if standbys == 0:
        state, count = "none", 0
    elif visible < standbys:
        state, count = "unknown", None
    else:
        state, count = ("synchronous" if synchronous else "asynchronous"), synchronous
    return {"replication": state, "synchronous_standbys": count,
            "synchronous_standby_names": row["standby_names"]}


class PgHealthLink:
    """A kept connection to one host for :class:`~luna_handlers.db.pool.health.HostHealth`."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def check(self) -> HealthFacts:
        """One round trip: role, identity, replication."""
        row = await self._conn.fetchrow(HEALTH_QUERY)
        assert row is not None
        role = HostRole(in_recovery=bool(row["in_recovery"]),
                        read_only=bool(row["in_recovery"] or row["read_only"]))
        return HealthFacts(role, str(row["identity"]), replication_facts(row))

    def terminate(self) -> None:
        """Close the socket now."""
        with contextlib.suppress(Exception):
            self._conn.terminate()


async def open_link(connect_args: dict[str, Any], host: HostPort, limit: float) -> PgHealthLink:
    """A health link to ``host`` (``connect_args`` without host, port and timeout)."""
    conn = await asyncpg.connect(host=host.host, port=host.port, timeout=limit, **connect_args)
    set_keepalive(conn)
    return PgHealthLink(conn)


async def end_sessions(connect_args: dict[str, Any], host: HostPort, pids: Sequence[int],
                       identity: str, limit: float) -> int:
    """``pg_terminate_backend`` of ``pids`` on ``host`` if it is still server ``identity``
    (our own login may end its own sessions); how many were ended."""
    conn = await asyncpg.connect(host=host.host, port=host.port, timeout=limit, **connect_args)
    try:
        ended = await conn.fetchval(END_QUERY, list(pids), identity, timeout=limit)
    finally:
        conn.terminate()
    return int(ended or 0)

"""Per-worker limits of the HTTP edge, with the open-connection limit kept within the
process's file descriptors."""

from __future__ import annotations

import logging
import resource
from dataclasses import dataclass

from luna_handlers.config import Settings

logger = logging.getLogger("luna_handlers")

#: Descriptors kept free of client connections, besides two per pooled database connection
#: (the pool and a replacement or probe): log files, the listening socket, the change feed,
#: health-check logins, metrics files.
FD_RESERVE = 64
#: Refused connections that linger at once to hand over their 503 (see protocol.py); beyond
#: that they are closed at once. They hold descriptors too, so they come out of the limit.
MAX_REFUSED_LINGERING = 64


@dataclass(frozen=True)
class HttpLimits:
    """What :class:`~luna_handlers.http.protocol.LunaHttpProtocol` enforces."""

    header_timeout: float
    max_connections: int
    max_header_size: int
    max_url_length: int


def raise_open_file_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit; the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:
            logger.warning("cannot raise the open-file limit from %d to %d: %s", soft, hard, exc)
    return soft


def http_limits(settings: Settings) -> HttpLimits:
    """The limits of ``settings``, with ``max_connections`` lowered to what the open-file
    limit allows once the reserve is kept (so the database never meets EMFILE)."""
    server = settings.server
    soft = raise_open_file_limit()
    allowed = (soft - FD_RESERVE - MAX_REFUSED_LINGERING
               - 2 * settings.db.connection_pool_size)
    max_connections = server.max_connections
    if allowed < max_connections:
        max_connections = max(allowed, 1)
        logger.warning("LUNA_HANDLERS_SERVER.max_connections lowered from %d to %d: the open-"
                       "file limit is %d", server.max_connections, max_connections, soft)
    return HttpLimits(header_timeout=server.header_timeout, max_connections=max_connections,
                      max_header_size=server.max_header_size,
                      max_url_length=server.max_url_length)

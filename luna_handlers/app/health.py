"""GET /1/healthcheck and GET /1/version."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import Response

import luna_handlers
from luna_handlers.app import deps
from luna_handlers.app.errors import error_response
from luna_handlers.app.serialize import ORJSONResponse
from luna_handlers.db import ChangeFeed, Database
from luna_handlers.errors import DatabaseError, DatabaseUnavailable

API_VERSION = 1
#: A probe must answer quickly even when the database hangs; the DB layer's own query
#: timeout is sized for real work, not for probes.
PING_TIMEOUT = 5.0


async def healthcheck(request: Request) -> Response:
    """200 with the database status after a round trip; 503 with the LUNA error body if not."""
    database = cast(Database, request.app.state.database)
    try:
        async with asyncio.timeout(PING_TIMEOUT):
            await deps.db(request).ping()
    except TimeoutError:
        failure = DatabaseUnavailable(f"the database did not answer within {PING_TIMEOUT:g} s")
    except DatabaseError as exc:
        failure = DatabaseUnavailable(exc.detail)
    else:
        return ORJSONResponse({"status": "ok", "database": database.status(),
                               "cache": _cache_status(request)})
    return error_response(failure, head=request.method == "HEAD",
                          extra={"database": database.status(), "cache": _cache_status(request)})


def _cache_status(request: Request) -> dict[str, Any]:
    """Whether the read cache serves, and its change feed's state (None: no feed). A dead
    feed does not fail the check: the cache then steps aside and every read goes to the
    database, which is correct, only slower; the feed reconnects by itself."""
    cache = deps.cache(request)
    feed = cache.feed
    status = feed.status() if isinstance(feed, ChangeFeed) else None
    return {"serving": cache.enabled, "size": len(cache), "feed": status}


async def version(_request: Request) -> Response:
    """The service and API versions."""
    return ORJSONResponse({"version": luna_handlers.__version__, "api_version": API_VERSION})

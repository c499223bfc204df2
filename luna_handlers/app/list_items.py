"""The JSON of list pages (GET /1/handlers, GET /1/verifiers).

An item's policies with every default filled in are rendered when the object is written and
stored beside its policies (:class:`~luna_handlers.db.RenderedPolicies`); a page splices that
text into its JSON (``orjson.Fragment``), so an item costs the same few microseconds however
many objects are stored and nothing is kept between requests. Only rows without a current
rendering (stored before migration 0006 by the offline script, corrupted, or rendered by a
version with other defaults) are rendered on the read, from their stored policies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import orjson
from starlette.responses import Response

from luna_handlers.db import HandlerRecord, VerifierRecord

R = TypeVar("R", HandlerRecord, VerifierRecord)


def page(key: str, records: Iterable[R], render: Callable[[R], dict[str, Any]]) -> Response:
    """The JSON response ``{key: [render(record), ...]}``."""
    body = orjson.dumps({key: [render(record) for record in records]})
    return Response(body, media_type="application/json")
